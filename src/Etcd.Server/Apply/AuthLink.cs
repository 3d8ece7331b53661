using Etcdserverpb;

namespace Etcd.Server.Apply;

/// <summary>
/// The auth link of the applier chain (etcd's <c>authApplierV3</c> in <c>etcdserver/apply_auth.go</c>), between the
/// capped and quota links: <paramref name="applyAuth"/> checks the request against the user and auth revision in
/// its header (throwing etcd's error, e.g. <c>etcdserver: permission denied</c>, for a refused one) and applies it
/// when it is an auth request; any other permitted request goes on to <paramref name="next"/>.
/// </summary>
/// <remarks>Concurrency: applier thread only, as every link.</remarks>
/// <param name="next">The rest of the chain (quota, then backend).</param>
/// <param name="applyAuth">The auth part's hook: true with the response for an auth request, false to hand on.</param>
internal sealed class AuthLink(IApplierV3 next, AuthLink.ApplyAuthHook applyAuth) : IApplierV3
{
    /// <summary>Checks and, for an auth request, applies <paramref name="request"/>.</summary>
    /// <returns>True when the request was an auth request, answered by <paramref name="result"/>.</returns>
    public delegate bool ApplyAuthHook(InternalRaftRequest request, out object? result);

    /// <inheritdoc />
    public object? Apply(InternalRaftRequest request) =>
        applyAuth(request, out var result) ? result : next.Apply(request);
}
