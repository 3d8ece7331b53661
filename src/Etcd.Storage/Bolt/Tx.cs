using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Etcd.Storage.Bolt;

/// <summary>Counters of one transaction (bbolt's TxStats, the subset we keep).</summary>
public sealed class TxStats
{
    /// <summary>Pages allocated.</summary>
    public int PageCount { get; internal set; }

    /// <summary>Bytes allocated for pages.</summary>
    public long PageAlloc { get; internal set; }

    /// <summary>Cursors opened.</summary>
    public int CursorCount { get; internal set; }

    /// <summary>Nodes materialized.</summary>
    public int NodeCount { get; internal set; }

    /// <summary>Node rebalances.</summary>
    public int Rebalance { get; internal set; }

    /// <summary>Node splits.</summary>
    public int Split { get; internal set; }

    /// <summary>Nodes spilled (written).</summary>
    public int Spill { get; internal set; }

    /// <summary>Page writes (one per dirty page run).</summary>
    public int Write { get; internal set; }

    /// <summary>Time the commit spent rebalancing nodes (bbolt's RebalanceTime).</summary>
    public TimeSpan RebalanceTime { get; internal set; }

    /// <summary>Time the commit spent spilling nodes to pages (bbolt's SpillTime).</summary>
    public TimeSpan SpillTime { get; internal set; }

    /// <summary>Time the commit spent writing and syncing pages and the meta page (bbolt's WriteTime).</summary>
    public TimeSpan WriteTime { get; internal set; }
}

/// <summary>
/// A read-only or read-write transaction (bbolt's <c>tx.go</c>). A read transaction sees the snapshot
/// committed when it began (MVCC by txid) for as long as it is open; many may be open at once, on any
/// threads, and share one <see cref="Tx"/> safely. There is one write transaction at a time; it belongs
/// to the thread using it. Dispose rolls back anything not committed; always dispose read transactions,
/// since pages they can see are not reused while they are open.
/// </summary>
public sealed class Tx : IDisposable
{
    private readonly BoltDb _db;
    private readonly Mapping _mapping;
    private BoltMeta _meta;
    private readonly Bucket _root;
    private Dictionary<ulong, byte[]>? _pages;
    private int _closed;

    internal Tx(BoltDb db, Mapping mapping, BoltMeta meta, bool writable)
    {
        _db = db;
        _mapping = mapping;
        _meta = meta;
        Writable = writable;
        PageSize = (int)meta.PageSize;
        if (writable)
        {
            _meta.Txid++;
            _pages = new Dictionary<ulong, byte[]>();
        }

        _root = new Bucket(this, meta.Root, meta.RootSequence, null);
    }

    /// <summary>The database.</summary>
    public BoltDb Db => _db;

    /// <summary>Whether this is the write transaction.</summary>
    public bool Writable { get; }

    /// <summary>The transaction id (the txid this write transaction will commit as, or the snapshot's).</summary>
    public ulong Id => _meta.Txid;

    /// <summary>Bytes of the database as this transaction sees it (high-water page id × page size).</summary>
    public long Size => (long)_meta.Pgid * PageSize;

    /// <summary>Counters of this transaction.</summary>
    public TxStats Stats { get; } = new();

    /// <summary>The root bucket holding the top-level buckets.</summary>
    public Bucket Root => _root;

    internal int PageSize { get; }

    internal ulong MetaPgid => _meta.Pgid;

    internal BoltMeta Meta => _meta;

    /// <summary>Test hook: runs after the data pages are written and synced, before the meta page.</summary>
    internal Action? BeforeMetaWrite { get; set; }

    /// <summary>Whether the transaction was committed or rolled back.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The top-level bucket named <paramref name="name"/>, or null.</summary>
    public Bucket? Bucket(ReadOnlySpan<byte> name) => _root.GetBucket(name);

    /// <summary>Creates a top-level bucket (see <see cref="Bolt.Bucket.CreateBucket"/> for errors).</summary>
    public Bucket CreateBucket(ReadOnlySpan<byte> name) => _root.CreateBucket(name);

    /// <summary>Returns the top-level bucket, creating it when absent.</summary>
    public Bucket CreateBucketIfNotExists(ReadOnlySpan<byte> name) => _root.CreateBucketIfNotExists(name);

    /// <summary>Deletes a top-level bucket (see <see cref="Bolt.Bucket.DeleteBucket"/> for errors).</summary>
    public void DeleteBucket(ReadOnlySpan<byte> name) => _root.DeleteBucket(name);

    /// <summary>A cursor over the top-level bucket names (every entry is a bucket).</summary>
    public Cursor Cursor() => _root.Cursor();

