using System.Runtime.InteropServices;
using Etcd.Main.Config;
using Etcd.Main.Proxy;
using Etcd.Server;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Main;

/// <summary>
/// The <c>etcd</c> executable: etcd's flags, <c>ETCD_*</c> variables and <c>--config-file</c> into
/// <see cref="EtcdOptions"/>, then <see cref="EtcdHost"/> until SIGTERM or SIGINT. Exit codes: 0 after a
/// clean stop or when the member was removed from the cluster, 1 when the member cannot start or stops on a fatal
/// error (the reason is logged), 2 for flag errors (as etcd).
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        if (ProxyMain.Handles(args))
        {
            return await ProxyMain.RunAsync(args, Console.Out, Console.Error);
        }

        var config = EtcdConfigLoader.Load(args, Environment.GetEnvironmentVariables());
        if (config.StandardOutput.Length > 0)
        {
            Console.Out.Write(config.StandardOutput);
        }

        if (config.StandardError.Length > 0)
        {
            Console.Error.Write(config.StandardError);
        }

        if (config.ShouldExit)
        {
            return config.ExitCode;
        }

        var options = config.Options!;
        ILoggerFactory loggerFactory;
        try
        {
            loggerFactory = EtcdLogging.CreateLoggerFactory(options);
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"etcd: failed to set up logging: {e.Message}");
            return 1;
        }

        using (loggerFactory)
        {
            var log = loggerFactory.CreateLogger("etcdmain/etcd.go");
            // capnslog only: under zap etcd 3.4 starts with the embed lines.
            log.LogEtcd(
                LogLevel.Information,
                "etcdmain/etcd.go:70",
                "",
                $"starting etcd (etcd-version={EtcdServer.Version}, go-os=linux, dotnet-version={Environment.Version}, data-dir={options.ResolvedDataDir})");

            using var stop = new CancellationTokenSource();
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

            EtcdHost host;
            try
            {
                host = await EtcdHost.StartAsync(options, loggerFactory, stop.Token);
            }
            catch (EtcdStartException e)
            {
                // etcdmain: zap's "discovery failed" with the error; capnslog prints the bare error (plog.Fatalf("%v", err)).
                if (options.Logger == "zap")
                {
                    log.LogFields(LogLevel.Critical, "discovery failed", ("error", e.Message));
                }
                else
                {
                    log.LogFields(LogLevel.Critical, e.Message);
                }
                return 1;
            }
            catch (OperationCanceledException)
            {
                return 0;
            }

            await Task.WhenAny(host.Stopped, Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default));
            var stoppedByItself = host.Stopped.IsCompleted && !stop.IsCancellationRequested;
            if (!stoppedByItself)
            {
                loggerFactory.CreateLogger("pkg/osutil/interrupt_unix.go").LogEtcd(
                    LogLevel.Information,
                    "osutil/interrupt_unix.go:64",
                    "received signal; shutting down",
                    "received terminated signal, shutting down...",
                    ("signal", "terminated"));
            }

            if (stoppedByItself)
            {
                await host.DisposeAsync();
            }
            else
            {
                await host.StopAsync();
            }

            return ExitCode(stoppedByItself, host.Server.RemovedFromCluster);
        }
    }

    /// <summary>
    /// The process's status once the member has stopped: 0 after a signal, and 0 when the member stopped because it
    /// was removed from the cluster (etcd's <c>etcdmain</c> exits 0 when its server stops); 1 when the member
    /// stopped on its own for any other reason (a fatal error, already logged).
    /// </summary>
    internal static int ExitCode(bool stoppedByItself, bool removedFromCluster) => stoppedByItself && !removedFromCluster ? 1 : 0;
}
