using Etcd.Api;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Storage.Mvcc;

public sealed partial class KvStore
{
    /// <summary>
    /// Serves a Range as etcd's <c>applierV3backend.Range</c>: <c>range_end</c> empty = the single
    /// <c>key</c>, <c>"\0"</c> = every key ≥ <c>key</c>, else [key, range_end); <c>revision</c> 0 = current;
    /// min/max mod/create revision filters, sort (order NONE with a target other than KEY sorts
    /// ascending; ties keep key order), <c>limit</c> with <c>more</c>, <c>keys_only</c>, <c>count_only</c>.
    /// <c>Count</c> is the number of keys in the range at that revision before filters and limit.
    /// Only <c>Header.Revision</c> is set (the store's current revision, not the requested one).
    /// <c>serializable</c> is the caller's concern. Thread-safe; runs concurrently with other reads.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.FutureRev"/> when <c>revision</c> is after the
    /// current revision; <see cref="EtcdErrors.Compacted"/> when it is before the compacted revision;
    /// <see cref="EtcdErrors.InvalidSortOption"/> for an unknown sort order or target.</exception>
    public RangeResponse Range(RangeRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        CheckSortOptions(r);
        return Read(ctx => ApplyRange(ctx, r));
    }

    /// <summary>
    /// Applies a Put as etcd's <c>applierV3backend.Put</c>: a new revision with the key's version
    /// incremented (1 and create revision = this revision for a new key); <c>prev_kv</c> returns the
    /// previous pair; <c>ignore_value</c>/<c>ignore_lease</c> keep the current value/lease. Sets
    /// <c>Header.Revision</c> to the new revision. Serialised with other writes.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.LeaseNotFound"/> for a non-zero lease the lessor
    /// does not know (or no lessor); <see cref="EtcdErrors.KeyNotFound"/> for ignore_value/ignore_lease on
    /// a missing key. Nothing is written then.</exception>
    public PutResponse Put(PutRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Lease != 0 && !LeaseExists(r.Lease))
        {
            throw EtcdErrors.LeaseNotFound.ToException();
        }

