namespace Etcd.Main.Config;

/// <summary>The Go value type behind an etcd flag (<c>etcdmain/config.go</c>).</summary>
internal enum FlagKind
{
    String,
    Bool,
    Uint,
    Uint64,
    Int,
    Int64,
    Duration,
    Uint32,
    Urls,
    UniqueStrings,
    Strings,
    Selective,
    Ignored,
}

/// <summary>Whether we act on a flag.</summary>
internal enum FlagSupport
{
    /// <summary>Parsed and passed on (EtcdOptions or <see cref="EtcdExtraOptions"/>).</summary>
    Honoured,

    /// <summary>Recognised, but only its default value is accepted (TLS, discovery, proxy, auth-token, ...).</summary>
    Refused,

    /// <summary>One of etcd's ignored legacy flags: accepted with etcd's "no longer supported" warning.</summary>
    Ignored,
}

/// <summary>One flag etcd 3.4 knows: name, Go type, default (as etcd's flag text) and our support.</summary>
internal sealed record FlagDef(string Name, FlagKind Kind, string Default, FlagSupport Support, string[]? Valids = null, string[]? UrlExceptions = null, string? Why = null)
{
    /// <summary>The environment variable etcd reads for this flag (<c>ETCD_</c> + upper-case, '-' → '_').</summary>
    public string EnvName { get; } = "ETCD_" + Name.Replace('-', '_').ToUpperInvariant();

    /// <summary>Go's flag package treats these as booleans (no separate value argument).</summary>
    public bool IsBool => Kind is FlagKind.Bool or FlagKind.Ignored;
}

/// <summary>The table of every flag etcd 3.4.23's <c>etcd</c> command defines.</summary>
internal static class EtcdFlags
{
    private const string Tls = "client certificate hostname checks are not supported yet";
    private const string Discovery = "discovery is not supported yet";
    private const string Proxy = "the v2 proxy is not supported";

    private static FlagDef H(string name, FlagKind kind, string def, string[]? valids = null, string[]? exceptions = null)
        => new(name, kind, def, FlagSupport.Honoured, valids, exceptions);

    private static FlagDef R(string name, FlagKind kind, string def, string why, string[]? valids = null)
        => new(name, kind, def, FlagSupport.Refused, valids, null, why);

    /// <summary>etcd 3.5 flags in <see cref="All"/> that etcd 3.4 does not define.</summary>
    public static readonly IReadOnlySet<string> FromEtcd35 = new HashSet<string>(StringComparer.Ordinal) { "tls-min-version", "self-signed-cert-validity" };

