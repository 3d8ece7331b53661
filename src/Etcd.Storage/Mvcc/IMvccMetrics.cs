namespace Etcd.Storage.Mvcc;

/// <summary>
/// Receives the MVCC store's measurements (etcd's <c>mvcc/metrics.go</c>): the operations of each finished
/// transaction (<c>etcd_mvcc_{range,put,delete,txn}_total</c> and their <c>etcd_debugging_mvcc_*</c> twins,
/// <c>total_put_size_in_bytes</c>), compaction and hash latencies. Live figures (revisions, live keys) are read
/// from <see cref="KvStore"/> when scraped. The member supplies one per store through <see cref="KvStoreOptions.Metrics"/>.
/// Called from request and apply threads; implementations must be thread-safe and cheap.
/// </summary>
public interface IMvccMetrics
{
    /// <summary>
    /// A read or write transaction ended having run <paramref name="ranges"/> ranges (compares included, as etcd's
    /// compares read through the transaction), <paramref name="puts"/> puts of <paramref name="putBytes"/> key and
    /// value bytes, and <paramref name="deletes"/> delete-ranges.
    /// </summary>
    void TxnEnded(int ranges, int puts, int deletes, long putBytes);

    /// <summary>The key-index part of a compaction held writers for <paramref name="pause"/>.</summary>
    void IndexCompactionObserved(TimeSpan pause);

    /// <summary>One batch of the physical compaction took <paramref name="pause"/>.</summary>
    void DbCompactionBatchObserved(TimeSpan pause);

    /// <summary>A physical compaction finished after <paramref name="total"/>, having removed <paramref name="keys"/> revisions.</summary>
    void DbCompactionObserved(TimeSpan total, long keys);

    /// <summary>A HashByRevision (HashKV) took <paramref name="elapsed"/>.</summary>
    void HashByRevisionObserved(TimeSpan elapsed);
}
