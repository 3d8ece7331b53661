namespace Etcd.Storage.V2Store;

/// <summary>
/// A node of the v2 tree (etcd's <c>v2store.node</c>): a file (value) or a directory (<see cref="Children"/> not
/// null), its creation and modification indexes, and an expiry in Unix nanoseconds (0 = permanent). Owned by
/// one <see cref="V2Store"/> and touched only under its lock.
/// </summary>
internal sealed class V2Node
{
    private static long s_sequence;

    public V2Node(string path, ulong createdIndex, V2Node? parent, long expireTime, string? value, bool dir)
    {
        Path = path;
        CreatedIndex = createdIndex;
        ModifiedIndex = createdIndex;
        Parent = parent;
        ExpireTime = expireTime;
        Value = value ?? "";
        Children = dir ? new Dictionary<string, V2Node>(StringComparer.Ordinal) : null;
        Sequence = Interlocked.Increment(ref s_sequence);
    }

    public string Path { get; }
    public ulong CreatedIndex { get; set; }
    public ulong ModifiedIndex { get; set; }
    public V2Node? Parent { get; set; }
    public long ExpireTime { get; set; }
    public string Value { get; set; }
    public Dictionary<string, V2Node>? Children { get; }

    /// <summary>Tie-breaker in the TTL set.</summary>
    public long Sequence { get; }

    public bool IsDir => Children is not null;
    public bool IsPermanent => ExpireTime == 0;
    public string Name => Path[(Path.LastIndexOf('/') + 1)..];

    /// <summary>Names starting with '_' are hidden from listings.</summary>
    public bool IsHidden => Name.Length > 0 && Name[0] == '_';

    /// <summary>Expiry (Unix ns) and TTL in seconds rounded up, as etcd's <c>expirationAndTTL</c>; (0, 0) when permanent.</summary>
    public (long Expiration, long Ttl) ExpirationAndTtl(long now)
    {
        if (IsPermanent)
        {
            return (0, 0);
        }

        var left = ExpireTime - now;
        var ttl = left / 1_000_000_000L;
        if (left % 1_000_000_000L > 0)
        {
            ttl++;
        }

        return (ExpireTime, ttl);
    }

    /// <summary>The node as the API shows it (etcd's <c>Repr</c>): children only when recursive, hidden ones left out.</summary>
    public V2NodeExtern Repr(bool recursive, bool sorted, long now)
    {
        var (exp, ttl) = ExpirationAndTtl(now);
        if (!IsDir)
        {
            return new V2NodeExtern { Key = Path, Value = Value, ModifiedIndex = ModifiedIndex, CreatedIndex = CreatedIndex, Expiration = exp, Ttl = ttl };
        }

        var n = new V2NodeExtern { Key = Path, Dir = true, ModifiedIndex = ModifiedIndex, CreatedIndex = CreatedIndex, Expiration = exp, Ttl = ttl };
        if (recursive)
        {
            n.Nodes = ListVisible(recursive, sorted, now);
        }

        return n;
    }

    /// <summary>The visible children's representations (sorted by key when asked).</summary>
    public List<V2NodeExtern> ListVisible(bool recursive, bool sorted, long now)
    {
        var list = Children!.Values.Where(c => !c.IsHidden).Select(c => c.Repr(recursive, sorted, now)).ToList();
        if (sorted)
        {
            list.Sort(static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        }

        return list;
    }
}
