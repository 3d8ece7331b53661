using System.Runtime.InteropServices;

namespace Etcd.Main.Proxy;

/// <summary>
/// etcd's proxy sub-commands (<c>etcdmain/main.go</c> hands <c>etcd gateway ...</c> and <c>etcd grpc-proxy ...</c> to
/// cobra): <c>start</c> runs the proxy; anything else prints the command's help on standard output and exits 0; a flag
/// error prints cobra's <c>Error: ...</c>, the usage and the error on standard error and exits 1.
/// </summary>
internal static class ProxyMain
{
    /// <summary>Whether <paramref name="args"/> name a proxy sub-command.</summary>
    public static bool Handles(IReadOnlyList<string> args) => args.Count > 0 && args[0] is "gateway" or "grpc-proxy";

    /// <summary>Runs the sub-command named by <c>args[0]</c> until SIGTERM/SIGINT; returns the exit code.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        string command = args[0];
        var rest = args.Skip(1).ToList();
        int start = rest.FindIndex(a => !a.StartsWith('-'));
        bool gateway = command == "gateway";
        if (start < 0 || rest[start] != "start")
        {
            await stdout.WriteAsync(ParentHelp(command, gateway ? "gateway related command" : "grpc-proxy related command",
                gateway ? "start the gateway" : "start the grpc proxy")).ConfigureAwait(false);
            return 0;
        }

        rest.RemoveAt(start);
        var flags = gateway ? GatewayCommand.Flags() : GrpcProxyCommand.Flags();
        string path = $"etcd {command} start";
        try
        {
            flags.Parse(rest);
        }
        catch (CobraFlagException e)
        {
            await stderr.WriteAsync($"Error: {e.Message}\n{flags.Usage(path, null)}\n{e.Message}").ConfigureAwait(false);
            return 1;
        }

        if (flags.Help)
        {
            await stdout.WriteAsync(flags.Usage(path, gateway ? "start the gateway" : "start the grpc proxy")).ConfigureAwait(false);
            return 0;
        }

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        return gateway
            ? await GatewayCommand.RunAsync(flags, stdout, stderr, stop.Token).ConfigureAwait(false)
            : await GrpcProxyCommand.RunAsync(flags, stdout, stderr, stop.Token).ConfigureAwait(false);
    }

    private static string ParentHelp(string command, string shortText, string startText) =>
        $"{shortText}\n\nUsage:\n  etcd {command} [command]\n\nAvailable Commands:\n  start       {startText}\n\nFlags:\n  -h, --help   help for {command}\n\nUse \"etcd {command} [command] --help\" for more information about a command.\n";
}
