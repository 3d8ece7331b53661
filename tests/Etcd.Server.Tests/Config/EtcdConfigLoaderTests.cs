using System.Collections;
using Etcd.Main.Config;
using Etcd.Server;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tests.Config;

public sealed class EtcdConfigLoaderTests : ConfigTestBase
{
    private string WriteYaml(string text) => WriteFile(text, Guid.NewGuid().ToString("N") + ".yml");

    [Fact]
    public void NoArguments_GivesEtcdDefaults()
    {
        var r = Load([]);
        var o = Ok(r);
        var d = new EtcdOptions();
        Assert.Equal(d.Name, o.Name);
        Assert.Equal("", o.DataDir);
        Assert.Equal(["http://localhost:2379"], o.ListenClientUrls.Select(u => u.OriginalString));
        Assert.Equal(["http://localhost:2379"], o.AdvertiseClientUrls.Select(u => u.OriginalString));
        Assert.Equal(["http://localhost:2380"], o.ListenPeerUrls.Select(u => u.OriginalString));
        Assert.Equal(["http://localhost:2380"], o.InitialAdvertisePeerUrls.Select(u => u.OriginalString));
        Assert.Empty(o.ListenMetricsUrls);
        Assert.Equal("default=http://localhost:2380", o.InitialCluster);
        Assert.Equal(d.InitialClusterToken, o.InitialClusterToken);
        Assert.Equal(d.InitialClusterState, o.InitialClusterState);
        Assert.Equal(d.SnapshotCount, o.SnapshotCount);
        Assert.Equal(d.HeartbeatIntervalMs, o.HeartbeatIntervalMs);
        Assert.Equal(d.ElectionTimeoutMs, o.ElectionTimeoutMs);
        Assert.Equal(d.QuotaBackendBytes, o.QuotaBackendBytes);
        Assert.Equal(d.MaxRequestBytes, o.MaxRequestBytes);
        Assert.Equal(d.MaxTxnOps, o.MaxTxnOps);
        Assert.Equal(d.GrpcKeepaliveIntervalMs, o.GrpcKeepaliveIntervalMs);
        Assert.Equal(d.GrpcKeepaliveTimeoutMs, o.GrpcKeepaliveTimeoutMs);
        Assert.Equal(d.MaxConcurrentStreams, o.MaxConcurrentStreams);
        Assert.Equal(d.Logger, o.Logger);
        Assert.Equal(d.LogLevel, o.LogLevel);
        Assert.Equal(d.LogOutputs, o.LogOutputs);
        Assert.Equal(d.AutoCompactionMode, o.AutoCompactionMode);
        Assert.Equal(d.AutoCompactionRetention, o.AutoCompactionRetention);
        Assert.Equal(d.StrictReconfigCheck, o.StrictReconfigCheck);
        Assert.False(o.PreVote || o.ForceNewCluster || o.PeerAutoTls);
        Assert.Equal("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead\n", r.StandardError);
        Assert.Equal("", r.StandardOutput);
        Assert.Equal(["*"], o.Cors);
        Assert.Equal(["*"], o.HostWhitelist);
        Assert.True(o.EnableGrpcGateway && o.InitialElectionTickAdvance);
        Assert.Equal("", o.LogPackageLevels);
    }

