using System.Collections.Immutable;

namespace Etcd.Storage.Backend;

/// <summary>
/// A memory-only <see cref="IBackend"/>: each bucket is an immutable sorted set of pairs, so a read
/// transaction is a free snapshot and the batch writer publishes a new version on
/// <see cref="IBatchTx.Unlock"/>. Nothing survives disposal; <see cref="ForceCommit"/> only publishes.
/// </summary>
/// <remarks>
/// Thread-safe per the <see cref="IBackend"/> contract: one writer holding <see cref="BatchTx"/>, any
/// number of concurrent readers that never block. Keys are compared as unsigned bytes (bbolt's order).
/// <see cref="Size"/> and <see cref="SizeInUse"/> both report the bytes of keys and values stored plus
/// a fixed per-pair overhead of <see cref="PairOverheadBytes"/>, on top of <see cref="EmptySizeBytes"/>
/// (what an empty bbolt file holds: two meta pages, the freelist and the root), so sizes are never zero
/// as etcd's never are.
/// </remarks>
public sealed class InMemoryBackend : IBackend
{
    /// <summary>Bytes counted per stored pair on top of its key and value lengths.</summary>
    public const int PairOverheadBytes = 16;

    /// <summary>The size reported for an empty backend: four 4 KiB pages, as an empty bbolt file.</summary>
    public const int EmptySizeBytes = 4 * 4096;

    private readonly BatchTxImpl _batchTx;
    private volatile Snapshot _published;
    private long _commits;

    /// <summary>Creates an empty backend with no buckets.</summary>
    public InMemoryBackend()
    {
        _published = new Snapshot(ImmutableDictionary<string, ImmutableSortedSet<Entry>>.Empty, 0);
        _batchTx = new BatchTxImpl(this);
    }

    /// <inheritdoc />
    public IBatchTx BatchTx => _batchTx;

    /// <summary>How many times <see cref="ForceCommit"/> ran (tests and metrics).</summary>
    public long CommitCount => Interlocked.Read(ref _commits);

    /// <inheritdoc />
    public long Size => EmptySizeBytes + _published.Bytes;

    /// <inheritdoc />
    public long SizeInUse => EmptySizeBytes + _published.Bytes;

    /// <inheritdoc />
    public IReadTx ConcurrentReadTx() => new ReadTxImpl(_published);

    /// <inheritdoc />
    public void ForceCommit() => Interlocked.Increment(ref _commits);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    internal sealed class Entry(byte[] key, byte[] value)
    {
        public byte[] Key { get; } = key;

        public byte[] Value { get; } = value;
    }

    private sealed class EntryComparer : IComparer<Entry>
    {
        public static readonly EntryComparer Instance = new();

        public int Compare(Entry? x, Entry? y) => x!.Key.AsSpan().SequenceCompareTo(y!.Key);
    }

    private sealed record Snapshot(ImmutableDictionary<string, ImmutableSortedSet<Entry>> Buckets, long Bytes);

    private static readonly byte[] s_empty = [];

    private static byte[]? GetFrom(ImmutableDictionary<string, ImmutableSortedSet<Entry>> buckets, string bucket, ReadOnlySpan<byte> key)
    {
        if (!buckets.TryGetValue(bucket, out var set))
        {
            return null;
        }

        return set.TryGetValue(new Entry(key.ToArray(), s_empty), out var found) ? found.Value : null;
    }

    private static void RangeFrom(
        ImmutableDictionary<string, ImmutableSortedSet<Entry>> buckets,
        string bucket,
        ReadOnlySpan<byte> start,
        ReadOnlySpan<byte> end,
        BucketVisitor visitor)
    {
        if (!buckets.TryGetValue(bucket, out var set) || set.Count == 0)
        {
            return;
        }

        int i;
        if (start.IsEmpty)
        {
            i = 0;
        }
        else
        {
            i = set.IndexOf(new Entry(start.ToArray(), s_empty));
            if (i < 0)
            {
                i = ~i;
            }
        }

        for (; i < set.Count; i++)
        {
            var e = set[i];
            if (!end.IsEmpty && e.Key.AsSpan().SequenceCompareTo(end) >= 0)
            {
                return;
            }

            if (!visitor(e.Key, e.Value))
            {
                return;
            }
        }
    }

