using System.Buffers.Binary;

namespace Etcd.Storage.Bolt;

/// <summary>
/// bbolt's array freelist (<c>freelist.go</c>): sorted free page ids plus, per write txid, the pages
/// that transaction freed (pending until no reader can still see them). Not thread-safe: used by the
/// single writer and by the db under its meta lock.
/// </summary>
internal sealed class Freelist
{
    private List<ulong> _ids = new();
    private readonly SortedDictionary<ulong, List<ulong>> _pending = new();

    public int FreeCount => _ids.Count;

    public int PendingCount
    {
        get
        {
            int n = 0;
            foreach (var kv in _pending)
            {
                n += kv.Value.Count;
            }

            return n;
        }
    }

    public int Count => FreeCount + PendingCount;

    /// <summary>Bytes of the freelist page this list needs (header + ids, + the count slot past 0xFFFF).</summary>
    public int Size
    {
        get
        {
            int n = Count;
            if (n >= 0xFFFF)
            {
                n++;
            }

            return BoltPage.HeaderSize + (8 * n);
        }
    }

    /// <summary>Takes a run of <paramref name="n"/> contiguous free pages; returns its first id or 0.</summary>
    public ulong Allocate(int n)
    {
        if (_ids.Count == 0 || n <= 0)
        {
            return 0;
        }

        ulong initial = 0, previd = 0;
        for (int i = 0; i < _ids.Count; i++)
        {
            ulong id = _ids[i];
            if (id <= 1)
            {
                throw new InvalidOperationException($"invalid page allocation: {id}");
            }

            if (previd == 0 || id - previd != 1)
            {
                initial = id;
            }

            if (id - initial + 1 == (ulong)n)
            {
                int start = i + 1 - n;
                _ids.RemoveRange(start, n);
                return initial;
            }

            previd = id;
        }

        return 0;
    }

    /// <summary>Marks page <paramref name="id"/> and its <paramref name="overflow"/> pages freed by <paramref name="txid"/>.</summary>
    public void Free(ulong txid, ulong id, uint overflow)
    {
        if (id <= 1)
        {
            throw new InvalidOperationException($"cannot free page 0 or 1: {id}");
        }

        if (!_pending.TryGetValue(txid, out var list))
        {
            list = new List<ulong>();
            _pending[txid] = list;
        }

        for (ulong i = 0; i <= overflow; i++)
        {
            list.Add(id + i);
        }
    }

    /// <summary>
    /// Moves the pages freed by write transactions with txid &lt;= <paramref name="minReaderTxid"/> to the
    /// free list: a reader of snapshot t never sees the pages that commit t (or earlier) replaced.
    /// </summary>
    public void ReleaseUpTo(ulong minReaderTxid)
    {
        List<ulong>? released = null;
        List<ulong>? done = null;
        foreach (var kv in _pending)
        {
            if (kv.Key > minReaderTxid)
            {
                break;
            }

            (released ??= new()).AddRange(kv.Value);
            (done ??= new()).Add(kv.Key);
        }

        if (released is null)
        {
            return;
        }

        foreach (var t in done!)
        {
            _pending.Remove(t);
        }

        released.AddRange(_ids);
        released.Sort();
        _ids = released;
    }

    /// <summary>Forgets what <paramref name="txid"/> freed (rolled back).</summary>
    public void Rollback(ulong txid) => _pending.Remove(txid);

    /// <summary>All free and pending ids, sorted.</summary>
    public List<ulong> All()
    {
        var all = new List<ulong>(Count);
        all.AddRange(_ids);
        foreach (var kv in _pending)
        {
            all.AddRange(kv.Value);
        }

        all.Sort();
        return all;
    }

    /// <summary>Loads the ids of a freelist page (every id becomes free).</summary>
    public void Read(ReadOnlySpan<byte> page)
    {
        _ids = ReadIds(page);
        _ids.Sort();
    }

    public static List<ulong> ReadIds(ReadOnlySpan<byte> page)
    {
        if ((BoltPage.Flags(page) & BoltPage.FreelistFlag) == 0)
        {
            throw new BoltException($"invalid freelist page: {BoltPage.Id(page)}");
        }

        int idx = 0;
        long count = BoltPage.Count(page);
        if (count == 0xFFFF)
        {
            idx = 1;
            count = (long)BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(BoltPage.HeaderSize));
        }

        var ids = new List<ulong>((int)count);
        for (long i = 0; i < count; i++)
        {
            ids.Add(BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(BoltPage.HeaderSize + (int)((idx + i) * 8))));
        }

        return ids;
    }

    /// <summary>Loads the committed freelist page again, minus the pages still pending (after a rollback).</summary>
    public void Reload(ReadOnlySpan<byte> page) => ReloadIds(ReadIds(page));

    /// <summary>Makes <paramref name="ids"/> the free ids, minus the pages still pending.</summary>
    public void ReloadIds(List<ulong> ids)
    {
        var pending = new HashSet<ulong>();
        foreach (var kv in _pending)
        {
            foreach (var id in kv.Value)
            {
                pending.Add(id);
            }
        }

        ids.RemoveAll(pending.Contains);
        ids.Sort();
        _ids = ids;
    }

    /// <summary>Writes the freelist (free + pending ids, sorted) into a page buffer whose id/overflow are set.</summary>
    public void Write(Span<byte> page)
    {
        var all = All();
        int l = all.Count;
        int idx = 0;
        ushort count;
        if (l < 0xFFFF)
        {
            count = (ushort)l;
        }
        else
        {
            count = 0xFFFF;
            BinaryPrimitives.WriteUInt64LittleEndian(page.Slice(BoltPage.HeaderSize), (ulong)l);
            idx = 1;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(page.Slice(8), BoltPage.FreelistFlag);
        BinaryPrimitives.WriteUInt16LittleEndian(page.Slice(10), count);
        for (int i = 0; i < l; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(page.Slice(BoltPage.HeaderSize + ((idx + i) * 8)), all[i]);
        }
    }
}
