using System.Text;
using System.Text.Json;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tests.Logging;

internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now.ToUniversalTime();

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}

public sealed partial class EtcdLoggingTests
{
    private static readonly DateTimeOffset s_now = new(2026, 11, 21, 10, 0, 0, 123, TimeSpan.Zero);

    private static (EtcdLoggerProvider Provider, MemoryStream Stream) Provider(EtcdLogFormat format, LogLevel min = LogLevel.Information)
    {
        var ms = new MemoryStream();
        return (new EtcdLoggerProvider(format, min, [ms], new FixedTime(s_now.AddTicks(4560))), ms);
    }

    private static string Text(MemoryStream ms) => Encoding.UTF8.GetString(ms.ToArray());

    [LoggerMessage(EventId = 2069, Level = LogLevel.Information, Message = "published local member to cluster through raft {LocalMemberId} {LocalMemberAttributes} {RequestPath} {ClusterId} {PublishTimeout}")]
    private static partial void Published(ILogger logger, string localMemberId, string localMemberAttributes, string requestPath, string clusterId, TimeSpan publishTimeout);

    [LoggerMessage(EventId = 706, Level = LogLevel.Information, Message = "{Id} became follower at term {@Term}")]
    private static partial void BecameFollower(ILogger logger, string id, ulong term);

    private static void ConfiguringPeers(ILogger logger, IReadOnlyList<string> urls) =>
        logger.LogInformation(new EventId(117), "configuring peer listeners {listen-peer-urls}", urls);

