using System.Buffers.Binary;
using Etcd.Api;
using Etcd.Storage.Backend;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Storage.Mvcc;

/// <summary>
/// etcd's multi-version key-value store (<c>mvcc/kvstore.go</c>, <c>kvstore_txn.go</c>) with the
/// request-level semantics of etcd's apply layer (<c>etcdserver/apply.go</c>): the server hands it
/// decoded requests and gets etcd's responses or etcd's errors (<see cref="EtcdException"/>).
/// </summary>
/// <remarks>
/// <para>Storage: every change is written to the backend's <c>key</c> bucket under its 17-byte
/// <see cref="Revision"/> key (18 bytes with the tombstone mark) as a serialized
/// <c>mvccpb.KeyValue</c>; an in-memory key index maps keys to their generations of revisions.
/// The <c>meta</c> bucket holds <c>scheduledCompactRev</c>, <c>finishedCompactRev</c> and
/// <c>consistent_index</c>. Construction rebuilds the index from the backend (etcd's restore).</para>
/// <para>Revisions: the store starts at revision 1; each write call (Put, DeleteRange, Txn) that
/// changes anything advances <see cref="CurrentRevision"/> by exactly one, all its changes sharing
/// that main revision with increasing sub revisions.</para>
/// <para>Concurrency: writes (<see cref="Put"/>, <see cref="DeleteRange"/>, writing <see cref="Txn"/>,
/// <see cref="Compact"/>, <see cref="DeleteKeys"/>) may come from any thread but are serialised; the
/// server calls them from its apply loop. Reads (<see cref="Range"/>, read-only <see cref="Txn"/>,
/// <see cref="HashByRevision"/>, <see cref="ReadEvents"/>) may run concurrently from any number of
/// threads. A reader/writer lock guards the key index: a write holds it exclusively for the duration of
/// the request (readers never see half a transaction), a read shares it while it resolves revisions and
/// reads values from a backend read snapshot. Physical compaction runs after the exclusive section, on a
/// background task, in batches that each take the write gate briefly, so reads and writes continue between them.</para>
/// </remarks>
public sealed partial class KvStore : IDisposable
{
    private static readonly byte[] s_emptyEnd = [];

    private IBackend _backend;
    private readonly ILeaseLookup? _leases;
    private readonly KvStoreOptions _options;
    private readonly ReaderWriterLockSlim _rw = new(LockRecursionPolicy.NoRecursion);
    private readonly object _writeGate = new();
    private TreeIndex _index = new();
    private long _currentRev = 1;
    private long _compactRev = -1;
    private long _liveKeys;
    private IKvObserver? _observer;
    private bool _disposed;

    /// <summary>
    /// Opens the store over <paramref name="backend"/>: creates the <c>key</c> and <c>meta</c> buckets
    /// if missing, rebuilds the key index from the <c>key</c> bucket, restores the compacted revision,
    /// reattaches leases of live keys through <paramref name="leases"/>, and finishes a compaction that
    /// was scheduled but not finished.
    /// </summary>
    /// <param name="backend">The backend; the store does not dispose it.</param>
    /// <param name="leases">The lessor; null = leases unsupported (any non-zero lease is <c>LeaseNotFound</c>).</param>
    /// <param name="options">Tunables; null = defaults.</param>
    public KvStore(IBackend backend, ILeaseLookup? leases = null, KvStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
        _leases = leases;
        _options = options ?? new KvStoreOptions();
        if (_options.CompactionBatchLimit <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "CompactionBatchLimit must be positive");
        }

