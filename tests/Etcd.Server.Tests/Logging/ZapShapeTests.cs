using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Etcd.Server.Logging;

namespace Etcd.Server.Tests.Logging;

/// <summary>
/// <c>--logger=zap</c> lines against real etcd 3.4.23's: a single member started, elected and stopped on each side,
/// logging to a file; the start-up, election and shutdown lines must exist on both with the same level, caller and
/// keys in the same order, and every line of ours must be zap's JSON shape.
/// </summary>
public sealed partial class ZapShapeTests : IDisposable
{
    private const string EtcdPath = "/usr/bin/etcd";
    private readonly TempDir _dir = new();

    /// <summary>The compared events, by message (raft's carry member ids and terms).</summary>
    private static readonly (string Name, Regex Message)[] Events =
    [
        ("peer listeners", Exact("configuring peer listeners")),
        ("client listeners", Exact("configuring client listeners")),
        ("server config", Exact("starting an etcd server")),
        ("tick advance", Exact("started as single-node; fast-forwarding election ticks")),
        ("now serving", Exact("now serving peer/client/metrics")),
        ("peer traffic", Exact("serving peer traffic")),
        ("new election", new Regex("^[0-9a-f]+ is starting a new election at term [0-9]+$")),
        ("candidate", new Regex("^[0-9a-f]+ became candidate at term [0-9]+$")),
        ("leader", new Regex("^[0-9a-f]+ became leader at term [0-9]+$")),
        ("elected", new Regex("^raft.node: [0-9a-f]+ elected leader [0-9a-f]+ at term [0-9]+$")),
        ("configuration", new Regex("^[0-9a-f]+ switched to configuration voters=\\([0-9]+\\)$")),
        ("added member", Exact("added member")),
        ("published", Exact("published local member to cluster through raft")),
        ("client traffic", Exact("serving client traffic insecurely; this is strongly discouraged!")),
        ("cluster version", Exact("set initial cluster version")),
        ("capabilities", Exact("enabled capabilities for version")),
        ("closing", Exact("closing etcd server")),
        ("closed", Exact("closed etcd server")),
    ];

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task StartElectionAndShutdownLines_MatchRealEtcd()
    {
        Assert.True(File.Exists(EtcdPath), "real etcd 3.4.23 (" + EtcdPath + ") is needed: scripts/setup.sh installs it");
        var theirs = await RunRealEtcdAsync();
        var ours = await RunOursAsync();

        foreach (var line in ours)
        {
            Assert.Equal(["level", "ts", "caller", "msg"], line.EnumerateObject().Take(4).Select(p => p.Name));
            Assert.Matches("^(debug|info|warn|error|dpanic|panic|fatal)$", line.GetProperty("level").GetString()!);
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$", line.GetProperty("ts").GetString()!);
        }

        foreach (var (name, message) in Events)
        {
            var real = theirs.FirstOrDefault(l => message.IsMatch(l.GetProperty("msg").GetString()!));
            Assert.True(real.ValueKind == JsonValueKind.Object, $"real etcd did not log '{name}'");
            var mine = ours.FirstOrDefault(l => message.IsMatch(l.GetProperty("msg").GetString()!));
            Assert.True(mine.ValueKind == JsonValueKind.Object, $"we did not log '{name}' ({real})");
            Assert.Equal(real.GetProperty("level").GetString(), mine.GetProperty("level").GetString());
            Assert.Equal(real.GetProperty("caller").GetString(), mine.GetProperty("caller").GetString());
            Assert.Equal(Keys(real), Keys(mine));
            foreach (var p in real.EnumerateObject())
            {
                Assert.True(p.Value.ValueKind == mine.GetProperty(p.Name).ValueKind || p.Name == "msg", $"'{name}' field {p.Name}: {p.Value.ValueKind} vs {mine.GetProperty(p.Name).ValueKind}");
            }
        }
    }

