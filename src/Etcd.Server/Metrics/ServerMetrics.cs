using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// The member's own families (etcd's <c>etcdserver/metrics.go</c>, <c>etcdhttp/metrics.go</c>,
/// <c>membership/metrics.go</c>, <c>lease/metrics.go</c>, <c>auth/metrics.go</c>, <c>v2store/metrics.go</c>,
/// <c>proxy/grpcproxy/metrics.go</c>). Thread-safe.
/// </summary>
public sealed class ServerMetrics
{
    private readonly Gauge _hasLeader;
    private readonly Gauge _isLeader;
    private readonly Gauge _isLearner;
    private readonly Gauge _proposalsCommitted;
    private readonly Gauge _proposalsApplied;
    private readonly Gauge _quotaBackendBytes;
    private readonly Gauge _clusterVersion;
    private readonly Gauge _serverId;
    private readonly Gauge _authRevision;
    private readonly Counter _learnerPromoteFailures;
    private readonly Counter _storeReads;
    private readonly Counter _storeWrites;
    private string? _clusterVersionLabel;
    private string? _serverIdLabel;

    internal ServerMetrics(IMetricFactory f)
    {
        _hasLeader = f.CreateGauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.");
        _isLeader = f.CreateGauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.");
        _isLearner = f.CreateGauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.");
        LeaderChanges = f.CreateCounter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.");
        _learnerPromoteFailures = f.CreateCounter("etcd_server_learner_promote_failures", "The total number of failed learner promotions (likely learner not ready) while this member is leader.", ["Reason"]);
        LearnerPromoteSuccesses = f.CreateCounter("etcd_server_learner_promote_successes", "The total number of successful learner promotions while this member is leader.");
        HeartbeatSendFailures = f.CreateCounter("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).");
        SlowApplies = f.CreateCounter("etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).");
        SnapshotApplyInProgress = f.CreateGauge("etcd_server_snapshot_apply_in_progress_total", "1 if the server is applying the incoming snapshot. 0 if none.");
        _proposalsCommitted = f.CreateGauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.");
        _proposalsApplied = f.CreateGauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.");
        ProposalsPending = f.CreateGauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.");
        ProposalsFailed = f.CreateCounter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.");
        SlowReadIndexes = f.CreateCounter("etcd_server_slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.");
        ReadIndexesFailed = f.CreateCounter("etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.");
        LeasesExpired = f.CreateCounter("etcd_debugging_server_lease_expired_total", "The total number of expired leases.");
        _quotaBackendBytes = f.CreateGauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.");
        f.CreateGauge("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", ["server_version"])
            .WithLabels(EtcdServer.Version).Set(1);
        f.CreateGauge("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", ["server_go_version"])
            .WithLabels(RuntimeInformation.FrameworkDescription).Set(1);
        _serverId = f.CreateGauge("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", ["server_id"]);
        HealthSuccesses = f.CreateCounter("etcd_server_health_success", "The total number of successful health checks");
        HealthFailures = f.CreateCounter("etcd_server_health_failures", "The total number of failed health checks");
        _clusterVersion = f.CreateGauge("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", ["cluster_version"]);
        _authRevision = f.CreateGauge("etcd_debugging_auth_revision", "The current revision of auth store.");

        LeasesGranted = f.CreateCounter("etcd_debugging_lease_granted_total", "The total number of granted leases.");
        LeasesRevoked = f.CreateCounter("etcd_debugging_lease_revoked_total", "The total number of revoked leases.");
        LeasesRenewed = f.CreateCounter("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by the leader.");
        LeaseTtl = f.CreateHistogram("etcd_debugging_lease_ttl_total", "Bucketed histogram of lease TTLs.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 24) });

        // etcd 3.4 keeps membership in its v2 store; ours is the membership store, counted under the same names.
        _storeReads = f.CreateCounter("etcd_debugging_store_reads_total", "Total number of reads action by (get/getRecursive), local to this member.", ["action"]);
        _storeWrites = f.CreateCounter("etcd_debugging_store_writes_total", "Total number of writes (e.g. set/compareAndDelete) seen by this member.", ["action"]);
        f.CreateCounter("etcd_debugging_store_reads_failed_total", "Failed read actions by (get/getRecursive), local to this member.", ["action"]);
        f.CreateCounter("etcd_debugging_store_writes_failed_total", "Failed write actions (e.g. set/compareAndDelete), seen by this member.", ["action"]);
        f.CreateCounter("etcd_debugging_store_expires_total", "Total number of expired keys.");
        f.CreateCounter("etcd_debugging_store_watch_requests_total", "Total number of incoming watch requests (new or reestablished).");
        f.CreateGauge("etcd_debugging_store_watchers", "Count of currently active watchers.");

        // The gRPC proxy (etcd grpc-proxy) registers these in every etcd process; a member serves no proxy cache.
        f.CreateGauge("etcd_grpc_proxy_cache_hits_total", "Total number of cache hits");
        f.CreateGauge("etcd_grpc_proxy_cache_keys_total", "Total number of keys/ranges cached");
        f.CreateGauge("etcd_grpc_proxy_cache_misses_total", "Total number of cache misses");
        f.CreateCounter("etcd_grpc_proxy_events_coalescing_total", "Total number of events coalescing");
        f.CreateGauge("etcd_grpc_proxy_watchers_coalescing_total", "Total number of current watchers coalescing");
    }

    /// <summary><c>etcd_server_leader_changes_seen_total</c>.</summary>
    public Counter LeaderChanges { get; }

    /// <summary><c>etcd_server_learner_promote_successes</c>.</summary>
    public Counter LearnerPromoteSuccesses { get; }

    /// <summary><c>etcd_server_heartbeat_send_failures_total</c>.</summary>
    public Counter HeartbeatSendFailures { get; }

    /// <summary><c>etcd_server_slow_apply_total</c>: applies slower than etcd's 100 ms warning threshold.</summary>
    public Counter SlowApplies { get; }

    /// <summary><c>etcd_server_snapshot_apply_in_progress_total</c>.</summary>
    public Gauge SnapshotApplyInProgress { get; }

    /// <summary><c>etcd_server_proposals_pending</c>.</summary>
    public Gauge ProposalsPending { get; }

    /// <summary><c>etcd_server_proposals_failed_total</c>.</summary>
    public Counter ProposalsFailed { get; }

    /// <summary><c>etcd_server_slow_read_indexes_total</c>.</summary>
    public Counter SlowReadIndexes { get; }

    /// <summary><c>etcd_server_read_indexes_failed_total</c>.</summary>
    public Counter ReadIndexesFailed { get; }

    /// <summary><c>etcd_debugging_server_lease_expired_total</c>.</summary>
    public Counter LeasesExpired { get; }

    /// <summary><c>etcd_server_health_success</c> (counted by the <c>/health</c> handlers).</summary>
    public Counter HealthSuccesses { get; }

    /// <summary><c>etcd_server_health_failures</c>.</summary>
    public Counter HealthFailures { get; }

    /// <summary><c>etcd_debugging_lease_granted_total</c>.</summary>
    public Counter LeasesGranted { get; }

    /// <summary><c>etcd_debugging_lease_revoked_total</c>.</summary>
    public Counter LeasesRevoked { get; }

    /// <summary><c>etcd_debugging_lease_renewed_total</c>.</summary>
    public Counter LeasesRenewed { get; }

    /// <summary><c>etcd_debugging_lease_ttl_total</c> (TTL in seconds of each granted lease).</summary>
    public Histogram LeaseTtl { get; }

    /// <summary>A learner promotion failed for <paramref name="reason"/> (etcd's reasons: "too many learner members", "learner not ready").</summary>
    public void LearnerPromoteFailed(string reason) => _learnerPromoteFailures.WithLabels(reason).Inc();

    /// <summary>A membership record was read (<c>get</c>, <c>getRecursive</c>), as etcd's v2 store counts it.</summary>
    public void StoreRead(string action) => _storeReads.WithLabels(action).Inc();

    /// <summary>A membership record was written (<c>create</c>, <c>set</c>, <c>delete</c>), as etcd's v2 store counts it.</summary>
    public void StoreWrite(string action) => _storeWrites.WithLabels(action).Inc();

    internal void Refresh(EtcdServer server)
    {
        _hasLeader.Set(server.Leader != 0 ? 1 : 0);
        _isLeader.Set(server.IsLeader ? 1 : 0);
        _isLearner.Set(server.IsLearner ? 1 : 0);
        _proposalsCommitted.Set(server.CommittedIndex);
        _proposalsApplied.Set(server.AppliedIndex);
        _quotaBackendBytes.Set(server.QuotaBackendBytes);
        var id = Membership.Member.IdString(server.MemberId);
        if (_serverIdLabel != id)
        {
            _serverId.WithLabels(id).Set(1);
            _serverIdLabel = id;
        }

        // etcd resets the family when the cluster version changes, so only the current one is exposed.
        var cv = server.Cluster.Version is { } v ? string.Join('.', v.Split('.').Take(2)) : null;
        if (cv != _clusterVersionLabel)
        {
            if (_clusterVersionLabel is not null)
            {
                _clusterVersion.RemoveLabelled(_clusterVersionLabel);
            }

            if (cv is not null)
            {
                _clusterVersion.WithLabels(cv).Set(1);
            }

            _clusterVersionLabel = cv;
        }

        _authRevision.Set(ReadAuthRevision(server));
    }

    private static long ReadAuthRevision(EtcdServer server)
    {
        // etcd's auth store keeps its revision in the auth bucket; a store that was never written starts at 1.
        using var tx = server.Backend.ConcurrentReadTx();
        if (tx.BucketExists("auth") && tx.Get("auth", "authRevision"u8) is { Length: 8 } rev)
        {
            return (long)BinaryPrimitives.ReadUInt64BigEndian(rev);
        }

        return 1;
    }
}
