namespace Etcd.Storage.Backend;

/// <summary>
/// Receives a backend's measurements (etcd's <c>mvcc/backend/metrics.go</c>: <c>etcd_disk_backend_commit_duration_seconds</c>
/// and bbolt's rebalance/spill/write phases, <c>etcd_disk_backend_defrag_duration_seconds</c>,
/// <c>etcd_disk_backend_snapshot_duration_seconds</c>, <c>etcd_disk_defrag_inflight</c>). The member supplies one per
/// backend. Called from the committer, defrag and snapshot threads; implementations must be thread-safe and cheap.
/// </summary>
public interface IBackendMetrics
{
    /// <summary>One batch commit took <paramref name="total"/>, of which bbolt's three phases took the others.</summary>
    void CommitObserved(TimeSpan total, TimeSpan rebalance, TimeSpan spill, TimeSpan write);

    /// <summary>A defragmentation started (<paramref name="running"/> true) or ended.</summary>
    void DefragRunning(bool running);

    /// <summary>A defragmentation finished after <paramref name="elapsed"/>.</summary>
    void DefragObserved(TimeSpan elapsed);

    /// <summary>Writing a snapshot of the whole database took <paramref name="elapsed"/>.</summary>
    void SnapshotObserved(TimeSpan elapsed);
}

/// <summary>The <see cref="IBackendMetrics"/> that records nothing (tools and tests).</summary>
public sealed class NoBackendMetrics : IBackendMetrics
{
    /// <summary>The one instance.</summary>
    public static readonly NoBackendMetrics Instance = new();

    private NoBackendMetrics()
    {
    }

    /// <inheritdoc/>
    public void CommitObserved(TimeSpan total, TimeSpan rebalance, TimeSpan spill, TimeSpan write)
    {
    }

    /// <inheritdoc/>
    public void DefragRunning(bool running)
    {
    }

    /// <inheritdoc/>
    public void DefragObserved(TimeSpan elapsed)
    {
    }

    /// <inheritdoc/>
    public void SnapshotObserved(TimeSpan elapsed)
    {
    }
}
