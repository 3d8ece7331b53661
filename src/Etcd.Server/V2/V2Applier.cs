using Etcd.Storage.V2Store;
using Etcdserverpb;

namespace Etcd.Server.V2;

/// <summary>
/// Applies etcd's v2 <see cref="Request"/> to the <see cref="V2Store"/> (etcd's <c>applierV2store</c>): POST creates an
/// in-order key, PUT sets, creates (prevExist=false), updates (prevExist=true) or compares and swaps (prevValue /
/// prevIndex), DELETE deletes or compares and deletes, QGET reads, SYNC expires keys whose TTL passed at the
/// request's time. Runs on the apply thread, in raft order. Returns the <see cref="V2Event"/>, or the
/// <see cref="V2Error"/> the store raised (as a value, so the proposer receives it).
/// </summary>
public sealed class V2Applier
{
    private readonly V2Store _store;

    /// <summary>Applies to <paramref name="store"/>.</summary>
    public V2Applier(V2Store store) => _store = store;

    /// <summary>The event of <paramref name="r"/>, a <see cref="V2Error"/>, or null (SYNC, unknown method).</summary>
    public object? Apply(Request r)
    {
        try
        {
            var expire = r.Expiration;
            switch (r.Method)
            {
                case "POST":
                    return _store.Create(r.Path, r.Dir, r.Val, unique: true, expire);
                case "PUT":
                    if (r.HasPrevExist)
                    {
                        if (r.PrevExist)
                        {
                            return r.PrevIndex == 0 && r.PrevValue.Length == 0
                                ? _store.Update(r.Path, r.Val, expire, r.Refresh)
                                : _store.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Val, expire, r.Refresh);
                        }

                        return _store.Create(r.Path, r.Dir, r.Val, unique: false, expire);
                    }

                    if (r.PrevIndex > 0 || r.PrevValue.Length > 0)
                    {
                        return _store.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Val, expire, r.Refresh);
                    }

                    return _store.Set(r.Path, r.Dir, r.Val, expire, r.Refresh);
                case "DELETE":
                    return r.PrevIndex > 0 || r.PrevValue.Length > 0
                        ? _store.CompareAndDelete(r.Path, r.PrevValue, r.PrevIndex)
                        : _store.Delete(r.Path, r.Dir, r.Recursive);
                case "QGET":
                    return _store.Get(r.Path, r.Recursive, r.Sorted);
                case "SYNC":
                    _store.DeleteExpiredKeys(r.Time);
                    return null;
                default:
                    return null;
            }
        }
        catch (V2Error e)
        {
            return e;
        }
    }
}
