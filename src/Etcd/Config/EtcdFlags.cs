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

/// <summary>Whether and how we act on a flag. Every flag etcd accepts is in exactly one of these: none is parsed and
/// then ignored.</summary>
internal enum FlagSupport
{
    /// <summary>Parsed into the <see cref="Etcd.Server.EtcdOptions"/> property named by <see cref="FlagDef.Option"/>,
    /// which the member acts on as etcd does.</summary>
    Honoured,

    /// <summary>Acted on by the loader itself (<c>--config-file</c>, <c>--version</c>, the <c>--log-output</c> alias of
    /// <c>--log-outputs</c>).</summary>
    Loader,

    /// <summary>Recognised, but only values we implement are accepted (by default only etcd's default value; see
    /// <see cref="FlagDef.Accepts"/>); any other value is refused at start with <see cref="FlagDef.Why"/>.</summary>
    Refused,

    /// <summary>Accepted with etcd's validation, and without effect because etcd's effect is internal to a Go
    /// library and not observable (<see cref="FlagDef.Why"/> says why).</summary>
    NoEffect,

    /// <summary>One of etcd's ignored legacy flags: accepted with etcd's "no longer supported" warning.</summary>
    Ignored,
}

/// <summary>One flag etcd 3.4 knows: name, Go type, default (as etcd's flag text) and our support.</summary>
/// <param name="Name">The flag's name without dashes.</param>
/// <param name="Kind">Its Go value type.</param>
/// <param name="Default">etcd's default, as flag text.</param>
/// <param name="Support">How we act on it.</param>
/// <param name="Valids">For selective flags: the allowed values.</param>
/// <param name="UrlExceptions">For URL lists: texts accepted besides URLs (<c>""</c>, <c>*</c>).</param>
/// <param name="Why">For refused and no-effect flags: the reason, as printed.</param>
/// <param name="Option">For <see cref="FlagSupport.Honoured"/> flags: the <see cref="Etcd.Server.EtcdOptions"/> property
/// (dotted path into nested records, e.g. <c>ClientTls.CertFile</c>) the loader fills from the flag.</param>
/// <param name="Accepts">For <see cref="FlagSupport.Refused"/> flags: which values are accepted (given the flag's
/// value as etcd's flag text); null means only the default.</param>
internal sealed record FlagDef(string Name, FlagKind Kind, string Default, FlagSupport Support, string[]? Valids = null, string[]? UrlExceptions = null, string? Why = null, string? Option = null, Func<string, bool>? Accepts = null)
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

    private const string V2 = "the v2 API is not supported";
    private const string Pprof = "Go's pprof endpoints under /debug/pprof do not exist in this implementation";

    private static FlagDef H(string name, FlagKind kind, string def, string option, string[]? valids = null, string[]? exceptions = null)
        => new(name, kind, def, FlagSupport.Honoured, valids, exceptions, Option: option);

    private static FlagDef L(string name, FlagKind kind, string def)
        => new(name, kind, def, FlagSupport.Loader);

    private static FlagDef R(string name, FlagKind kind, string def, string why, string[]? valids = null, Func<string, bool>? accepts = null)
        => new(name, kind, def, FlagSupport.Refused, valids, null, why, Accepts: accepts);

    /// <summary>etcd 3.5 flags in <see cref="All"/> that etcd 3.4 does not define.</summary>
    public static readonly IReadOnlySet<string> FromEtcd35 = new HashSet<string>(StringComparer.Ordinal) { "tls-min-version", "self-signed-cert-validity" };

    /// <summary>Flags of our own in <see cref="All"/> that no etcd release defines (<c>--enable-dashboard</c>).</summary>
    public static readonly IReadOnlySet<string> OwnFlags = new HashSet<string>(StringComparer.Ordinal) { "enable-dashboard" };

    /// <summary>All flags, in etcd's declaration order (plus <see cref="FromEtcd35"/> and <see cref="OwnFlags"/>).</summary>
    public static readonly FlagDef[] All =
    [
        L("config-file", FlagKind.String, ""),
        H("data-dir", FlagKind.String, "", "DataDir"),
        H("wal-dir", FlagKind.String, "", "WalDir"),
        H("listen-peer-urls", FlagKind.Urls, "http://localhost:2380", "ListenPeerUrls", exceptions: [""]),
        H("listen-client-urls", FlagKind.Urls, "http://localhost:2379", "ListenClientUrls", exceptions: [""]),
        H("listen-metrics-urls", FlagKind.Urls, "", "ListenMetricsUrls", exceptions: [""]),
        H("max-snapshots", FlagKind.Uint, "5", "MaxSnapshots"),
        H("max-wals", FlagKind.Uint, "5", "MaxWals"),
        H("name", FlagKind.String, "default", "Name"),
        H("snapshot-count", FlagKind.Uint64, "100000", "SnapshotCount"),
        H("heartbeat-interval", FlagKind.Uint, "100", "HeartbeatIntervalMs"),
        H("election-timeout", FlagKind.Uint, "1000", "ElectionTimeoutMs"),
        H("initial-election-tick-advance", FlagKind.Bool, "true", "InitialElectionTickAdvance"),
        H("quota-backend-bytes", FlagKind.Int64, "0", "QuotaBackendBytes"),
        H("backend-batch-interval", FlagKind.Duration, "0s", "BackendBatchInterval"),
        H("backend-batch-limit", FlagKind.Int, "0", "BackendBatchLimit"),
        H("max-txn-ops", FlagKind.Uint, "128", "MaxTxnOps"),
        H("max-request-bytes", FlagKind.Uint, "1572864", "MaxRequestBytes"),
        R("grpc-keepalive-min-time", FlagKind.Duration, "5s", "the HTTP/2 server does not enforce a client ping policy (grpc-go's too_many_pings), so no other minimum can be honoured"),
        H("grpc-keepalive-interval", FlagKind.Duration, "2h0m0s", "GrpcKeepaliveIntervalMs"),
        H("grpc-keepalive-timeout", FlagKind.Duration, "20s", "GrpcKeepaliveTimeoutMs"),
        H("max-concurrent-streams", FlagKind.Uint32, "4294967295", "MaxConcurrentStreams"),
        H("initial-advertise-peer-urls", FlagKind.Urls, "http://localhost:2380", "InitialAdvertisePeerUrls", exceptions: [""]),
        H("advertise-client-urls", FlagKind.Urls, "http://localhost:2379", "AdvertiseClientUrls", exceptions: [""]),
        R("discovery", FlagKind.String, "", Discovery),
        R("discovery-fallback", FlagKind.Selective, "proxy", Discovery, ["proxy", "exit"]),
        R("discovery-proxy", FlagKind.String, "", Discovery),
        R("discovery-srv", FlagKind.String, "", Discovery),
        R("discovery-srv-name", FlagKind.String, "", Discovery),
        H("initial-cluster", FlagKind.String, "default=http://localhost:2380", "InitialCluster"),
        H("initial-cluster-token", FlagKind.String, "etcd-cluster", "InitialClusterToken"),
        H("initial-cluster-state", FlagKind.Selective, "new", "InitialClusterState", ["new", "existing"]),
        H("strict-reconfig-check", FlagKind.Bool, "true", "StrictReconfigCheck"),
        H("enable-v2", FlagKind.Bool, "false", "EnableV2"),
        H("pre-vote", FlagKind.Bool, "false", "PreVote"),
        R("proxy", FlagKind.Selective, "off", Proxy, ["off", "readonly", "on"]),
        R("proxy-failure-wait", FlagKind.Uint, "5000", Proxy),
        R("proxy-refresh-interval", FlagKind.Uint, "30000", Proxy),
        R("proxy-dial-timeout", FlagKind.Uint, "1000", Proxy),
        R("proxy-write-timeout", FlagKind.Uint, "5000", Proxy),
        R("proxy-read-timeout", FlagKind.Uint, "0", Proxy),
        H("cert-file", FlagKind.String, "", "ClientTls.CertFile"),
        H("key-file", FlagKind.String, "", "ClientTls.KeyFile"),
        H("client-cert-auth", FlagKind.Bool, "false", "ClientTls.ClientCertAuth"),
        H("client-crl-file", FlagKind.String, "", "ClientTls.CrlFile"),
        R("client-cert-allowed-hostname", FlagKind.String, "", Tls),
        H("trusted-ca-file", FlagKind.String, "", "ClientTls.TrustedCaFile"),
        H("auto-tls", FlagKind.Bool, "false", "ClientTls.AutoTls"),
        H("peer-cert-file", FlagKind.String, "", "PeerTls.CertFile"),
        H("peer-key-file", FlagKind.String, "", "PeerTls.KeyFile"),
        H("peer-client-cert-auth", FlagKind.Bool, "false", "PeerTls.ClientCertAuth"),
        H("peer-trusted-ca-file", FlagKind.String, "", "PeerTls.TrustedCaFile"),
        H("peer-auto-tls", FlagKind.Bool, "false", "PeerTls.AutoTls"),
        H("peer-crl-file", FlagKind.String, "", "PeerTls.CrlFile"),
        H("peer-cert-allowed-cn", FlagKind.String, "", "PeerCertAllowedCn"),
        H("peer-cert-allowed-hostname", FlagKind.String, "", "PeerCertAllowedHostname"),
        H("cipher-suites", FlagKind.Strings, "", "CipherSuites"),
        // etcd 3.5 flags we accept too (the 3.4 table has neither).
        H("tls-min-version", FlagKind.String, "TLS1.2", "TlsMinVersion"),
        H("self-signed-cert-validity", FlagKind.Uint, "1", "SelfSignedCertValidityYears"),
        H("experimental-peer-skip-client-san-verification", FlagKind.Bool, "false", "ExperimentalPeerSkipClientSanVerification"),
        H("cors", FlagKind.Urls, "*", "Cors", exceptions: ["*"]),
        H("host-whitelist", FlagKind.UniqueStrings, "*", "HostWhitelist"),
        H("logger", FlagKind.String, "capnslog", "Logger"),
        L("log-output", FlagKind.UniqueStrings, "default"),
        H("log-outputs", FlagKind.UniqueStrings, "default", "LogOutputs"),
        R("debug", FlagKind.Bool, "false", "besides debug logs it serves Go's pprof and trace endpoints under /debug, which do not exist in this implementation; use --log-level=debug"),
        H("log-level", FlagKind.String, "info", "LogLevel"),
        H("log-package-levels", FlagKind.String, "", "LogPackageLevels"),
        L("version", FlagKind.Bool, "false"),
        H("auto-compaction-retention", FlagKind.String, "0", "AutoCompactionRetention"),
        H("auto-compaction-mode", FlagKind.String, "periodic", "AutoCompactionMode"),
        R("enable-pprof", FlagKind.Bool, "false", Pprof),
        H("metrics", FlagKind.String, "basic", "Metrics"),
        H("auth-token", FlagKind.String, "simple", "AuthToken"),
        H("bcrypt-cost", FlagKind.Uint, "10", "BcryptCost"),
        H("auth-token-ttl", FlagKind.Uint, "300", "AuthTokenTtl"),
        H("enable-grpc-gateway", FlagKind.Bool, "true", "EnableGrpcGateway"),
        H("enable-dashboard", FlagKind.Bool, "false", "EnableDashboard"),
        H("experimental-initial-corrupt-check", FlagKind.Bool, "false", "ExperimentalInitialCorruptCheck"),
        H("experimental-corrupt-check-time", FlagKind.Duration, "0s", "ExperimentalCorruptCheckTime"),
        R("experimental-enable-v2v3", FlagKind.String, "", V2),
        new("experimental-backend-bbolt-freelist-type", FlagKind.String, "", FlagSupport.NoEffect, Why: "bbolt's array and map freelists are two in-memory indexes of the same on-disk freelist page; our backend keeps its own index and writes the same page"),
        H("experimental-enable-lease-checkpoint", FlagKind.Bool, "false", "ExperimentalEnableLeaseCheckpoint"),
        H("experimental-enable-lease-checkpoint-persist", FlagKind.Bool, "false", "ExperimentalEnableLeaseCheckpointPersist"),
        H("experimental-compaction-batch-limit", FlagKind.Int, "0", "ExperimentalCompactionBatchLimit"),
        H("experimental-watch-progress-notify-interval", FlagKind.Duration, "0s", "ExperimentalWatchProgressNotifyInterval"),
        H("experimental-warning-apply-duration", FlagKind.Duration, "100ms", "ExperimentalWarningApplyDuration"),
        H("unsafe-no-fsync", FlagKind.Bool, "false", "UnsafeNoFsync"),
        H("force-new-cluster", FlagKind.Bool, "false", "ForceNewCluster"),
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
