namespace Etcd.Storage.Bolt;

/// <summary>One key/value (leaf) or key/child (branch) entry of a <see cref="Node"/>.</summary>
internal struct Inode
{
    public uint Flags;
    public ulong Pgid;
    public byte[] Key;
    public byte[]? Value;
}

/// <summary>
/// The in-memory, modifiable form of a page during a write transaction (bbolt's <c>node.go</c>):
/// materialized on first write under it, split/merged and written to freshly allocated pages on commit.
/// </summary>
internal sealed class Node
{
    public readonly Bucket Bucket;
    public bool IsLeaf;
    public bool Unbalanced;
    public bool Spilled;
    public byte[]? Key;
    public ulong Pgid;
    public Node? Parent;
    public List<Node> Children = new();
    public List<Inode> Inodes = new();

    public Node(Bucket bucket, bool isLeaf, Node? parent)
    {
        Bucket = bucket;
        IsLeaf = isLeaf;
        Parent = parent;
    }

    public Node Root()
    {
        var n = this;
        while (n.Parent != null)
        {
            n = n.Parent;
        }

        return n;
    }

    private int MinKeys => IsLeaf ? 1 : 2;

    public int Size()
    {
        int sz = BoltPage.HeaderSize;
        foreach (ref readonly var i in System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Inodes))
        {
            sz += BoltPage.ElementSize + i.Key.Length + (i.Value?.Length ?? 0);
        }

