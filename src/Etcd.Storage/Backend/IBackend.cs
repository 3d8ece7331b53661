namespace Etcd.Storage.Backend;

/// <summary>
/// Visits one key/value pair of a bucket during an ordered scan. The spans are valid only during the call.
/// Return <c>true</c> to continue with the next pair, <c>false</c> to stop the scan.
/// </summary>
/// <param name="key">The key bytes.</param>
/// <param name="value">The value bytes.</param>
public delegate bool BucketVisitor(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

/// <summary>
/// etcd's storage backend (<c>mvcc/backend/backend.go</c>): named buckets of byte keys kept in
/// unsigned lexicographic key order, written by one batched writer (<see cref="BatchTx"/>) and read by
/// any number of concurrent readers (<see cref="ConcurrentReadTx"/>).
/// </summary>
/// <remarks>
/// Concurrency contract: exactly one thread at a time holds the batch transaction (between
/// <see cref="IBatchTx.Lock"/> and <see cref="IBatchTx.Unlock"/>); readers never block the writer and
/// never see a batch half-applied. Writes of a batch become visible to new read transactions when
/// the writer calls <see cref="IBatchTx.Unlock"/> (etcd's write-back of the batch buffer); they become
/// durable on <see cref="ForceCommit"/> (a no-op for memory-only backends).
/// </remarks>
public interface IBackend : IDisposable
{
    /// <summary>The single batched write transaction of this backend; lock it before use.</summary>
    IBatchTx BatchTx { get; }

    /// <summary>
    /// Opens a read transaction over a consistent snapshot of everything unlocked so far. Thread-safe;
    /// dispose it when done. It never blocks and is never blocked by the writer.
    /// </summary>
    IReadTx ConcurrentReadTx();

    /// <summary>Commits the pending batch durably now (etcd's <c>ForceCommit</c>). Thread-safe.</summary>
    void ForceCommit();

    /// <summary>Bytes the backend occupies (the database file size for file backends).</summary>
    long Size { get; }

    /// <summary>Bytes of <see cref="Size"/> holding live data (excludes free pages for file backends).</summary>
    long SizeInUse { get; }
}

/// <summary>Ordered reads over the buckets of a backend; shared by read and batch transactions.</summary>
public interface IBucketReader
{
    /// <summary>Whether a bucket named <paramref name="bucket"/> exists.</summary>
    bool BucketExists(string bucket);

    /// <summary>The value stored under <paramref name="key"/>, or <c>null</c> when the key or bucket is absent.</summary>
    byte[]? Get(string bucket, ReadOnlySpan<byte> key);

    /// <summary>
    /// Visits, in ascending key order, the pairs whose keys lie in [<paramref name="start"/>, <paramref name="end"/>);
    /// an empty <paramref name="end"/> means "no upper bound". A missing bucket visits nothing.
    /// Like etcd's <c>UnsafeRange</c> with an end key; <paramref name="visitor"/> returns false to stop.
    /// </summary>
    void Range(string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor);

    /// <summary>Visits every pair of the bucket in ascending key order (etcd's <c>UnsafeForEach</c>).</summary>
    void ForEach(string bucket, BucketVisitor visitor);
}

/// <summary>
/// etcd's batch transaction (<c>mvcc/backend/batch_tx.go</c>). All methods other than
/// <see cref="Lock"/> require the caller to hold the lock (else <see cref="InvalidOperationException"/>).
/// Reads through the batch transaction see its own unpublished writes.
/// </summary>
public interface IBatchTx : IBucketReader
{
    /// <summary>Takes the exclusive writer lock (blocks while another holder has it). Not re-entrant and not thread-affine, like etcd's mutex: it may be released from another thread.</summary>
    void Lock();

    /// <summary>Publishes the writes made under the lock to new readers and releases the lock.</summary>
    void Unlock();

    /// <summary>Creates the bucket if it does not exist yet (etcd's <c>UnsafeCreateBucket</c>).</summary>
    void CreateBucket(string name);

    /// <summary>Removes the bucket and everything in it if it exists.</summary>
    void DeleteBucket(string name);

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/>, replacing any earlier value.</summary>
    /// <exception cref="InvalidOperationException">The bucket does not exist or the lock is not held.</exception>
    void Put(string bucket, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Removes <paramref name="key"/>; absent keys are ignored.</summary>
    /// <exception cref="InvalidOperationException">The bucket does not exist or the lock is not held.</exception>
    void Delete(string bucket, ReadOnlySpan<byte> key);
}

/// <summary>
/// A read-only view of a consistent snapshot of the backend (etcd's <c>ConcurrentReadTx</c>); dispose
/// it when done. Safe to use from the thread that opened it; independent of the batch writer.
/// </summary>
public interface IReadTx : IBucketReader, IDisposable
{
}