    /// <summary>Visits every top-level bucket in name order (bbolt's tx.ForEach); return false to stop.</summary>
    public void ForEach(Func<byte[], Bucket, bool> visitor)
    {
        foreach (var name in BucketNames())
        {
            if (!visitor(name, _root.GetBucket(name)!))
            {
                return;
            }
        }
    }

    /// <summary>Names of the top-level buckets in key order.</summary>
    public List<byte[]> BucketNames()
    {
        var names = new List<byte[]>();
        var c = _root.Cursor();
        for (bool ok = c.First(out var k, out _); ok; ok = c.Next(out k, out _))
        {
            names.Add(k.ToArray());
        }

        return names;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReadOnlySpan<byte> PageSpan(PageRef r) => r.Inline ?? _mapping.Page(r.Id, PageSize);

    internal void EnsureOpen()
    {
        if (_closed != 0)
        {
            throw new BoltException(BoltException.TxClosed);
        }
    }

    internal void EnsureWritable()
    {
        EnsureOpen();
        if (!Writable)
        {
            throw new BoltException(BoltException.TxNotWritable);
        }
    }

    internal void FreePage(ulong pgid)
    {
        uint overflow = _pages != null && _pages.TryGetValue(pgid, out var dirty)
            ? BoltPage.Overflow(dirty)
            : BoltPage.Overflow(_mapping.Page(pgid, PageSize));
        _db.Freelist.Free(_meta.Txid, pgid, overflow);
    }

    internal (ulong Id, byte[] Buffer) Allocate(int count)
    {
        var buf = new byte[count * PageSize];
        ulong id = _db.Freelist.Allocate(count);
        if (id == 0)
        {
            id = _meta.Pgid;
            _meta.Pgid += (ulong)count;
            _db.NoteHighWater((long)(_meta.Pgid + 1) * PageSize);
        }

        BoltPage.WriteHeader(buf, id, 0, 0, (uint)(count - 1));
        _pages![id] = buf;
        Stats.PageCount += count;
        Stats.PageAlloc += buf.Length;
        return (id, buf);
    }

    /// <summary>
    /// Writes all changes durably: rebalance and spill nodes, write the freelist, write dirty pages,
    /// fdatasync, write the meta page (page txid % 2) and fdatasync again — the crash-atomic point.
    /// The transaction is closed afterwards, also when this throws (changes then rolled back).
    /// </summary>
    /// <exception cref="BoltException"><c>tx closed</c> or <c>tx not writable</c>.</exception>
    /// <exception cref="IOException">A write or sync failed; the database keeps its previous commit.</exception>
    public void Commit()
    {
        EnsureWritable();
        try
        {
            var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            _root.Rebalance();
            var t1 = System.Diagnostics.Stopwatch.GetTimestamp();
            Stats.RebalanceTime = System.Diagnostics.Stopwatch.GetElapsedTime(t0, t1);
            _root.Spill();
            var t2 = System.Diagnostics.Stopwatch.GetTimestamp();
            Stats.SpillTime = System.Diagnostics.Stopwatch.GetElapsedTime(t1, t2);
            _meta.Root = _root.RootPgid;
            _meta.RootSequence = _root.Sequence;

            ulong opgid = _meta.Pgid;
            if (_meta.Freelist != BoltPage.NoFreelist)
            {
                FreePage(_meta.Freelist);
            }

            if (!_db.Options.NoFreelistSync)
            {
                var (fid, fbuf) = Allocate((_db.Freelist.Size / PageSize) + 1);
                _db.Freelist.Write(fbuf);
                _meta.Freelist = fid;
            }
            else
            {
                _meta.Freelist = BoltPage.NoFreelist;
            }

            if (_meta.Pgid > opgid)
            {
                _db.Grow((long)(_meta.Pgid + 1) * PageSize);
            }

            var t3 = System.Diagnostics.Stopwatch.GetTimestamp();
            _db.WritePages(_pages!, Stats);
            (BeforeMetaWrite ?? _db.BeforeMetaWrite)?.Invoke();
            _db.WriteMeta(ref _meta);
            Stats.WriteTime = System.Diagnostics.Stopwatch.GetElapsedTime(t3);
        }
        catch
        {
            RollbackCore();
            throw;
        }

        _pages = null;
        Close();
        _db.Published(_meta);
    }

    /// <summary>Discards the changes of a write transaction, or closes a read transaction. Idempotent via <see cref="Dispose"/>.</summary>
    /// <exception cref="BoltException"><c>tx closed</c> when already closed.</exception>
    public void Rollback()
    {
        EnsureOpen();
        RollbackCore();
    }

    private void RollbackCore()
    {
        if (Writable)
        {
            _db.RollbackFreelist(_meta.Txid);
        }

        Close();
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _pages = null;
        _db.CloseTx(this, _mapping);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!IsClosed)
        {
            RollbackCore();
        }
    }