    [Fact]
    public void CommonFlags_AreHonoured()
    {
        var o = Ok(Load([
            "--name", "e1", "--data-dir=/tmp/d", "-wal-dir", "/tmp/w",
            "--listen-client-urls", "http://127.0.0.1:23790,http://127.0.0.1:23789",
            "--advertise-client-urls=http://127.0.0.1:23790",
            "--listen-peer-urls", "http://127.0.0.1:23800",
            "--initial-advertise-peer-urls", "http://127.0.0.1:23800",
            "--initial-cluster", "e1=http://127.0.0.1:23800,e2=http://127.0.0.1:23801",
            "--initial-cluster-token", "tok", "--initial-cluster-state", "existing",
            "--snapshot-count", "0x10", "--heartbeat-interval", "50", "--election-timeout", "500",
            "--quota-backend-bytes", "1_000_000", "--max-request-bytes", "10", "--max-txn-ops", "5",
            "--grpc-keepalive-min-time", "5s", "--grpc-keepalive-interval", "0", "--grpc-keepalive-timeout", "1m",
            "--max-concurrent-streams", "7", "--logger", "zap", "--log-level", "debug", "--log-outputs", "stdout,stderr",
            "--peer-auto-tls", "--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000",
            "--pre-vote", "--strict-reconfig-check=false", "--force-new-cluster=true", "--enable-v2=false",
            "--listen-metrics-urls", "http://127.0.0.1:23791",
        ]));
        Assert.Equal("e1", o.Name);
        Assert.Equal("/tmp/d", o.DataDir);
        Assert.Equal("/tmp/w", o.WalDir);
        Assert.Equal(["http://127.0.0.1:23789", "http://127.0.0.1:23790"], o.ListenClientUrls.Select(u => u.OriginalString));
        Assert.Equal(["http://127.0.0.1:23790"], o.AdvertiseClientUrls.Select(u => u.OriginalString));
        Assert.Equal(["http://127.0.0.1:23791"], o.ListenMetricsUrls.Select(u => u.OriginalString));
        Assert.Equal("e1=http://127.0.0.1:23800,e2=http://127.0.0.1:23801", o.InitialCluster);
        Assert.Equal("tok", o.InitialClusterToken);
        Assert.Equal("existing", o.InitialClusterState);
        Assert.Equal(16UL, o.SnapshotCount);
        Assert.Equal(50, o.HeartbeatIntervalMs);
        Assert.Equal(500, o.ElectionTimeoutMs);
        Assert.Equal(1_000_000, o.QuotaBackendBytes);
        Assert.Equal(10, o.MaxRequestBytes);
        Assert.Equal(5, o.MaxTxnOps);
        Assert.Equal(0, o.GrpcKeepaliveIntervalMs);
        Assert.Equal(60_000, o.GrpcKeepaliveTimeoutMs);
        Assert.Equal(7u, o.MaxConcurrentStreams);
        Assert.Equal("zap", o.Logger);
        Assert.Equal("debug", o.LogLevel);
        Assert.Equal(["stderr", "stdout"], o.LogOutputs);
        Assert.True(o.PeerAutoTls && o.PreVote && o.ForceNewCluster);
        Assert.False(o.StrictReconfigCheck);
        Assert.Equal("revision", o.AutoCompactionMode);
        Assert.Equal("1000", o.AutoCompactionRetention);
    }

    [Fact]
    public void Name_RewritesDefaultInitialCluster_FromAdvertisedPeerUrls()
    {
        var o = Ok(Load(["--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:2,http://127.0.0.1:1"]));
        Assert.Equal("n1=http://127.0.0.1:1,n1=http://127.0.0.1:2", o.InitialCluster);
        // With the default name, etcd keeps its literal default initial cluster.
        var d = Ok(Load(["--initial-advertise-peer-urls", "http://127.0.0.1:5"]));
        Assert.Equal("default=http://localhost:2380", d.InitialCluster);
    }

    [Fact]
    public void OperationsFlags_AreCarriedOnEtcdOptions()
    {
        var o = Ok(Load([
            "--max-snapshots", "1", "--max-wals", "2", "--initial-election-tick-advance=false", "--backend-batch-interval", "10ms",
            "--backend-batch-limit", "3", "--metrics", "extensive", "--unsafe-no-fsync", "--enable-grpc-gateway=0",
            "--cors", "http://a.example:1", "--host-whitelist", "b,a,b",
            "--experimental-initial-corrupt-check", "--experimental-corrupt-check-time", "3m",
            "--experimental-enable-lease-checkpoint", "--experimental-enable-lease-checkpoint-persist",
            "--experimental-compaction-batch-limit", "77", "--experimental-watch-progress-notify-interval", "1h",
            "--experimental-warning-apply-duration", "5ms", "--experimental-backend-bbolt-freelist-type", "map",
            "--experimental-peer-skip-client-san-verification", "--log-package-levels", "etcdserver=DEBUG,*=W",
            "--auth-token", "simple", "--bcrypt-cost", "10", "--auth-token-ttl", "300",
        ]));
        Assert.Equal(1UL, o.MaxSnapshots);
        Assert.Equal(2UL, o.MaxWals);
        Assert.False(o.InitialElectionTickAdvance);
        Assert.Equal(TimeSpan.FromMilliseconds(10), o.BackendBatchInterval);
        Assert.Equal(3, o.BackendBatchLimit);
        Assert.Equal("extensive", o.Metrics);
        Assert.True(o.UnsafeNoFsync);
        Assert.False(o.EnableGrpcGateway);
        Assert.Equal(["http://a.example:1"], o.Cors);
        Assert.Equal(["a", "b"], o.HostWhitelist);
        Assert.True(o.ExperimentalInitialCorruptCheck && o.ExperimentalEnableLeaseCheckpoint && o.ExperimentalEnableLeaseCheckpointPersist);
        Assert.True(o.ExperimentalPeerSkipClientSanVerification);
        Assert.Equal(TimeSpan.FromMinutes(3), o.ExperimentalCorruptCheckTime);
        Assert.Equal(77, o.ExperimentalCompactionBatchLimit);
        Assert.Equal(TimeSpan.FromHours(1), o.ExperimentalWatchProgressNotifyInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(5), o.ExperimentalWarningApplyDuration);
        Assert.Equal("etcdserver=DEBUG,*=W", o.LogPackageLevels);
    }

