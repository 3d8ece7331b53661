namespace Etcd.Server;

/// <summary>
/// A member's configuration: the typed form of etcd's flags (<c>etcd --help</c>), with etcd 3.4's defaults.
/// Immutable; build with <c>with</c> expressions. The <c>etcd</c> executable fills it from flags,
/// <c>ETCD_*</c> variables and <c>--config-file</c>; tests and benchmarks build it directly and start it with
/// <c>EtcdHost</c>. Durations are in milliseconds, sizes in bytes.
/// </summary>
public sealed record EtcdOptions
{
    /// <summary>Human-readable member name (<c>--name</c>, default <c>default</c>).</summary>
    public string Name { get; init; } = "default";

    /// <summary>Data directory (<c>--data-dir</c>); empty means <c>${name}.etcd</c> in the working directory.</summary>
    public string DataDir { get; init; } = "";

    /// <summary>Dedicated WAL directory (<c>--wal-dir</c>); empty means <c>{data-dir}/member/wal</c>.</summary>
    public string WalDir { get; init; } = "";

    /// <summary>URLs to serve clients on (<c>--listen-client-urls</c>). Port 0 picks a free port (tests).</summary>
    public IReadOnlyList<Uri> ListenClientUrls { get; init; } = [new("http://localhost:2379")];

    /// <summary>Client URLs advertised to the cluster (<c>--advertise-client-urls</c>).</summary>
    public IReadOnlyList<Uri> AdvertiseClientUrls { get; init; } = [new("http://localhost:2379")];

    /// <summary>URLs to serve peers on (<c>--listen-peer-urls</c>).</summary>
    public IReadOnlyList<Uri> ListenPeerUrls { get; init; } = [new("http://localhost:2380")];

    /// <summary>Peer URLs advertised to the cluster (<c>--initial-advertise-peer-urls</c>).</summary>
    public IReadOnlyList<Uri> InitialAdvertisePeerUrls { get; init; } = [new("http://localhost:2380")];

    /// <summary>Optional extra URLs serving only /metrics and /health (<c>--listen-metrics-urls</c>).</summary>
    public IReadOnlyList<Uri> ListenMetricsUrls { get; init; } = [];

    /// <summary>Initial cluster, <c>name=peerURL,...</c> (<c>--initial-cluster</c>); empty means <c>{name}={initial-advertise-peer-urls}</c>.</summary>
    public string InitialCluster { get; init; } = "";

    /// <summary>Initial cluster token (<c>--initial-cluster-token</c>), mixed into the member and cluster IDs.</summary>
    public string InitialClusterToken { get; init; } = "etcd-cluster";

    /// <summary><c>new</c> or <c>existing</c> (<c>--initial-cluster-state</c>).</summary>
    public string InitialClusterState { get; init; } = "new";

    /// <summary>Applied entries between raft snapshots (<c>--snapshot-count</c>).</summary>
    public ulong SnapshotCount { get; init; } = 100_000;

    /// <summary>Heartbeat interval in ms (<c>--heartbeat-interval</c>); one raft tick.</summary>
    public int HeartbeatIntervalMs { get; init; } = 100;

    /// <summary>
    /// The member's clock: raft ticks (every <see cref="HeartbeatIntervalMs"/>), the initial election tick advance,
    /// ReadIndex retries, lease expiry and checkpoints, lease-request retries, watch progress notifications and the
    /// no-leader check of watch streams, and file purging. <see cref="TimeProvider.System"/> unless a test injects a
    /// fake clock to drive time by advancing it instead of sleeping. Not a flag.
    /// </summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Election timeout in ms (<c>--election-timeout</c>).</summary>
    public int ElectionTimeoutMs { get; init; } = 1000;

    /// <summary>Backend size quota in bytes (<c>--quota-backend-bytes</c>); 0 means etcd's default of 2 GiB.</summary>
    public long QuotaBackendBytes { get; init; }

    /// <summary>Largest client request in bytes (<c>--max-request-bytes</c>); gRPC receives up to this + 512 KiB.</summary>
    public int MaxRequestBytes { get; init; } = 1_572_864;

