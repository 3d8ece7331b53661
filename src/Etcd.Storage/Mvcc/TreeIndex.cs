namespace Etcd.Storage.Mvcc;

/// <summary>
/// The in-memory key index (etcd's <c>treeIndex</c> in <c>mvcc/index.go</c>): a red-black tree of
/// <see cref="KeyIndex"/> ordered by key bytes (unsigned lexicographic). Not thread-safe:
/// <see cref="KvStore"/> guards it with its reader/writer lock.
/// </summary>
/// <remarks>
/// Ranges take <c>end</c> the way etcd's index does: <c>null</c> = the single key, empty = every key
/// at or after <c>key</c>, otherwise the half-open interval [key, end).
/// </remarks>
internal sealed class TreeIndex
{
    private readonly SortedSet<KeyIndex> _tree = new(KeyComparer.Instance);
    private static readonly KeyIndex s_upperSentinel = new([]);

    public int Count => _tree.Count;

    public KeyIndex? Find(ReadOnlySpan<byte> key)
        => _tree.TryGetValue(new KeyIndex(key.ToArray()), out var ki) ? ki : null;

    public bool TryGet(ReadOnlySpan<byte> key, long atRev, out Revision modified, out Revision created, out long ver)
    {
        var ki = Find(key);
        if (ki is null)
        {
            modified = default;
            created = default;
            ver = 0;
            return false;
        }

        return ki.TryGet(atRev, out modified, out created, out ver);
    }

    /// <summary>Records a put of <paramref name="key"/> at <paramref name="rev"/>, creating the entry if needed.</summary>
    public KeyIndex Put(byte[] key, Revision rev)
    {
        var probe = new KeyIndex(key);
        if (!_tree.TryGetValue(probe, out var ki))
        {
            ki = probe;
            _tree.Add(ki);
        }

        ki.Put(rev.Main, rev.Sub);
        return ki;
    }

    /// <summary>Records a tombstone; false when the key is not live (etcd's ErrRevisionNotFound).</summary>
    public bool Tombstone(ReadOnlySpan<byte> key, Revision rev)
    {
        var ki = Find(key);
        return ki is not null && ki.Tombstone(rev.Main, rev.Sub);
    }

    public void Insert(KeyIndex ki)
    {
        _tree.Remove(ki);
        _tree.Add(ki);
    }

    /// <summary>Visits the key indexes in [key, end) in key order (see the class remarks for <paramref name="end"/>).</summary>
    public IEnumerable<KeyIndex> Visit(byte[] key, byte[]? end)
    {
        if (end is null)
        {
            var ki = Find(key);
            return ki is null ? [] : [ki];
        }

        if (end.Length > 0 && key.AsSpan().SequenceCompareTo(end) >= 0)
        {
            return [];
        }

        var upper = end.Length == 0 ? s_upperSentinel : new KeyIndex(end);
        return VisitView(_tree.GetViewBetween(new KeyIndex(key), upper), end);
    }

    private static IEnumerable<KeyIndex> VisitView(SortedSet<KeyIndex> view, byte[] end)
    {
        foreach (var ki in view)
        {
            if (end.Length > 0 && ki.Key.AsSpan().SequenceCompareTo(end) >= 0)
            {
                yield break;
            }

            yield return ki;
        }
    }

    /// <summary>The revisions visible at <paramref name="atRev"/> of the keys in the range, in key order.</summary>
    public List<Revision> Revisions(byte[] key, byte[]? end, long atRev)
    {
        var revs = new List<Revision>();
        foreach (var ki in Visit(key, end))
        {
            if (ki.TryGet(atRev, out var rev, out _, out _))
            {
                revs.Add(rev);
            }
        }

        return revs;
    }

    /// <summary>The keys live at <paramref name="atRev"/> in the range with their visible revisions, in key order.</summary>
    public List<KeyIndex> RangeLive(byte[] key, byte[]? end, long atRev)
    {
        var keys = new List<KeyIndex>();
        foreach (var ki in Visit(key, end))
        {
            if (ki.TryGet(atRev, out _, out _, out _))
            {
                keys.Add(ki);
            }
        }

        return keys;
    }

    /// <summary>Compacts every key at <paramref name="rev"/>, removing emptied keys; returns the revisions at or below it to keep.</summary>
    public HashSet<Revision> Compact(long rev)
    {
        var available = new HashSet<Revision>();
        List<KeyIndex>? emptied = null;
        foreach (var ki in _tree)
        {
            ki.Compact(rev, available);
            if (ki.IsEmpty)
            {
                (emptied ??= []).Add(ki);
            }
        }

        if (emptied is not null)
        {
            foreach (var ki in emptied)
            {
                _tree.Remove(ki);
            }
        }

        return available;
    }

    /// <summary>The revisions a compaction at <paramref name="rev"/> would keep (no change).</summary>
    public HashSet<Revision> Keep(long rev)
    {
        var available = new HashSet<Revision>();
        foreach (var ki in _tree)
        {
            ki.Keep(rev, available);
        }

        return available;
    }

    public IEnumerable<KeyIndex> All => _tree;

    private sealed class KeyComparer : IComparer<KeyIndex>
    {
        public static readonly KeyComparer Instance = new();

        public int Compare(KeyIndex? x, KeyIndex? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            if (ReferenceEquals(x, s_upperSentinel))
            {
                return 1;
            }

            if (ReferenceEquals(y, s_upperSentinel))
            {
                return -1;
            }

            return x!.Key.AsSpan().SequenceCompareTo(y!.Key);
        }
    }
}
