namespace Etcd.Storage.Snap;

/// <summary>
/// Receives a <see cref="Snapshotter"/>'s measurements (etcd's <c>etcdserver/api/snap/metrics.go</c>): saving raft
/// snapshot files (<c>etcd_debugging_snap_save_*</c>, <c>etcd_snap_fsync_duration_seconds</c>) and database snapshots
/// received from the leader (<c>etcd_snap_db_*</c>). Implementations must be thread-safe.
/// </summary>
public interface ISnapMetrics
{
    /// <summary>A <c>.snap</c> file was saved: <paramref name="total"/> in all, <paramref name="marshalling"/> encoding it, <paramref name="fsync"/> syncing it.</summary>
    void SnapSaved(TimeSpan total, TimeSpan marshalling, TimeSpan fsync);

    /// <summary>A <c>.snap.db</c> file was saved: <paramref name="total"/> in all, <paramref name="fsync"/> syncing it.</summary>
    void DbSaved(TimeSpan total, TimeSpan fsync);
}