    /// <summary>Most operations in one Txn (<c>--max-txn-ops</c>).</summary>
    public int MaxTxnOps { get; init; } = 128;

    /// <summary>Server keepalive ping interval in ms (<c>--grpc-keepalive-interval</c>): the server pings a client
    /// connection idle this long. 0 (or a zero <see cref="GrpcKeepaliveTimeoutMs"/>) means grpc-go's defaults of
    /// 2 h and 20 s, as etcd then sets no server parameters.</summary>
    public int GrpcKeepaliveIntervalMs { get; init; } = 2 * 60 * 60 * 1000;

    /// <summary>Keepalive ping timeout in ms (<c>--grpc-keepalive-timeout</c>).</summary>
    public int GrpcKeepaliveTimeoutMs { get; init; } = 20_000;

    /// <summary>Most concurrent HTTP/2 streams per client connection (<c>--max-concurrent-streams</c>); 0 = unlimited.</summary>
    public uint MaxConcurrentStreams { get; init; }

    /// <summary><c>zap</c> or <c>capnslog</c> (<c>--logger</c>); both write etcd's messages.</summary>
    public string Logger { get; init; } = "capnslog";

    /// <summary>debug, info, warn, error, panic or fatal (<c>--log-level</c>).</summary>
    public string LogLevel { get; init; } = "info";

    /// <summary>Where logs go (<c>--log-outputs</c>): default, stderr, stdout or file paths.</summary>
    public IReadOnlyList<string> LogOutputs { get; init; } = ["default"];

    /// <summary><c>--log-package-levels</c> (capnslog only, as etcd 3.4): per-package levels,
    /// <c>pkg=LEVEL,...</c> with capnslog's levels (CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG, TRACE or their
    /// initials); <c>*</c> names every package. Empty keeps <see cref="LogLevel"/> everywhere.</summary>
    public string LogPackageLevels { get; init; } = "";

    /// <summary>Client TLS: certificate and key files, CA for client certificates, and their rules (<c>--cert-file</c> etc.).</summary>
    public TlsSettings ClientTls { get; init; } = new();

    /// <summary>The token provider (<c>--auth-token</c>): <c>simple</c> (default), <c>jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…</c>, or empty for none.</summary>
    public string AuthToken { get; init; } = "simple";