    private static void ForEachIn(ImmutableDictionary<string, ImmutableSortedSet<Entry>> buckets, string bucket, BucketVisitor visitor)
    {
        if (!buckets.TryGetValue(bucket, out var set))
        {
            return;
        }

        foreach (var e in set)
        {
            if (!visitor(e.Key, e.Value))
            {
                return;
            }
        }
    }

    private sealed class ReadTxImpl(Snapshot snapshot) : IReadTx
    {
        public bool BucketExists(string bucket) => snapshot.Buckets.ContainsKey(bucket);

        public byte[]? Get(string bucket, ReadOnlySpan<byte> key) => GetFrom(snapshot.Buckets, bucket, key);

        public void Range(string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor)
            => RangeFrom(snapshot.Buckets, bucket, start, end, visitor);

        public void ForEach(string bucket, BucketVisitor visitor) => ForEachIn(snapshot.Buckets, bucket, visitor);

        public void Dispose()
        {
        }
    }

    private sealed class BatchTxImpl(InMemoryBackend owner) : IBatchTx
    {
        // Not thread-affine (like etcd's sync.Mutex): a writer may lock on one thread and unlock on another.
        private readonly SemaphoreSlim _gate = new(1, 1);
        private volatile bool _locked;
        private ImmutableDictionary<string, ImmutableSortedSet<Entry>> _working = owner._published.Buckets;
        private long _bytes = owner._published.Bytes;

        public void Lock()
        {
            _gate.Wait();
            _locked = true;
            _working = owner._published.Buckets;
            _bytes = owner._published.Bytes;
        }

        public void Unlock()
        {
            EnsureLocked();
            owner._published = new Snapshot(_working, _bytes);
            _locked = false;
            _gate.Release();
        }

        public bool BucketExists(string bucket)
        {
            EnsureLocked();
            return _working.ContainsKey(bucket);
        }

        public byte[]? Get(string bucket, ReadOnlySpan<byte> key)
        {
            EnsureLocked();
            return GetFrom(_working, bucket, key);
        }

        public void Range(string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor)
        {
            EnsureLocked();
            RangeFrom(_working, bucket, start, end, visitor);
        }

        public void ForEach(string bucket, BucketVisitor visitor)
        {
            EnsureLocked();
            ForEachIn(_working, bucket, visitor);
        }

        public void CreateBucket(string name)
        {
            EnsureLocked();
            if (!_working.ContainsKey(name))
            {
                _working = _working.Add(name, ImmutableSortedSet<Entry>.Empty.WithComparer(EntryComparer.Instance));
            }
        }

        public void DeleteBucket(string name)
        {
            EnsureLocked();
            if (_working.TryGetValue(name, out var set))
            {
                foreach (var e in set)
                {
                    _bytes -= e.Key.Length + e.Value.Length + PairOverheadBytes;
                }

                _working = _working.Remove(name);
            }
        }

        public void Put(string bucket, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            var set = BucketForWrite(bucket);
            var entry = new Entry(key.ToArray(), value.ToArray());
            if (set.TryGetValue(entry, out var old))
            {
                set = set.Remove(old);
                _bytes -= old.Key.Length + old.Value.Length + PairOverheadBytes;
            }

            _working = _working.SetItem(bucket, set.Add(entry));
            _bytes += entry.Key.Length + entry.Value.Length + PairOverheadBytes;
        }

        public void Delete(string bucket, ReadOnlySpan<byte> key)
        {
            var set = BucketForWrite(bucket);
            if (set.TryGetValue(new Entry(key.ToArray(), s_empty), out var old))
            {
                _working = _working.SetItem(bucket, set.Remove(old));
                _bytes -= old.Key.Length + old.Value.Length + PairOverheadBytes;
            }
        }

        private ImmutableSortedSet<Entry> BucketForWrite(string bucket)
        {
            EnsureLocked();
            return _working.TryGetValue(bucket, out var set)
                ? set
                : throw new InvalidOperationException($"backend: bucket {bucket} does not exist");
        }

        private void EnsureLocked()
        {
            if (!_locked)
            {
                throw new InvalidOperationException("backend: the batch transaction is used without holding its lock");
            }
        }
    }
}
