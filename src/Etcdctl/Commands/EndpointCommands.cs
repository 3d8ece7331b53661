using System.Diagnostics;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary><c>endpoint health|status|hashkv</c> with <c>--cluster</c> (etcdctl/ctlv3/command/ep_command.go).</summary>
public static class EndpointCommands
{
    /// <summary>The <c>endpoint</c> command group.</summary>
    public static Command Create()
    {
        var ep = new Command("endpoint <subcommand>", "Endpoint related commands");
        ep.PersistentFlags.Bool("cluster", false, "use all endpoints from the cluster member list");
        var hashkv = new Command("hashkv", "Prints the KV history hash for each endpoint in --endpoints", HashKvAsync);
        hashkv.PersistentFlags.Int64("rev", 0, "maximum revision to hash (default: all revisions)");
        return ep.Add(
            new Command("health", "Checks the healthiness of endpoints specified in `--endpoints` flag", HealthAsync),
            new Command("status", "Prints out the status of endpoints specified in `--endpoints` flag", StatusAsync, "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.\n"),
            hashkv);
    }

    /// <summary>endpointsFromCluster: <c>--endpoints</c>, or with <c>--cluster</c> every member's client URLs.</summary>
    public static async Task<IReadOnlyList<string>> EndpointsAsync(Ctl ctl)
    {
        if (!ctl.Flag("cluster").Bool)
        {
            return ctl.Flag("endpoints").Slice;
        }

        using var c = ctl.Connect(ctl.Endpoints, authenticate: false);
        var r = await ctl.MustAsync(ctl.CallAsync(c, EtcdMethods.ClusterService.MemberList, new MemberListRequest()), wrap: e => "failed to fetch endpoints from etcd cluster member list: " + e).ConfigureAwait(false);
        return r.Members.SelectMany(m => m.ClientURLs).ToArray();
    }

    private static async Task HealthAsync(CommandRun run)
    {
        using var ctl = Ctl.From(run);
        var endpoints = await EndpointsAsync(ctl).ConfigureAwait(false);
        var checks = endpoints.Select(ep => Task.Run(async () =>
        {
            EtcdClientHandle? handle = null;
            try
            {
                handle = new EtcdClientHandle(ctl.Connect([ep]));
            }
            catch (ExitException e)
            {
                return new EndpointHealthResult(ep, false, string.Empty, e.ErrorMessage ?? string.Empty);
            }

            using (handle)
            {
                var watch = Stopwatch.StartNew();
                string error = string.Empty;
                try
                {
                    await ctl.CallAsync(handle.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = ByteString.CopyFromUtf8("health") }).ConfigureAwait(false);
                }
                catch (EtcdException e) when (e.Detail == "etcdserver: permission denied")
                {
                }
                catch (RpcException e)
                {
                    error = Ctl.ErrorText(e);
                }

                var took = GoDuration.FormatNanos(watch.Elapsed.Ticks * 100);
                return new EndpointHealthResult(ep, error.Length == 0, took, error);
            }
        })).ToArray();
        var results = await Task.WhenAll(checks).ConfigureAwait(false);
        ctl.Display.EndpointHealth(results);
        if (results.Any(r => r.Error.Length > 0))
        {
            throw new ExitException(ExitException.ExitError, "unhealthy cluster");
        }
    }

    private sealed class EtcdClientHandle(Etcd.Client.EtcdClient client) : IDisposable
    {
        public Etcd.Client.EtcdClient Client { get; } = client;

        public void Dispose() => Client.Dispose();
    }

    private static async Task StatusAsync(CommandRun run)
    {
        using var ctl = Ctl.From(run);
        var endpoints = await EndpointsAsync(ctl).ConfigureAwait(false);
        var list = new List<EndpointStatusResult>();
        var failed = false;
        foreach (var ep in endpoints)
        {
            try
            {
                using var c = ctl.Connect([ep]);
                list.Add(new EndpointStatusResult(ep, await ctl.CallAsync(c, EtcdMethods.MaintenanceService.Status, new StatusRequest()).ConfigureAwait(false)));
            }
            catch (RpcException e)
            {
                failed = true;
                ctl.Console.Err($"Failed to get the status of endpoint {ep} ({Ctl.ErrorText(e)})\n");
            }
        }

        ctl.Display.EndpointStatus(list);
        if (failed)
        {
            throw new ExitException(ExitException.ExitError, null);
        }
    }

    private static async Task HashKvAsync(CommandRun run)
    {
        using var ctl = Ctl.From(run);
        var endpoints = await EndpointsAsync(ctl).ConfigureAwait(false);
        var list = new List<EndpointHashKVResult>();
        string? error = null;
        var rev = run.Command.Get("rev").Int64;
        foreach (var ep in endpoints)
        {
            try
            {
                using var c = ctl.Connect([ep]);
                list.Add(new EndpointHashKVResult(ep, await ctl.CallAsync(c, EtcdMethods.MaintenanceService.HashKV, new HashKVRequest { Revision = rev }).ConfigureAwait(false)));
            }
            catch (RpcException e)
            {
                error = Ctl.ErrorText(e);
                ctl.Console.Err($"Failed to get the hash of endpoint {ep} ({error})\n");
            }
        }

        ctl.Display.EndpointHashKV(list);
        if (error is not null)
        {
            throw new ExitException(ExitException.ExitError, error);
        }
    }
}
