using Etcd.Ctl.Cli;
using Etcd.Ctl.Commands;

namespace Etcd.Ctl;

/// <summary>
/// The <c>etcdctl</c> entry point (etcdctl/main.go and ctlv3/ctl.go): ETCDCTL_API selects the API (3, the default;
/// 2 is not served), then the v3 command tree runs with etcdctl 3.4.23's global flags.
/// </summary>
public static class EtcdctlMain
{
    /// <summary>The process entry point.</summary>
    public static async Task<int> Main(string[] args)
    {
        var api = Environment.GetEnvironmentVariable("ETCDCTL_API") ?? string.Empty;
        Environment.SetEnvironmentVariable("ETCDCTL_API", null);
        // The descriptors themselves (see FdStream), not System.Console's streams.
        var console = new CtlConsole(new FdStream(1, read: false), new FdStream(2, read: false), new FdStream(0, read: true));
        if (api.Length != 0 && api != "3")
        {
            console.Err(api == "2" ? "etcdctl: the v2 API (ETCDCTL_API=2) is not supported by this etcdctl\n" : "unsupported API version " + api + "\n");
            return 1;
        }

        return await RunAsync(args, console).ConfigureAwait(false);
    }

    /// <summary>Runs the v3 command line with <paramref name="args"/> on <paramref name="console"/>; returns the exit code.</summary>
    public static Task<int> RunAsync(IReadOnlyList<string> args, CtlConsole console) => CommandLine.ExecuteAsync(Root(), args, console);

    /// <summary>The command tree with the global flags.</summary>
    public static Command Root()
    {
        var root = new Command("etcdctl", "A simple command line client for etcd3.");
        var g = root.PersistentFlags;
        g.Add("endpoints", null, FlagKind.StringSlice, "127.0.0.1:2379", "gRPC endpoints");
        g.Bool("debug", false, "enable client-side debug logging");
        g.String("write-out", "simple", "set the output format (fields, json, protobuf, simple, table)", "w");
        g.Bool("hex", false, "print byte strings as hex encoded strings");
        g.Add("dial-timeout", null, FlagKind.Duration, "2s", "dial timeout for client connections");
        g.Add("command-timeout", null, FlagKind.Duration, "5s", "timeout for short running command (excluding dial timeout)");
        g.Add("keepalive-time", null, FlagKind.Duration, "2s", "keepalive time for client connections");
        g.Add("keepalive-timeout", null, FlagKind.Duration, "6s", "keepalive timeout for client connections");
        g.Bool("insecure-transport", true, "disable transport security for client connections");
        g.Bool("insecure-discovery", true, "accept insecure SRV records describing cluster endpoints");
        g.Bool("insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)");
        g.String("cert", "", "identify secure client using this TLS certificate file");
        g.String("key", "", "identify secure client using this TLS key file");
        g.String("cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle");
        g.String("user", "", "username[:password] for authentication (prompt if password is not supplied)");
        g.String("password", "", "password for authentication (if this option is used, --user option shouldn't include password)");
        g.String("discovery-srv", "", "domain name to query for SRV records describing cluster endpoints", "d");
        g.String("discovery-srv-name", "", "service name to query when using DNS discovery");
        root.Add(
            KvCommands.Get(),
            KvCommands.Put(),
            KvCommands.Del(),
            TxnCommand.Create(),
            KvCommands.Compaction(),
            MaintenanceCommands.Alarm(),
            MaintenanceCommands.Defrag(),
            EndpointCommands.Create(),
            MaintenanceCommands.MoveLeader(),
            WatchCommand.Create(),
            MaintenanceCommands.Version(),
            LeaseCommands.Create(),
            MemberCommands.Create(),
            MaintenanceCommands.Snapshot(),
            MakeMirrorCommand.Create(),
            ConcurrencyCommands.Lock(),
            ConcurrencyCommands.Elect(),
            AuthCommands.Auth(),
            AuthCommands.User(),
            AuthCommands.Role());
        return root;
    }
}
