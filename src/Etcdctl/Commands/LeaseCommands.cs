using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;

namespace Etcd.Ctl.Commands;

/// <summary><c>lease grant|revoke|timetolive|list|keep-alive</c> (etcdctl/ctlv3/command/lease_command.go).</summary>
public static class LeaseCommands
{
    /// <summary>The <c>lease</c> command group.</summary>
    public static Command Create()
    {
        var lease = new Command("lease <subcommand>", "Lease related commands");
        var ttl = new Command("timetolive <leaseID> [options]", "Get lease information", TimeToLiveAsync);
        ttl.Flags.Bool("keys", false, "Get keys attached to this lease");
        var keepAlive = new Command("keep-alive [options] <leaseID>", "Keeps leases alive (renew)", KeepAliveAsync);
        keepAlive.Flags.Bool("once", false, "Resets the keep-alive time to its original value and exits immediately");
        lease.Add(
            new Command("grant <ttl>", "Creates leases", GrantAsync),
            new Command("revoke <leaseID>", "Revokes leases", RevokeAsync),
            ttl,
            new Command("list", "List all active leases", ListAsync),
            keepAlive);
        return lease;
    }

    private static long LeaseFromArgs(string arg) =>
        KvCommands.TryParseHex(arg, out var id, out var error) ? id : throw new ExitException(ExitException.ExitBadArgs, $"bad lease ID arg ({error}), expecting ID in Hex");

    private static async Task GrantAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "lease grant command needs TTL argument");
        }

        if (!long.TryParse(run.Args[0], System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var ttl))
        {
            throw new ExitException(ExitException.ExitBadArgs, $"bad TTL (strconv.ParseInt: parsing {GoFormat.Quote(run.Args[0])}: invalid syntax)");
        }

        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = ttl }), wrap: e => $"failed to grant lease ({e})").ConfigureAwait(false);
        ctl.Display.Grant(r);
    }

    private static async Task RevokeAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "lease revoke command needs 1 argument");
        }

        var id = LeaseFromArgs(run.Args[0]);
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = id }), wrap: e => $"failed to revoke lease ({e})").ConfigureAwait(false);
        ctl.Display.Revoke(id, r);
    }

    private static async Task TimeToLiveAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "lease timetolive command needs lease ID as argument");
        }

        var keys = run.Command.Get("keys").Bool;
        var id = LeaseFromArgs(run.Args[0]);
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.LeaseService.LeaseTimeToLive, new LeaseTimeToLiveRequest { ID = id, Keys = keys }, Timeout.InfiniteTimeSpan), ExitException.ExitBadConnection).ConfigureAwait(false);
        ctl.Display.TimeToLive(r, keys);
    }

    private static async Task ListAsync(CommandRun run)
    {
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.LeaseService.LeaseLeases, new LeaseLeasesRequest(), Timeout.InfiniteTimeSpan), ExitException.ExitBadConnection).ConfigureAwait(false);
        ctl.Display.Leases(r);
    }

    private static async Task KeepAliveAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "lease keep-alive command needs lease ID as argument");
        }

        var id = LeaseFromArgs(run.Args[0]);
        using var ctl = Ctl.From(run);
        _ = ctl.Client;
        using var call = ctl.Client.GetChannel().DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive, ctl.Options(Timeout.InfiniteTimeSpan));
        if (run.Command.Get("once").Bool)
        {
            try
            {
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }).ConfigureAwait(false);
                if (!await call.ResponseStream.MoveNext().ConfigureAwait(false))
                {
                    throw new ExitException(ExitException.ExitBadConnection, "etcdserver: requested lease not found");
                }
            }
            catch (RpcException e)
            {
                throw new ExitException(ExitException.ExitBadConnection, Ctl.ErrorText(e));
            }

            var once = call.ResponseStream.Current;
            if (once.TTL <= 0)
            {
                throw new ExitException(ExitException.ExitBadConnection, "etcdserver: requested lease not found");
            }

            ctl.Display.KeepAlive(once);
            return;
        }

        try
        {
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }).ConfigureAwait(false);
            while (await call.ResponseStream.MoveNext().ConfigureAwait(false))
            {
                var r = call.ResponseStream.Current;
                if (r.TTL <= 0)
                {
                    break;
                }

                ctl.Display.KeepAlive(r);
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(r.TTL / 3.0, 0.5))).ConfigureAwait(false);
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }).ConfigureAwait(false);
            }
        }
        catch (RpcException)
        {
            // the stream ended: as clientv3 closing the keep-alive channel
        }

        if (ctl.Display is SimplePrinter)
        {
            ctl.Console.Out($"lease {id:x16} expired or revoked.\n");
        }
    }
}
