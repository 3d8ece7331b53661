using Mvccpb;

namespace Etcd.Storage.Mvcc;

/// <summary>
/// What <see cref="KvStore"/> needs from the lessor (etcd's <c>lease.Lessor</c> as used by
/// <c>mvcc/kvstore_txn.go</c>). Calls come from the writing thread while the store's write lock is
/// held; implementations must not call back into the store.
/// </summary>
public interface ILeaseLookup
{
    /// <summary>Whether lease <paramref name="leaseId"/> is granted (etcd's <c>Lookup(id) != nil</c>).</summary>
    bool Exists(long leaseId);

    /// <summary>Attaches <paramref name="key"/> to lease <paramref name="leaseId"/> (a put with that lease, or restore).</summary>
    void Attach(long leaseId, ReadOnlySpan<byte> key);

    /// <summary>
    /// Detaches <paramref name="key"/> from lease <paramref name="leaseId"/> (overwritten or deleted key;
    /// also called for the keys <see cref="KvStore.DeleteKeys"/> removes while the lessor revokes that lease).
    /// </summary>
    void Detach(long leaseId, ReadOnlySpan<byte> key);
}

/// <summary>
/// Receives every committed write transaction of a <see cref="KvStore"/> (the hook of etcd's
/// watchable store, <c>mvcc/watchable_store_txn.go</c>).
/// </summary>
public interface IKvObserver
{
    /// <summary>
    /// Called once per write transaction that changed something, on the writing thread, after the
    /// changes are visible to <see cref="KvStore.Range"/> (and <see cref="KvStore.CurrentRevision"/> is
    /// <paramref name="revision"/>) and before the write call returns. Calls never overlap and come in
    /// revision order. <paramref name="events"/> are in change order (sub revision); a DELETE event's
    /// <c>Kv</c> holds only the key and <c>ModRevision = revision</c>, as etcd sends it. The observer may
    /// call <see cref="KvStore.Range"/>; it must not write to the store. Exceptions propagate to the writer.
    /// </summary>
    void OnCommitted(long revision, IReadOnlyList<Event> events);
}

/// <summary>Tunables of a <see cref="KvStore"/>; defaults match etcd 3.4.</summary>
public sealed record KvStoreOptions
{
    /// <summary>Revisions removed from the backend per compaction batch (etcd's <c>CompactionBatchLimit</c>, default 1000).</summary>
    public int CompactionBatchLimit { get; init; } = 1000;

    /// <summary>Pause between two batches of a compaction's removal (etcd 3.4: 10 ms), during which writes and reads go on.</summary>
    public TimeSpan CompactionBatchPause { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Called after each committed batch of a compaction's removal, on the removal's task, outside the store's
    /// locks (metrics: etcd's <c>etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds</c>; tests). It may
    /// read and write the store. Null = nothing is called.
    /// </summary>
    public Action<CompactionBatch>? CompactionBatchCommitted { get; init; }

    /// <summary>
    /// Supplies the raft consistent index saved into <c>meta/consistent_index</c> (8 bytes big-endian) with
    /// every write transaction that changes keys and on <see cref="KvStore.Commit"/> (etcd's
    /// <c>ConsistentIndexGetter</c>); null = not saved.
    /// </summary>
    public Func<ulong>? ConsistentIndexGetter { get; init; }

    /// <summary>Where transaction counts and compaction/hash latencies are reported; null = not measured.</summary>
    public IMvccMetrics? Metrics { get; init; }
}

/// <summary>One committed batch of a compaction's removal from the backend (<see cref="KvStoreOptions.CompactionBatchCommitted"/>).</summary>
/// <param name="CompactRevision">The compaction's revision.</param>
/// <param name="Number">1 for the first batch of this compaction, then 2, 3, ...</param>
/// <param name="Deleted">Revisions deleted from the <c>key</c> bucket by this batch.</param>
/// <param name="Last">Whether it was the last batch (<c>meta/finishedCompactRev</c> is written with it).</param>
public readonly record struct CompactionBatch(long CompactRevision, int Number, int Deleted, bool Last);

/// <summary>The result of <see cref="KvStore.HashByRevision"/> (etcd's <c>HashKV</c>).</summary>
/// <param name="Hash">CRC-32C (Castagnoli) over the bucket name <c>key</c> and the key/value bytes of the revisions hashed.</param>
/// <param name="HashRevision">The revision the hash covers (the requested one, or the current revision for 0).</param>
/// <param name="CompactRevision">The store's compacted revision at the time (-1 when never compacted).</param>
/// <param name="CurrentRevision">The store's current revision at the time (etcd puts it in the response header).</param>
public readonly record struct KvHash(uint Hash, long HashRevision, long CompactRevision, long CurrentRevision);

/// <summary>etcd's bucket and key names used by MVCC (<c>mvcc/kvstore.go</c>).</summary>
public static class MvccSchema
{
    /// <summary>Bucket of revision key → serialized <c>mvccpb.KeyValue</c>.</summary>
    public const string KeyBucket = "key";

    /// <summary>Bucket of store metadata.</summary>
    public const string MetaBucket = "meta";

    /// <summary>Meta key: 8-byte big-endian raft index of the last applied entry.</summary>
    public static ReadOnlySpan<byte> ConsistentIndexKey => "consistent_index"u8;

    /// <summary>Meta key: 17-byte revision key of the compaction last scheduled.</summary>
    public static ReadOnlySpan<byte> ScheduledCompactKey => "scheduledCompactRev"u8;

    /// <summary>Meta key: 17-byte revision key of the compaction last finished.</summary>
    public static ReadOnlySpan<byte> FinishedCompactKey => "finishedCompactRev"u8;
}