    /// <summary>All flags, in etcd's declaration order (plus <see cref="FromEtcd35"/>).</summary>
    public static readonly FlagDef[] All =
    [
        H("config-file", FlagKind.String, ""),
        H("data-dir", FlagKind.String, ""),
        H("wal-dir", FlagKind.String, ""),
        H("listen-peer-urls", FlagKind.Urls, "http://localhost:2380", exceptions: [""]),
        H("listen-client-urls", FlagKind.Urls, "http://localhost:2379", exceptions: [""]),
        H("listen-metrics-urls", FlagKind.Urls, "", exceptions: [""]),
        H("max-snapshots", FlagKind.Uint, "5"),
        H("max-wals", FlagKind.Uint, "5"),
        H("name", FlagKind.String, "default"),
        H("snapshot-count", FlagKind.Uint64, "100000"),
        H("heartbeat-interval", FlagKind.Uint, "100"),
        H("election-timeout", FlagKind.Uint, "1000"),
        H("initial-election-tick-advance", FlagKind.Bool, "true"),
        H("quota-backend-bytes", FlagKind.Int64, "0"),
        H("backend-batch-interval", FlagKind.Duration, "0s"),
        H("backend-batch-limit", FlagKind.Int, "0"),
        H("max-txn-ops", FlagKind.Uint, "128"),
        H("max-request-bytes", FlagKind.Uint, "1572864"),
        H("grpc-keepalive-min-time", FlagKind.Duration, "5s"),
        H("grpc-keepalive-interval", FlagKind.Duration, "2h0m0s"),
        H("grpc-keepalive-timeout", FlagKind.Duration, "20s"),
        H("max-concurrent-streams", FlagKind.Uint32, "4294967295"),
        H("initial-advertise-peer-urls", FlagKind.Urls, "http://localhost:2380", exceptions: [""]),
        H("advertise-client-urls", FlagKind.Urls, "http://localhost:2379", exceptions: [""]),
        R("discovery", FlagKind.String, "", Discovery),
        R("discovery-fallback", FlagKind.Selective, "proxy", Discovery, ["proxy", "exit"]),
        R("discovery-proxy", FlagKind.String, "", Discovery),
        R("discovery-srv", FlagKind.String, "", Discovery),
        R("discovery-srv-name", FlagKind.String, "", Discovery),
        H("initial-cluster", FlagKind.String, "default=http://localhost:2380"),
        H("initial-cluster-token", FlagKind.String, "etcd-cluster"),
        H("initial-cluster-state", FlagKind.Selective, "new", ["new", "existing"]),
        H("strict-reconfig-check", FlagKind.Bool, "true"),
        H("enable-v2", FlagKind.Bool, "false"),
        H("pre-vote", FlagKind.Bool, "false"),
        R("proxy", FlagKind.Selective, "off", Proxy, ["off", "readonly", "on"]),
        R("proxy-failure-wait", FlagKind.Uint, "5000", Proxy),
        R("proxy-refresh-interval", FlagKind.Uint, "30000", Proxy),
        R("proxy-dial-timeout", FlagKind.Uint, "1000", Proxy),
        R("proxy-write-timeout", FlagKind.Uint, "5000", Proxy),
        R("proxy-read-timeout", FlagKind.Uint, "0", Proxy),
        H("cert-file", FlagKind.String, ""),
        H("key-file", FlagKind.String, ""),
        H("client-cert-auth", FlagKind.Bool, "false"),
        H("client-crl-file", FlagKind.String, ""),
        R("client-cert-allowed-hostname", FlagKind.String, "", Tls),
        H("trusted-ca-file", FlagKind.String, ""),
        H("auto-tls", FlagKind.Bool, "false"),
        H("peer-cert-file", FlagKind.String, ""),
        H("peer-key-file", FlagKind.String, ""),
        H("peer-client-cert-auth", FlagKind.Bool, "false"),
        H("peer-trusted-ca-file", FlagKind.String, ""),
        H("peer-auto-tls", FlagKind.Bool, "false"),
        H("peer-crl-file", FlagKind.String, ""),
        H("peer-cert-allowed-cn", FlagKind.String, ""),
        H("peer-cert-allowed-hostname", FlagKind.String, ""),
        H("cipher-suites", FlagKind.Strings, ""),
        // etcd 3.5 flags we accept too (the 3.4 table has neither).
        H("tls-min-version", FlagKind.String, "TLS1.2"),
        H("self-signed-cert-validity", FlagKind.Uint, "1"),
        H("experimental-peer-skip-client-san-verification", FlagKind.Bool, "false"),
        H("cors", FlagKind.Urls, "*", exceptions: ["*"]),
        H("host-whitelist", FlagKind.UniqueStrings, "*"),
        H("logger", FlagKind.String, "capnslog"),
        H("log-output", FlagKind.UniqueStrings, "default"),
        H("log-outputs", FlagKind.UniqueStrings, "default"),
        H("debug", FlagKind.Bool, "false"),
        H("log-level", FlagKind.String, "info"),
        H("log-package-levels", FlagKind.String, ""),
        H("version", FlagKind.Bool, "false"),
        H("auto-compaction-retention", FlagKind.String, "0"),
        H("auto-compaction-mode", FlagKind.String, "periodic"),
        H("enable-pprof", FlagKind.Bool, "false"),
        H("metrics", FlagKind.String, "basic"),
        R("auth-token", FlagKind.String, "simple", "only the 'simple' auth token is supported yet"),
        H("bcrypt-cost", FlagKind.Uint, "10"),
        H("auth-token-ttl", FlagKind.Uint, "300"),
        H("enable-grpc-gateway", FlagKind.Bool, "true"),
        H("experimental-initial-corrupt-check", FlagKind.Bool, "false"),
        H("experimental-corrupt-check-time", FlagKind.Duration, "0s"),
        H("experimental-enable-v2v3", FlagKind.String, ""),
        H("experimental-backend-bbolt-freelist-type", FlagKind.String, ""),
        H("experimental-enable-lease-checkpoint", FlagKind.Bool, "false"),
        H("experimental-enable-lease-checkpoint-persist", FlagKind.Bool, "false"),
        H("experimental-compaction-batch-limit", FlagKind.Int, "0"),
        H("experimental-watch-progress-notify-interval", FlagKind.Duration, "0s"),
        H("experimental-warning-apply-duration", FlagKind.Duration, "100ms"),
        H("unsafe-no-fsync", FlagKind.Bool, "false"),
        H("force-new-cluster", FlagKind.Bool, "false"),
        .. new[]
        {
            "cluster-active-size", "cluster-remove-delay", "cluster-sync-interval", "config", "force",
            "max-result-buffer", "max-retry-attempts", "peer-heartbeat-interval", "peer-election-timeout",
            "retry-interval", "snapshot", "v", "vv", "test.coverprofile", "test.outputdir",
        }.Select(n => new FlagDef(n, FlagKind.Ignored, "", FlagSupport.Ignored)),
    ];

    /// <summary>Flags by name.</summary>
    public static readonly IReadOnlyDictionary<string, FlagDef> ByName = All.ToDictionary(f => f.Name, StringComparer.Ordinal);

    /// <summary>Flags sorted by name, the order Go's <c>FlagSet.VisitAll</c> walks (and so etcd reads ETCD_* variables).</summary>
    public static readonly FlagDef[] Sorted = All.OrderBy(f => f.Name, StringComparer.Ordinal).ToArray();
}