        return sz;
    }

    public Node ChildAt(int index)
    {
        if (IsLeaf)
        {
            throw new InvalidOperationException($"invalid childAt({index}) on a leaf node");
        }

        return Bucket.NodeFor(Inodes[index].Pgid, this);
    }

    public int ChildIndex(Node child) => Search(child.Key!, out _);

    public Node? NextSibling()
    {
        if (Parent == null)
        {
            return null;
        }

        int index = Parent.ChildIndex(this);
        return index >= Parent.Inodes.Count - 1 ? null : Parent.ChildAt(index + 1);
    }

    public Node? PrevSibling()
    {
        if (Parent == null)
        {
            return null;
        }

        int index = Parent.ChildIndex(this);
        return index == 0 ? null : Parent.ChildAt(index - 1);
    }

    /// <summary>Index of the first inode whose key is &gt;= key.</summary>
    public int Search(ReadOnlySpan<byte> key, out bool exact)
    {
        int lo = 0, hi = Inodes.Count;
        exact = false;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Inodes);
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            int c = span[mid].Key.AsSpan().SequenceCompareTo(key);
            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                if (c == 0)
                {
                    exact = true;
                    return mid;
                }

                hi = mid;
            }
        }

        return lo;
    }

    public void Put(ReadOnlySpan<byte> oldKey, byte[] newKey, byte[]? value, ulong pgid, uint flags)
    {
        if (pgid >= Bucket.Tx.MetaPgid)
        {
            throw new InvalidOperationException($"pgid ({pgid}) above high water mark ({Bucket.Tx.MetaPgid})");
        }

        if (newKey.Length == 0)
        {
            throw new InvalidOperationException("put: zero-length new key");
        }

        int index = Search(oldKey, out bool exact);
        var inode = new Inode { Flags = flags, Key = newKey, Value = value, Pgid = pgid };
        if (exact)
        {
            Inodes[index] = inode;
        }
        else
        {
            Inodes.Insert(index, inode);
        }
    }

    public void Del(ReadOnlySpan<byte> key)
    {
        int index = Search(key, out bool exact);
        if (!exact)
        {
            return;
        }

        Inodes.RemoveAt(index);
        Unbalanced = true;
    }

    public void Read(ReadOnlySpan<byte> page, ulong pgid)
    {
        Pgid = pgid;
        IsLeaf = BoltPage.IsLeaf(page);
        int count = BoltPage.Count(page);
        Inodes = new List<Inode>(count + 1);
        for (int i = 0; i < count; i++)
        {
            if (IsLeaf)
            {
                Inodes.Add(new Inode
                {
                    Flags = BoltPage.LeafElementFlags(page, i),
                    Key = BoltPage.LeafKey(page, i).ToArray(),
                    Value = BoltPage.LeafValue(page, i).ToArray(),
                });
            }
            else
            {
                Inodes.Add(new Inode { Pgid = BoltPage.BranchPgid(page, i), Key = BoltPage.BranchKey(page, i).ToArray() });
            }
        }

        Key = count > 0 ? Inodes[0].Key : null;
    }

    /// <summary>Writes the elements into a page buffer (header id/overflow already set by the allocator).</summary>
    public void Write(Span<byte> page)
    {
        if (Inodes.Count >= 0xFFFF)
        {
            throw new InvalidOperationException($"inode overflow: {Inodes.Count} (pgid={Pgid})");
        }

        BitConverterHelpers.WriteU16(page, 8, IsLeaf ? BoltPage.LeafFlag : BoltPage.BranchFlag);
        BitConverterHelpers.WriteU16(page, 10, (ushort)Inodes.Count);
        int data = BoltPage.HeaderSize + (Inodes.Count * BoltPage.ElementSize);
        for (int i = 0; i < Inodes.Count; i++)
        {
            var inode = Inodes[i];
            int off = BoltPage.HeaderSize + (i * BoltPage.ElementSize);
            int vlen = inode.Value?.Length ?? 0;
            if (IsLeaf)
            {
                BitConverterHelpers.WriteU32(page, off, inode.Flags);
                BitConverterHelpers.WriteU32(page, off + 4, (uint)(data - off));
                BitConverterHelpers.WriteU32(page, off + 8, (uint)inode.Key.Length);
                BitConverterHelpers.WriteU32(page, off + 12, (uint)vlen);
            }
            else
            {
                BitConverterHelpers.WriteU32(page, off, (uint)(data - off));
                BitConverterHelpers.WriteU32(page, off + 4, (uint)inode.Key.Length);
                BitConverterHelpers.WriteU64(page, off + 8, inode.Pgid);
            }

            inode.Key.CopyTo(page.Slice(data));
            data += inode.Key.Length;
            if (vlen > 0)
            {
                inode.Value.AsSpan().CopyTo(page.Slice(data));
                data += vlen;
            }
        }
    }

    /// <summary>
    /// Breaks this node into nodes that each fit a page, filled to <see cref="Bolt.Bucket.FillPercent"/>
    /// (each keeps at least <see cref="BoltPage.MinKeysPerPage"/> inodes). One pass: each inode is copied once.
    /// </summary>
    private List<Node> Split(int pageSize)
    {
        var all = Inodes;
        double fill = Math.Clamp(Bucket.FillPercent, 0.1, 1.0);
        int threshold = (int)(pageSize * fill);
        var cuts = new List<int>();
        int start = 0;
        while (all.Count - start > BoltPage.MinKeysPerPage * 2 && !SizeLessThan(all, start, pageSize))
        {
            int splitIndex = 0, sz = BoltPage.HeaderSize;
            for (int i = 0; i < all.Count - start - BoltPage.MinKeysPerPage; i++)
            {
                splitIndex = i;
                var inode = all[start + i];
                int elsize = BoltPage.ElementSize + inode.Key.Length + (inode.Value?.Length ?? 0);
                if (i >= BoltPage.MinKeysPerPage && sz + elsize > threshold)
                {
                    break;
                }

                sz += elsize;
            }

            start += splitIndex;
            cuts.Add(start);
        }

        var nodes = new List<Node>(cuts.Count + 1) { this };
        if (cuts.Count == 0)
        {
            return nodes;
        }

        if (Parent == null)
        {
            Parent = new Node(Bucket, false, null);
            Parent.Children.Add(this);
        }

        Inodes = all.GetRange(0, cuts[0]);
        for (int c = 0; c < cuts.Count; c++)
        {
            int from = cuts[c], to = c + 1 < cuts.Count ? cuts[c + 1] : all.Count;
            var next = new Node(Bucket, IsLeaf, Parent) { Inodes = all.GetRange(from, to - from) };
            Parent.Children.Add(next);
            nodes.Add(next);
            Bucket.Tx.Stats.Split++;
        }

        return nodes;
    }

    private static bool SizeLessThan(List<Inode> inodes, int start, int v)
    {
        int sz = BoltPage.HeaderSize;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(inodes).Slice(start);
        foreach (ref readonly var i in span)
        {
            sz += BoltPage.ElementSize + i.Key.Length + (i.Value?.Length ?? 0);
            if (sz >= v)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Writes this node (split as needed) and its children to dirty pages; updates the parent.</summary>
    public void Spill()
    {
        if (Spilled)
        {
            return;
        }

        var tx = Bucket.Tx;
        Children.Sort(static (a, b) => a.Inodes[0].Key.AsSpan().SequenceCompareTo(b.Inodes[0].Key));
        for (int i = 0; i < Children.Count; i++)
        {
            Children[i].Spill();
        }

        Children.Clear();

        foreach (var node in Split(tx.PageSize))
        {
            if (node.Pgid > 0)
            {
                tx.FreePage(node.Pgid);
                node.Pgid = 0;
            }

            int count = (node.Size() / tx.PageSize) + 1;
            var (id, buf) = tx.Allocate(count);
            if (id >= tx.MetaPgid)
            {
                throw new InvalidOperationException($"pgid ({id}) above high water mark ({tx.MetaPgid})");
            }

            node.Pgid = id;
            node.Write(buf);
            node.Spilled = true;

            if (node.Parent != null)
            {
                var key = node.Key ?? node.Inodes[0].Key;
                node.Parent.Put(key, node.Inodes[0].Key, null, node.Pgid, 0);
                node.Key = node.Inodes[0].Key;
            }

            tx.Stats.Spill++;
        }

        if (Parent != null && Parent.Pgid == 0)
        {
            Children.Clear();
            Parent.Spill();
        }
    }

    /// <summary>Merges this node into a sibling when it fell below a quarter page or its minimum keys.</summary>
    public void Rebalance()
    {
        if (!Unbalanced)
        {
            return;
        }

        Unbalanced = false;
        var tx = Bucket.Tx;
        tx.Stats.Rebalance++;

        int threshold = tx.PageSize / 4;
        if (Size() > threshold && Inodes.Count > MinKeys)
        {
            return;
        }

        if (Parent == null)
        {
            if (!IsLeaf && Inodes.Count == 1)
            {
                var child = Bucket.NodeFor(Inodes[0].Pgid, this);
                IsLeaf = child.IsLeaf;
                Inodes = child.Inodes;
                Children = child.Children;
                foreach (var inode in Inodes)
                {
                    if (inode.Pgid != 0 && Bucket.Nodes!.TryGetValue(inode.Pgid, out var c))
                    {
                        c.Parent = this;
                    }
                }

                child.Parent = null;
                Bucket.Nodes!.Remove(child.Pgid);
                child.Free();
            }

            return;
        }

        var parent = Parent;
        if (Inodes.Count == 0)
        {
            parent.Del(Key!);
            parent.RemoveChild(this);
            Bucket.Nodes!.Remove(Pgid);
            Free();
            parent.Rebalance();
            return;
        }

        if (parent.ChildIndex(this) == 0)
        {
            var target = NextSibling()!;
            foreach (var inode in target.Inodes)
            {
                if (inode.Pgid != 0 && Bucket.Nodes!.TryGetValue(inode.Pgid, out var child))
                {
                    child.Parent!.RemoveChild(child);
                    child.Parent = this;
                    Children.Add(child);
                }
            }

            Inodes.AddRange(target.Inodes);
            parent.Del(target.Key!);
            parent.RemoveChild(target);
            Bucket.Nodes!.Remove(target.Pgid);
            target.Free();
        }
        else
        {
            var target = PrevSibling()!;
            foreach (var inode in Inodes)
            {
                if (inode.Pgid != 0 && Bucket.Nodes!.TryGetValue(inode.Pgid, out var child))
                {
                    child.Parent!.RemoveChild(child);
                    child.Parent = target;
                    target.Children.Add(child);
                }
            }

            target.Inodes.AddRange(Inodes);
            parent.Del(Key!);
            parent.RemoveChild(this);
            Bucket.Nodes!.Remove(Pgid);
            Free();
        }

        parent.Rebalance();
    }

    private void RemoveChild(Node target) => Children.Remove(target);

    public void Free()
    {
        if (Pgid != 0)
        {
            Bucket.Tx.FreePage(Pgid);
            Pgid = 0;
        }
    }
}

internal static class BitConverterHelpers
{
    public static void WriteU16(Span<byte> s, int off, ushort v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(s.Slice(off), v);

    public static void WriteU32(Span<byte> s, int off, uint v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(s.Slice(off), v);

    public static void WriteU64(Span<byte> s, int off, ulong v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(s.Slice(off), v);
}