    [Fact]
    public void LogPackageLevels_BadValueIsWarnedAndDropped_AndZapIgnoresThem()
    {
        var r = Load(["--log-package-levels", "etcdserver=LOUD"]);
        Assert.Equal("", Ok(r).LogPackageLevels);
        Assert.Contains(" W | embed: couldn't parse log level string: couldn't parse log level LOUD, continuing with default levels\n", r.StandardError);
        var z = Load(["--logger=zap", "--log-package-levels", "etcdserver=DEBUG"]);
        Assert.Equal("", Ok(z).LogPackageLevels);
        Assert.Contains("[WARNING] Deprecated '--log-package-levels=etcdserver=DEBUG' flag is set; use '--logger=zap' flag instead\n", z.StandardError);
    }

    [Theory]
    [InlineData("--auth-token=foo", "foo")]
    [InlineData("--auth-token=oauth,x=y", "oauth")]
    public void UnknownAuthTokenType_FailsAsEtcd(string arg, string type)
    {
        var r = Load([arg]);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($" E | auth: unknown token type: {type}\n", r.StandardError);
        Assert.Contains(" W | etcdserver: failed to create token provider,err is auth: invalid auth options\n", r.StandardError);
        Assert.EndsWith(" C | etcdmain: auth: invalid auth options\n", r.StandardError);
    }

    [Fact]
    public void AuthFlags_AreHonoured()
    {
        var o = Ok(Load(["--bcrypt-cost", "12", "--auth-token-ttl", "60", "--auth-token", "jwt,pub-key=a.crt,priv-key=a.key,sign-method=RS256,ttl=1s"]));
        Assert.Equal(12, o.BcryptCost);
        Assert.Equal(TimeSpan.FromSeconds(60), o.AuthTokenTtl);
        Assert.Equal("jwt,pub-key=a.crt,priv-key=a.key,sign-method=RS256,ttl=1s", o.AuthToken);
    }

    public static TheoryData<string[], string> RefusedFlags => new()
    {
        { ["--client-cert-allowed-hostname", "h"], "--client-cert-allowed-hostname=\"h\" is not supported by etcd-cs" },
        { ["--discovery", "http://d.example:1/x"], "--discovery" },
        { ["--discovery-srv", "example.com"], "--discovery-srv" },
        { ["--discovery-fallback", "exit"], "--discovery-fallback" },
        { ["--proxy", "on"], "--proxy=\"on\"" },
        { ["--proxy-dial-timeout", "5"], "--proxy-dial-timeout=\"5\"" },
        { ["--experimental-enable-v2v3", "v2/"], "--experimental-enable-v2v3=\"v2/\" is not supported by etcd-cs" },
        { ["--enable-pprof"], "--enable-pprof=\"true\" is not supported by etcd-cs" },
        { ["--grpc-keepalive-min-time", "1.5s"], "--grpc-keepalive-min-time=\"1.5s\" is not supported by etcd-cs" },
        { ["--debug"], "--debug=\"true\" is not supported by etcd-cs" },
    };

    [Theory]
    [MemberData(nameof(RefusedFlags))]
    public void UnimplementedFlags_AreRefused(string[] args, string expected)
    {
        var r = Load(args);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("E | etcdmain: error verifying flags, " + expected, r.StandardError);
        Assert.EndsWith(". See 'etcd --help'.\n", r.StandardError);
    }

