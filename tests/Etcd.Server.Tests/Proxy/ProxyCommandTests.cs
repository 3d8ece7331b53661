using System.Diagnostics;
using Etcd.Main.Proxy;
using Etcd.Server.Tests.Config;

namespace Etcd.Server.Tests.Proxy;

/// <summary>
/// <c>etcd gateway</c> and <c>etcd grpc-proxy</c> on input that makes them exit before serving, beside the real etcd
/// 3.4.23: help texts, cobra's flag errors and etcd's own start checks, byte for byte with the same exit code; and the
/// refusals of what we do not implement.
/// </summary>
public sealed class ProxyCommandTests
{
    public static TheoryData<string> OracleCases => new()
    {
        "gateway",
        "grpc-proxy",
        "gateway start --help",
        "grpc-proxy start --help",
        "gateway start -h",
        "gateway start --foo",
        "grpc-proxy start --bogus=1",
        "gateway start --retry-delay=x",
        "grpc-proxy start --max-send-bytes=x",
        "gateway start --listen-addr",
        "gateway start --endpoints=127.0.0.1",
        "gateway start --endpoints 127.0.0.1:1 --listen-addr 127.0.0.1:1",
        "gateway start --endpoints=http://127.0.0.1:1 --listen-addr=127.0.0.1:1",
        "gateway start --listen-addr=nocolon",
        "grpc-proxy start --resolver-prefix=x",
        "grpc-proxy start --resolver-ttl=5",
    };

    [OracleTheory]
    [MemberData(nameof(OracleCases))]
    public async Task ExitsLikeEtcd(string args)
    {
        var argv = args.Split(' ');
        var (code, stdout, stderr) = await RunOursAsync(argv);
        var real = await RunRealAsync(argv);
        Assert.Equal(real.Code, code);
        Assert.Equal(real.Stdout, stdout);
        Assert.Equal(real.Stderr, stderr);
    }

    [Theory]
    [InlineData("gateway start --discovery-srv=example.com", "etcd gateway: --discovery-srv and --discovery-srv-name (DNS SRV discovery) are not supported")]
    [InlineData("grpc-proxy start --enable-pprof", "etcd grpc-proxy: --enable-pprof (Go's runtime profiler) is not supported")]
    [InlineData("grpc-proxy start --experimental-leasing-prefix=l", "etcd grpc-proxy: --experimental-leasing-prefix is not supported")]
    [InlineData("grpc-proxy start --experimental-serializable-ordering", "etcd grpc-proxy: --experimental-serializable-ordering is not supported")]
    [InlineData("grpc-proxy start --resolver-prefix=p --resolver-ttl=5", "etcd grpc-proxy: proxy registration (--resolver-prefix, --resolver-ttl) is not supported")]
    [InlineData("grpc-proxy start --listen-cipher-suites=TLS_NOPE", "unexpected TLS cipher suite")]
    public async Task Unsupported_IsRefusedAtStart(string args, string message)
    {
        var (code, _, stderr) = await RunOursAsync(args.Split(' '));
        Assert.Equal(1, code);
        Assert.Contains(message, stderr);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunOursAsync(string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await ProxyMain.RunAsync(args, stdout, stderr).WaitAsync(TimeSpan.FromSeconds(30));
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunRealAsync(string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/etcd") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return (p.ExitCode, await stdout, await stderr);
    }
}
