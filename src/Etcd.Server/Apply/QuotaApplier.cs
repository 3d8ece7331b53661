using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Server.Apply;

/// <summary>
/// etcd's <c>quotaApplierV3</c>: a request that did not fit in the backend quota (<c>--quota-backend-bytes</c>) when
/// it reached apply is still applied (every member must apply the same entries), but its proposer is answered
/// <see cref="EtcdErrors.NoSpace"/>; the caller of the chain then raises the NOSPACE alarm. Applier thread only.
/// </summary>
/// <param name="next">The next link.</param>
/// <param name="available">Whether the request fits in the quota now (etcd's <c>backendQuota.Available</c>).</param>
internal sealed class QuotaApplier(IApplierV3 next, Func<InternalRaftRequest, bool> available) : IApplierV3
{
    /// <inheritdoc/>
    public object? Apply(InternalRaftRequest request)
    {
        var fits = available(request);
        var result = next.Apply(request);
        return !fits && result is not Exception ? EtcdErrors.NoSpace.ToException() : result;
    }
}
