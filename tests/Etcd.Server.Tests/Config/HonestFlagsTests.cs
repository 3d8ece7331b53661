using System.Collections;
using System.Reflection;
using Etcd.Main.Config;

namespace Etcd.Server.Tests.Config;

/// <summary>
/// Every flag we accept does something: each option the loader fills is read by the member, and each honoured
/// flag of the table reaches the option it names. Refused and no-effect flags say why.
/// </summary>
public sealed class HonestFlagsTests : ConfigTestBase
{
    /// <summary>Options without a flag of their own: aliases and server settings etcd has no flag for.</summary>
    private static readonly HashSet<string> OptionsWithoutFlag = new(StringComparer.Ordinal)
    {
        nameof(EtcdOptions.PeerAutoTls), // alias of PeerTls.AutoTls
        nameof(EtcdOptions.LeaseCheckpointInterval), // etcd's LeaseCheckpointInterval has no flag either
        nameof(EtcdOptions.ResolvedDataDir),
        nameof(EtcdOptions.ResolvedWalDir),
        nameof(EtcdOptions.SnapDir),
        nameof(EtcdOptions.ResolvedInitialCluster),
        nameof(EtcdOptions.Time), // the member's clock: a fake one in tests, never a flag
    };

    /// <summary>A non-default value for every honoured flag (with what else etcd needs to accept it).</summary>
    private static readonly Dictionary<string, string[]> Samples = new(StringComparer.Ordinal)
    {
        ["data-dir"] = ["--data-dir", "/tmp/honest-d"],
        ["wal-dir"] = ["--wal-dir", "/tmp/honest-w"],
        ["listen-peer-urls"] = ["--listen-peer-urls", "http://127.0.0.1:1"],
        ["listen-client-urls"] = ["--listen-client-urls", "http://127.0.0.1:2", "--advertise-client-urls", "http://127.0.0.1:2"],
        ["listen-metrics-urls"] = ["--listen-metrics-urls", "http://127.0.0.1:3"],
        ["max-snapshots"] = ["--max-snapshots", "1"],
        ["max-wals"] = ["--max-wals", "1"],
        ["name"] = ["--name", "honest"],
        ["snapshot-count"] = ["--snapshot-count", "7"],
        ["heartbeat-interval"] = ["--heartbeat-interval", "50"],
        ["election-timeout"] = ["--election-timeout", "2000"],
        ["initial-election-tick-advance"] = ["--initial-election-tick-advance=false"],
        ["quota-backend-bytes"] = ["--quota-backend-bytes", "1000"],
        ["backend-batch-interval"] = ["--backend-batch-interval", "5ms"],
        ["backend-batch-limit"] = ["--backend-batch-limit", "3"],
        ["max-txn-ops"] = ["--max-txn-ops", "3"],
        ["max-request-bytes"] = ["--max-request-bytes", "10"],
        ["grpc-keepalive-interval"] = ["--grpc-keepalive-interval", "1m"],
        ["grpc-keepalive-timeout"] = ["--grpc-keepalive-timeout", "1s"],
        ["max-concurrent-streams"] = ["--max-concurrent-streams", "5"],
        ["initial-advertise-peer-urls"] = ["--initial-advertise-peer-urls", "http://127.0.0.1:4"],
        ["advertise-client-urls"] = ["--advertise-client-urls", "http://127.0.0.1:5"],
        ["initial-cluster"] = ["--initial-cluster", "default=http://127.0.0.1:6"],
        ["initial-cluster-token"] = ["--initial-cluster-token", "t"],
        ["initial-cluster-state"] = ["--initial-cluster-state", "existing"],
        ["strict-reconfig-check"] = ["--strict-reconfig-check=false"],
        ["pre-vote"] = ["--pre-vote"],
        ["cert-file"] = ["--cert-file", "/tmp/c.pem"],
        ["key-file"] = ["--key-file", "/tmp/k.pem"],
        ["client-cert-auth"] = ["--client-cert-auth"],
        ["client-crl-file"] = ["--client-crl-file", "/tmp/crl.pem"],
        ["trusted-ca-file"] = ["--trusted-ca-file", "/tmp/ca.pem"],
        ["auto-tls"] = ["--auto-tls"],
        ["peer-cert-file"] = ["--peer-cert-file", "/tmp/pc.pem"],
        ["peer-key-file"] = ["--peer-key-file", "/tmp/pk.pem"],
        ["peer-client-cert-auth"] = ["--peer-client-cert-auth"],
        ["peer-trusted-ca-file"] = ["--peer-trusted-ca-file", "/tmp/pca.pem"],
        ["peer-auto-tls"] = ["--peer-auto-tls"],
        ["peer-crl-file"] = ["--peer-crl-file", "/tmp/pcrl.pem"],
        ["peer-cert-allowed-cn"] = ["--peer-cert-allowed-cn", "cn"],
        ["peer-cert-allowed-hostname"] = ["--peer-cert-allowed-hostname", "h"],
        ["cipher-suites"] = ["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        ["tls-min-version"] = ["--tls-min-version", "TLS1.3"],
        ["self-signed-cert-validity"] = ["--self-signed-cert-validity", "2"],
        ["experimental-peer-skip-client-san-verification"] = ["--experimental-peer-skip-client-san-verification"],
        ["cors"] = ["--cors", "http://a.example:1"],
        ["host-whitelist"] = ["--host-whitelist", "a.example"],
        ["logger"] = ["--logger", "zap"],
        ["log-outputs"] = ["--log-outputs", "stdout"],
        ["log-level"] = ["--log-level", "debug"],
        ["log-package-levels"] = ["--log-package-levels", "etcdserver=DEBUG"],
        ["auto-compaction-retention"] = ["--auto-compaction-retention", "1h"],
        ["auto-compaction-mode"] = ["--auto-compaction-mode", "revision"],
        ["metrics"] = ["--metrics", "extensive"],
        ["auth-token"] = ["--auth-token", "jwt,sign-method=RS256,priv-key=k"],
        ["bcrypt-cost"] = ["--bcrypt-cost", "12"],
        ["auth-token-ttl"] = ["--auth-token-ttl", "60"],
        ["enable-grpc-gateway"] = ["--enable-grpc-gateway=false"],
        ["enable-v2"] = ["--enable-v2"],
        ["enable-dashboard"] = ["--enable-dashboard"],
        ["experimental-initial-corrupt-check"] = ["--experimental-initial-corrupt-check"],
        ["experimental-corrupt-check-time"] = ["--experimental-corrupt-check-time", "1m"],
        ["experimental-enable-lease-checkpoint"] = ["--experimental-enable-lease-checkpoint"],
        ["experimental-enable-lease-checkpoint-persist"] = ["--experimental-enable-lease-checkpoint", "--experimental-enable-lease-checkpoint-persist"],
        ["experimental-compaction-batch-limit"] = ["--experimental-compaction-batch-limit", "5"],
        ["experimental-watch-progress-notify-interval"] = ["--experimental-watch-progress-notify-interval", "1s"],
        ["experimental-warning-apply-duration"] = ["--experimental-warning-apply-duration", "1s"],
        ["unsafe-no-fsync"] = ["--unsafe-no-fsync"],
        ["force-new-cluster"] = ["--force-new-cluster"],
    };

    [Fact]
    public void EveryOption_IsReadBySomethingBesidesTheLoader()
    {
        // Only what can be set is an option; computed helpers (ResolvedDataDir, TlsSettings.Enabled) are not, and the
        // alias PeerAutoTls is read through PeerTls.AutoTls.
        static bool Settable(Type t, string name) => t.GetProperty(name)!.SetMethod is not null && name != nameof(EtcdOptions.PeerAutoTls);
        var unread = OptionReadScanner.UnreadProperties(typeof(EtcdOptions), SourceAssemblies(), IsLoaderOrOptions)
            .Where(n => Settable(typeof(EtcdOptions), n))
            .Concat(OptionReadScanner.UnreadProperties(typeof(TlsSettings), SourceAssemblies(), IsLoaderOrOptions)
                .Where(n => Settable(typeof(TlsSettings), n)).Select(n => "TlsSettings." + n))
            .ToArray();
        Assert.True(
            unread.Length == 0,
            "options parsed but never read outside the loader: " + string.Join(", ", unread));
    }

    [Fact]
    public void Scanner_ReportsAnOptionOnlyTheLoaderReads()
    {
        // The scanner over a sample: SampleOptions.Unused is set and read by SampleLoader only, Indirect only through
        // a computed property the consumer reads, Pattern only in a property pattern inside a lambda.
        var unread = OptionReadScanner.UnreadProperties(typeof(SampleOptions), [typeof(SampleOptions).Assembly], t => t == typeof(SampleLoader));
        Assert.Equal(["Unused"], unread);
        var withoutConsumer = OptionReadScanner.UnreadProperties(typeof(SampleOptions), [typeof(SampleOptions).Assembly], t => t == typeof(SampleLoader) || t == typeof(SampleConsumer));
        Assert.Equal(["Computed", "Indirect", "Pattern", "Unused", "Used"], withoutConsumer);
    }

    [Fact]
    public void EveryHonouredFlag_NamesAnOption_ThatItsValueReaches()
    {
        var baseline = Ok(Load([]));
        var missing = new List<string>();
        foreach (var def in EtcdFlags.All.Where(f => f.Support == FlagSupport.Honoured))
        {
            Assert.False(string.IsNullOrEmpty(def.Option), $"--{def.Name} is honoured but names no option");
            if (!Samples.TryGetValue(def.Name, out var args))
            {
                missing.Add(def.Name);
                continue;
            }

            var options = Ok(Load(args));
            Assert.True(
                Describe(ValueAt(options, def.Option!)) != Describe(ValueAt(baseline, def.Option!)),
                $"--{def.Name} {string.Join(' ', args)} does not change EtcdOptions.{def.Option}");
        }

        Assert.True(missing.Count == 0, "honoured flags without a sample value in this test: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryOption_IsFilledByAFlag()
    {
        var mapped = EtcdFlags.All.Where(f => f.Option is not null).Select(f => f.Option!.Split('.')[0]).ToHashSet(StringComparer.Ordinal);
        var orphans = typeof(EtcdOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => p.Name)
            .Where(n => !mapped.Contains(n) && !OptionsWithoutFlag.Contains(n))
            .ToArray();
        Assert.True(orphans.Length == 0, "options no flag fills: " + string.Join(", ", orphans));
    }

    [Fact]
    public void RefusedAndNoEffectFlags_SayWhy_AndLoaderFlagsAreFew()
    {
        foreach (var def in EtcdFlags.All.Where(f => f.Support is FlagSupport.Refused or FlagSupport.NoEffect))
        {
            Assert.False(string.IsNullOrWhiteSpace(def.Why), $"--{def.Name} gives no reason");
            Assert.Null(def.Option);
        }

        Assert.Equal(["config-file", "log-output", "version"], EtcdFlags.All.Where(f => f.Support == FlagSupport.Loader).Select(f => f.Name).Order(StringComparer.Ordinal));
    }

    private static IEnumerable<Assembly> SourceAssemblies() => [typeof(EtcdOptions).Assembly, typeof(EtcdConfigLoader).Assembly];

    // The loader, the options themselves, and etcd's "starting an etcd server" line: printing a setting is not acting on it.
    private static bool IsLoaderOrOptions(Type t) =>
        t.Namespace == typeof(EtcdConfigLoader).Namespace || t == typeof(EtcdOptions) || t == typeof(TlsSettings) || t.Name == "EtcdHostLog";

    private static object? ValueAt(object root, string path)
    {
        object? value = root;
        foreach (var part in path.Split('.'))
        {
            var property = value!.GetType().GetProperty(part);
            Assert.True(property is not null, $"no property {part} in {path}");
            value = property.GetValue(value);
        }

        return value;
    }

    private static string Describe(object? value) => value switch
    {
        null => "null",
        string s => s,
        IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Describe)) + "]",
        _ => value.ToString() ?? "",
    };
}

/// <summary>Sample options for the scanner's own test.</summary>
internal sealed record SampleOptions
{
    public int Used { get; init; }

    public int Unused { get; init; }

    public int Indirect { get; init; }

    public int Computed => Indirect * 2;

    public bool Pattern { get; init; }
}

/// <summary>Sets and reads every sample option, as a loader does.</summary>
internal static class SampleLoader
{
    public static SampleOptions Load() => new() { Used = 1, Unused = 2, Indirect = 3, Pattern = true };

    public static int Check(SampleOptions o) => o.Used + o.Unused + o.Indirect + (o.Pattern ? 1 : 0);
}

/// <summary>Reads some sample options, as the member does.</summary>
internal static class SampleConsumer
{
    public static int Use(SampleOptions o) => o.Used + o.Computed;

    public static Func<SampleOptions, bool> Matcher() => o => o is { Pattern: true };
}