    [Fact]
    public void LevelFiltersLines_AndFileOutputAppends()
    {
        var path = Path.Combine(_dir.Path, "levels.log");
        using (var factory = EtcdLogging.CreateLoggerFactory("zap", "warn", [path]))
        {
            var log = factory.CreateLogger("etcdserver/server.go");
            log.LogEtcd(Microsoft.Extensions.Logging.LogLevel.Information, "etcdserver/server.go:1", "hidden", "hidden");
            log.LogEtcd(Microsoft.Extensions.Logging.LogLevel.Warning, "etcdserver/server.go:2", "shown", "shown", ("k", 1));
        }

        using (var factory = EtcdLogging.CreateLoggerFactory("zap", "warn", [path]))
        {
            factory.CreateLogger("x/y.go").LogEtcd(Microsoft.Extensions.Logging.LogLevel.Error, "x/y.go:3", "appended", "appended");
        }

        var lines = File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("msg").GetString()!).ToArray();
        Assert.Equal(["shown", "appended"], lines);
    }

    [Fact]
    public void PackageLevels_OverrideTheLevelPerCapnslogPackage()
    {
        var path = Path.Combine(_dir.Path, "packages.log");
        using (var factory = EtcdLogging.CreateLoggerFactory("capnslog", "info", [path], "etcdserver=DEBUG,*=ERROR"))
        {
            factory.CreateLogger("etcdserver/server.go").LogEtcd(Microsoft.Extensions.Logging.LogLevel.Debug, "etcdserver/server.go:1", "d", "debug from etcdserver");
            factory.CreateLogger("embed/etcd.go").LogEtcd(Microsoft.Extensions.Logging.LogLevel.Warning, "embed/etcd.go:1", "w", "warning from embed");
            factory.CreateLogger("embed/etcd.go").LogEtcd(Microsoft.Extensions.Logging.LogLevel.Error, "embed/etcd.go:1", "e", "error from embed");
        }

        var text = File.ReadAllText(path);
        Assert.Contains(" D | etcdserver: debug from etcdserver\n", text);
        Assert.DoesNotContain("warning from embed", text);
        Assert.Contains(" E | embed: error from embed\n", text);
        Assert.Throws<FormatException>(() => EtcdLogging.ParsePackageLevels("etcdserver"));
    }

    private static string[] Keys(JsonElement line) => line.EnumerateObject().Select(p => p.Name).ToArray();

    private static Regex Exact(string message) => new("^" + Regex.Escape(message) + "$");

    private async Task<List<JsonElement>> RunRealEtcdAsync()
    {
        var (client, peer) = (FreePort(), FreePort());
        var log = Path.Combine(_dir.Path, "real.log");
        var psi = new ProcessStartInfo(EtcdPath) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in Args("real", Path.Combine(_dir.Path, "real"), client, peer, log))
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        try
        {
            // The last start-up line etcd writes: wait for it in the log file (bounded).
            var deadline = Stopwatch.StartNew();
            while (!(File.Exists(log) && ReadLines(log).Any(l => l.GetProperty("msg").GetString() == "cluster version is updated")))
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited, "real etcd did not start:\n" + (File.Exists(log) ? File.ReadAllText(log) : ""));
                await Task.Delay(50);
            }

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }

        return ReadLines(log);
    }

    private async Task<List<JsonElement>> RunOursAsync()
    {
        var log = Path.Combine(_dir.Path, "ours.log");
        var (client, peer) = (FreePort(), FreePort());
        var options = TestMember.Options("ours", Path.Combine(_dir.Path, "ours")) with
        {
            ListenClientUrls = [new Uri($"http://127.0.0.1:{client}")],
            AdvertiseClientUrls = [new Uri($"http://127.0.0.1:{client}")],
            ListenPeerUrls = [new Uri($"http://127.0.0.1:{peer}")],
            InitialAdvertisePeerUrls = [new Uri($"http://127.0.0.1:{peer}")],
            HeartbeatIntervalMs = 100,
            ElectionTimeoutMs = 1000,
        };
        using (var factory = EtcdLogging.CreateLoggerFactory("zap", "info", [log]))
        {
            var host = await EtcdHost.StartAsync(options, factory).WaitAsync(TimeSpan.FromSeconds(30));
            await host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(30));
            await host.DisposeAsync();
        }

        return ReadLines(log);
    }

    private static string[] Args(string name, string dataDir, int client, int peer, string log) =>
    [
        "--logger=zap", "--log-outputs=" + log, "--name", name, "--data-dir", dataDir,
        "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
        "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
        "--initial-cluster", $"{name}=http://127.0.0.1:{peer}",
    ];

    private static List<JsonElement> ReadLines(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(fs);
        var lines = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0 && line.EndsWith('}'))
            {
                lines.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
        }

        return lines;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
