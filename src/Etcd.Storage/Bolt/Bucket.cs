using System.Buffers.Binary;
using Etcd.Storage.Backend;

namespace Etcd.Storage.Bolt;

/// <summary>
/// A bucket: an ordered map of byte keys to byte values and nested buckets (bbolt's <c>bucket.go</c>).
/// Small buckets with no nested buckets are stored inline in their parent's leaf (bucket header with
/// root 0 followed by a leaf page), as bbolt does. Obtained from a <see cref="Tx"/> and valid only
/// while it is open. Read-only transactions' buckets may be read from several threads at once;
/// a write transaction's buckets belong to the writing thread.
/// </summary>
public sealed class Bucket
{
    private Dictionary<byte[], Bucket>? _buckets;
    private Cursor? _opCursor;

    internal Bucket(Tx tx, ulong root, ulong sequence, byte[]? inlinePage)
    {
        Tx = tx;
        RootPgid = root;
        Sequence = sequence;
        InlinePage = inlinePage;
        if (tx.Writable)
        {
            Nodes = new Dictionary<ulong, Node>();
            _buckets = new Dictionary<byte[], Bucket>(ByteArrayComparer.Instance);
        }
    }

    /// <summary>The transaction this bucket belongs to.</summary>
    public Tx Tx { get; }

    /// <summary>Page id of the bucket's root page; 0 for an inline bucket.</summary>
    public ulong RootPgid { get; internal set; }

    /// <summary>The bucket's sequence number (bbolt's Sequence / NextSequence).</summary>
    public ulong Sequence { get; private set; }

    /// <summary>Fraction a split fills pages to (bbolt's FillPercent, default 0.5; clamped to [0.1, 1]).
    /// Raise it for append-only keys, as etcd does (0.9) for its sequential revision keys.</summary>
    public double FillPercent { get; set; } = 0.5;

    /// <summary>Whether the transaction is writable.</summary>
    public bool Writable => Tx.Writable;

    internal byte[]? InlinePage;
    internal Node? RootNode;
    internal Dictionary<ulong, Node>? Nodes;

    /// <summary>Opens a cursor over this bucket.</summary>
    public Cursor Cursor()
    {
        Tx.EnsureOpen();
        if (Tx.Writable)
        {
            // Read transactions may be shared by threads: their counters are not kept.
            Tx.Stats.CursorCount++;
        }

        return new Cursor(this);
    }

    private Cursor OpCursor()
    {
        if (!Tx.Writable)
        {
            return new Cursor(this);
        }

        return _opCursor ??= new Cursor(this);
    }

    /// <summary>Copies the value stored under <paramref name="key"/>, or null when absent or a nested bucket.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key) => TryGet(key, out var v) ? v.ToArray() : null;

    /// <summary>
    /// Finds the value stored under <paramref name="key"/> without allocating; the span is valid until
    /// the transaction ends or this bucket is modified. False when absent or a nested bucket.
    /// </summary>
    public bool TryGet(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        Tx.EnsureOpen();
        ulong pgid = RootPgid;
        while (true)
        {
            var (node, page) = PageNode(pgid);
            if (node != null)
            {
                int idx = node.Search(key, out bool exact);
                if (node.IsLeaf)
                {
                    if (!exact || (node.Inodes[idx].Flags & BoltPage.BucketLeafFlag) != 0)
                    {
                        value = default;
                        return false;
                    }

                    value = node.Inodes[idx].Value;
                    return true;
                }

                if (!exact && idx > 0)
                {
                    idx--;
                }

                pgid = node.Inodes[idx].Pgid;
            }
            else
            {
                var p = Tx.PageSpan(page);
                if (BoltPage.IsLeaf(p))
                {
                    int idx = BoltPage.SearchLeaf(p, key, out bool exact);
                    if (!exact || (BoltPage.LeafElementFlags(p, idx) & BoltPage.BucketLeafFlag) != 0)
                    {
                        value = default;
                        return false;
                    }

                    value = BoltPage.LeafValue(p, idx);
                    return true;
                }

                pgid = BoltPage.BranchPgid(p, BoltPage.SearchBranch(p, key));
            }
        }
    }

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/> (copies both).</summary>
    /// <exception cref="BoltException"><c>tx closed</c>, <c>tx not writable</c>, <c>key required</c>,
    /// <c>key too large</c> (&gt; 32768 bytes), <c>value too large</c>, <c>incompatible value</c> (key names a bucket).</exception>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        Tx.EnsureWritable();
        if (key.IsEmpty)
        {
            throw new BoltException(BoltException.KeyRequired);
        }

