using System.Diagnostics;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Api.Tests.Grpc;

/// <summary>The real etcdctl 3.4 (grpc-go) against our server with a fake KV service.</summary>
public sealed class EtcdctlInteropTests
{
    internal const string Etcdctl = "/usr/bin/etcdctl";

    private static void MapFakeKv(ToyServices r) => r
        .MapUnary(EtcdMethods.KVService.Range, (req, ctx) =>
        {
            var resp = new RangeResponse { Header = new ResponseHeader { ClusterId = 1, MemberId = 2, Revision = 7, RaftTerm = 3 }, Count = 1 };
            var value = req.Key.ToStringUtf8() == "big" ? new string('v', 1_500_000) : "bar-from-csharp";
            resp.Kvs.Add(new Mvccpb.KeyValue { Key = req.Key, Value = ByteString.CopyFromUtf8(value), CreateRevision = 5, ModRevision = 7, Version = 2 });
            return ValueTask.FromResult(resp);
        })
        .MapUnary(EtcdMethods.KVService.Put, (req, ctx) => req.Value.Length > 1000
            ? ValueTask.FromResult(new PutResponse { Header = new ResponseHeader { Revision = req.Value.Length } })
            : throw EtcdErrors.NoSpace.ToException())
        .MapUnary(EtcdMethods.KVService.DeleteRange, (req, ctx) => throw new InvalidOperationException("boom ünïcode"));

    private static Task<(int Code, string Out, string Err)> RunAsync(params string[] args) => RunWithInputAsync(null, args);

    private static async Task<(int Code, string Out, string Err)> RunWithInputAsync(string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(Etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.Environment["ETCDCTL_API"] = "3";
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
        }

        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [EtcdctlFact]
    public async Task Etcdctl_SingleEndpointDial_AuthorityWithScheme_IsServed()
    {
        // clientv3's Maintenance calls (endpoint hashkv/status, move-leader) dial "passthrough:///http://h:p", so
        // grpc-go sends ":authority: http://h:p"; Kestrel alone resets such streams (PROTOCOL_ERROR).
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EtcdMethods.MaintenanceService.HashKV, (req, ctx) =>
            ValueTask.FromResult(new HashKVResponse { Header = new ResponseHeader { ClusterId = 1, MemberId = 2, Revision = 9 }, Hash = 424242, CompactRevision = 1 })));
        var endpoint = $"http://127.0.0.1:{t.Url.Port}";
        var hash = await RunAsync("--endpoints=" + endpoint, "--dial-timeout=5s", "--command-timeout=10s", "endpoint", "hashkv");
        Assert.True(hash.Code == 0, hash.Err);
        Assert.Equal($"{endpoint}, 424242\n", hash.Out);
    }

    [EtcdctlFact]
    public async Task Etcdctl_Get_Put_Del()
    {
        await using var t = await TestServer.StartAsync(MapFakeKv);
        var port = t.Url.Port;

        foreach (var endpoint in new[] { $"127.0.0.1:{port}", $"http://127.0.0.1:{port}" })
        {
            var get = await RunAsync("--endpoints=" + endpoint, "--dial-timeout=5s", "--command-timeout=10s", "get", "foo");
            Assert.True(get.Code == 0, get.Err);
            Assert.Equal("foo\nbar-from-csharp\n", get.Out);
        }

        // A value larger than every HTTP/2 flow-control window in play, and a large request (grpc-go → us).
        var big = await RunAsync($"--endpoints=127.0.0.1:{port}", "--dial-timeout=5s", "--command-timeout=10s", "get", "big", "--print-value-only");
        Assert.True(big.Code == 0, big.Err);
        Assert.Equal(1_500_001, big.Out.Length);

        var put = await RunAsync($"--endpoints=127.0.0.1:{port}", "--dial-timeout=5s", "--command-timeout=10s", "put", "foo", "bar");
        Assert.NotEqual(0, put.Code);
        Assert.Contains("Error: etcdserver: mvcc: database space exceeded", put.Err);

        var bigPut = await RunWithInputAsync(new string('p', 1_000_000), $"--endpoints=127.0.0.1:{port}", "--dial-timeout=5s", "--command-timeout=10s", "put", "k");
        Assert.True(bigPut.Code == 0, bigPut.Err);
        Assert.Equal("OK\n", bigPut.Out);

        var del = await RunAsync($"--endpoints=127.0.0.1:{port}", "--dial-timeout=5s", "--command-timeout=10s", "del", "foo");
        Assert.NotEqual(0, del.Code);
        Assert.Contains("boom ünïcode", del.Err);
    }
}

public sealed class EtcdctlWatchInteropTests
{
    [EtcdctlFact]
    public async Task Etcdctl_Watch_Duplex_And_Interrupt()
    {
        var serverCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapDuplexStreaming(EtcdMethods.WatchService.Watch, async (requests, responses, ctx) =>
        {
            using var reg = ctx.CancellationToken.Register(() => serverCancelled.TrySetResult());
            while (await requests.MoveNext())
            {
                var create = requests.Current.CreateRequest;
                if (create is null)
                {
                    continue;
                }

                var header = new ResponseHeader { ClusterId = 1, MemberId = 2, Revision = 9, RaftTerm = 3 };
                await responses.WriteAsync(new WatchResponse { Header = header, WatchId = 0, Created = true });
                var ev = new Mvccpb.Event { Type = Mvccpb.Event.Types.EventType.Put, Kv = new Mvccpb.KeyValue { Key = create.Key, Value = ByteString.CopyFromUtf8("watched-value"), ModRevision = 9, CreateRevision = 9, Version = 1 } };
                var resp = new WatchResponse { Header = header, WatchId = 0 };
                resp.Events.Add(ev);
                await responses.WriteAsync(resp);
            }
        }));

        var psi = new ProcessStartInfo(EtcdctlInteropTests.Etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ETCDCTL_API"] = "3";
        foreach (var a in new[] { $"--endpoints=127.0.0.1:{t.Url.Port}", "--dial-timeout=5s", "watch", "foo" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        try
        {
            var lines = new List<string>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (lines.Count < 3)
            {
                var line = await p.StandardOutput.ReadLineAsync(cts.Token);
                Assert.NotNull(line);
                lines.Add(line);
            }

            Assert.Equal(["PUT", "foo", "watched-value"], lines);
        }
        finally
        {
            p.Kill();
            await p.WaitForExitAsync();
        }

        await serverCancelled.Task.WaitAsync(TimeSpan.FromSeconds(20));
    }
}

/// <summary>A fact skipped (with the reason) when /usr/bin/etcdctl is absent.</summary>
public sealed class EtcdctlFactAttribute : FactAttribute
{
    public EtcdctlFactAttribute()
    {
        if (!File.Exists(EtcdctlInteropTests.Etcdctl))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("etcdctl is not installed at " + EtcdctlInteropTests.Etcdctl);
        }
    }
}