    /// <summary>
    /// Writes a consistent copy of the whole database as of this transaction to <paramref name="w"/>
    /// (bbolt's tx.WriteTo): two freshly made meta pages (meta 0 with this txid, meta 1 with txid-1),
    /// then pages 2..high-water from this transaction's mapping. Writers may commit meanwhile.
    /// Returns the bytes written (= <see cref="Size"/>).
    /// </summary>
    public long WriteTo(Stream w)
    {
        EnsureOpen();
        var buf = new byte[PageSize];
        var m = _meta;
        m.WritePage(buf, 0);
        w.Write(buf);
        m.Txid--;
        Array.Clear(buf);
        m.WritePage(buf, 1);
        w.Write(buf);
        long n = 2L * PageSize;
        long end = Size;
        const int chunk = 1 << 20;
        for (long off = n; off < end; off += chunk)
        {
            int len = (int)Math.Min(chunk, end - off);
            w.Write(_mapping.Range(off, len));
        }

        return end;
    }

    /// <summary>Writes <see cref="WriteTo"/>'s copy to a new file at <paramref name="path"/> and fsyncs it.</summary>
    public void CopyFile(string path)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        WriteTo(fs);
        fs.Flush(true);
    }

    /// <summary>
    /// bbolt's consistency check (tx.Check): pages freed twice, pages referenced twice, pages out of
    /// bounds, pages neither reachable nor free, wrong page types, keys out of order. Returns the errors
    /// (empty when consistent) in bbolt's wording.
    /// </summary>
    public List<string> Check()
    {
        EnsureOpen();
        var errors = new List<string>();
        var freed = new HashSet<ulong>();
        foreach (var id in _db.FreelistSnapshotForCheck(this))
        {
            if (!freed.Add(id))
            {
                errors.Add($"page {id}: already freed");
            }
        }

        var reachable = new HashSet<ulong> { 0, 1 };
        if (_meta.Freelist != BoltPage.NoFreelist)
        {
            uint of = BoltPage.Overflow(_mapping.Page(_meta.Freelist, PageSize));
            for (ulong i = 0; i <= of; i++)
            {
                reachable.Add(_meta.Freelist + i);
            }
        }

        CheckTree(_meta.Root, reachable, freed, errors);
        for (ulong i = 0; i < _meta.Pgid; i++)
        {
            if (!reachable.Contains(i) && !freed.Contains(i))
            {
                errors.Add($"page {i}: unreachable unfreed");
            }
        }

        return errors;
    }

    private void CheckTree(ulong root, HashSet<ulong> reachable, HashSet<ulong> freed, List<string> errors)
    {
        var stack = new Stack<ulong>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            ulong id = stack.Pop();
            if (id >= _meta.Pgid)
            {
                errors.Add($"page {id}: out of bounds: {_meta.Pgid}");
                continue;
            }

            var p = _mapping.Page(id, PageSize);
            uint of = BoltPage.Overflow(p);
            for (ulong i = 0; i <= of; i++)
            {
                if (!reachable.Add(id + i))
                {
                    errors.Add($"page {id + i}: multiple references");
                }

                if (freed.Contains(id + i))
                {
                    errors.Add($"page {id + i}: reachable freed");
                }
            }

            ushort flags = BoltPage.Flags(p);
            if (flags != BoltPage.BranchFlag && flags != BoltPage.LeafFlag)
            {
                errors.Add($"page {id}: invalid type: {flags:x}");
                continue;
            }

            int count = BoltPage.Count(p);
            bool leaf = flags == BoltPage.LeafFlag;
            for (int i = 0; i < count; i++)
            {
                var key = leaf ? BoltPage.LeafKey(p, i) : BoltPage.BranchKey(p, i);
                if (i > 0)
                {
                    var prev = leaf ? BoltPage.LeafKey(p, i - 1) : BoltPage.BranchKey(p, i - 1);
                    if (prev.SequenceCompareTo(key) >= 0)
                    {
                        errors.Add($"page {id}: keys out of order at {i}");
                    }
                }

                if (!leaf)
                {
                    stack.Push(BoltPage.BranchPgid(p, i));
                }
                else if ((BoltPage.LeafElementFlags(p, i) & BoltPage.BucketLeafFlag) != 0)
                {
                    var v = BoltPage.LeafValue(p, i);
                    ulong sub = BinaryPrimitives.ReadUInt64LittleEndian(v);
                    if (sub != 0)
                    {
                        stack.Push(sub);
                    }
                }
            }
        }
    }

    /// <summary>Every page id reachable from this transaction's root (meta, freelist, bucket trees).</summary>
    internal HashSet<ulong> ReachablePages()
    {
        var reachable = new HashSet<ulong> { 0, 1 };
        var errors = new List<string>();
        CheckTree(_meta.Root, reachable, new HashSet<ulong>(), errors);
        return reachable;
    }
}