    [Theory]
    [InlineData("--client-cert-auth=false")]
    [InlineData("--cert-file=")]
    [InlineData("--auto-tls=false")]
    [InlineData("--peer-client-cert-auth=false")]
    [InlineData("--auth-token=simple")]
    [InlineData("--auth-token=simple,ttl=5m")]
    [InlineData("--enable-v2=false")]
    [InlineData("--debug=false")]
    [InlineData("--enable-pprof=false")]
    [InlineData("--experimental-backend-bbolt-freelist-type=anything")]
    [InlineData("--proxy=off")]
    [InlineData("--discovery-fallback=proxy")]
    [InlineData("--proxy-dial-timeout=1000")]
    [InlineData("--client-cert-allowed-hostname=")]
    [InlineData("--peer-auto-tls")]
    [InlineData("--experimental-peer-skip-client-san-verification=false")]
    public void UnimplementedFlags_AreAcceptedWithTheirDefault(string arg) => Ok(Load([arg]));

    [Fact]
    public void Environment_FillsFlags_AndIsLoggedInFlagOrder()
    {
        var r = Load([], ("ETCD_NAME", "envname"), ("ETCD_HEARTBEAT_INTERVAL", "20"), ("ETCD_PRE_VOTE", "true"), ("HOME", "/root"));
        var o = Ok(r);
        Assert.Equal("envname", o.Name);
        Assert.Equal(20, o.HeartbeatIntervalMs);
        Assert.True(o.PreVote);
        string[] lines = r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} I \| pkg/flags: recognized and used environment variable ETCD_HEARTBEAT_INTERVAL=20$", lines[0]);
        Assert.EndsWith("I | pkg/flags: recognized and used environment variable ETCD_NAME=envname", lines[1]);
        Assert.EndsWith("I | pkg/flags: recognized and used environment variable ETCD_PRE_VOTE=true", lines[2]);
    }

    [Fact]
    public void Environment_UnknownEtcdVariable_IsWarned_AndEmptyOneIsUnrecognised()
    {
        var r = Load([], ("ETCD_FOO", "bar"), ("ETCD_DATA_DIR", ""));
        Ok(r);
        Assert.Contains(" W | pkg/flags: unrecognized environment variable ETCD_DATA_DIR=\n", r.StandardError);
        Assert.Contains(" W | pkg/flags: unrecognized environment variable ETCD_FOO=bar\n", r.StandardError);
    }

    [Fact]
    public void Environment_ShadowedByFlag_IsFatal()
    {
        var r = Load(["--name", "y"], ("ETCD_NAME", "x"));
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith(" C | pkg/flags: conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n", r.StandardError);
    }

    [Fact]
    public void Environment_BadValue_IsAnError()
    {
        var r = Load([], ("ETCD_HEARTBEAT_INTERVAL", "abc"));
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith(" E | etcdmain: error verifying flags, invalid value \"abc\" for ETCD_HEARTBEAT_INTERVAL: parse error. See 'etcd --help'.\n", r.StandardError);
    }

    [Fact]
    public void Version_PrintsEtcdLinesAndOurs()
    {
        var r = Load(["--version"]);
        Assert.True(r.ShouldExit);
        Assert.Equal(0, r.ExitCode);
        string[] lines = r.StandardOutput.Split('\n');
        Assert.Equal("etcd Version: 3.4.23", lines[0]);
        Assert.StartsWith("Git SHA: ", lines[1]);
        Assert.StartsWith("Go Version: ", lines[2]);
        Assert.Matches("^Go OS/Arch: [a-z]+/[a-z0-9]+$", lines[3]);
        Assert.Equal("etcd-cs Version: " + EtcdConfigLoader.ProductVersion, lines[4]);
        Assert.Equal("", r.StandardError);
        Assert.Equal(0, Load(["-version"]).ExitCode);
    }

    [Theory]
    [InlineData("-h")]
    [InlineData("--help")]
    [InlineData("-help")]
    public void Help_PrintsUsageAndFlags(string arg)
    {
        var r = Load(["--name", "x", arg, "--bogus"]);
        Assert.True(r.ShouldExit);
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("Usage:\n", r.StandardError);
        Assert.StartsWith("\nMember:\n  --name 'default'\n", r.StandardOutput);
        Assert.Contains("--listen-client-urls 'http://localhost:2379'", r.StandardOutput);
        Assert.Contains("--log-level 'info'", r.StandardOutput);
        Assert.Contains("--cert-file ''", r.StandardOutput);
        Assert.Contains("--cipher-suites ''", r.StandardOutput);
    }

    public static TheoryData<string[], string> FlagSyntaxErrors => new()
    {
        { ["--bogus"], "flag provided but not defined: -bogus" },
        { ["-x=1"], "flag provided but not defined: -x" },
        { ["--heartbeat-interval", "abc"], "invalid value \"abc\" for flag -heartbeat-interval: parse error" },
        { ["--heartbeat-interval=-1"], "invalid value \"-1\" for flag -heartbeat-interval: parse error" },
        { ["--heartbeat-interval=99999999999999999999"], "invalid value \"99999999999999999999\" for flag -heartbeat-interval: value out of range" },
        { ["--pre-vote=maybe"], "invalid boolean value \"maybe\" for -pre-vote: parse error" },
        { ["--name"], "flag needs an argument: -name" },
        { ["---name", "x"], "bad flag syntax: ---name" },
        { ["-=x"], "bad flag syntax: -=x" },
        { ["--initial-cluster-state", "foo"], "invalid value \"foo\" for flag -initial-cluster-state: invalid value" },
        { ["--max-concurrent-streams", "99999999999"], "invalid value \"99999999999\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"99999999999\": value out of range" },
        { ["--max-concurrent-streams", "x"], "invalid value \"x\" for flag -max-concurrent-streams: strconv.ParseUint: parsing \"x\": invalid syntax" },
        { ["--grpc-keepalive-min-time", "5"], "invalid value \"5\" for flag -grpc-keepalive-min-time: parse error" },
        { ["--quota-backend-bytes", "1e9"], "invalid value \"1e9\" for flag -quota-backend-bytes: parse error" },
        { ["--listen-client-urls", "foo"], "invalid value \"foo\" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo" },
        { ["--listen-client-urls", "http://127.0.0.1:1/x"], "invalid value \"http://127.0.0.1:1/x\" for flag -listen-client-urls: URL must not contain a path: http://127.0.0.1:1/x" },
        { ["--listen-peer-urls", "127.0.0.1:2379"], "invalid value \"127.0.0.1:2379\" for flag -listen-peer-urls: parse \"127.0.0.1:2379\": first path segment in URL cannot contain colon" },
        { ["--listen-peer-urls", "http://[::1"], "invalid value \"http://[::1\" for flag -listen-peer-urls: parse \"http://[::1\": missing ']' in host" },
        { ["--listen-peer-urls", "http://127.0.0.1"], "invalid value \"http://127.0.0.1\" for flag -listen-peer-urls: URL address does not have the form \"host:port\": http://127.0.0.1" },
        { ["--listen-peer-urls", ":2379"], "invalid value \":2379\" for flag -listen-peer-urls: parse \":2379\": missing protocol scheme" },
        { ["--listen-peer-urls", "http://127.0.0.1:abc"], "invalid value \"http://127.0.0.1:abc\" for flag -listen-peer-urls: parse \"http://127.0.0.1:abc\": invalid port \":abc\" after host" },
        { ["--listen-peer-urls", "unix://x"], "invalid value \"unix://x\" for flag -listen-peer-urls: URL address does not have the form \"host:port\": unix://x" },
    };

    [Theory]
    [MemberData(nameof(FlagSyntaxErrors))]
    public void FlagSyntaxErrors_ExitTwoWithGoFlagMessageAndUsage(string[] args, string firstLine)
    {
        var r = Load(args);
        Assert.True(r.ShouldExit);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal(firstLine, r.StandardError.Split('\n')[0]);
        Assert.StartsWith(firstLine + "\nUsage:\n", r.StandardError);
        Assert.Equal("", r.StandardOutput);
    }

    public static TheoryData<string[], string> ValidationErrors => new()
    {
        { ["foo"], "'foo' is not a valid flag" },
        { ["-"], "'-' is not a valid flag" },
        { ["--", "--name"], "'--name' is not a valid flag" },
        { ["--heartbeat-interval", "500"], "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[500ms]" },
        { ["--election-timeout", "60000"], "--election-timeout[60000ms] is too long, and should be set less than 50000ms" },
        { ["--heartbeat-interval", "0"], "--heartbeat-interval must be >0 (set to 0ms)" },
        { ["--election-timeout", "0"], "--election-timeout must be >0 (set to 0ms)" },
        { ["--logger", "bogus"], "unknown logger option \"bogus\"" },
        { ["--log-outputs", "stderr,stdout"], "--logger=capnslog supports only 1 value in '--log-outputs', got [\"stderr\" \"stdout\"]" },
        { ["--log-outputs", "/tmp/x.log"], "unknown log-output \"/tmp/x.log\" (only supports \"default\", \"stderr\", \"stdout\")" },
        { ["--logger", "zap", "--log-outputs", "default,stdout"], "multi logoutput for \"default\" is not supported yet" },
        { ["--listen-client-urls", "http://foo.com:1", "--advertise-client-urls", "http://foo.com:1"], "expected IP in URL for binding (http://foo.com:1)" },
        { ["--listen-peer-urls", "http://:1"], "expected IP in URL for binding (http://:1)" },
        { ["--advertise-client-urls", "http://:1"], "--advertise-client-urls \"http://:1\" must be \"host:port\" (unexpected empty host (http://:1))" },
        { ["--initial-advertise-peer-urls", "http://:1,http://a:2"], "--initial-advertise-peer-urls \"http://:1,http://a:2\" must be \"host:port\" (unexpected empty host (http://:1))" },
        { ["--auto-compaction-mode", "bogus"], "unknown auto-compaction-mode \"bogus\"" },
        { ["--experimental-enable-lease-checkpoint-persist"], "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint" },
    };

    [Theory]
    [MemberData(nameof(ValidationErrors))]
    public void ValidationErrors_ExitOneWithEtcdMessage(string[] args, string message)
    {
        var r = Load(args);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} E \| etcdmain: error verifying flags, ", r.StandardError);
        Assert.EndsWith("E | etcdmain: error verifying flags, " + message + ". See 'etcd --help'.\n", r.StandardError);
    }

    [Fact]
    public void ListenClientUrlsWithoutAdvertise_PrintsBothEtcdLines()
    {
        var r = Load(["--listen-client-urls", "http://127.0.0.1:1"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("E | etcdmain: error verifying flags, --advertise-client-urls is required when --listen-client-urls is set explicitly. See 'etcd --help'.\n", r.StandardError);
        Assert.EndsWith("E | etcdmain: When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.\n", r.StandardError);
    }

    [Fact]
    public void ZapLogger_ReportsValidationErrorsAsJson()
    {
        var r = Load(["--logger", "zap", "--listen-client-urls", "http://127.0.0.1:1"]);
        Assert.Equal(1, r.ExitCode);
        string[] lines = r.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches("""^\{"level":"warn","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})","caller":"etcdmain/etcd.go:66","msg":"failed to verify flags","error":"--advertise-client-urls is required when --listen-client-urls is set explicitly"\}$""", lines[0]);
        Assert.Matches("""^\{"level":"warn","ts":"[^"]+","caller":"etcdmain/etcd.go:73","msg":"advertise client URLs are not set","error":"--advertise-client-urls is required when --listen-client-urls is set explicitly"\}$""", lines[1]);

        var both = Load(["--logger", "zap", "--log-outputs", "stderr,stdout", "--heartbeat-interval", "500"]);
        Assert.Contains("\"msg\":\"failed to verify flags\"", both.StandardError);
        Assert.Contains("\"msg\":\"failed to verify flags\"", both.StandardOutput);
    }

    [Fact]
    public void UnknownLogLevel_PanicsLikeEtcd()
    {
        var r = Load(["--log-level", "bogus"]);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead\npanic: unknown level \"bogus\"\n\n", r.StandardError);
    }

    [Fact]
    public void IgnoredLegacyFlag_IsWarnedAndAccepted()
    {
        var r = Load(["--v", "-peer-heartbeat-interval=9"]);
        Ok(r);
        Assert.Contains(" W | pkg/flags: flag \"-v\" is no longer supported - ignoring.\n", r.StandardError);
        Assert.Contains(" W | pkg/flags: flag \"-peer-heartbeat-interval\" is no longer supported - ignoring.\n", r.StandardError);
    }

    [Fact]
    public void DeprecatedLogOutput_WarnsLikeEtcd()
    {
        var r = Load(["--log-output", "stdout", "--log-level", "debug"]);
        var o = Ok(r);
        Assert.Contains("[WARNING] Deprecated '--log-output' flag is set to [\"stdout\"]\nPlease use '--log-outputs' flag\n", r.StandardError);
        Assert.Equal("debug", o.LogLevel);
    }

    [Fact]
    public void RepeatedFlag_LastWins_AndEmptyUrlValueKeepsDefault()
    {
        var o = Ok(Load(["--name", "a", "--name", "b", "--listen-peer-urls", ""]));
        Assert.Equal("b", o.Name);
        Assert.Equal(["http://localhost:2380"], o.ListenPeerUrls.Select(u => u.OriginalString));
    }

    [Fact]
    public void ConfigFile_LoadsEtcdKeys_AndIgnoresFlagsAndEnvironment()
    {
        // etcd's sample config with this member's values, plus a key in odd case, a hex number, a duration in ns
        // and a key etcd does not know
        string path = WriteYaml(SampleConfig
            .Replace("name: 'default'", "name: 'yaml-member'")
            .Replace("data-dir:\n", "data-dir: /var/lib/etcd-yaml\n")
            .Replace("localhost", "127.0.0.1")
            .Replace("listen-client-urls: http://127.0.0.1:2379", "listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379")
            .Replace("  auto-tls: false\ndebug", "  auto-tls: true\ndebug")
            .Replace("enable-v2: true", "enable-v2: false")
            .Replace("enable-pprof: true", "enable-pprof: false") + """
            Max-Txn-Ops: 0x20
            grpc-keepalive-interval: 3000000000
            unknown-key: whatever
            """);
        var r = Load(["--config-file", path, "--name", "ignored"], ("ETCD_NAME", "ignored-too"));
        var o = Ok(r);
        Assert.Equal("yaml-member", o.Name);
        Assert.Equal("/var/lib/etcd-yaml", o.DataDir);
        Assert.Equal(10000UL, o.SnapshotCount);
        Assert.Equal(["http://127.0.0.1:22379", "http://127.0.0.1:2379"], o.ListenClientUrls.Select(u => u.OriginalString));
        Assert.Equal("yaml-member=http://127.0.0.1:2380", o.InitialCluster);
        Assert.False(o.StrictReconfigCheck);
        Assert.True(o.PeerAutoTls);
        Assert.Equal(32, o.MaxTxnOps);
        Assert.Equal(3000, o.GrpcKeepaliveIntervalMs);
        Assert.Equal(["default"], o.LogOutputs);
        Assert.Contains("I | etcdmain: Loading server configuration from \"" + path + "\". Other configuration command line flags and environment variables will be ignored if provided.\n", r.StandardError);
        Assert.DoesNotContain("ETCD_NAME", r.StandardError);
    }

    [Fact]
    public void ConfigFile_EtcdsSample_IsRefusedForItsPprof()
    {
        string path = WriteYaml(SampleConfig.Replace("localhost", "127.0.0.1"));
        var r = Load(["--config-file", path]);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(" E | etcdmain: error verifying flags, config key \"enable-pprof\"=\"true\" is not supported by etcd-cs", r.StandardError);
    }

    [Theory]
    [InlineData(new[] { "--enable-v2" }, true)]
    [InlineData(new[] { "--enable-v2=false" }, false)]
    [InlineData(new string[0], false)]
    public void EnableV2_TurnsTheV2ApiOn(string[] args, bool expected)
    {
        var o = Ok(Load(args));
        Assert.Equal(expected, o.EnableV2);
    }

    [Fact]
    public void ConfigFile_FromEnvironment_AndZapLogsLoadedLine()
    {
        string path = WriteYaml("logger: zap\nlog-level: warn\nname: z\n");
        var r = Load([], ("ETCD_CONFIG_FILE", path));
        var o = Ok(r);
        Assert.Equal("z", o.Name);
        Assert.Equal("zap", o.Logger);
        Assert.Equal("warn", o.LogLevel);
        Assert.Matches("""^\{"level":"info","ts":"[^"]+","caller":"etcdmain/config.go:312","msg":"loaded server configuration, other configuration command line flags and environment variables will be ignored if provided","path":"[^"]+"\}\n$""", r.StandardError);
    }

    public static TheoryData<string, string> ConfigFileErrors => new()
    {
        { "heartbeat-interval: \"100\"\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.heartbeat-interval of type uint" },
        { "heartbeat-interval: -5\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number -5 into Go struct field configYAML.heartbeat-interval of type uint" },
        { "heartbeat-interval: 0\n", "--heartbeat-interval must be >0 (set to 0ms)" },
        { "Heartbeat-Interval: 0\nlogger: zap\n", "--heartbeat-interval must be >0 (set to 0ms)" },
        { "grpc-keepalive-min-time: 5s\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.grpc-keepalive-min-time of type time.Duration" },
        { "log-outputs: stderr\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.log-outputs of type []string" },
        { "initial-cluster-state: bogus\n", "unexpected clusterState \"bogus\"" },
        { "name: 5\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field configYAML.name of type string" },
        { "enable-v2: 'yes'\n", "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.enable-v2 of type bool" },
        { "tls-min-version: TLS1.1\n", "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)" },
    };

    [Theory]
    [MemberData(nameof(ConfigFileErrors))]
    public void ConfigFileErrors_ExitOneWithEtcdMessage(string yaml, string message)
    {
        string path = WriteYaml(yaml);
        var r = Load(["--config-file", path]);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("I | etcdmain: Loading server configuration from \"" + path + "\".", r.StandardError);
        Assert.Contains("E | etcdmain: error verifying flags, " + message, r.StandardError);
    }

    [Fact]
    public void ConfigFile_BadUrl_ExitsWithEtcdsRawLine()
    {
        var r = Load(["--config-file", WriteYaml("listen-client-urls: foo\n")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("unexpected error setting up listen-client-urls: URL scheme must be http, https, unix, or unixs: foo\n", r.StandardError);
        var ac = Load(["--config-file", WriteYaml("advertise-client-urls: foo\n")]);
        Assert.Equal("unexpected error setting up advertise-peer-urls: URL scheme must be http, https, unix, or unixs: foo\n", ac.StandardError);
    }

    [Fact]
    public void ConfigFile_Missing_OrMalformed()
    {
        string missing = Path.Combine(Dir, "nope.yml");
        var r = Load(["--config-file", missing]);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith($"E | etcdmain: error verifying flags, open {missing}: no such file or directory. See 'etcd --help'.\n", r.StandardError);
        var bad = Load(["--config-file", WriteYaml("name: [1\n")]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("E | etcdmain: error verifying flags, error converting YAML to JSON: yaml: line ", bad.StandardError);
    }

    [Fact]
    public void E2eStyleCommandLines_Load()
    {
        var unix = Ok(Load(["--data-dir", "/tmp/e1.etcd", "--name", "e1", "--listen-peer-urls", "unix://etcd.unix:1",
            "--initial-advertise-peer-urls", "unix://etcd.unix:1", "--initial-cluster", "e1=unix://etcd.unix:1"]));
        Assert.Equal(["unix://etcd.unix:1"], unix.ListenPeerUrls.Select(u => u.OriginalString));
        Assert.Equal("e1=unix://etcd.unix:1", unix.InitialCluster);

        var multi = Ok(Load(["--name", "e0", "--listen-client-urls", "http://0.0.0.0:0", "--data-dir", "/tmp/x",
            "--advertise-client-urls", "http://0.0.0.0:0", "--listen-peer-urls", "http://127.0.0.1:20000,http://127.0.0.1:20003",
            "--initial-advertise-peer-urls", "http://127.0.0.1:20000", "--initial-cluster", "e0=http://127.0.0.1:20000,e1=http://127.0.0.1:20001",
            "--initial-cluster-token", "new", "--snapshot-count", "100000", "--quota-backend-bytes", "8589934592",
            "--strict-reconfig-check=false", "--experimental-initial-corrupt-check", "--max-concurrent-streams", "1"]));
        Assert.Equal(["http://0.0.0.0:0"], multi.ListenClientUrls.Select(u => u.OriginalString));
        Assert.Equal(0, multi.ListenClientUrls[0].Port);
        Assert.Equal(2, multi.ListenPeerUrls.Count);
        Assert.Equal(8589934592L, multi.QuotaBackendBytes);
        Assert.Equal(1u, multi.MaxConcurrentStreams);
    }

    [Fact]
    public void ZapLogger_StartsSilently_AndOptionsBuildTheLoggerFactory()
    {
        string log = Path.Combine(Dir, "etcd.log");
        var r = Load(["--logger", "zap", "--log-level", "warn", "--log-outputs", log]);
        var o = Ok(r);
        Assert.Equal("", r.StandardError);
        Assert.Equal([log], o.LogOutputs);
        using (var factory = Etcd.Server.Logging.EtcdLogging.CreateLoggerFactory(o))
        {
            var logger = factory.CreateLogger("auth/store.go");
            logger.LogInformation("hidden at warn");
            logger.LogWarning(new EventId(1380), "simple token is not cryptographically signed");
        }
        string[] lines = File.ReadAllLines(log);
        Assert.Single(lines);
        Assert.Matches("""^\{"level":"warn","ts":"[^"]+","caller":"auth/store.go:1380","msg":"simple token is not cryptographically signed"\}$""", lines[0]);
    }
}
