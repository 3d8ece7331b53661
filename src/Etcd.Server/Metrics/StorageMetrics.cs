using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcd.Storage.Snap;
using Etcd.Storage.Wal;
using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// The storage families (etcd's <c>wal/metrics.go</c>, <c>mvcc/backend/metrics.go</c>, <c>mvcc/metrics.go</c>,
/// <c>etcdserver/api/snap/metrics.go</c>): the member hands this object to its WAL, backend, MVCC store and
/// snapshotter as their metrics hook, so each member's storage reports into its own registry. Live figures (sizes,
/// revisions, live keys, watchers) are read at collection. Thread-safe.
/// </summary>
public sealed class StorageMetrics : IWalMetrics, IBackendMetrics, IMvccMetrics, ISnapMetrics
{
    private readonly Histogram _walFsync;
    private readonly Gauge _walWriteBytes;
    private readonly Histogram _commit;
    private readonly Histogram _commitRebalance;
    private readonly Histogram _commitSpill;
    private readonly Histogram _commitWrite;
    private readonly Histogram _defrag;
    private readonly Histogram _snapshot;
    private readonly Gauge _defragInflight;
    private readonly Counter _range;
    private readonly Counter _rangeDebug;
    private readonly Counter _put;
    private readonly Counter _putDebug;
    private readonly Counter _delete;
    private readonly Counter _deleteDebug;
    private readonly Counter _txn;
    private readonly Counter _txnDebug;
    private readonly Gauge _putSize;
    private readonly Gauge _keys;
    private readonly Gauge _watchStreams;
    private readonly Gauge _watchers;
    private readonly Gauge _slowWatchers;
    private readonly Gauge _pendingEvents;
    private readonly Histogram _indexCompactionPause;
    private readonly Histogram _dbCompactionPause;
    private readonly Histogram _dbCompactionTotal;
    private readonly Counter _dbCompactionKeys;
    private readonly Gauge _dbTotalSize;
    private readonly Gauge _dbTotalSizeDebug;
    private readonly Gauge _dbTotalSizeInUse;
    private readonly Gauge _dbOpenReadTxns;
    private readonly Gauge _currentRevision;
    private readonly Gauge _compactRevision;
    private readonly Histogram _snapSaveTotal;
    private readonly Histogram _snapSaveMarshalling;
    private readonly Histogram _snapFsync;
    private readonly Histogram _snapDbSaveTotal;
    private readonly Histogram _snapDbFsync;

