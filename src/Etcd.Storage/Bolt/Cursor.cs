namespace Etcd.Storage.Bolt;

/// <summary>A page of the mapped file (<see cref="Inline"/> null) or an inline bucket's page.</summary>
internal readonly record struct PageRef(ulong Id, byte[]? Inline);

/// <summary>
/// Ordered iteration over one bucket (bbolt's <c>cursor.go</c>). Keys and values come back as spans
/// that stay valid until the transaction ends or the bucket is modified. A nested bucket shows up
/// with an empty value and <see cref="IsBucket"/> true. Not thread-safe: one thread per cursor.
/// </summary>
public sealed class Cursor
{
    private struct Elem
    {
        public Node? Node;
        public PageRef Page;
        public int Index;
    }

    private readonly Bucket _bucket;
    private Elem[] _stack = new Elem[8];
    private int _depth;
    private uint _flags;

    internal Cursor(Bucket bucket) => _bucket = bucket;

    /// <summary>The bucket this cursor walks.</summary>
    public Bucket Bucket => _bucket;

    /// <summary>Whether the current entry is a nested bucket (its value is then empty).</summary>
    public bool IsBucket => (_flags & BoltPage.BucketLeafFlag) != 0;

    /// <summary>Moves to the first entry; false when the bucket is empty.</summary>
    public bool First(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _bucket.Tx.EnsureOpen();
        _depth = 0;
        Push(_bucket.PageNode(_bucket.RootPgid), 0);
        GoFirst();
        if (Count(ref _stack[_depth - 1]) == 0)
        {
            return Next(out key, out value);
        }

        return KeyValue(out key, out value);
    }

    /// <summary>Moves to the last entry; false when the bucket is empty.</summary>
    public bool Last(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _bucket.Tx.EnsureOpen();
        _depth = 0;
        var r = _bucket.PageNode(_bucket.RootPgid);
        Push(r, 0);
        _stack[0].Index = Count(ref _stack[0]) - 1;
        GoLast();
        if (Count(ref _stack[_depth - 1]) == 0)
        {
            return Prev(out key, out value);
        }

        return KeyValue(out key, out value);
    }

    /// <summary>Moves to the next entry; false past the end.</summary>
    public bool Next(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _bucket.Tx.EnsureOpen();
        while (true)
        {
            int i;
            for (i = _depth - 1; i >= 0; i--)
            {
                ref var e = ref _stack[i];
                if (e.Index < Count(ref e) - 1)
                {
                    e.Index++;
                    break;
                }
            }

            if (i == -1)
            {
                // Park on the end: keep the last leaf with its index past the end.
                if (_depth > 0)
                {
                    _stack[_depth - 1].Index = Count(ref _stack[_depth - 1]);
                }

                key = default;
                value = default;
                _flags = 0;
                return false;
            }

            _depth = i + 1;
            GoFirst();
            if (Count(ref _stack[_depth - 1]) == 0)
            {
                continue;
            }

            return KeyValue(out key, out value);
        }
    }

    /// <summary>Moves to the previous entry; false before the start.</summary>
    public bool Prev(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _bucket.Tx.EnsureOpen();
        while (true)
        {
            int i;
            for (i = _depth - 1; i >= 0; i--)
            {
                ref var e = ref _stack[i];
                if (e.Index > 0)
                {
                    e.Index--;
                    break;
                }
            }

            if (i == -1)
            {
                _depth = 0;
                key = default;
                value = default;
                _flags = 0;
                return false;
            }

            _depth = i + 1;
            GoLast();
            if (Count(ref _stack[_depth - 1]) == 0)
            {
                continue;
            }

            return KeyValue(out key, out value);
        }
    }

    /// <summary>Moves to the first entry whose key is &gt;= <paramref name="seek"/>; false when there is none.</summary>
    public bool Seek(ReadOnlySpan<byte> seek, out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _bucket.Tx.EnsureOpen();
        SeekRaw(seek);
        ref var top = ref _stack[_depth - 1];
        if (top.Index >= Count(ref top))
        {
            return Next(out key, out value);
        }

        return KeyValue(out key, out value);
    }

    /// <summary>Deletes the entry under the cursor (write transactions only).</summary>
    /// <exception cref="BoltException"><c>tx closed</c>, <c>tx not writable</c>, or <c>incompatible value</c> on a nested bucket.</exception>
    public void Delete()
    {
        _bucket.Tx.EnsureWritable();
        if (!KeyValue(out var key, out _))
        {
            return;
        }

        if (IsBucket)
        {
            throw new BoltException(BoltException.IncompatibleValue);
        }

        var k = key.ToArray();
        CurrentNode().Del(k);
    }

