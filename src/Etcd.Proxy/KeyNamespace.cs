using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's <c>--namespace</c> (etcd's <c>clientv3/namespace</c>): every key a client sends gets the prefix
/// before it goes to the cluster, and every key coming back loses it, so clients see a keyspace of their own. A range
/// end of <c>"\0"</c> (all keys from the key on) becomes the end of the prefix's range; keys outside the prefix never
/// reach a client (a lease's attached keys are filtered). The empty prefix changes nothing. Immutable, thread-safe.
/// Requests are copied, never changed in place (responses from upstream are owned and changed in place).
/// </summary>
public sealed class KeyNamespace
{
    private readonly ByteString _prefix;
    private readonly ByteString _prefixEnd;

    /// <summary>Creates a namespace of <paramref name="prefix"/> (UTF-8 bytes of the flag's text).</summary>
    public KeyNamespace(string prefix)
    {
        _prefix = ByteString.CopyFromUtf8(prefix);
        _prefixEnd = PrefixEnd(_prefix);
    }

    /// <summary>Whether there is a prefix at all.</summary>
    public bool IsEmpty => _prefix.IsEmpty;

    /// <summary>The prefix.</summary>
    public ByteString Prefix => _prefix;

    /// <summary>The key as the cluster stores it.</summary>
    public ByteString Key(ByteString key) => IsEmpty ? key : Concat(_prefix, key);

    /// <summary>A range end as the cluster reads it: <c>"\0"</c> becomes the end of the prefix's range.</summary>
    public ByteString RangeEnd(ByteString end)
    {
        if (IsEmpty || end.IsEmpty)
        {
            return end;
        }

        return end.Length == 1 && end[0] == 0 ? _prefixEnd : Concat(_prefix, end);
    }

    /// <summary>The key as the client knows it (the prefix removed).</summary>
    public ByteString Strip(ByteString key) =>
        IsEmpty || key.Length < _prefix.Length ? key : ByteString.CopyFrom(key.Span[_prefix.Length..]);

    /// <summary>Whether a cluster key lies in the namespace.</summary>
    public bool Contains(ByteString key) => IsEmpty || key.Span.StartsWith(_prefix.Span);

    /// <summary>The request as sent upstream.</summary>
    public RangeRequest Up(RangeRequest r)
    {
        if (IsEmpty)
        {
            return r;
        }

        var c = r.Clone();
        (c.Key, c.RangeEnd) = Range(r.Key, r.RangeEnd);
        return c;
    }

    /// <summary>The request as sent upstream.</summary>
    public PutRequest Up(PutRequest r)
    {
        if (IsEmpty)
        {
            return r;
        }

        var c = r.Clone();
        c.Key = Key(r.Key);
        return c;
    }

    /// <summary>The request as sent upstream.</summary>
    public DeleteRangeRequest Up(DeleteRangeRequest r)
    {
        if (IsEmpty)
        {
            return r;
        }

        var c = r.Clone();
        (c.Key, c.RangeEnd) = Range(r.Key, r.RangeEnd);
        return c;
    }

    /// <summary>The request as sent upstream (compares and every operation, nested transactions too).</summary>
    public TxnRequest Up(TxnRequest r)
    {
        if (IsEmpty)
        {
            return r;
        }

        var c = r.Clone();
        foreach (var cmp in c.Compare)
        {
            (cmp.Key, cmp.RangeEnd) = Range(cmp.Key, cmp.RangeEnd);
        }

        UpOps(c.Success);
        UpOps(c.Failure);
        return c;
    }

    /// <summary>The watch as created upstream.</summary>
    public WatchCreateRequest Up(WatchCreateRequest r)
    {
        if (IsEmpty)
        {
            return r;
        }

        var c = r.Clone();
        (c.Key, c.RangeEnd) = Range(r.Key, r.RangeEnd);
        return c;
    }

    /// <summary>Strips the prefix from a response's keys (in place).</summary>
    public RangeResponse Down(RangeResponse r)
    {
        if (!IsEmpty)
        {
            foreach (var kv in r.Kvs)
            {
                kv.Key = Strip(kv.Key);
            }
        }

        return r;
    }