    internal StorageMetrics(IMetricFactory f)
    {
        static HistogramConfiguration Exp(double start, double factor, int count) => new() { Buckets = Histogram.ExponentialBuckets(start, factor, count) };

        _walFsync = f.CreateHistogram("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.", Exp(0.001, 2, 14));
        _walWriteBytes = f.CreateGauge("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.");
        _commit = f.CreateHistogram("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend.", Exp(0.001, 2, 14));
        _commitRebalance = f.CreateHistogram("etcd_debugging_disk_backend_commit_rebalance_duration_seconds", "The latency distributions of commit.rebalance called by bboltdb backend.", Exp(0.001, 2, 14));
        _commitSpill = f.CreateHistogram("etcd_debugging_disk_backend_commit_spill_duration_seconds", "The latency distributions of commit.spill called by bboltdb backend.", Exp(0.001, 2, 14));
        _commitWrite = f.CreateHistogram("etcd_debugging_disk_backend_commit_write_duration_seconds", "The latency distributions of commit.write called by bboltdb backend.", Exp(0.001, 2, 14));
        _defrag = f.CreateHistogram("etcd_disk_backend_defrag_duration_seconds", "The latency distribution of backend defragmentation.", Exp(0.1, 2, 13));
        _snapshot = f.CreateHistogram("etcd_disk_backend_snapshot_duration_seconds", "The latency distribution of backend snapshots.", Exp(0.01, 2, 17));
        _defragInflight = f.CreateGauge("etcd_disk_defrag_inflight", "Whether or not defrag is active on the member. 1 means active, 0 means not.");

        _range = f.CreateCounter("etcd_mvcc_range_total", "Total number of ranges seen by this member.");
        _rangeDebug = f.CreateCounter("etcd_debugging_mvcc_range_total", "Total number of ranges seen by this member.");
        _put = f.CreateCounter("etcd_mvcc_put_total", "Total number of puts seen by this member.");
        _putDebug = f.CreateCounter("etcd_debugging_mvcc_put_total", "Total number of puts seen by this member.");
        _delete = f.CreateCounter("etcd_mvcc_delete_total", "Total number of deletes seen by this member.");
        _deleteDebug = f.CreateCounter("etcd_debugging_mvcc_delete_total", "Total number of deletes seen by this member.");
        _txn = f.CreateCounter("etcd_mvcc_txn_total", "Total number of txns seen by this member.");
        _txnDebug = f.CreateCounter("etcd_debugging_mvcc_txn_total", "Total number of txns seen by this member.");
        _keys = f.CreateGauge("etcd_debugging_mvcc_keys_total", "Total number of keys.");
        _watchStreams = f.CreateGauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.");
        _watchers = f.CreateGauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.");
        _slowWatchers = f.CreateGauge("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.");

        // etcd 3.4 registers this counter but never moves it.
        f.CreateCounter("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.");
        _pendingEvents = f.CreateGauge("etcd_debugging_mvcc_pending_events_total", "Total number of pending events to be sent.");
        _indexCompactionPause = f.CreateHistogram("etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds", "Bucketed histogram of index compaction pause duration.", Exp(0.5, 2, 14));
        _dbCompactionPause = f.CreateHistogram("etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds", "Bucketed histogram of db compaction pause duration.", Exp(1, 2, 13));
        _dbCompactionTotal = f.CreateHistogram("etcd_debugging_mvcc_db_compaction_total_duration_milliseconds", "Bucketed histogram of db compaction total duration.", Exp(100, 2, 14));
        _dbCompactionKeys = f.CreateCounter("etcd_debugging_mvcc_db_compaction_keys_total", "Total number of db keys compacted.");
        _dbTotalSize = f.CreateGauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.");
        _dbTotalSizeDebug = f.CreateGauge("etcd_debugging_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.");
        _dbTotalSizeInUse = f.CreateGauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.");
        _dbOpenReadTxns = f.CreateGauge("etcd_mvcc_db_open_read_transactions", "The number of currently open read transactions");
        HashDuration = f.CreateHistogram("etcd_mvcc_hash_duration_seconds", "The latency distribution of storage hash operation.", Exp(0.01, 2, 15));
        HashRevDuration = f.CreateHistogram("etcd_mvcc_hash_rev_duration_seconds", "The latency distribution of storage hash by revision operation.", Exp(0.01, 2, 15));
        _currentRevision = f.CreateGauge("etcd_debugging_mvcc_current_revision", "The current revision of store.");
        _compactRevision = f.CreateGauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.");
        _putSize = f.CreateGauge("etcd_debugging_mvcc_total_put_size_in_bytes", "The total size of put kv pairs seen by this member.");

        _snapSaveMarshalling = f.CreateHistogram("etcd_debugging_snap_save_marshalling_duration_seconds", "The marshalling cost distributions of save called by snapshot.", Exp(0.001, 2, 14));
        _snapSaveTotal = f.CreateHistogram("etcd_debugging_snap_save_total_duration_seconds", "The total latency distributions of save called by snapshot.", Exp(0.001, 2, 14));
        _snapFsync = f.CreateHistogram("etcd_snap_fsync_duration_seconds", "The latency distributions of fsync called by snap.", Exp(0.001, 2, 14));
        _snapDbSaveTotal = f.CreateHistogram("etcd_snap_db_save_total_duration_seconds", "The total latency distributions of v3 snapshot save", Exp(0.1, 2, 10));
        _snapDbFsync = f.CreateHistogram("etcd_snap_db_fsync_duration_seconds", "The latency distributions of fsyncing .snap.db file", Exp(0.001, 2, 14));
    }

    /// <summary><c>etcd_mvcc_hash_duration_seconds</c> (the Hash RPC over the whole backend).</summary>
    public Histogram HashDuration { get; }

