using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's cache of serializable ranges (etcd's <c>proxy/grpcproxy/cache</c>): an LRU of at most
/// <see cref="Capacity"/> responses keyed by the request's bytes (with <c>serializable</c> set). Ranges at the current
/// revision (<c>revision = 0</c>) are remembered by key interval so a write through the proxy to any key of the interval
/// drops them (<see cref="Invalidate"/>); ranges at a fixed revision never change and stay until evicted or compacted
/// away (<see cref="Get"/> answers etcd's compacted error below the compacted revision). Writes that reach the cluster
/// by other ways are not seen, as in etcd: serializable reads through the proxy may be stale. Thread-safe (one lock).
/// </summary>
public sealed class RangeCache
{
    /// <summary>etcd's <c>DefaultMaxEntries</c>.</summary>
    public const int DefaultCapacity = 2048;

    private readonly Lock _lock = new();
    private readonly Dictionary<ByteString, LinkedListNode<(ByteString Key, RangeResponse Response)>> _entries = [];
    private readonly LinkedList<(ByteString Key, RangeResponse Response)> _lru = new();
    private readonly List<(ByteString Start, ByteString End, HashSet<ByteString> Keys)> _intervals = [];
    private long _compactedRevision = -1;

    /// <summary>Creates an empty cache.</summary>
    public RangeCache(int capacity = DefaultCapacity) => Capacity = capacity;

    /// <summary>Most entries held.</summary>
    public int Capacity { get; }

    /// <summary>Entries held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The key of a request: its bytes with <c>serializable</c> set.</summary>
    public static ByteString KeyOf(RangeRequest request)
    {
        if (request.Serializable)
        {
            return request.ToByteString();
        }

        var c = request.Clone();
        c.Serializable = true;
        return c.ToByteString();
    }

    /// <summary>Remembers <paramref name="response"/> for <paramref name="request"/> (not changed afterwards by anyone).</summary>
    public void Add(RangeRequest request, RangeResponse response)
    {
        var key = KeyOf(request);
        lock (_lock)
        {
            if (request.Revision > _compactedRevision)
            {
                if (_entries.Remove(key, out var old))
                {
                    _lru.Remove(old);
                }

                _entries[key] = _lru.AddFirst((key, response));
                while (_entries.Count > Capacity)
                {
                    var last = _lru.Last!;
                    _lru.RemoveLast();
                    _entries.Remove(last.Value.Key);
                }
            }

            if (request.Revision != 0)
            {
                return;
            }

            var end = request.RangeEnd;
            int i = _intervals.FindIndex(iv => iv.Start == request.Key && iv.End == end);
            if (i < 0)
            {
                _intervals.Add((request.Key, end, [key]));
            }
            else
            {
                _intervals[i].Keys.Add(key);
            }
        }
    }

    /// <summary>
    /// The cached response, or null on a miss. Throws <see cref="Grpc.Core.RpcException"/> with etcd's
    /// <c>etcdserver: mvcc: required revision has been compacted</c> for a revision below the compacted one.
    /// </summary>
    public RangeResponse? Get(RangeRequest request)
    {
        var key = KeyOf(request);
        lock (_lock)
        {
            if (request.Revision > 0 && request.Revision < _compactedRevision)
            {
                if (_entries.Remove(key, out var gone))
                {
                    _lru.Remove(gone);
                }

                throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted"));
            }

            if (_entries.TryGetValue(key, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                return node.Value.Response;
            }

            return null;
        }
    }

    /// <summary>Drops every current-revision range that overlaps <c>[key, end)</c> (the key alone when end is empty; to the end of the keyspace when end is <c>"\0"</c>).</summary>
    public void Invalidate(ByteString key, ByteString end)
    {
        lock (_lock)
        {
            for (int i = _intervals.Count - 1; i >= 0; i--)
            {
                var iv = _intervals[i];
                if (!Overlaps(iv.Start, iv.End, key, end))
                {
                    continue;
                }

                foreach (var k in iv.Keys)
                {
                    if (_entries.Remove(k, out var node))
                    {
                        _lru.Remove(node);
                    }
                }

                _intervals.RemoveAt(i);
            }
        }
    }

    /// <summary>Records a compaction: ranges below <paramref name="revision"/> are refused from now on.</summary>
    public void Compact(long revision)
    {
        lock (_lock)
        {
            _compactedRevision = Math.Max(_compactedRevision, revision);
        }
    }

    private static bool Overlaps(ByteString aStart, ByteString aEnd, ByteString bStart, ByteString bEnd)
    {
        // [start, end) with empty end = the point start, "\0" = no upper bound
        return Below(aStart, bStart, bEnd) && Below(bStart, aStart, aEnd);

        // whether start lies before the end of the other interval
        static bool Below(ByteString start, ByteString otherStart, ByteString otherEnd)
        {
            if (otherEnd.IsEmpty)
            {
                return start.Span.SequenceCompareTo(otherStart.Span) <= 0;
            }

            if (otherEnd.Length == 1 && otherEnd[0] == 0)
            {
                return true;
            }

            return start.Span.SequenceCompareTo(otherEnd.Span) < 0;
        }
    }
}
