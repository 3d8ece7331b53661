using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary>
/// <c>make-mirror</c> (etcdctl/ctlv3/command/make_mirror_command.go over clientv3/mirror): copies the keys under
/// <c>--prefix</c> at one revision to the destination (renamed to <c>--dest-prefix</c>), then applies every later
/// change, one destination transaction per source revision; prints the number of keys mirrored every 30 s.
/// </summary>
public static class MakeMirrorCommand
{
    /// <summary>The <c>make-mirror</c> command.</summary>
    public static Command Create()
    {
        var c = new Command("make-mirror [options] <destination>", "Makes a mirror at the destination etcd cluster", RunAsync);
        c.Flags.String("prefix", "", "Key-value prefix to mirror");
        c.Flags.String("dest-prefix", "", "destination prefix to mirror a prefix to a different prefix in the destination cluster");
        c.Flags.Bool("no-dest-prefix", false, "mirror key-values to the root of the destination cluster");
        c.Flags.String("dest-cert", "", "Identify secure client using this TLS certificate file for the destination cluster");
        c.Flags.String("dest-key", "", "Identify secure client using this TLS key file");
        c.Flags.String("dest-cacert", "", "Verify certificates of TLS enabled secure servers using this CA bundle");
        c.Flags.Bool("dest-insecure-transport", true, "Disable transport security for client connections");
        return c;
    }

    private static async Task RunAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "make-mirror takes one destination argument");
        }

        var cmd = run.Command;
        string? Opt(string name) => cmd.Get(name).Raw.Length == 0 ? null : cmd.Get(name).Raw;
        EtcdClientTls? tls = null;
        if (Opt("dest-cert") is not null || Opt("dest-key") is not null || Opt("dest-cacert") is not null)
        {
            tls = EtcdClientTls.FromFiles(Opt("dest-cacert"), Opt("dest-cert"), Opt("dest-key"));
        }
        else if (!cmd.Get("dest-insecure-transport").Bool)
        {
            tls = new EtcdClientTls();
        }

        using var dest = EtcdClient.Create(new EtcdClientOptions { Endpoints = [run.Args[0]], DialTimeout = cmd.Get("dial-timeout").Duration, Tls = tls });
        using var ctl = Ctl.From(run);
        var prefix = cmd.Get("prefix").Raw;
        var destPrefix = cmd.Get("dest-prefix").Raw;
        var noDestPrefix = cmd.Get("no-dest-prefix").Bool;
        long total = 0;
        using var ticker = new Timer(_ => ctl.Console.Out(Interlocked.Read(ref total) + "\n"), null, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30));

        // SyncBase: the whole prefix at one revision, in batches
        var key = prefix.Length == 0 ? ByteString.CopyFrom(0) : ByteString.CopyFromUtf8(prefix);
        var end = prefix.Length == 0 ? ByteString.CopyFrom(0) : ByteString.CopyFrom(SimplePrinter.PrefixEnd(Encoding.UTF8.GetBytes(prefix)));
        long rev = 0;
        var batches = new List<RangeResponse>();
        while (true)
        {
            var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Range, new RangeRequest { Key = key, RangeEnd = end, Revision = rev, Limit = 1000, Serializable = false }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
            rev = rev == 0 ? r.Header.Revision : rev;
            batches.Add(r);
            if (!r.More || r.Kvs.Count == 0)
            {
                break;
            }

            var last = r.Kvs[^1].Key.ToByteArray();
            key = ByteString.CopyFrom([.. last, 0]);
        }

        if (noDestPrefix && destPrefix.Length > 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one");
        }

        if (!noDestPrefix && destPrefix.Length == 0)
        {
            destPrefix = prefix;
        }

        ByteString Rename(ByteString k)
        {
            var s = k.ToStringUtf8();
            var i = s.IndexOf(prefix, StringComparison.Ordinal);
            return ByteString.CopyFromUtf8(i < 0 ? s : s[..i] + destPrefix + s[(i + prefix.Length)..]);
        }

        foreach (var kv in batches.SelectMany(b => b.Kvs))
        {
            await ctl.MustAsync(ctl.CallAsync(dest, EtcdMethods.KVService.Put, new PutRequest { Key = Rename(kv.Key), Value = kv.Value }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
            Interlocked.Increment(ref total);
        }

        // SyncUpdates: every change after that revision
        var headers = ctl.Options(Timeout.InfiniteTimeSpan).Headers ?? [];
        using var call = ctl.Client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, new CallOptions { Headers = headers });
        var watchKey = prefix.Length == 0 ? ByteString.CopyFrom(0) : ByteString.CopyFromUtf8(prefix);
        try
        {
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = watchKey, RangeEnd = end, StartRevision = rev + 1 } }).ConfigureAwait(false);
            while (await call.ResponseStream.MoveNext().ConfigureAwait(false))
            {
                var wr = call.ResponseStream.Current;
                if (wr.CompactRevision != 0)
                {
                    throw new ExitException(ExitException.ExitError, "etcdserver: mvcc: required revision has been compacted");
                }

                long lastRev = 0;
                var txn = new TxnRequest();
                foreach (var ev in wr.Events)
                {
                    if (lastRev != 0 && ev.Kv.ModRevision > lastRev)
                    {
                        await ctl.MustAsync(ctl.CallAsync(dest, EtcdMethods.KVService.Txn, txn, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
                        txn = new TxnRequest();
                    }

                    lastRev = ev.Kv.ModRevision;
                    txn.Success.Add(ev.Type == Mvccpb.Event.Types.EventType.Put
                        ? new RequestOp { RequestPut = new PutRequest { Key = Rename(ev.Kv.Key), Value = ev.Kv.Value } }
                        : new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Rename(ev.Kv.Key) } });
                    Interlocked.Increment(ref total);
                }

                if (txn.Success.Count > 0)
                {
                    await ctl.MustAsync(ctl.CallAsync(dest, EtcdMethods.KVService.Txn, txn, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
                }
            }
        }
        catch (RpcException e)
        {
            throw new ExitException(ExitException.ExitError, Ctl.ErrorText(e));
        }

        throw new ExitException(ExitException.ExitError, "<nil>");
    }
}