    /// <summary>Idle lifetime of a simple auth token (<c>--auth-token-ttl</c>, seconds in etcd; default 300 s).</summary>
    public TimeSpan AuthTokenTtl { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>bcrypt cost of password hashes (<c>--bcrypt-cost</c>, 4..31, default 10).</summary>
    public int BcryptCost { get; init; } = 10;

    /// <summary>Peer TLS (<c>--peer-cert-file</c> etc.).</summary>
    public TlsSettings PeerTls { get; init; } = new();

    /// <summary>Peer TLS with generated certificates (<c>--peer-auto-tls</c>); same as <c>PeerTls.AutoTls</c>.</summary>
    public bool PeerAutoTls
    {
        get => PeerTls.AutoTls;
        init => PeerTls = PeerTls with { AutoTls = value };
    }

    /// <summary>Allowed TLS cipher suites by Go name (<c>--cipher-suites</c>); empty = the runtime's defaults.</summary>
    public IReadOnlyList<string> CipherSuites { get; init; } = [];

    /// <summary>Minimum TLS version (<c>--tls-min-version</c>, etcd 3.5: TLS1.2 or TLS1.3).</summary>
    public string TlsMinVersion { get; init; } = "TLS1.2";

    /// <summary>Validity in years of auto-TLS certificates (<c>--self-signed-cert-validity</c>).</summary>
    public int SelfSignedCertValidityYears { get; init; } = 1;

    /// <summary><c>--experimental-peer-skip-client-san-verification</c>: skip etcd's check that a peer's client
    /// certificate names (IP or DNS SAN) the address the peer connects from.</summary>
    public bool ExperimentalPeerSkipClientSanVerification { get; init; }

    /// <summary>Allowed common name of peer client certificates (<c>--peer-cert-allowed-cn</c>).</summary>
    public string PeerCertAllowedCn { get; init; } = "";

    /// <summary>Allowed hostname (SAN) of peer client certificates (<c>--peer-cert-allowed-hostname</c>).</summary>
    public string PeerCertAllowedHostname { get; init; } = "";

    /// <summary>Auto-compaction mode (<c>--auto-compaction-mode</c>): periodic or revision.</summary>
    public string AutoCompactionMode { get; init; } = "periodic";

    /// <summary>Auto-compaction retention (<c>--auto-compaction-retention</c>); "0" disables.</summary>
    public string AutoCompactionRetention { get; init; } = "0";

    /// <summary><c>--experimental-compaction-batch-limit</c>: most revisions deleted from the backend in one batch
    /// of a compaction (etcd's <c>CompactionBatchLimit</c>); 0 or less means etcd's default of 1000.</summary>
    public int ExperimentalCompactionBatchLimit { get; init; }

    /// <summary><c>--experimental-initial-corrupt-check</c>: before serving, compare this member's HashKV with its
    /// peers' and refuse to start on a mismatch (etcd's <c>checkInitialHashKV</c>).</summary>
    public bool ExperimentalInitialCorruptCheck { get; init; }

    /// <summary><c>--experimental-corrupt-check-time</c>: how often the leader compares HashKV with its followers and
    /// raises the CORRUPT alarm on a mismatch; zero disables the periodic check.</summary>
    public TimeSpan ExperimentalCorruptCheckTime { get; init; }

    /// <summary><c>--metrics</c>: <c>basic</c> or <c>extensive</c> (adds the per-method gRPC latency histograms).</summary>
    public string Metrics { get; init; } = "basic";

    /// <summary><c>--enable-grpc-gateway</c>: serve the JSON gateway (<c>/v3</c>, <c>/v3beta</c>) on the client URLs.</summary>
    public bool EnableGrpcGateway { get; init; } = true;

    /// <summary><c>--enable-v2</c>: serve etcd's v2 API (<c>/v2/keys</c>, <c>/v2/members</c>, <c>/v2/machines</c>,
    /// <c>/v2/stats</c>, <c>/v2/auth</c>) on the client URLs; off by default, as in etcd 3.4.</summary>
    public bool EnableV2 { get; init; }

    /// <summary><c>--enable-dashboard</c> (ours; no etcd release has it): serve the web dashboard under <c>/ui/</c> on
    /// the client URLs (<see cref="Dashboard.DashboardHandler"/>); off by default, and <c>/ui/</c> is then 404.</summary>
    public bool EnableDashboard { get; init; }

    /// <summary><c>--cors</c>: origins allowed by the client HTTP endpoints' CORS handling, sorted; <c>*</c> allows all.</summary>
    public IReadOnlyList<string> Cors { get; init; } = ["*"];

    /// <summary><c>--host-whitelist</c>: accepted HTTP <c>Host</c> values on insecure client URLs, sorted; <c>*</c> allows all.</summary>
    public IReadOnlyList<string> HostWhitelist { get; init; } = ["*"];

    /// <summary><c>--initial-election-tick-advance</c>: fast-forward election ticks at start so the first election
    /// comes after one heartbeat-and-a-bit instead of a whole election timeout.</summary>
    public bool InitialElectionTickAdvance { get; init; } = true;

    /// <summary><c>--experimental-warning-apply-duration</c>: an apply slower than this logs etcd's
    /// "apply request took too long" warning.</summary>
    public TimeSpan ExperimentalWarningApplyDuration { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Raft pre-vote (<c>--pre-vote</c>).</summary>
    public bool PreVote { get; init; }

    /// <summary><c>--experimental-enable-lease-checkpoint</c>: the leader checkpoints remaining lease TTLs through raft.</summary>
    public bool ExperimentalEnableLeaseCheckpoint { get; init; }

    /// <summary><c>--experimental-enable-lease-checkpoint-persist</c>: applied lease checkpoints are also written to
    /// the backend's <c>lease</c> bucket, so a restarted member keeps the remaining TTLs.</summary>
    public bool ExperimentalEnableLeaseCheckpointPersist { get; init; }

    /// <summary>How often the leader checkpoints one lease's remaining TTL when checkpointing is on (etcd's
    /// <c>LeaseCheckpointInterval</c>, a server setting without a flag; default 5 min).</summary>
    public TimeSpan LeaseCheckpointInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary><c>--experimental-watch-progress-notify-interval</c>: how often a watcher created with
    /// <c>progress_notify</c> and without events gets a progress response (default 10 min; zero or less = the default;
    /// below 100 ms it is raised to 100 ms, as etcd's <c>minWatchProgressInterval</c>).</summary>
    public TimeSpan ExperimentalWatchProgressNotifyInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Strict reconfiguration checks (<c>--strict-reconfig-check</c>).</summary>
    public bool StrictReconfigCheck { get; init; } = true;

    /// <summary>Start as a new single-member cluster from existing data (<c>--force-new-cluster</c>).</summary>
    public bool ForceNewCluster { get; init; }

    /// <summary>Longest time the backend keeps a batch uncommitted (<c>--backend-batch-interval</c>); zero = etcd's 100 ms.</summary>
    public TimeSpan BackendBatchInterval { get; init; }

    /// <summary>Writes after which the backend commits its batch (<c>--backend-batch-limit</c>); 0 = etcd's 10000.</summary>
    public int BackendBatchLimit { get; init; }

    /// <summary>Snap files kept (<c>--max-snapshots</c>, default 5); 0 = unlimited.</summary>
    public ulong MaxSnapshots { get; init; } = 5;

    /// <summary>WAL files kept (<c>--max-wals</c>, default 5); 0 = unlimited.</summary>
    public ulong MaxWals { get; init; } = 5;

    /// <summary>Skip fsync of the WAL and backend (<c>--unsafe-no-fsync</c>); data may be lost on a crash.</summary>
    public bool UnsafeNoFsync { get; init; }

    /// <summary>Resolved data directory.</summary>
    public string ResolvedDataDir => DataDir.Length > 0 ? DataDir : Name + ".etcd";

    /// <summary>Resolved WAL directory.</summary>
    public string ResolvedWalDir => WalDir.Length > 0 ? WalDir : Path.Combine(ResolvedDataDir, "member", "wal");

    /// <summary>Resolved snap directory, <c>{data-dir}/member/snap</c>.</summary>
    public string SnapDir => Path.Combine(ResolvedDataDir, "member", "snap");

    /// <summary>Resolved initial cluster string.</summary>
    public string ResolvedInitialCluster => InitialCluster.Length > 0
        ? InitialCluster
        : string.Join(",", InitialAdvertisePeerUrls.Select(u => $"{Name}={u.OriginalString.TrimEnd('/')}"));
}

/// <summary>
/// The TLS files and rules of one side (client or peer), as etcd's <c>transport.TLSInfo</c> is filled from
/// <c>--cert-file</c>/<c>--key-file</c>/<c>--trusted-ca-file</c>/<c>--client-cert-auth</c>/<c>--client-crl-file</c>/<c>--auto-tls</c>
/// (or their <c>--peer-</c> forms). Immutable.
/// </summary>
public sealed record TlsSettings
{
    /// <summary>PEM certificate file.</summary>
    public string CertFile { get; init; } = "";

    /// <summary>PEM private key file.</summary>
    public string KeyFile { get; init; } = "";

    /// <summary>PEM CA bundle used to verify client (or peer) certificates.</summary>
    public string TrustedCaFile { get; init; } = "";

    /// <summary>Require and verify client certificates.</summary>
    public bool ClientCertAuth { get; init; }

    /// <summary>PEM certificate revocation list checked against client certificates.</summary>
    public string CrlFile { get; init; } = "";

    /// <summary>Generate a self-signed certificate when no files are given.</summary>
    public bool AutoTls { get; init; }

    /// <summary>Whether any TLS is configured.</summary>
    public bool Enabled => AutoTls || CertFile.Length > 0 || KeyFile.Length > 0;
}
