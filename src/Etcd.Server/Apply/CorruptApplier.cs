using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Server.Apply;

/// <summary>
/// etcd's <c>applierV3Corrupt</c>: while a CORRUPT alarm is raised, Put, Range, DeleteRange, Txn, Compaction,
/// LeaseGrant and LeaseRevoke fail at apply with <see cref="EtcdErrors.Corrupt"/> ("etcdserver: corrupt cluster",
/// gRPC DataLoss) until the alarm is disarmed; every other request goes on to the next link. Applier thread only.
/// </summary>
internal sealed class CorruptApplier(IApplierV3 next, AlarmStore alarms) : IApplierV3
{
    /// <inheritdoc/>
    public object? Apply(InternalRaftRequest request)
    {
        var guarded = request.Put is not null || request.Range is not null || request.DeleteRange is not null || request.Txn is not null
            || request.Compaction is not null || request.LeaseGrant is not null || request.LeaseRevoke is not null;
        return guarded && alarms.IsRaised(AlarmType.Corrupt) ? EtcdErrors.Corrupt.ToException() : next.Apply(request);
    }
}