        return Write(ctx => ApplyPut(ctx, r));
    }

    /// <summary>
    /// Applies a DeleteRange as etcd's <c>applierV3backend.DeleteRange</c> (range_end as in
    /// <see cref="Range"/>): tombstones every live key in the range under one revision; <c>Deleted</c>
    /// counts them; <c>prev_kv</c> returns them. <c>Header.Revision</c> is the new revision, or the
    /// current one when nothing was deleted. Serialised with other writes.
    /// </summary>
    public DeleteRangeResponse DeleteRange(DeleteRangeRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return Write(ctx => ApplyDeleteRange(ctx, r));
    }

    /// <summary>
    /// Applies a Txn as etcd's <c>applierV3backend.Txn</c>: every compare (of this txn and of the
    /// nested txns on the chosen path) is evaluated against the state before the txn; a compare over a
    /// range (<c>range_end</c>) must hold for every key in it; a VALUE compare on no key fails, other
    /// targets compare a missing key as zero. Then the chosen branch runs in order, all writes sharing
    /// one revision; reads inside see earlier writes of the txn. A txn whose branches hold only ranges
    /// runs as a read, concurrently with other reads. <c>Header.Revision</c> is the txn's revision
    /// (the current one when nothing changed); inner responses carry only their revision.
    /// </summary>
    /// <exception cref="EtcdException">Before anything is written: <see cref="EtcdErrors.KeyNotFound"/>,
    /// <see cref="EtcdErrors.LeaseNotFound"/> from puts on the path; <see cref="EtcdErrors.FutureRev"/>,
    /// <see cref="EtcdErrors.Compacted"/>, <see cref="EtcdErrors.InvalidSortOption"/> from ranges on the path.</exception>
    public TxnResponse Txn(TxnRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return IsTxnReadOnly(r) ? Read(ctx => ApplyTxnRequest(ctx, r)) : Write(ctx => ApplyTxnRequest(ctx, r));
    }

    /// <summary>
    /// Deletes the given keys in one write transaction (one revision), as etcd's lessor does when a
    /// lease is revoked or expires; keys that are not live are skipped. Detach is called on the lessor
    /// for each deleted key that had a lease. <paramref name="inSameBatch"/>, when given, runs inside the
    /// same backend batch after the deletes (etcd's lessor removes the lease from the <c>lease</c> bucket
    /// there). Serialised with other writes.
    /// </summary>
    /// <returns>The store's revision after the call and the number of keys deleted.</returns>
    public (long Revision, long Deleted) DeleteKeys(IEnumerable<byte[]> keys, Action<Backend.IBatchTx>? inSameBatch = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return Write(
            ctx =>
            {
                long n = 0;
                foreach (var key in keys)
                {
                    n += DeleteKeysInRange(ctx, key, null);
                }

                return (ctx.ReadRev, n);
            },
            inSameBatch);
    }

    /// <summary>
    /// The events of revisions [<paramref name="fromRevision"/>, <paramref name="toRevisionExclusive"/>)
    /// in revision order, read from the backend (what etcd's watchable store reads to sync a watcher).
    /// A DELETE event's <c>Kv</c> holds the key and <c>ModRevision</c> = its revision. Revisions removed by
    /// compaction are missing: callers check <see cref="CompactRevision"/> first. Thread-safe.
    /// </summary>
    public IReadOnlyList<Event> ReadEvents(long fromRevision, long toRevisionExclusive)
    {
        var events = new List<Event>();
        if (toRevisionExclusive <= fromRevision)
        {
            return events;
        }

        var start = new Revision(Math.Max(fromRevision, 0), 0).ToBytes();
        var end = new Revision(toRevisionExclusive, 0).ToBytes();
        using var rtx = _backend.ConcurrentReadTx();
        rtx.Range(MvccSchema.KeyBucket, start, end, (k, v) =>
        {
            var kv = KeyValue.Parser.ParseFrom(v);
            if (Revision.IsTombstone(k))
            {
                kv.ModRevision = Revision.FromBytes(k).Main;
                events.Add(new Event { Type = Event.Types.EventType.Delete, Kv = kv });
            }
            else
            {
                events.Add(new Event { Type = Event.Types.EventType.Put, Kv = kv });
            }

            return true;
        });
        return events;
    }

    private bool LeaseExists(long leaseId) => _leases is not null && _leases.Exists(leaseId);

    /// <summary>etcd's mkGteRange: "\0" = no upper bound (empty), empty = single key (null).</summary>
    private static byte[]? ToEnd(ByteString rangeEnd)
    {
        if (rangeEnd.Length == 0)
        {
            return null;
        }

        if (rangeEnd.Length == 1 && rangeEnd[0] == 0)
        {
            return s_emptyEnd;
        }

        return rangeEnd.ToByteArray();
    }

    private static void CheckSortOptions(RangeRequest r)
    {
        if (r.SortOrder is < RangeRequest.Types.SortOrder.None or > RangeRequest.Types.SortOrder.Descend
            || r.SortTarget is < RangeRequest.Types.SortTarget.Key or > RangeRequest.Types.SortTarget.Value)
        {
            throw EtcdErrors.InvalidSortOption.ToException();
        }
    }

    private RangeResponse ApplyRange(TxnContext ctx, RangeRequest r)
    {
        var resp = new RangeResponse { Header = new ResponseHeader() };
        var limit = r.Limit;
        if (r.SortOrder != RangeRequest.Types.SortOrder.None
            || r.MinModRevision != 0 || r.MaxModRevision != 0
            || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0)
        {
            // everything is fetched, then filtered, sorted and cut
            limit = 0;
        }

        if (limit > 0)
        {
            // one more than asked tells whether there are more
            limit++;
        }

        var rr = RangeKeys(ctx, r.Key.ToByteArray(), ToEnd(r.RangeEnd), r.Revision, limit, r.CountOnly);
        var kvs = rr.Kvs;
        if (r.MaxModRevision != 0)
        {
            kvs.RemoveAll(kv => kv.ModRevision > r.MaxModRevision);
        }

        if (r.MinModRevision != 0)
        {
            kvs.RemoveAll(kv => kv.ModRevision < r.MinModRevision);
        }

        if (r.MaxCreateRevision != 0)
        {
            kvs.RemoveAll(kv => kv.CreateRevision > r.MaxCreateRevision);
        }

        if (r.MinCreateRevision != 0)
        {
            kvs.RemoveAll(kv => kv.CreateRevision < r.MinCreateRevision);
        }

        var order = r.SortOrder;
        if (r.SortTarget != RangeRequest.Types.SortTarget.Key && order == RangeRequest.Types.SortOrder.None)
        {
            order = RangeRequest.Types.SortOrder.Ascend;
        }

        if (order != RangeRequest.Types.SortOrder.None && kvs.Count > 1)
        {
            kvs = SortKvs(kvs, r.SortTarget, order == RangeRequest.Types.SortOrder.Descend);
        }

        if (r.Limit > 0 && kvs.Count > r.Limit)
        {
            kvs.RemoveRange((int)r.Limit, kvs.Count - (int)r.Limit);
            resp.More = true;
        }

        resp.Header.Revision = rr.Rev;
        resp.Count = rr.Count;
        foreach (var kv in kvs)
        {
            if (r.KeysOnly)
            {
                kv.Value = ByteString.Empty;
            }

            resp.Kvs.Add(kv);
        }

        return resp;
    }

    /// <summary>
    /// Sorts on the target the way etcd 3.4.23 does (Go 1.19's unstable <c>sort.Sort</c>, descending through
    /// <c>sort.Reverse</c>), so equal elements come out in etcd's order.
    /// </summary>
    private static List<KeyValue> SortKvs(List<KeyValue> kvs, RangeRequest.Types.SortTarget target, bool descend)
    {
        Func<KeyValue, KeyValue, bool> less = target switch
        {
            RangeRequest.Types.SortTarget.Key => (a, b) => a.Key.Span.SequenceCompareTo(b.Key.Span) < 0,
            RangeRequest.Types.SortTarget.Version => (a, b) => a.Version < b.Version,
            RangeRequest.Types.SortTarget.Create => (a, b) => a.CreateRevision < b.CreateRevision,
            RangeRequest.Types.SortTarget.Mod => (a, b) => a.ModRevision < b.ModRevision,
            RangeRequest.Types.SortTarget.Value => (a, b) => a.Value.Span.SequenceCompareTo(b.Value.Span) < 0,
            _ => throw EtcdErrors.InvalidSortOption.ToException(),
        };
        var items = kvs.ToArray();
        GoSort.Sort<KeyValue>(items, descend ? (a, b) => less(b, a) : less);
        return [.. items];
    }

    private PutResponse ApplyPut(TxnContext ctx, PutRequest p)
    {
        var resp = new PutResponse { Header = new ResponseHeader() };
        var key = p.Key.ToByteArray();
        var value = p.Value;
        var leaseId = p.Lease;
        KeyValue? prev = null;
        if (p.IgnoreValue || p.IgnoreLease || p.PrevKv)
        {
            var rr = RangeKeys(ctx, key, null, 0, 0, false);
            prev = rr.Kvs.Count > 0 ? rr.Kvs[0] : null;
        }

        if ((p.IgnoreValue || p.IgnoreLease) && prev is null)
        {
            throw EtcdErrors.KeyNotFound.ToException();
        }

        if (p.IgnoreValue)
        {
            value = prev!.Value;
        }

        if (p.IgnoreLease)
        {
            leaseId = prev!.Lease;
        }

        if (p.PrevKv && prev is not null)
        {
            resp.PrevKv = prev;
        }

        PutKey(ctx, key, value, leaseId);
        resp.Header.Revision = ctx.BeginRev + 1;
        return resp;
    }

    private DeleteRangeResponse ApplyDeleteRange(TxnContext ctx, DeleteRangeRequest dr)
    {
        var resp = new DeleteRangeResponse { Header = new ResponseHeader() };
        var key = dr.Key.ToByteArray();
        var end = ToEnd(dr.RangeEnd);
        if (dr.PrevKv)
        {
            var rr = RangeKeys(ctx, key, end, 0, 0, false);
            resp.PrevKvs.AddRange(rr.Kvs);
        }

        var n = DeleteKeysInRange(ctx, key, end);
        resp.Deleted = n;
        resp.Header.Revision = n != 0 || ctx.Changes.Count > 0 ? ctx.BeginRev + 1 : ctx.BeginRev;
        return resp;
    }

    private static bool IsTxnReadOnly(TxnRequest r)
    {
        foreach (var op in r.Success)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestRange)
            {
                return false;
            }
        }

        foreach (var op in r.Failure)
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestRange)
            {
                return false;
            }
        }

        return true;
    }

    private TxnResponse ApplyTxnRequest(TxnContext ctx, TxnRequest r)
    {
        // Decide every branch first, on the state before the txn (etcd's compareToPath).
        var path = new List<bool>();
        CompareToPath(ctx, r, path);
        if (ctx.IsWrite)
        {
            var cursor = 0;
            CheckRequests(ctx, r, path, ref cursor, CheckPut);
        }

        var rangeCursor = 0;
        CheckRequests(ctx, r, path, ref rangeCursor, CheckRange);

        var applyCursor = 0;
        var resp = ApplyTxnOps(ctx, r, path, ref applyCursor);
        resp.Header = new ResponseHeader { Revision = ctx.ReadRev };
        return resp;
    }

    private void CompareToPath(TxnContext ctx, TxnRequest r, List<bool> path)
    {
        var succeeded = ApplyCompares(ctx, r.Compare);
        path.Add(succeeded);
        foreach (var op in succeeded ? r.Success : r.Failure)
        {
            if (op.RequestCase == RequestOp.RequestOneofCase.RequestTxn && op.RequestTxn is not null)
            {
                CompareToPath(ctx, op.RequestTxn, path);
            }
        }
    }

    private bool ApplyCompares(TxnContext ctx, IEnumerable<Compare> compares)
    {
        foreach (var c in compares)
        {
            if (!ApplyCompare(ctx, c))
            {
                return false;
            }
        }

        return true;
    }

    private bool ApplyCompare(TxnContext ctx, Compare c)
    {
        RangeResult rr;
        try
        {
            rr = RangeKeys(ctx, c.Key.ToByteArray(), ToEnd(c.RangeEnd), 0, 0, false);
        }
        catch (EtcdException)
        {
            return false;
        }

        if (rr.Kvs.Count == 0)
        {
            // a value cannot be compared on a missing key: grpc cannot tell "missing" from ""
            return c.Target != Compare.Types.CompareTarget.Value && CompareKv(c, null);
        }

        foreach (var kv in rr.Kvs)
        {
            if (!CompareKv(c, kv))
            {
                return false;
            }
        }

        return true;
    }

    private static bool CompareKv(Compare c, KeyValue? kv)
    {
        int result;
        switch (c.Target)
        {
            case Compare.Types.CompareTarget.Value:
                var want = c.TargetUnionCase == Compare.TargetUnionOneofCase.Value ? c.Value : ByteString.Empty;
                var have = kv?.Value ?? ByteString.Empty;
                result = Math.Sign(have.Span.SequenceCompareTo(want.Span));
                break;
            case Compare.Types.CompareTarget.Create:
                result = (kv?.CreateRevision ?? 0).CompareTo(c.TargetUnionCase == Compare.TargetUnionOneofCase.CreateRevision ? c.CreateRevision : 0);
                break;
            case Compare.Types.CompareTarget.Mod:
                result = (kv?.ModRevision ?? 0).CompareTo(c.TargetUnionCase == Compare.TargetUnionOneofCase.ModRevision ? c.ModRevision : 0);
                break;
            case Compare.Types.CompareTarget.Version:
                result = (kv?.Version ?? 0).CompareTo(c.TargetUnionCase == Compare.TargetUnionOneofCase.Version ? c.Version : 0);
                break;
            case Compare.Types.CompareTarget.Lease:
                result = (kv?.Lease ?? 0).CompareTo(c.TargetUnionCase == Compare.TargetUnionOneofCase.Lease ? c.Lease : 0);
                break;
            default:
                result = 0;
                break;
        }

        return c.Result switch
        {
            Compare.Types.CompareResult.Equal => result == 0,
            Compare.Types.CompareResult.NotEqual => result != 0,
            Compare.Types.CompareResult.Greater => result > 0,
            Compare.Types.CompareResult.Less => result < 0,
            _ => true,
        };
    }

    private delegate void RequestCheck(TxnContext ctx, RequestOp op);

    private static void CheckRequests(TxnContext ctx, TxnRequest r, List<bool> path, ref int cursor, RequestCheck check)
    {
        var ops = path[cursor++] ? r.Success : r.Failure;
        foreach (var op in ops)
        {
            if (op.RequestCase == RequestOp.RequestOneofCase.RequestTxn && op.RequestTxn is not null)
            {
                CheckRequests(ctx, op.RequestTxn, path, ref cursor, check);
                continue;
            }

            check(ctx, op);
        }
    }

    private void CheckPut(TxnContext ctx, RequestOp op)
    {
        if (op.RequestCase != RequestOp.RequestOneofCase.RequestPut || op.RequestPut is null)
        {
            return;
        }

        var p = op.RequestPut;
        if (p.IgnoreValue || p.IgnoreLease)
        {
            var rr = RangeKeys(ctx, p.Key.ToByteArray(), null, 0, 0, false);
            if (rr.Kvs.Count == 0)
            {
                throw EtcdErrors.KeyNotFound.ToException();
            }
        }

        if (p.Lease != 0 && !LeaseExists(p.Lease))
        {
            throw EtcdErrors.LeaseNotFound.ToException();
        }
    }

    private void CheckRange(TxnContext ctx, RequestOp op)
    {
        if (op.RequestCase != RequestOp.RequestOneofCase.RequestRange || op.RequestRange is null)
        {
            return;
        }

        var rr = op.RequestRange;
        CheckSortOptions(rr);
        if (rr.Revision == 0)
        {
            return;
        }

        if (rr.Revision > ctx.ReadRev)
        {
            throw EtcdErrors.FutureRev.ToException();
        }

        if (rr.Revision < _compactRev)
        {
            throw EtcdErrors.Compacted.ToException();
        }
    }

    private TxnResponse ApplyTxnOps(TxnContext ctx, TxnRequest r, List<bool> path, ref int cursor)
    {
        var succeeded = path[cursor++];
        var resp = new TxnResponse { Succeeded = succeeded };
        foreach (var op in succeeded ? r.Success : r.Failure)
        {
            var respOp = new ResponseOp();
            switch (op.RequestCase)
            {
                case RequestOp.RequestOneofCase.RequestRange:
                    respOp.ResponseRange = ApplyRange(ctx, op.RequestRange);
                    break;
                case RequestOp.RequestOneofCase.RequestPut:
                    respOp.ResponsePut = ApplyPut(ctx, op.RequestPut);
                    break;
                case RequestOp.RequestOneofCase.RequestDeleteRange:
                    respOp.ResponseDeleteRange = ApplyDeleteRange(ctx, op.RequestDeleteRange);
                    break;
                case RequestOp.RequestOneofCase.RequestTxn:
                    var inner = ApplyTxnOps(ctx, op.RequestTxn, path, ref cursor);
                    inner.Header = new ResponseHeader();
                    respOp.ResponseTxn = inner;
                    break;
            }

            resp.Responses.Add(respOp);
        }

        return resp;
    }
}