        if (key.Length > BoltPage.MaxKeySize)
        {
            throw new BoltException(BoltException.KeyTooLarge);
        }

        if (value.Length > BoltPage.MaxValueSize)
        {
            throw new BoltException(BoltException.ValueTooLarge);
        }

        PutCore(key, key.ToArray(), value.ToArray());
    }

    /// <summary>
    /// <see cref="Put"/> taking ownership of <paramref name="key"/> and <paramref name="value"/> (no copy):
    /// the caller must never change the arrays afterwards.
    /// </summary>
    internal void PutOwned(byte[] key, byte[] value)
    {
        Tx.EnsureWritable();
        if (key.Length == 0)
        {
            throw new BoltException(BoltException.KeyRequired);
        }

        if (key.Length > BoltPage.MaxKeySize)
        {
            throw new BoltException(BoltException.KeyTooLarge);
        }

        PutCore(key, key, value);
    }

    private void PutCore(ReadOnlySpan<byte> key, byte[] keyArray, byte[] value)
    {
        var c = OpCursor();
        c.SeekRaw(key);
        if (c.CurrentRaw(out var k, out _, out uint flags) && k.SequenceEqual(key) && (flags & BoltPage.BucketLeafFlag) != 0)
        {
            throw new BoltException(BoltException.IncompatibleValue);
        }

        c.CurrentNode().Put(keyArray, keyArray, value, 0, 0);
    }

    /// <summary>Removes <paramref name="key"/>; absent keys are ignored.</summary>
    /// <exception cref="BoltException"><c>tx closed</c>, <c>tx not writable</c>, <c>incompatible value</c> (key names a bucket).</exception>
    public void Delete(ReadOnlySpan<byte> key)
    {
        Tx.EnsureWritable();
        var c = OpCursor();
        c.SeekRaw(key);
        if (!c.CurrentRaw(out var k, out _, out uint flags) || !k.SequenceEqual(key))
        {
            return;
        }

        if ((flags & BoltPage.BucketLeafFlag) != 0)
        {
            throw new BoltException(BoltException.IncompatibleValue);
        }

        c.CurrentNode().Del(key);
    }

    /// <summary>Visits every pair in key order; nested buckets are visited with an empty value.</summary>
    public void ForEach(BucketVisitor visitor)
    {
        var c = Cursor();
        for (bool ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
        {
            if (!visitor(k, v))
            {
                return;
            }
        }
    }

    /// <summary>The nested bucket named <paramref name="name"/>, or null.</summary>
    public Bucket? GetBucket(ReadOnlySpan<byte> name)
    {
        Tx.EnsureOpen();
        if (_buckets != null && _buckets.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(name, out var cached))
        {
            return cached;
        }

        var c = OpCursor();
        c.SeekRaw(name);
        if (!c.CurrentRaw(out var k, out _, out uint flags) || !k.SequenceEqual(name) || (flags & BoltPage.BucketLeafFlag) == 0)
        {
            return null;
        }

        var child = OpenBucket(c.RawValue());
        _buckets?.Add(name.ToArray(), child);
        return child;
    }

    private Bucket OpenBucket(ReadOnlySpan<byte> value)
    {
        ulong root = BinaryPrimitives.ReadUInt64LittleEndian(value);
        ulong seq = BinaryPrimitives.ReadUInt64LittleEndian(value.Slice(8));
        byte[]? inline = root == 0 ? value.Slice(BoltPage.BucketHeaderSize).ToArray() : null;
        return new Bucket(Tx, root, seq, inline);
    }

    /// <summary>Creates a nested bucket.</summary>
    /// <exception cref="BoltException"><c>bucket already exists</c>, <c>bucket name required</c>,
    /// <c>incompatible value</c> (a plain key has that name), <c>tx not writable</c>, <c>tx closed</c>.</exception>
    public Bucket CreateBucket(ReadOnlySpan<byte> name)
    {
        Tx.EnsureWritable();
        if (name.IsEmpty)
        {
            throw new BoltException(BoltException.BucketNameRequired);
        }

        var c = OpCursor();
        c.SeekRaw(name);
        if (c.CurrentRaw(out var k, out _, out uint flags) && k.SequenceEqual(name))
        {
            throw new BoltException((flags & BoltPage.BucketLeafFlag) != 0 ? BoltException.BucketExists : BoltException.IncompatibleValue);
        }

        // Header (root 0, sequence 0) followed by an empty inline leaf page.
        var value = new byte[BoltPage.BucketHeaderSize + BoltPage.HeaderSize];
        BinaryPrimitives.WriteUInt16LittleEndian(value.AsSpan(BoltPage.BucketHeaderSize + 8), BoltPage.LeafFlag);
        var key = name.ToArray();
        c.CurrentNode().Put(key, key, value, 0, BoltPage.BucketLeafFlag);

        // A bucket holding nested buckets is never inline any more.
        InlinePage = null;
        return GetBucket(name)!;
    }

    /// <summary>Returns the nested bucket, creating it when absent.</summary>
    public Bucket CreateBucketIfNotExists(ReadOnlySpan<byte> name) => GetBucket(name) ?? CreateBucket(name);

    /// <summary>Deletes a nested bucket and everything under it; its pages go to the freelist.</summary>
    /// <exception cref="BoltException"><c>bucket not found</c>, <c>incompatible value</c>, <c>tx not writable</c>, <c>tx closed</c>.</exception>
    public void DeleteBucket(ReadOnlySpan<byte> name)
    {
        Tx.EnsureWritable();
        var c = OpCursor();
        c.SeekRaw(name);
        if (!c.CurrentRaw(out var k, out _, out uint flags) || !k.SequenceEqual(name))
        {
            throw new BoltException(BoltException.BucketNotFound);
        }

        if ((flags & BoltPage.BucketLeafFlag) == 0)
        {
            throw new BoltException(BoltException.IncompatibleValue);
        }

        var child = GetBucket(name)!;
        var subs = new List<byte[]>();
        var cc = child.Cursor();
        for (bool ok = cc.First(out var ck, out _); ok; ok = cc.Next(out ck, out _))
        {
            if (cc.IsBucket)
            {
                subs.Add(ck.ToArray());
            }
        }

        foreach (var s in subs)
        {
            child.DeleteBucket(s);
        }

        _buckets!.GetAlternateLookup<ReadOnlySpan<byte>>().Remove(name);
        child.Nodes!.Clear();
        child.RootNode = null;
        child.Free();

        c.SeekRaw(name);
        c.CurrentNode().Del(name);
    }

    /// <summary>Sets the sequence number.</summary>
    public void SetSequence(ulong value)
    {
        Tx.EnsureWritable();
        if (RootNode == null)
        {
            NodeFor(RootPgid, null);
        }

        Sequence = value;
    }

    /// <summary>Increments and returns the sequence number.</summary>
    public ulong NextSequence()
    {
        SetSequence(Sequence + 1);
        return Sequence;
    }

    internal (Node? Node, PageRef Page) PageNode(ulong pgid)
    {
        if (RootPgid == 0)
        {
            if (pgid != 0)
            {
                throw new InvalidOperationException($"inline bucket non-zero page access: {pgid}");
            }

            if (RootNode != null)
            {
                return (RootNode, default);
            }

            return (null, new PageRef(0, InlinePage));
        }

        if (Nodes != null && Nodes.TryGetValue(pgid, out var n))
        {
            return (n, default);
        }

        return (null, new PageRef(pgid, null));
    }

    internal Node NodeFor(ulong pgid, Node? parent)
    {
        if (Nodes!.TryGetValue(pgid, out var existing))
        {
            return existing;
        }

        var n = new Node(this, false, parent);
        if (parent == null)
        {
            RootNode = n;
        }
        else
        {
            parent.Children.Add(n);
        }

        var span = InlinePage != null ? InlinePage : Tx.PageSpan(new PageRef(pgid, null));
        n.Read(span, pgid);
        Nodes[pgid] = n;
        Tx.Stats.NodeCount++;
        return n;
    }

    internal void Rebalance()
    {
        foreach (var n in Nodes!.Values.ToArray())
        {
            if (Nodes.TryGetValue(n.Pgid, out var cur) && ReferenceEquals(cur, n))
            {
                n.Rebalance();
            }
        }

        foreach (var child in _buckets!.Values)
        {
            child.Rebalance();
        }
    }

    internal void Spill()
    {
        foreach (var (name, child) in _buckets!)
        {
            byte[] value;
            if (child.Inlineable())
            {
                child.Free();
                value = child.WriteInline();
            }
            else
            {
                child.Spill();
                value = new byte[BoltPage.BucketHeaderSize];
                BinaryPrimitives.WriteUInt64LittleEndian(value, child.RootPgid);
                BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(8), child.Sequence);
            }

            if (child.RootNode == null)
            {
                continue;
            }

            var c = OpCursor();
            c.SeekRaw(name);
            if (!c.CurrentRaw(out var k, out _, out uint flags) || !k.SequenceEqual(name))
            {
                throw new InvalidOperationException($"misplaced bucket header: {Convert.ToHexString(name)} -> {Convert.ToHexString(k)}");
            }

            if ((flags & BoltPage.BucketLeafFlag) == 0)
            {
                throw new InvalidOperationException($"unexpected bucket header flag: {flags:x}");
            }

            c.CurrentNode().Put(name, name, value, 0, BoltPage.BucketLeafFlag);
        }

        if (RootNode == null)
        {
            return;
        }

        RootNode.Spill();
        RootNode = RootNode.Root();
        if (RootNode.Pgid >= Tx.MetaPgid)
        {
            throw new InvalidOperationException($"pgid ({RootNode.Pgid}) above high water mark ({Tx.MetaPgid})");
        }

        RootPgid = RootNode.Pgid;
    }

    private bool Inlineable()
    {
        var n = RootNode;
        if (n == null || !n.IsLeaf)
        {
            return false;
        }

        int size = BoltPage.HeaderSize;
        int max = Tx.PageSize / 4;
        foreach (var inode in n.Inodes)
        {
            size += BoltPage.ElementSize + inode.Key.Length + (inode.Value?.Length ?? 0);
            if ((inode.Flags & BoltPage.BucketLeafFlag) != 0 || size > max)
            {
                return false;
            }
        }

        return true;
    }

    private byte[] WriteInline()
    {
        var n = RootNode!;
        var value = new byte[BoltPage.BucketHeaderSize + n.Size()];
        BinaryPrimitives.WriteUInt64LittleEndian(value, RootPgid);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(8), Sequence);
        n.Write(value.AsSpan(BoltPage.BucketHeaderSize));
        return value;
    }

    /// <summary>Frees every page of this bucket (not its nested buckets' separate trees).</summary>
    internal void Free()
    {
        if (RootPgid == 0)
        {
            return;
        }

        FreeTree(RootPgid);
        RootPgid = 0;
    }

    private void FreeTree(ulong pgid)
    {
        List<ulong>? children = null;
        if (Nodes != null && Nodes.TryGetValue(pgid, out var n))
        {
            if (!n.IsLeaf)
            {
                children = n.Inodes.Select(static i => i.Pgid).ToList();
            }

            n.Free();
        }
        else
        {
            var p = Tx.PageSpan(new PageRef(pgid, null));
            if (!BoltPage.IsLeaf(p))
            {
                int count = BoltPage.Count(p);
                children = new List<ulong>(count);
                for (int i = 0; i < count; i++)
                {
                    children.Add(BoltPage.BranchPgid(p, i));
                }
            }

            Tx.FreePage(pgid);
        }

        if (children != null)
        {
            foreach (var c in children)
            {
                FreeTree(c);
            }
        }
    }
}

/// <summary>Compares byte arrays by content; also looks them up by span without allocating.</summary>
internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<byte> alternate)
    {
        var h = new HashCode();
        h.AddBytes(alternate);
        return h.ToHashCode();
    }

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
}
