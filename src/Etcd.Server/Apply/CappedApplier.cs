using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Server.Apply;

/// <summary>
/// etcd's <c>applierV3Capped</c>: while a NOSPACE alarm is raised, requests that would grow the backend (puts, txns
/// with puts, lease grants: a non-zero quota cost) fail at apply with <see cref="EtcdErrors.NoSpace"/>
/// ("etcdserver: mvcc: database space exceeded"); deletes, compactions, reads and alarm requests go on to the next
/// link, so space can be freed and the alarm disarmed. Applier thread only.
/// </summary>
/// <param name="next">The next link.</param>
/// <param name="alarms">The member's alarms.</param>
/// <param name="cost">The bytes a request adds to the backend (etcd's <c>quota.Cost</c>); 0 for requests that add none.</param>
internal sealed class CappedApplier(IApplierV3 next, AlarmStore alarms, Func<InternalRaftRequest, int> cost) : IApplierV3
{
    /// <inheritdoc/>
    public object? Apply(InternalRaftRequest request)
        => cost(request) > 0 && alarms.IsRaised(AlarmType.Nospace) ? EtcdErrors.NoSpace.ToException() : next.Apply(request);
}