    /// <summary><c>etcd_mvcc_hash_rev_duration_seconds</c>.</summary>
    public Histogram HashRevDuration { get; }

    /// <inheritdoc/>
    public void FsyncObserved(TimeSpan elapsed) => _walFsync.Observe(elapsed.TotalSeconds);

    /// <inheritdoc/>
    public void BytesWritten(long bytes) => _walWriteBytes.Inc(bytes);

    /// <inheritdoc/>
    public void CommitObserved(TimeSpan total, TimeSpan rebalance, TimeSpan spill, TimeSpan write)
    {
        _commit.Observe(total.TotalSeconds);
        _commitRebalance.Observe(rebalance.TotalSeconds);
        _commitSpill.Observe(spill.TotalSeconds);
        _commitWrite.Observe(write.TotalSeconds);
    }

    /// <inheritdoc/>
    public void DefragRunning(bool running) => _defragInflight.Set(running ? 1 : 0);

    /// <inheritdoc/>
    public void DefragObserved(TimeSpan elapsed) => _defrag.Observe(elapsed.TotalSeconds);

    /// <inheritdoc/>
    public void SnapshotObserved(TimeSpan elapsed) => _snapshot.Observe(elapsed.TotalSeconds);

    /// <inheritdoc/>
    public void TxnEnded(int ranges, int puts, int deletes, long putBytes)
    {
        // etcd's metricsTxnWrite.End: a txn is a transaction that ran more than one operation.
        if (ranges + puts + deletes > 1)
        {
            _txn.Inc();
            _txnDebug.Inc();
        }

        if (ranges > 0)
        {
            _range.Inc(ranges);
            _rangeDebug.Inc(ranges);
        }

        if (puts > 0)
        {
            _put.Inc(puts);
            _putDebug.Inc(puts);
            _putSize.Inc(putBytes);
        }

        if (deletes > 0)
        {
            _delete.Inc(deletes);
            _deleteDebug.Inc(deletes);
        }
    }

    /// <inheritdoc/>
    public void IndexCompactionObserved(TimeSpan pause) => _indexCompactionPause.Observe(pause.TotalMilliseconds);

    /// <inheritdoc/>
    public void DbCompactionBatchObserved(TimeSpan pause) => _dbCompactionPause.Observe(pause.TotalMilliseconds);

    /// <inheritdoc/>
    public void DbCompactionObserved(TimeSpan total, long keys)
    {
        _dbCompactionTotal.Observe(total.TotalMilliseconds);
        _dbCompactionKeys.Inc(keys);
    }

    /// <inheritdoc/>
    public void HashByRevisionObserved(TimeSpan elapsed) => HashRevDuration.Observe(elapsed.TotalSeconds);

    /// <inheritdoc/>
    public void SnapSaved(TimeSpan total, TimeSpan marshalling, TimeSpan fsync)
    {
        _snapSaveMarshalling.Observe(marshalling.TotalSeconds);
        _snapFsync.Observe(fsync.TotalSeconds);
        _snapSaveTotal.Observe(total.TotalSeconds);
    }

    /// <inheritdoc/>
    public void DbSaved(TimeSpan total, TimeSpan fsync)
    {
        _snapDbFsync.Observe(fsync.TotalSeconds);
        _snapDbSaveTotal.Observe(total.TotalSeconds);
    }

    internal void Refresh(EtcdServer server)
    {
        var backend = server.Backend;
        _dbTotalSize.Set(backend.Size);
        _dbTotalSizeDebug.Set(backend.Size);
        _dbTotalSizeInUse.Set(backend.SizeInUse);
        _dbOpenReadTxns.Set(backend is BoltBackend bolt ? bolt.OpenReadTransactions : 0);
        _currentRevision.Set(server.Kv.CurrentRevision);
        _compactRevision.Set(server.Kv.CompactRevision);
        _keys.Set(server.Kv.LiveKeys);
        var (synced, unsynced, victims) = server.Watchable.GroupSizes;
        _watchers.Set(synced + unsynced + victims);
        _slowWatchers.Set(unsynced + victims);
        _watchStreams.Set(server.Watchable.OpenStreams);
        _pendingEvents.Set(server.Watchable.EventsDelivered);
    }
}
