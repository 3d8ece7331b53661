namespace Etcd.Main.Config;

/// <summary>
/// The texts <c>etcd -h</c> prints: <see cref="Usage"/> (to standard error, also after a flag error) and
/// <see cref="Flags"/> (to standard output). Flag names and defaults are etcd 3.4's; the wording is ours and
/// lists only what we act on.
/// </summary>
internal static class EtcdHelp
{
    public const string Usage = """
        Usage:

          etcd [flags]
            Run an etcd member.

          etcd --version
            Print the etcd version this server implements and exit.

          etcd -h | --help
            Print this help and exit.

          etcd --config-file
            Read the configuration from a YAML file; command-line flags and environment variables are then ignored.

        """;

    public const string Flags = """

        Member:
          --name 'default'
            Name of this member, unique in the cluster.
          --data-dir '${name}.etcd'
            Directory holding the member's data.
          --wal-dir ''
            Separate directory for the write-ahead log (default: inside the data directory).
          --snapshot-count '100000'
            Applied entries between two raft snapshots.
          --heartbeat-interval '100'
            Raft heartbeat interval, in milliseconds.
          --election-timeout '1000'
            Raft election timeout, in milliseconds (at least 5 heartbeats, at most 50000).
          --initial-election-tick-advance 'true'
            Fast-forward election ticks at boot so the first election happens sooner.
          --listen-peer-urls 'http://localhost:2380'
            URLs to accept peer connections on.
          --listen-client-urls 'http://localhost:2379'
            URLs to accept client connections on.
          --max-snapshots '5'
            Snapshot files to keep (0 keeps all).
          --max-wals '5'
            WAL files to keep (0 keeps all).
          --quota-backend-bytes '0'
            Backend size that raises the NOSPACE alarm (0 means the default of 2 GiB).
          --backend-batch-interval ''
            Longest time before the backend commits its batch transaction.
          --backend-batch-limit '0'
            Most operations before the backend commits its batch transaction.
          --max-txn-ops '128'
            Most operations in one transaction.
          --max-request-bytes '1572864'
            Largest client request accepted, in bytes.
          --max-concurrent-streams 'math.MaxUint32'
            Most concurrent gRPC streams per client connection.
          --grpc-keepalive-min-time '5s'
            Shortest interval a client may ping the server at.
          --grpc-keepalive-interval '2h'
            Interval of server-to-client pings (0 disables them).
          --grpc-keepalive-timeout '20s'
            Time to wait for a ping answer before closing the connection (0 disables).

        Clustering:
          --initial-advertise-peer-urls 'http://localhost:2380'
            Peer URLs of this member announced to the rest of the cluster.
          --initial-cluster 'default=http://localhost:2380'
            Members of the cluster at bootstrap, as name=peerURL pairs separated by commas.
          --initial-cluster-state 'new'
            'new' to bootstrap a new cluster, 'existing' to join one.
          --initial-cluster-token 'etcd-cluster'
            Token that keeps cluster and member IDs of separate clusters apart.
          --advertise-client-urls 'http://localhost:2379'
            Client URLs of this member announced to clients; required when --listen-client-urls is given.
          --strict-reconfig-check 'true'
            Refuse membership changes that would lose quorum.
          --pre-vote 'false'
            Run raft's pre-vote phase before an election.
          --auto-compaction-retention '0'
            History to keep when compacting automatically (0 turns automatic compaction off).
          --auto-compaction-mode 'periodic'
            'periodic' reads the retention as a duration (hours when no unit is given), 'revision' as a revision count.
          --enable-v2 'false'
            Accept the v2 API setting.

        Security:
          --cert-file ''
            Path to the client server TLS cert file.
          --key-file ''
            Path to the client server TLS key file.
          --client-cert-auth 'false'
            Enable client cert authentication.
          --client-crl-file ''
            Path to the client certificate revocation list file.
          --trusted-ca-file ''
            Path to the client server TLS trusted CA cert file.
          --auto-tls 'false'
            Client TLS using generated certificates.
          --peer-cert-file ''
            Path to the peer server TLS cert file.
          --peer-key-file ''
            Path to the peer server TLS key file.
          --peer-client-cert-auth 'false'
            Enable peer client cert authentication.
          --peer-trusted-ca-file ''
            Path to the peer server TLS trusted CA file.
          --peer-cert-allowed-cn ''
            Required CN for client certs connecting to the peer endpoint.
          --peer-cert-allowed-hostname ''
            Allowed TLS hostname for inter peer authentication.
          --peer-auto-tls 'false'
            Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.
          --peer-crl-file ''
            Path to the peer certificate revocation list file.
          --cipher-suites ''
            Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).
          --tls-min-version 'TLS1.2'
            Minimum TLS version supported by etcd (TLS1.2 or TLS1.3; an etcd 3.5 flag).
          --self-signed-cert-validity 1
            The validity period of the client and peer certificates that are automatically generated, in years.
          --cors '*'
            Origins allowed for cross-origin requests ('*' allows all).
          --host-whitelist '*'
            Host names accepted on plain HTTP requests ('*' accepts all).

        Auth:
          --bcrypt-cost 10
            bcrypt cost for password hashes (4 to 31).
          --auth-token-ttl 300
            Lifetime of a simple auth token, in seconds.

        Profiling and Monitoring:
          --enable-pprof 'false'
            Accepted for compatibility.
          --metrics 'basic'
            'extensive' adds histogram metrics.
          --listen-metrics-urls ''
            Extra URLs serving only /metrics and /health.
          --enable-dashboard 'false'
            Serve the web dashboard under /ui/ on the client URLs (not an etcd flag).

        Logging:
          --logger 'capnslog'
            'zap' for JSON lines, 'capnslog' for text lines.
          --log-outputs 'default'
            Where logs go: 'default', 'stderr', 'stdout' or file paths (several only with zap).
          --log-level 'info'
            debug, info, warn, error, panic or fatal.

        Experimental:
          --experimental-initial-corrupt-check 'false'
            Check the data for corruption before serving.
          --experimental-corrupt-check-time '0s'
            Interval between cluster corruption checks.
          --experimental-backend-bbolt-freelist-type 'array'
            Freelist type of the backend ('array' or 'map').
          --experimental-enable-lease-checkpoint 'false'
            Let the leader checkpoint lease TTLs to the followers.
          --experimental-enable-lease-checkpoint-persist 'false'
            Persist the checkpointed lease TTLs (needs --experimental-enable-lease-checkpoint).
          --experimental-compaction-batch-limit 1000
            Revisions deleted per compaction batch.
          --experimental-watch-progress-notify-interval '10m'
            Interval of watch progress notifications.
          --experimental-warning-apply-duration '100ms'
            Applies slower than this are logged.

        Unsafe:
          --force-new-cluster 'false'
            Restart as a one-member cluster from existing data.
          --unsafe-no-fsync 'false'
            Skip fsync; data can be lost.

        Every other etcd 3.4 flag is recognised. Discovery, v2 proxy flags and --client-cert-allowed-hostname are not
        implemented yet: they are refused unless given their default value.
        Each flag can also be set through an ETCD_* environment variable (--data-dir is ETCD_DATA_DIR).
        """;
}
