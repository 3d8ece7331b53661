namespace Etcd.Server.Apply;

/// <summary>
/// Builds the applier chain in etcd's order (<c>newApplierV3</c> and the alarm wrappers of <c>etcdserver/server.go</c>),
/// outermost first:
/// <list type="number">
/// <item><see cref="CorruptApplier"/>: refuses KV and lease requests while a CORRUPT alarm is raised;</item>
/// <item><see cref="CappedApplier"/>: refuses requests that grow the db while a NOSPACE alarm is raised;</item>
/// <item>the auth seam: <see cref="Build"/>'s <c>auth</c> argument wraps the rest of the chain (etcd's
/// <c>authApplierV3</c>: permission checks against the request's user and auth revision, lease-attached key checks)
/// — without it, requests pass straight on;</item>
/// <item><see cref="QuotaApplier"/>: answers NoSpace for a request that did not fit in the quota;</item>
/// <item>the backend applier: writes MVCC, leases, alarms, membership.</item>
/// </list>
/// etcd rebuilds its chain when an alarm is raised or cleared; here the corrupt and capped links read the alarms on
/// every request instead, which answers the same.
/// </summary>
internal static class ApplierChain
{
    /// <summary>Composes the chain over <paramref name="backend"/>; <paramref name="auth"/> (optional) wraps the quota link.</summary>
    /// <param name="backend">The last link, which writes the state machine.</param>
    /// <param name="alarms">The member's alarms (read by the corrupt and capped links).</param>
    /// <param name="quotaCost">The bytes a request adds to the backend (0 for none).</param>
    /// <param name="quotaAvailable">Whether a request fits in the backend quota now.</param>
    /// <param name="auth">The auth link's factory: given the rest of the chain, returns the link that checks
    /// permissions before handing on; null when auth is not part of this member.</param>
    public static IApplierV3 Build(
        IApplierV3 backend,
        AlarmStore alarms,
        Func<Etcdserverpb.InternalRaftRequest, int> quotaCost,
        Func<Etcdserverpb.InternalRaftRequest, bool> quotaAvailable,
        Func<IApplierV3, IApplierV3>? auth = null)
    {
        IApplierV3 chain = new QuotaApplier(backend, quotaAvailable);
        if (auth is not null)
        {
            chain = auth(chain);
        }

        chain = new CappedApplier(chain, alarms, quotaCost);
        return new CorruptApplier(chain, alarms);
    }
}