        CreateBuckets();
        Restore();
    }

    /// <summary>
    /// Replaces the backend with <paramref name="backend"/> and rebuilds everything from it, as etcd's
    /// <c>store.Restore</c> does when a member applies a raft snapshot: revisions, the compacted
    /// revision, the key index, and lease attachments of live keys (recover the lessor from the new
    /// backend first so that it knows the leases). The observer stays registered; events are not
    /// replayed. Serialised with writes; reads wait for it.
    /// </summary>
    public void Restore(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        lock (_writeGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _rw.EnterWriteLock();
            try
            {
                _backend = backend;
                _generation++;
                _index = new TreeIndex();
                Volatile.Write(ref _currentRev, 1);
                Volatile.Write(ref _compactRev, -1);
                CreateBuckets();
                Restore();
            }
            finally
            {
                _rw.ExitWriteLock();
            }
        }
    }

    private void CreateBuckets()
    {
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            tx.CreateBucket(MvccSchema.KeyBucket);
            tx.CreateBucket(MvccSchema.MetaBucket);
        }
        finally
        {
            tx.Unlock();
        }

        _backend.ForceCommit();
    }

    /// <summary>The revision of the last committed write (1 for an empty store). Thread-safe.</summary>
    public long CurrentRevision => Volatile.Read(ref _currentRev);

    /// <summary>The revision of the last compaction (-1 when never compacted, as etcd reports it). Thread-safe.</summary>
    public long CompactRevision => Volatile.Read(ref _compactRev);

    /// <summary>The backend this store writes to (changes only through <see cref="Restore(IBackend)"/>).</summary>
    public IBackend Backend => _backend;

    /// <summary>
    /// Registers the observer of committed writes (see <see cref="IKvObserver.OnCommitted"/>). Set once.
    /// </summary>
    /// <exception cref="InvalidOperationException">An observer is already set.</exception>
    public void SetObserver(IKvObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        lock (_writeGate)
        {
            if (_observer is not null)
            {
                throw new InvalidOperationException("mvcc: the observer is already set");
            }

            _observer = observer;
        }
    }

    /// <summary>
    /// The consistent index saved in <c>meta/consistent_index</c> (0 when never saved). Thread-safe.
    /// </summary>
    public ulong ConsistentIndex
    {
        get
        {
            using var rtx = _backend.ConcurrentReadTx();
            var v = rtx.Get(MvccSchema.MetaBucket, MvccSchema.ConsistentIndexKey);
            return v is { Length: 8 } ? BinaryPrimitives.ReadUInt64BigEndian(v) : 0;
        }
    }

    /// <summary>
    /// Saves the consistent index (when a getter is configured) and force-commits the backend
    /// (etcd's <c>store.Commit</c>). Serialised with writes.
    /// </summary>
    public void Commit()
    {
        lock (_writeGate)
        {
            var tx = _backend.BatchTx;
            tx.Lock();
            try
            {
                SaveConsistentIndex(tx);
            }
            finally
            {
                tx.Unlock();
            }

            _backend.ForceCommit();
        }
    }

    /// <summary>Releases the store's lock; the backend stays open (its owner disposes it).</summary>
    public void Dispose()
    {
        lock (_writeGate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _generation++;
        }

        _rw.Dispose();
    }

    /// <summary>
    /// Puts <c>meta/consistent_index</c> (from <see cref="KvStoreOptions.ConsistentIndexGetter"/>; nothing when
    /// none is configured) into the caller's batch, so that the index lands in the same backend commit as the
    /// data it covers. The caller holds <paramref name="tx"/>'s lock (etcd's <c>saveIndex</c>).
    /// </summary>
    public void SaveConsistentIndex(IBatchTx tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (_options.ConsistentIndexGetter is { } getter)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(b, getter());
            tx.Put(MvccSchema.MetaBucket, MvccSchema.ConsistentIndexKey, b);
        }
    }

    /// <summary>Keys with a live (not deleted) version at the current revision (etcd's <c>etcd_debugging_mvcc_keys_total</c>).</summary>
    public long LiveKeys => Interlocked.Read(ref _liveKeys);

    /// <summary>The read or write context one request runs in (etcd's storeTxnRead / storeTxnWrite).</summary>
    private sealed class TxnContext(IBucketReader reader, long beginRev, IBatchTx? writeTx)
    {
        public int Ranges;
        public int Puts;
        public int Deletes;
        public long PutBytes;

        public IBucketReader Reader { get; } = reader;

        public long BeginRev { get; } = beginRev;

        public IBatchTx? WriteTx { get; } = writeTx;

        public bool IsWrite => WriteTx is not null;

        public List<KeyValue> Changes { get; } = [];

        /// <summary>The revision reads see: the write's own revision once it changed something.</summary>
        public long ReadRev => Changes.Count > 0 ? BeginRev + 1 : BeginRev;
    }

    private T Read<T>(Func<TxnContext, T> body)
    {
        _rw.EnterReadLock();
        try
        {
            using var rtx = _backend.ConcurrentReadTx();
            var ctx = new TxnContext(rtx, _currentRev, null);
            try
            {
                return body(ctx);
            }
            finally
            {
                _options.Metrics?.TxnEnded(ctx.Ranges, ctx.Puts, ctx.Deletes, ctx.PutBytes);
            }
        }
        finally
        {
            _rw.ExitReadLock();
        }
    }

    private T Write<T>(Func<TxnContext, T> body, Action<IBatchTx>? inSameBatch = null)
    {
        lock (_writeGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            TxnContext? ctx = null;
            try
            {
                _rw.EnterWriteLock();
                try
                {
                    var tx = _backend.BatchTx;
                    tx.Lock();
                    ctx = new TxnContext(tx, _currentRev, tx);
                    try
                    {
                        var result = body(ctx);
                        inSameBatch?.Invoke(tx);
                        if (ctx.Changes.Count > 0 || inSameBatch is not null)
                        {
                            SaveConsistentIndex(tx);
                        }

                        return result;
                    }
                    finally
                    {
                        // Changes made before a failure stay (etcd would stop the member instead):
                        // publish them so the index, the backend and the revision agree.
                        tx.Unlock();
                        if (ctx.Changes.Count > 0)
                        {
                            Volatile.Write(ref _currentRev, ctx.BeginRev + 1);
                        }
                    }
                }
                finally
                {
                    _rw.ExitWriteLock();
                }
            }
            finally
            {
                if (ctx is not null)
                {
                    _options.Metrics?.TxnEnded(ctx.Ranges, ctx.Puts, ctx.Deletes, ctx.PutBytes);
                }

                if (ctx is { Changes.Count: > 0 } && _observer is { } observer)
                {
                    observer.OnCommitted(ctx.BeginRev + 1, ToEvents(ctx.Changes, ctx.BeginRev + 1));
                }
            }
        }
    }

    private static List<Event> ToEvents(List<KeyValue> changes, long rev)
    {
        var events = new List<Event>(changes.Count);
        foreach (var kv in changes)
        {
            if (kv.CreateRevision == 0)
            {
                var tomb = kv.Clone();
                tomb.ModRevision = rev;
                events.Add(new Event { Type = Event.Types.EventType.Delete, Kv = tomb });
            }
            else
            {
                events.Add(new Event { Type = Event.Types.EventType.Put, Kv = kv });
            }
        }

        return events;
    }

    // ---- etcd's storeTxnRead.rangeKeys / storeTxnWrite.put / delete ----

    private readonly record struct RangeResult(List<KeyValue> Kvs, int Count, long Rev);

    private RangeResult RangeKeys(TxnContext ctx, byte[] key, byte[]? end, long optRev, long limit, bool countOnly)
    {
        ctx.Ranges++;
        var curRev = ctx.ReadRev;
        var rev = optRev;
        if (rev > curRev)
        {
            throw EtcdErrors.FutureRev.ToException();
        }

        if (rev <= 0)
        {
            rev = curRev;
        }

        if (rev < _compactRev)
        {
            throw EtcdErrors.Compacted.ToException();
        }

        var revs = _index.Revisions(key, end, rev);
        if (revs.Count == 0 || countOnly)
        {
            return new RangeResult([], revs.Count, curRev);
        }

        var n = limit <= 0 || limit > revs.Count ? revs.Count : (int)limit;
        var kvs = new List<KeyValue>(n);
        Span<byte> revKey = stackalloc byte[Revision.BytesLength];
        for (var i = 0; i < n; i++)
        {
            revs[i].WriteTo(revKey);
            var v = ctx.Reader.Get(MvccSchema.KeyBucket, revKey)
                ?? throw new InvalidOperationException($"mvcc: range cannot find revision {revs[i]} in the backend (current {curRev})");
            kvs.Add(KeyValue.Parser.ParseFrom(v));
        }

        return new RangeResult(kvs, revs.Count, curRev);
    }

    private void PutKey(TxnContext ctx, byte[] key, ByteString value, long leaseId)
    {
        var tx = ctx.WriteTx!;
        var rev = ctx.BeginRev + 1;
        var created = rev;
        long ver = 0;
        long oldLease = 0;
        var existing = _index.Find(key);
        if (existing is not null && existing.TryGet(rev, out _, out var c, out var v))
        {
            created = c.Main;
            ver = v;
            oldLease = existing.Lease;
        }
        else
        {
            Interlocked.Increment(ref _liveKeys);
        }

        ctx.Puts++;
        ctx.PutBytes += key.Length + value.Length;

        var idxRev = new Revision(rev, ctx.Changes.Count);
        var kv = new KeyValue
        {
            Key = UnsafeByteOperations.UnsafeWrap(key),
            Value = value,
            CreateRevision = created,
            ModRevision = rev,
            Version = ver + 1,
            Lease = leaseId,
        };

        Span<byte> revKey = stackalloc byte[Revision.BytesLength];
        idxRev.WriteTo(revKey);
        tx.Put(MvccSchema.KeyBucket, revKey, kv.ToByteArray());
        var ki = _index.Put(key, idxRev);
        ki.Lease = leaseId;
        ctx.Changes.Add(kv);

        if (oldLease != 0)
        {
            _leases?.Detach(oldLease, key);
        }

        if (leaseId != 0)
        {
            _leases?.Attach(leaseId, key);
        }
    }

    private long DeleteKeysInRange(TxnContext ctx, byte[] key, byte[]? end)
    {
        ctx.Deletes++;
        var keys = _index.RangeLive(key, end, ctx.ReadRev);
        foreach (var ki in keys)
        {
            DeleteKey(ctx, ki);
        }

        return keys.Count;
    }

    private void DeleteKey(TxnContext ctx, KeyIndex ki)
    {
        var idxRev = new Revision(ctx.BeginRev + 1, ctx.Changes.Count);
        var kv = new KeyValue { Key = UnsafeByteOperations.UnsafeWrap(ki.Key) };
        ctx.WriteTx!.Put(MvccSchema.KeyBucket, idxRev.ToTombstoneBytes(), kv.ToByteArray());
        if (!ki.Tombstone(idxRev.Main, idxRev.Sub))
        {
            throw new InvalidOperationException($"mvcc: cannot tombstone the live key {Convert.ToHexString(ki.Key)}");
        }

        ctx.Changes.Add(kv);
        Interlocked.Decrement(ref _liveKeys);
        var lease = ki.Lease;
        ki.Lease = 0;
        if (lease != 0)
        {
            _leases?.Detach(lease, ki.Key);
        }
    }

    // ---- restore (etcd's store.restore) ----

    private void Restore()
    {
        long scheduledCompact = 0;
        var keyToLease = new Dictionary<KeyIndex, long>(ReferenceEqualityComparer.Instance);
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            var finished = tx.Get(MvccSchema.MetaBucket, MvccSchema.FinishedCompactKey);
            if (finished is not null)
            {
                _compactRev = Revision.FromBytes(finished).Main;
            }

            var scheduled = tx.Get(MvccSchema.MetaBucket, MvccSchema.ScheduledCompactKey);
            if (scheduled is not null)
            {
                scheduledCompact = Revision.FromBytes(scheduled).Main;
            }

            long currentRev = 1;
            var start = new Revision(1, 0).ToBytes();
            tx.Range(MvccSchema.KeyBucket, start, s_emptyEnd, (k, v) =>
            {
                var rev = Revision.FromBytes(k);
                currentRev = rev.Main;
                var kv = KeyValue.Parser.ParseFrom(v);
                var keyBytes = kv.Key.ToByteArray();
                var ki = _index.Find(keyBytes);
                var tombstone = Revision.IsTombstone(k);
                if (ki is not null)
                {
                    if (tombstone)
                    {
                        ki.Tombstone(rev.Main, rev.Sub);
                        keyToLease.Remove(ki);
                    }
                    else
                    {
                        ki.Put(rev.Main, rev.Sub);
                        SetLease(ki, kv.Lease);
                    }
                }
                else if (!tombstone)
                {
                    ki = new KeyIndex(keyBytes);
                    ki.Restore(new Revision(kv.CreateRevision, 0), rev, kv.Version);
                    _index.Insert(ki);
                    SetLease(ki, kv.Lease);
                }

                return true;
            });

            _currentRev = Math.Max(currentRev, _compactRev);
            if (scheduledCompact <= _compactRev)
            {
                scheduledCompact = 0;
            }
        }
        finally
        {
            tx.Unlock();
        }

        foreach (var (ki, lease) in keyToLease)
        {
            ki.Lease = lease;
            _leases?.Attach(lease, ki.Key);
        }

        Interlocked.Exchange(ref _liveKeys, _index.RangeLive([0], [], _currentRev).Count);
        if (scheduledCompact != 0)
        {
            // etcd resumes the compaction that was scheduled before the restart.
            _compactRev = scheduledCompact;
            var keep = _index.Compact(scheduledCompact);
            PhysicalCompact(scheduledCompact, keep);
        }

        void SetLease(KeyIndex ki, long lease)
        {
            if (lease != 0)
            {
                keyToLease[ki] = lease;
            }
            else
            {
                keyToLease.Remove(ki);
            }
        }
    }
}