    [Fact]
    public void Zap_TemplateTrailingPlaceholders_BecomeKebabCaseFields()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap);
        var logger = p.CreateLogger("etcdserver/server.go");
        Published(logger, "2e1259d415f2a040", "{Name:default ClientURLs:[http://127.0.0.1:23790]}", "/0/members/2e1259d415f2a040/attributes", "48276a8f75b6a87", TimeSpan.FromSeconds(7));
        Assert.Equal(
            """{"level":"info","ts":"2026-11-21T10:00:00.123Z","caller":"etcdserver/server.go:2069","msg":"published local member to cluster through raft","local-member-id":"2e1259d415f2a040","local-member-attributes":"{Name:default ClientURLs:[http://127.0.0.1:23790]}","request-path":"/0/members/2e1259d415f2a040/attributes","cluster-id":"48276a8f75b6a87","publish-timeout":"7s"}""" + "\n",
            Text(ms));
    }

    [Fact]
    public void Zap_InlinePlaceholders_AreRenderedIntoMsg()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap);
        BecameFollower(p.CreateLogger("raft/raft.go"), "2e1259d415f2a040", 1);
        Assert.Equal("""{"level":"info","ts":"2026-11-21T10:00:00.123Z","caller":"raft/raft.go:706","msg":"2e1259d415f2a040 became follower at term 1"}""" + "\n", Text(ms));
    }

    [Fact]
    public void Zap_ListFieldsAreArrays_AndHyphenatedNamesKept_AndCallerIsLastTwoSegments()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap);
        ConfiguringPeers(p.CreateLogger("go.etcd.io/etcd/embed/etcd.go"), ["http://127.0.0.1:23800"]);
        Assert.Equal("""{"level":"info","ts":"2026-11-21T10:00:00.123Z","caller":"embed/etcd.go:117","msg":"configuring peer listeners","listen-peer-urls":["http://127.0.0.1:23800"]}""" + "\n", Text(ms));
    }

    [Fact]
    public void Zap_EntryState_WritesValueTypesAsJson()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap, LogLevel.Trace);
        var logger = p.CreateLogger("etcdserver/quota.go");
        logger.LogFields(LogLevel.Warning, "enabled backend quota with default value",
            ("quota-name", "v3-applier"), ("quota-size-bytes", 2147483648L), ("ratio", 0.5), ("ok", true), ("none", null),
            ("urls", new[] { new Uri("http://127.0.0.1:2379") }), ("ids", new ulong[] { 1, 2 }), ("took", TimeSpan.FromTicks(23779)),
            ("text", "quote\" back\\ nl\n tab\t ctl\u0001 <html> é"));
        string line = Text(ms);
        Assert.Equal(
            """{"level":"warn","ts":"2026-11-21T10:00:00.123Z","caller":"etcdserver/quota.go:98","msg":"enabled backend quota with default value","quota-name":"v3-applier","quota-size-bytes":2147483648,"ratio":0.5,"ok":true,"none":null,"urls":["http://127.0.0.1:2379"],"ids":[1,2],"took":"2.3779ms","text":"quote\" back\\ nl\n tab\t ctl\u0001 <html> é"}""" + "\n",
            line);
        using var doc = JsonDocument.Parse(line);
        Assert.Equal("quote\" back\\ nl\n tab\t ctl\u0001 <html> é", doc.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public void Zap_ExceptionAddsErrorField_AndEntryCallerOverrides()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap);
        var logger = p.CreateLogger("etcdmain/etcd.go");
        logger.Log(LogLevel.Error, new EventId(66), new EtcdLogEntry("failed to start", [new("name", "x")], caller: "embed/etcd.go:1"), new IOException("disk gone"), EtcdLogEntry.Formatter);
        logger.LogError(new EventId(5), new InvalidOperationException("boom"), "plain message");
        string[] lines = Text(ms).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("""{"level":"error","ts":"2026-11-21T10:00:00.123Z","caller":"embed/etcd.go:1","msg":"failed to start","name":"x","error":"disk gone"}""", lines[0]);
        Assert.Equal("""{"level":"error","ts":"2026-11-21T10:00:00.123Z","caller":"etcdmain/etcd.go:5","msg":"plain message","error":"boom"}""", lines[1]);
    }

    [Fact]
    public void Capnslog_FormatsPackageAndLevelLetter()
    {
        var (p, ms) = Provider(EtcdLogFormat.Capnslog, LogLevel.Trace);
        var logger = p.CreateLogger("etcdserver/api/membership/cluster.go");
        logger.LogInformation("added member {Id} to cluster {Cluster}", "2e1259d415f2a040", "48276a8f75b6a87");
        logger.LogWarning("simple token is not cryptographically signed");
        logger.LogCritical("fatal thing");
        logger.LogDebug("dbg");
        Assert.Equal(
            "2026-11-21 10:00:00.123456 I | etcdserver/api/membership: added member 2e1259d415f2a040 to cluster 48276a8f75b6a87\n" +
            "2026-11-21 10:00:00.123456 W | etcdserver/api/membership: simple token is not cryptographically signed\n" +
            "2026-11-21 10:00:00.123456 C | etcdserver/api/membership: fatal thing\n" +
            "2026-11-21 10:00:00.123456 D | etcdserver/api/membership: dbg\n",
            Text(ms));
    }

    [Fact]
    public void Capnslog_RaftPackage_UsesRaftDefaultLoggerFormat()
    {
        var (p, ms) = Provider(EtcdLogFormat.Capnslog);
        BecameFollower(p.CreateLogger("raft/raft.go"), "2e1259d415f2a040", 0);
        p.CreateLogger("raft/node.go").LogWarning("slow");
        Assert.Equal("raft2026/11/21 10:00:00 INFO: 2e1259d415f2a040 became follower at term 0\nraft2026/11/21 10:00:00 WARN: slow\n", Text(ms));
    }

    [Theory]
    [InlineData("debug", LogLevel.Trace)]
    [InlineData("info", LogLevel.Information)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("dpanic", LogLevel.Critical)]
    [InlineData("panic", LogLevel.Critical)]
    [InlineData("fatal", LogLevel.Critical)]
    public void ParseLevel_MapsEtcdLevels(string level, LogLevel expected) => Assert.Equal(expected, EtcdLogging.ParseLevel(level));

    [Fact]
    public void ParseLevelAndLogger_RejectUnknownWithEtcdText()
    {
        Assert.Equal("unknown level \"loud\" (Parameter 'level')", Assert.Throws<ArgumentException>(() => EtcdLogging.ParseLevel("loud")).Message);
        Assert.StartsWith("unknown logger option \"x\"", Assert.Throws<ArgumentException>(() => EtcdLogging.ParseLogger("x")).Message);
    }

    [Fact]
    public void LevelFiltering_DropsLowerLevels()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap, EtcdLogging.ParseLevel("warn"));
        var logger = p.CreateLogger("a/b.go");
        Assert.False(logger.IsEnabled(LogLevel.Information));
        Assert.True(logger.IsEnabled(LogLevel.Warning));
        logger.LogInformation("no");
        logger.LogDebug("no");
        logger.LogWarning("yes");
        logger.LogError("yes too");
        string[] lines = Text(ms).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"level\":\"warn\"", lines[0]);
        Assert.Contains("\"level\":\"error\"", lines[1]);
    }

    [Fact]
    public void Factory_WritesToFileOutputs_AppendsAndFlushesOnDispose_AndHonoursLevel()
    {
        string dir = Directory.CreateTempSubdirectory("etcd-log-test-").FullName;
        try
        {
            string a = Path.Combine(dir, "a.log");
            string b = Path.Combine(dir, "b.log");
            File.WriteAllText(a, "previous\n");
            using (var factory = EtcdLogging.CreateLoggerFactory("zap", "info", [a, b, a], new FixedTime(s_now)))
            {
                var logger = factory.CreateLogger("etcdserver/server.go");
                logger.LogDebug("hidden");
                logger.LogInformation("starting etcd server {LocalServerVersion}", "3.4.23");
            }
            string expected = """{"level":"info","ts":"2026-11-21T10:00:00.123Z","caller":"etcdserver/server.go:816","msg":"starting etcd server","local-server-version":"3.4.23"}""" + "\n";
            Assert.Equal("previous\n" + expected, File.ReadAllText(a));
            Assert.Equal(expected, File.ReadAllText(b));

            using (var discard = EtcdLogging.CreateLoggerFactory("capnslog", "debug", [b, "/dev/null"]))
            {
                discard.CreateLogger("x").LogInformation("gone");
            }
            Assert.Equal(expected, File.ReadAllText(b));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ConcurrentWriters_NeverInterleaveLines()
    {
        var (p, ms) = Provider(EtcdLogFormat.Zap);
        const int threads = 8;
        const int perThread = 500;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var logger = p.CreateLogger("w/w.go");
            for (int i = 0; i < perThread; i++)
            {
                logger.LogFields(LogLevel.Information, "line", ("thread", t), ("i", i), ("pad", new string('x', 200)));
            }
        });
        p.Dispose();
        string[] lines = Text(ms).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(threads * perThread, lines.Length);
        var seen = new HashSet<(int, int)>();
        foreach (string line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.True(seen.Add((doc.RootElement.GetProperty("thread").GetInt32(), doc.RootElement.GetProperty("i").GetInt32())));
        }
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(1L, "1ns")]
    [InlineData(999L, "999ns")]
    [InlineData(1_500L, "1.5µs")]
    [InlineData(2_377_936L, "2.377936ms")]
    [InlineData(100_000_000L, "100ms")]
    [InlineData(1_000_000_000L, "1s")]
    [InlineData(7_000_000_000L, "7s")]
    [InlineData(60_000_000_000L, "1m0s")]
    [InlineData(90_500_000_000L, "1m30.5s")]
    [InlineData(7_200_000_000_000L, "2h0m0s")]
    [InlineData(-1_500_000_000L, "-1.5s")]
    public void GoDuration_FormatsLikeGo(long ns, string expected)
    {
        Assert.Equal(expected, GoDuration.FormatNanoseconds(ns));
        Assert.True(GoDuration.TryParse(expected, out long back));
        Assert.Equal(ns, back);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("")]
    [InlineData("s")]
    [InlineData("1x")]
    [InlineData("1.s.")]
    [InlineData("--1s")]
    public void GoDuration_RejectsWhatGoRejects(string text) => Assert.False(GoDuration.TryParse(text, out _));

    [Theory]
    [InlineData("0", 0L)]
    [InlineData("1h30m", 5_400_000_000_000L)]
    [InlineData("300us", 300_000L)]
    [InlineData(".5s", 500_000_000L)]
    [InlineData("+2m", 120_000_000_000L)]
    public void GoDuration_ParsesGoSyntax(string text, long ns)
    {
        Assert.True(GoDuration.TryParse(text, out long got));
        Assert.Equal(ns, got);
    }

    [Theory]
    [InlineData("LocalMemberId", "local-member-id")]
    [InlineData("ClusterID", "cluster-id")]
    [InlineData("GoOS", "go-os")]
    [InlineData("address", "address")]
    [InlineData("listen-peer-urls", "listen-peer-urls")]
    [InlineData("quotaSizeBytes", "quota-size-bytes")]
    [InlineData("max_cpu_set", "max-cpu-set")]
    public void FieldNames_AreKebabCased(string name, string expected) => Assert.Equal(expected, LogTemplate.ToKebabCase(name));

    [Fact]
    public void ZapTime_UsesOffsetWhenNotUtc()
    {
        var t = new DateTimeOffset(2026, 11, 21, 10, 0, 0, 5, TimeSpan.FromHours(2));
        string s = EtcdLogLine.ZapTime(t);
        Assert.Equal("2026-11-21T10:00:00.005+0200", s);
        Assert.Equal("2026-11-21T10:00:00.005-0130", EtcdLogLine.ZapTime(new DateTimeOffset(2026, 11, 21, 10, 0, 0, 5, TimeSpan.FromMinutes(-90))));
    }
}
