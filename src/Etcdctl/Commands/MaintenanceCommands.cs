using System.Diagnostics;
using System.Globalization;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;

namespace Etcd.Ctl.Commands;

/// <summary>
/// alarm, defrag, snapshot, move-leader and version (etcdctl/ctlv3/command/{alarm,defrag,snapshot,move_leader,version}_command.go).
/// </summary>
public static class MaintenanceCommands
{
    /// <summary>The <c>alarm</c> command group.</summary>
    public static Command Alarm() => new Command("alarm <subcommand>", "Alarm related commands").Add(
        new Command("disarm", "Disarms all alarms", run => AlarmAsync(run, AlarmRequest.Types.AlarmAction.Deactivate, "alarm disarm command accepts no arguments")),
        new Command("list", "Lists all alarms", run => AlarmAsync(run, AlarmRequest.Types.AlarmAction.Get, "alarm list command accepts no arguments")));

    private static async Task AlarmAsync(CommandRun run, AlarmRequest.Types.AlarmAction action, string argsError)
    {
        if (run.Args.Count != 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, argsError);
        }

        using var ctl = Ctl.From(run);
        AlarmResponse r;
        if (action == AlarmRequest.Types.AlarmAction.Get)
        {
            r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = action })).ConfigureAwait(false);
        }
        else
        {
            // clientv3's AlarmDisarm with an empty member: every active alarm is deactivated one by one.
            var list = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get })).ConfigureAwait(false);
            r = new AlarmResponse { Header = list.Header };
            foreach (var a in list.Alarms)
            {
                var d = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = action, MemberID = a.MemberID, Alarm = a.Alarm })).ConfigureAwait(false);
                r.Header = d.Header;
                r.Alarms.Add(d.Alarms);
            }
        }

        ctl.Display.Alarm(r);
    }

    /// <summary>The <c>defrag</c> command.</summary>
    public static Command Defrag()
    {
        var cmd = new Command("defrag", "Defragments the storage of the etcd members with given endpoints", DefragAsync);
        cmd.PersistentFlags.Bool("cluster", false, "use all endpoints from the cluster member list");
        cmd.Flags.String("data-dir", "", "Optional. If present, defragments a data directory not in use by etcd.");
        return cmd;
    }

    private static async Task DefragAsync(CommandRun run)
    {
        var dataDir = run.Command.Get("data-dir").Raw;
        if (dataDir.Length > 0)
        {
            using var sw = new StringWriter();
            var code = EtcdutlMain.Run(["defrag", "--data-dir", dataDir], sw, sw);
            if (code != 0)
            {
                run.Console.Err($"Failed to defragment etcd data[{dataDir}] ({sw.ToString().Trim().Replace("Error: ", string.Empty, StringComparison.Ordinal)})\n");
                throw new ExitException(ExitException.ExitError, null);
            }

            return;
        }

        using var ctl = Ctl.From(run);
        var failures = 0;
        foreach (var ep in await EndpointCommands.EndpointsAsync(ctl).ConfigureAwait(false))
        {
            try
            {
                using var c = ctl.Connect([ep]);
                await ctl.CallAsync(c, EtcdMethods.MaintenanceService.Defragment, new DefragmentRequest()).ConfigureAwait(false);
                ctl.Console.Out($"Finished defragmenting etcd member[{ep}]\n");
            }
            catch (RpcException e)
            {
                ctl.Console.Err($"Failed to defragment etcd member[{ep}] ({Ctl.ErrorText(e)})\n");
                failures++;
            }
        }

        if (failures != 0)
        {
            throw new ExitException(ExitException.ExitError, null);
        }
    }

    /// <summary>The <c>snapshot</c> command group.</summary>
    public static Command Snapshot()
    {
        var restore = new Command("restore <filename> [options]", "Restores an etcd member snapshot to an etcd directory", RestoreAsync);
        restore.Flags.String("data-dir", "", "Path to the data directory");
        restore.Flags.String("wal-dir", "", "Path to the WAL directory (use --data-dir if none given)");
        restore.Flags.String("initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for restore bootstrap");
        restore.Flags.String("initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during restore bootstrap");
        restore.Flags.String("initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster");
        restore.Flags.String("name", "default", "Human-readable name for this member");
        restore.Flags.Bool("skip-hash-check", false, "Ignore snapshot integrity hash value (required if copied from data directory)");
        return new Command("snapshot <subcommand>", "Manages etcd node snapshots").Add(
            new Command("save <filename>", "Stores an etcd node backend snapshot to a given file", SaveAsync),
            restore,
            new Command("status <filename>", "Gets backend snapshot status of a given file", StatusAsync, "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are hash, revision, total keys, total size.\n"));
    }

    private static string Ts() => ((DateTimeOffset.UtcNow.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond).ToString("R", CultureInfo.InvariantCulture);

    private static string IsoTs() => DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static async Task SaveAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "snapshot save expects one argument");
        }

        using var ctl = Ctl.From(run);
        var endpoints = ctl.Endpoints;
        if (endpoints.Count != 1)
        {
            throw new ExitException(ExitException.ExitInterrupted, $"snapshot must be requested to one selected node, not multiple [{string.Join(' ', endpoints)}]");
        }

        var path = run.Args[0];
        var partPath = path + ".part";
        var timeout = run.Command.Get("command-timeout").Changed ? ctl.CommandTimeout : Timeout.InfiniteTimeSpan;
        var ep = endpoints[0];
        try
        {
            File.Delete(partPath);
            await using var file = new FileStream(partPath, FileMode.Create, FileAccess.Write, FileShare.None);
            ctl.Console.Err($"{{\"level\":\"info\",\"ts\":{Ts()},\"caller\":\"snapshot/v3_snapshot.go:119\",\"msg\":\"created temporary db file\",\"path\":{Json(partPath)}}}\n");
            var watch = Stopwatch.StartNew();
            _ = ctl.Client;
            using var call = ctl.Client.GetChannel().ServerStreaming(EtcdMethods.MaintenanceService.Snapshot, new SnapshotRequest(), ctl.Options(timeout));
            await call.ResponseHeadersAsync.ConfigureAwait(false);
            ctl.Console.Err($"{{\"level\":\"info\",\"ts\":\"{IsoTs()}\",\"caller\":\"clientv3/maintenance.go:200\",\"msg\":\"opened snapshot stream; downloading\"}}\n");
            ctl.Console.Err($"{{\"level\":\"info\",\"ts\":{Ts()},\"caller\":\"snapshot/v3_snapshot.go:127\",\"msg\":\"fetching snapshot\",\"endpoint\":{Json(ep)}}}\n");
            long size = 0;
            while (await call.ResponseStream.MoveNext().ConfigureAwait(false))
            {
                var blob = call.ResponseStream.Current.Blob;
                file.Write(blob.Span);
                size += blob.Length;
            }

            ctl.Console.Err($"{{\"level\":\"info\",\"ts\":\"{IsoTs()}\",\"caller\":\"clientv3/maintenance.go:208\",\"msg\":\"completed snapshot read; closing\"}}\n");
            await file.FlushAsync().ConfigureAwait(false);
            file.Flush(true);
            var took = watch.Elapsed.TotalSeconds.ToString("R", CultureInfo.InvariantCulture);
            ctl.Console.Err($"{{\"level\":\"info\",\"ts\":{Ts()},\"caller\":\"snapshot/v3_snapshot.go:142\",\"msg\":\"fetched snapshot\",\"endpoint\":{Json(ep)},\"size\":{Json(Humanize.Bytes((ulong)size))},\"took\":{took}}}\n");
        }
        catch (RpcException e)
        {
            throw new ExitException(ExitException.ExitInterrupted, Ctl.ErrorText(e));
        }
        catch (IOException e)
        {
            throw new ExitException(ExitException.ExitInterrupted, e.Message);
        }

        File.Move(partPath, path, overwrite: true);
        ctl.Console.Err($"{{\"level\":\"info\",\"ts\":{Ts()},\"caller\":\"snapshot/v3_snapshot.go:152\",\"msg\":\"saved\",\"path\":{Json(path)}}}\n");
        ctl.Console.Out($"Snapshot saved at {path}\n");
    }

    private static string Json(string s)
    {
        var sb = new System.Text.StringBuilder();
        GoFormat.JsonString(sb, s);
        return sb.ToString();
    }

    private static Task StatusAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "snapshot status requires exactly one argument");
        }

        using var ctl = Ctl.From(run, env: false);
        SnapshotStatusResult status;
        try
        {
            status = SnapshotStatusResult.Read(run.Args[0]);
        }
        catch (FileNotFoundException)
        {
            throw new ExitException(ExitException.ExitError, $"stat {run.Args[0]}: no such file or directory");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new ExitException(ExitException.ExitError, e.Message);
        }

        ctl.Display.DBStatus(status);
        return Task.CompletedTask;
    }

    private static Task RestoreAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "snapshot restore requires exactly one argument");
        }

        var cmd = run.Command;
        var name = cmd.Get("name").Raw;
        var dataDir = cmd.Get("data-dir").Raw;
        if (dataDir.Length == 0)
        {
            dataDir = name + ".etcd";
        }

        var walDir = cmd.Get("wal-dir").Raw;
        if (walDir.Length == 0)
        {
            walDir = Path.Combine(dataDir, "member", "wal");
        }

        var options = new RestoreOptions
        {
            SnapshotPath = run.Args[0],
            Name = name,
            DataDir = dataDir,
            WalDir = walDir,
            PeerUrls = cmd.Get("initial-advertise-peer-urls").Raw,
            InitialCluster = cmd.Get("initial-cluster").Raw,
            InitialClusterToken = cmd.Get("initial-cluster-token").Raw,
            SkipHashCheck = cmd.Get("skip-hash-check").Bool,
        };
        using var err = new StringWriter();
        try
        {
            SnapshotRestore.Run(options, new ZapLog(err));
        }
        catch (Exception e) when (e is RestoreException or IOException or UnauthorizedAccessException or Etcd.Storage.Bolt.BoltException or Etcd.Storage.Wal.WalException)
        {
            run.Console.Err(err.ToString());
            throw new ExitException(ExitException.ExitError, e.Message);
        }

        run.Console.Err(err.ToString());
        return Task.CompletedTask;
    }

    /// <summary>The <c>move-leader</c> command.</summary>
    public static Command MoveLeader() => new("move-leader <transferee-member-id>", "Transfers leadership to another etcd cluster member.", MoveLeaderAsync);

    private static async Task MoveLeaderAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "move-leader command needs 1 argument");
        }

        if (!KvCommands.TryParseHexUint(run.Args[0], out var target, out var error))
        {
            throw new ExitException(ExitException.ExitBadArgs, error);
        }

        using var ctl = Ctl.From(run);
        foreach (var ep in ctl.Endpoints)
        {
            using var c = ctl.Connect([ep]);
            var s = await ctl.MustAsync(ctl.CallAsync(c, EtcdMethods.MaintenanceService.Status, new StatusRequest())).ConfigureAwait(false);
            if (s.Header?.MemberId == s.Leader)
            {
                var r = await ctl.MustAsync(ctl.CallAsync(c, EtcdMethods.MaintenanceService.MoveLeader, new MoveLeaderRequest { TargetID = target })).ConfigureAwait(false);
                ctl.Display.MoveLeader(s.Leader, target, r);
                return;
            }
        }

        throw new ExitException(ExitException.ExitBadArgs, $"no leader endpoint given at [{string.Join(' ', ctl.Endpoints)}]");
    }

    /// <summary>The <c>version</c> command.</summary>
    public static Command Version() => new("version", "Prints the version of etcdctl", run =>
    {
        run.Console.Out($"etcdctl version: {Usage.Version}\nAPI version: {Usage.ApiVersion}\n");
        return Task.CompletedTask;
    });
}
