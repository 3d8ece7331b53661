using Etcdserverpb;

namespace Etcd.Server.Apply;

/// <summary>
/// One link of the applier chain (etcd's <c>applierV3</c> in <c>etcdserver/apply.go</c>): applies one committed
/// <see cref="InternalRaftRequest"/> to the state machine and returns what its proposer is answered with.
/// </summary>
/// <remarks>
/// Concurrency: called on the applier thread only, one request at a time, in raft index order. A link either
/// answers by itself (an error such as <see cref="Api.EtcdErrors.NoSpace"/> or <see cref="Api.EtcdErrors.Corrupt"/>)
/// or hands the request to the next link; the last link (<c>EtcdServer.BackendApplier</c>) writes MVCC, the lessor,
/// alarms and membership.
/// </remarks>
internal interface IApplierV3
{
    /// <summary>
    /// Applies <paramref name="request"/>. Returns the response message (null for requests that have none: v2
    /// membership writes, cluster version) or an <see cref="Exception"/> (an <see cref="Api.EtcdException"/> or
    /// <see cref="Api.Grpc.RpcException"/>) that the proposer is answered with instead.
    /// </summary>
    object? Apply(InternalRaftRequest request);
}
