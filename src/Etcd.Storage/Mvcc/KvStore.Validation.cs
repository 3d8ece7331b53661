using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Storage.Mvcc;

public sealed partial class KvStore
{
    /// <summary>etcd's default <c>--max-txn-ops</c>: operations allowed in one txn branch or compare list.</summary>
    public const int DefaultMaxTxnOps = 128;

    /// <summary>etcd's <c>checkRangeRequest</c> (v3rpc/key.go, 3.5 sort checks). Thread-safe, pure.</summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.EmptyKey"/>; <see cref="EtcdErrors.InvalidSortOption"/>
    /// for a sort order or target outside the enum.</exception>
    public static void ValidateRange(RangeRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey.ToException();
        }

        CheckSortOptions(r);
    }

    /// <summary>etcd's <c>checkPutRequest</c>. Thread-safe, pure.</summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.EmptyKey"/>; <see cref="EtcdErrors.ValueProvided"/>
    /// (ignore_value with a value); <see cref="EtcdErrors.LeaseProvided"/> (ignore_lease with a lease).</exception>
    public static void ValidatePut(PutRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey.ToException();
        }

        if (r.IgnoreValue && !r.Value.IsEmpty)
        {
            throw EtcdErrors.ValueProvided.ToException();
        }

        if (r.IgnoreLease && r.Lease != 0)
        {
            throw EtcdErrors.LeaseProvided.ToException();
        }
    }

    /// <summary>etcd's <c>checkDeleteRequest</c>. Thread-safe, pure.</summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.EmptyKey"/>.</exception>
    public static void ValidateDeleteRange(DeleteRangeRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey.ToException();
        }
    }

    /// <summary>
    /// etcd's <c>kvServer.Txn</c> checks: <c>checkTxnRequest</c> (the largest of the compare, success and
    /// failure counts may not exceed <paramref name="maxTxnOps"/>; nested txns get what is left; every
    /// compare needs a key; every op is checked, an op with no request is <c>KeyNotFound</c>), then
    /// <c>checkIntervals</c> on success and on failure: within one branch a key may not be put twice nor
    /// be put and deleted (a delete's range_end "\0" is taken literally, as etcd 3.4 does); the two
    /// branches of one nested txn may put the same key. Thread-safe, pure.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.TooManyOps"/>, <see cref="EtcdErrors.EmptyKey"/>,
    /// <see cref="EtcdErrors.ValueProvided"/>, <see cref="EtcdErrors.LeaseProvided"/>,
    /// <see cref="EtcdErrors.InvalidSortOption"/>, <see cref="EtcdErrors.KeyNotFound"/>,
    /// <see cref="EtcdErrors.DuplicateKey"/>.</exception>
    public static void ValidateTxn(TxnRequest r, int maxTxnOps = DefaultMaxTxnOps)
    {
        ArgumentNullException.ThrowIfNull(r);
        CheckTxnRequest(r, maxTxnOps);
        CheckIntervals(r.Success);
        CheckIntervals(r.Failure);
    }

    private static void CheckTxnRequest(TxnRequest r, int maxTxnOps)
    {
        var opc = Math.Max(r.Compare.Count, Math.Max(r.Success.Count, r.Failure.Count));
        if (opc > maxTxnOps)
        {
            throw EtcdErrors.TooManyOps.ToException();
        }

        foreach (var c in r.Compare)
        {
            if (c.Key.IsEmpty)
            {
                throw EtcdErrors.EmptyKey.ToException();
            }
        }

        foreach (var op in r.Success)
        {
            CheckRequestOp(op, maxTxnOps - opc);
        }

        foreach (var op in r.Failure)
        {
            CheckRequestOp(op, maxTxnOps - opc);
        }
    }

    private static void CheckRequestOp(RequestOp op, int maxTxnOps)
    {
        switch (op.RequestCase)
        {
            case RequestOp.RequestOneofCase.RequestRange:
                ValidateRange(op.RequestRange);
                break;
            case RequestOp.RequestOneofCase.RequestPut:
                ValidatePut(op.RequestPut);
                break;
            case RequestOp.RequestOneofCase.RequestDeleteRange:
                ValidateDeleteRange(op.RequestDeleteRange);
                break;
            case RequestOp.RequestOneofCase.RequestTxn:
                CheckTxnRequest(op.RequestTxn, maxTxnOps);
                break;
            default:
                throw EtcdErrors.KeyNotFound.ToException();
        }
    }

    /// <summary>
    /// A half-open interval of keys with etcd's "string affine" order: an empty end is +infinity.
    /// A delete of a single key is the point [key, key+"\0").
    /// </summary>
    private readonly record struct KeyInterval(byte[] Begin, byte[] End)
    {
        public bool Contains(byte[] key)
            => AffineCompare(Begin, key) <= 0 && AffineCompare(key, End) < 0;

        private static int AffineCompare(byte[] a, byte[] b)
        {
            if (a.Length == 0)
            {
                return b.Length == 0 ? 0 : 1;
            }

            if (b.Length == 0)
            {
                return -1;
            }

            return a.AsSpan().SequenceCompareTo(b);
        }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var h = new HashCode();
            h.AddBytes(obj);
            return h.ToHashCode();
        }
    }

    private static bool Intersects(List<KeyInterval> dels, byte[] key)
    {
        foreach (var iv in dels)
        {
            if (iv.Contains(key))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>etcd's checkIntervals: returns this level's puts and deletes (including nested ones).</summary>
    private static (HashSet<byte[]> Puts, List<KeyInterval> Dels) CheckIntervals(IEnumerable<RequestOp> reqs)
    {
        var dels = new List<KeyInterval>();
        foreach (var op in reqs)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestDeleteRange || op.RequestDeleteRange is null)
            {
                continue;
            }

            var d = op.RequestDeleteRange;
            var key = d.Key.ToByteArray();
            dels.Add(d.RangeEnd.IsEmpty
                ? new KeyInterval(key, [.. key, 0])
                : new KeyInterval(key, d.RangeEnd.ToByteArray()));
        }

        var puts = new HashSet<byte[]>(ByteArrayComparer.Instance);
        foreach (var op in reqs)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestTxn || op.RequestTxn is null)
            {
                continue;
            }

            var (putsThen, delsThen) = CheckIntervals(op.RequestTxn.Success);
            var (putsElse, delsElse) = CheckIntervals(op.RequestTxn.Failure);
            foreach (var k in putsThen)
            {
                if (puts.Contains(k) || Intersects(dels, k))
                {
                    throw EtcdErrors.DuplicateKey.ToException();
                }

                puts.Add(k);
            }

            foreach (var k in putsElse)
            {
                // then and else exclude each other, so the same key in both is fine
                if (puts.Contains(k) && !putsThen.Contains(k))
                {
                    throw EtcdErrors.DuplicateKey.ToException();
                }

                if (Intersects(dels, k))
                {
                    throw EtcdErrors.DuplicateKey.ToException();
                }

                puts.Add(k);
            }

            dels.AddRange(delsThen);
            dels.AddRange(delsElse);
        }

        foreach (var op in reqs)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestPut || op.RequestPut is null)
            {
                continue;
            }

            var k = op.RequestPut.Key.ToByteArray();
            if (puts.Contains(k) || Intersects(dels, k))
            {
                throw EtcdErrors.DuplicateKey.ToException();
            }

            puts.Add(k);
        }

        return (puts, dels);
    }
}