    /// <summary>Positions the stack on the leaf slot where <paramref name="seek"/> is or would be.</summary>
    internal void SeekRaw(ReadOnlySpan<byte> seek)
    {
        _depth = 0;
        ulong pgid = _bucket.RootPgid;
        while (true)
        {
            var (node, page) = _bucket.PageNode(pgid);
            Push((node, page), 0);
            ref var e = ref _stack[_depth - 1];
            if (node != null)
            {
                if (node.IsLeaf)
                {
                    e.Index = node.Search(seek, out _);
                    return;
                }

                int idx = node.Search(seek, out bool exact);
                if (!exact && idx > 0)
                {
                    idx--;
                }

                e.Index = idx;
                pgid = node.Inodes[idx].Pgid;
            }
            else
            {
                var p = _bucket.Tx.PageSpan(page);
                if (BoltPage.IsLeaf(p))
                {
                    e.Index = BoltPage.SearchLeaf(p, seek, out _);
                    return;
                }

                int idx = BoltPage.SearchBranch(p, seek);
                e.Index = idx;
                pgid = BoltPage.BranchPgid(p, idx);
            }
        }
    }

    /// <summary>After <see cref="SeekRaw"/>: the key at the slot (possibly past the end), with flags.</summary>
    internal bool CurrentRaw(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out uint flags)
    {
        bool ok = KeyValue(out key, out value);
        flags = _flags;
        return ok;
    }

    /// <summary>Materializes the leaf node under the cursor (and its ancestors) for writing.</summary>
    internal Node CurrentNode()
    {
        ref var root = ref _stack[0];
        var n = root.Node ?? _bucket.NodeFor(root.Page.Id, null);
        for (int i = 0; i < _depth - 1; i++)
        {
            n = n.ChildAt(_stack[i].Index);
        }

        return n;
    }

    private void Push((Node? Node, PageRef Page) r, int index)
    {
        if (_depth == _stack.Length)
        {
            Array.Resize(ref _stack, _depth * 2);
        }

        _stack[_depth++] = new Elem { Node = r.Node, Page = r.Page, Index = index };
    }

    private int Count(ref Elem e) => e.Node != null ? e.Node.Inodes.Count : BoltPage.Count(_bucket.Tx.PageSpan(e.Page));

    private bool IsLeaf(ref Elem e) => e.Node != null ? e.Node.IsLeaf : BoltPage.IsLeaf(_bucket.Tx.PageSpan(e.Page));

    private ulong ChildPgid(ref Elem e) => e.Node != null ? e.Node.Inodes[e.Index].Pgid : BoltPage.BranchPgid(_bucket.Tx.PageSpan(e.Page), e.Index);

    private void GoFirst()
    {
        while (true)
        {
            ref var e = ref _stack[_depth - 1];
            if (IsLeaf(ref e))
            {
                return;
            }

            Push(_bucket.PageNode(ChildPgid(ref e)), 0);
        }
    }

    private void GoLast()
    {
        while (true)
        {
            ref var e = ref _stack[_depth - 1];
            if (IsLeaf(ref e))
            {
                return;
            }

            Push(_bucket.PageNode(ChildPgid(ref e)), 0);
            ref var c = ref _stack[_depth - 1];
            c.Index = Count(ref c) - 1;
        }
    }

    private bool KeyValue(out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        ref var e = ref _stack[_depth - 1];
        if (e.Node != null)
        {
            if (e.Index < 0 || e.Index >= e.Node.Inodes.Count)
            {
                key = default;
                value = default;
                _flags = 0;
                return false;
            }

            var inode = e.Node.Inodes[e.Index];
            key = inode.Key;
            _flags = inode.Flags;
            value = (_flags & BoltPage.BucketLeafFlag) != 0 ? default : inode.Value;
            return true;
        }

        var p = _bucket.Tx.PageSpan(e.Page);
        if (e.Index < 0 || e.Index >= BoltPage.Count(p))
        {
            key = default;
            value = default;
            _flags = 0;
            return false;
        }

        key = BoltPage.LeafKey(p, e.Index);
        _flags = BoltPage.LeafElementFlags(p, e.Index);
        value = (_flags & BoltPage.BucketLeafFlag) != 0 ? default : BoltPage.LeafValue(p, e.Index);
        return true;
    }

    /// <summary>Value with bucket flag retained: for opening nested buckets.</summary>
    internal ReadOnlySpan<byte> RawValue()
    {
        ref var e = ref _stack[_depth - 1];
        if (e.Node != null)
        {
            return e.Node.Inodes[e.Index].Value;
        }

        return BoltPage.LeafValue(_bucket.Tx.PageSpan(e.Page), e.Index);
    }
}