    /// <summary>Strips the prefix from a response's keys (in place).</summary>
    public PutResponse Down(PutResponse r)
    {
        if (!IsEmpty && r.PrevKv is not null)
        {
            r.PrevKv.Key = Strip(r.PrevKv.Key);
        }

        return r;
    }

    /// <summary>Strips the prefix from a response's keys (in place).</summary>
    public DeleteRangeResponse Down(DeleteRangeResponse r)
    {
        if (!IsEmpty)
        {
            foreach (var kv in r.PrevKvs)
            {
                kv.Key = Strip(kv.Key);
            }
        }

        return r;
    }

    /// <summary>Strips the prefix from a response's keys (in place).</summary>
    public TxnResponse Down(TxnResponse r)
    {
        if (!IsEmpty)
        {
            foreach (var op in r.Responses)
            {
                switch (op.ResponseCase)
                {
                    case ResponseOp.ResponseOneofCase.ResponseRange: Down(op.ResponseRange); break;
                    case ResponseOp.ResponseOneofCase.ResponsePut: Down(op.ResponsePut); break;
                    case ResponseOp.ResponseOneofCase.ResponseDeleteRange: Down(op.ResponseDeleteRange); break;
                    case ResponseOp.ResponseOneofCase.ResponseTxn: Down(op.ResponseTxn); break;
                }
            }
        }

        return r;
    }

    /// <summary>Strips the prefix from an event's keys (in place).</summary>
    public Event Down(Event e)
    {
        if (!IsEmpty)
        {
            if (e.Kv is not null)
            {
                e.Kv.Key = Strip(e.Kv.Key);
            }

            if (e.PrevKv is not null)
            {
                e.PrevKv.Key = Strip(e.PrevKv.Key);
            }
        }

        return e;
    }

    /// <summary>Keeps the keys of the namespace, stripped (in place).</summary>
    public LeaseTimeToLiveResponse Down(LeaseTimeToLiveResponse r)
    {
        if (!IsEmpty)
        {
            var keys = r.Keys.Where(Contains).Select(Strip).ToList();
            r.Keys.Clear();
            r.Keys.AddRange(keys);
        }

        return r;
    }

    private void UpOps(IEnumerable<RequestOp> ops)
    {
        foreach (var op in ops)
        {
            switch (op.RequestCase)
            {
                case RequestOp.RequestOneofCase.RequestRange:
                    (op.RequestRange.Key, op.RequestRange.RangeEnd) = Range(op.RequestRange.Key, op.RequestRange.RangeEnd);
                    break;
                case RequestOp.RequestOneofCase.RequestPut:
                    op.RequestPut.Key = Key(op.RequestPut.Key);
                    break;
                case RequestOp.RequestOneofCase.RequestDeleteRange:
                    (op.RequestDeleteRange.Key, op.RequestDeleteRange.RangeEnd) = Range(op.RequestDeleteRange.Key, op.RequestDeleteRange.RangeEnd);
                    break;
                case RequestOp.RequestOneofCase.RequestTxn:
                    foreach (var cmp in op.RequestTxn.Compare)
                    {
                        (cmp.Key, cmp.RangeEnd) = Range(cmp.Key, cmp.RangeEnd);
                    }

                    UpOps(op.RequestTxn.Success);
                    UpOps(op.RequestTxn.Failure);
                    break;
            }
        }
    }

    private (ByteString Key, ByteString End) Range(ByteString key, ByteString end) => (Key(key), RangeEnd(end));

    private static ByteString Concat(ByteString a, ByteString b)
    {
        var bytes = new byte[a.Length + b.Length];
        a.Span.CopyTo(bytes);
        b.Span.CopyTo(bytes.AsSpan(a.Length));
        return ByteString.CopyFrom(bytes);
    }

    /// <summary>clientv3's <c>GetPrefixRangeEnd</c>: the prefix with its last byte below 0xff incremented, or "\0".</summary>
    internal static ByteString PrefixEnd(ByteString prefix)
    {
        var end = prefix.ToByteArray();
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return ByteString.CopyFrom(end.AsSpan(0, i + 1));
            }
        }

        return ByteString.CopyFrom(0);
    }
}
