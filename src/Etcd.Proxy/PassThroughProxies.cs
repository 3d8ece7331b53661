using Grpc.Core;

namespace Etcd.Proxy;

/// <summary>The grpc-proxy's Cluster service (etcd's <c>proxy/grpcproxy/cluster.go</c> without <c>--resolver-prefix</c>: membership calls go to the cluster). Errors pass to the client unchanged. Thread-safe.</summary>
public sealed class ClusterProxy : Etcdserverpb.Cluster.ClusterBase
{
    private readonly ProxyUpstream _upstream;

    /// <summary>Creates the service.</summary>
    public ClusterProxy(ProxyUpstream upstream) => _upstream = upstream;

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MemberAddResponse> MemberAdd(Etcdserverpb.MemberAddRequest request, ServerCallContext context) =>
        await _upstream.Cluster.MemberAddAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MemberRemoveResponse> MemberRemove(Etcdserverpb.MemberRemoveRequest request, ServerCallContext context) =>
        await _upstream.Cluster.MemberRemoveAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MemberUpdateResponse> MemberUpdate(Etcdserverpb.MemberUpdateRequest request, ServerCallContext context) =>
        await _upstream.Cluster.MemberUpdateAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MemberListResponse> MemberList(Etcdserverpb.MemberListRequest request, ServerCallContext context) =>
        await _upstream.Cluster.MemberListAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MemberPromoteResponse> MemberPromote(Etcdserverpb.MemberPromoteRequest request, ServerCallContext context) =>
        await _upstream.Cluster.MemberPromoteAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);
}

/// <summary>The grpc-proxy's Maintenance service (etcd's <c>proxy/grpcproxy/maintenance.go</c>: alarms, status, defragment, hashes, move-leader and snapshots go to the cluster (a snapshot streams through)). Errors pass to the client unchanged. Thread-safe.</summary>
public sealed class MaintenanceProxy : Etcdserverpb.Maintenance.MaintenanceBase
{
    private readonly ProxyUpstream _upstream;

    /// <summary>Creates the service.</summary>
    public MaintenanceProxy(ProxyUpstream upstream) => _upstream = upstream;

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AlarmResponse> Alarm(Etcdserverpb.AlarmRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.AlarmAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.StatusResponse> Status(Etcdserverpb.StatusRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.StatusAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.DefragmentResponse> Defragment(Etcdserverpb.DefragmentRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.DefragmentAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.HashResponse> Hash(Etcdserverpb.HashRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.HashAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.HashKVResponse> HashKV(Etcdserverpb.HashKVRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.HashKVAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.MoveLeaderResponse> MoveLeader(Etcdserverpb.MoveLeaderRequest request, ServerCallContext context) =>
        await _upstream.Maintenance.MoveLeaderAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task Snapshot(Etcdserverpb.SnapshotRequest request, IServerStreamWriter<Etcdserverpb.SnapshotResponse> responseStream, ServerCallContext context)
    {
        using var call = _upstream.Maintenance.Snapshot(request, ProxyUpstream.Forward(context));
        while (await call.ResponseStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            await responseStream.WriteAsync(call.ResponseStream.Current).ConfigureAwait(false);
        }
    }
}

/// <summary>The grpc-proxy's Auth service (etcd's <c>proxy/grpcproxy/auth.go</c>: every auth call goes to the cluster with the client's token). Errors pass to the client unchanged. Thread-safe.</summary>
public sealed class AuthProxy : Etcdserverpb.Auth.AuthBase
{
    private readonly ProxyUpstream _upstream;

    /// <summary>Creates the service.</summary>
    public AuthProxy(ProxyUpstream upstream) => _upstream = upstream;

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthEnableResponse> AuthEnable(Etcdserverpb.AuthEnableRequest request, ServerCallContext context) =>
        await _upstream.Auth.AuthEnableAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthDisableResponse> AuthDisable(Etcdserverpb.AuthDisableRequest request, ServerCallContext context) =>
        await _upstream.Auth.AuthDisableAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthStatusResponse> AuthStatus(Etcdserverpb.AuthStatusRequest request, ServerCallContext context) =>
        await _upstream.Auth.AuthStatusAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthenticateResponse> Authenticate(Etcdserverpb.AuthenticateRequest request, ServerCallContext context) =>
        await _upstream.Auth.AuthenticateAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserAddResponse> UserAdd(Etcdserverpb.AuthUserAddRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserAddAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserGetResponse> UserGet(Etcdserverpb.AuthUserGetRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserGetAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserListResponse> UserList(Etcdserverpb.AuthUserListRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserListAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserDeleteResponse> UserDelete(Etcdserverpb.AuthUserDeleteRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserDeleteAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserChangePasswordResponse> UserChangePassword(Etcdserverpb.AuthUserChangePasswordRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserChangePasswordAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserGrantRoleResponse> UserGrantRole(Etcdserverpb.AuthUserGrantRoleRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserGrantRoleAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthUserRevokeRoleResponse> UserRevokeRole(Etcdserverpb.AuthUserRevokeRoleRequest request, ServerCallContext context) =>
        await _upstream.Auth.UserRevokeRoleAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleAddResponse> RoleAdd(Etcdserverpb.AuthRoleAddRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleAddAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleGetResponse> RoleGet(Etcdserverpb.AuthRoleGetRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleGetAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleListResponse> RoleList(Etcdserverpb.AuthRoleListRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleListAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleDeleteResponse> RoleDelete(Etcdserverpb.AuthRoleDeleteRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleDeleteAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleGrantPermissionResponse> RoleGrantPermission(Etcdserverpb.AuthRoleGrantPermissionRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleGrantPermissionAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<Etcdserverpb.AuthRoleRevokePermissionResponse> RoleRevokePermission(Etcdserverpb.AuthRoleRevokePermissionRequest request, ServerCallContext context) =>
        await _upstream.Auth.RoleRevokePermissionAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);
}

/// <summary>The grpc-proxy's Election service (etcd's <c>proxy/grpcproxy/election.go</c>: campaign, proclaim, leader, resign and observe go to the cluster). Errors pass to the client unchanged. Thread-safe.</summary>
public sealed class ElectionProxy : V3Electionpb.Election.ElectionBase
{
    private readonly ProxyUpstream _upstream;

    /// <summary>Creates the service.</summary>
    public ElectionProxy(ProxyUpstream upstream) => _upstream = upstream;

    /// <inheritdoc/>
    public override async Task<V3Electionpb.CampaignResponse> Campaign(V3Electionpb.CampaignRequest request, ServerCallContext context) =>
        await _upstream.Election.CampaignAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<V3Electionpb.ProclaimResponse> Proclaim(V3Electionpb.ProclaimRequest request, ServerCallContext context) =>
        await _upstream.Election.ProclaimAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<V3Electionpb.LeaderResponse> Leader(V3Electionpb.LeaderRequest request, ServerCallContext context) =>
        await _upstream.Election.LeaderAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<V3Electionpb.ResignResponse> Resign(V3Electionpb.ResignRequest request, ServerCallContext context) =>
        await _upstream.Election.ResignAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task Observe(V3Electionpb.LeaderRequest request, IServerStreamWriter<V3Electionpb.LeaderResponse> responseStream, ServerCallContext context)
    {
        using var call = _upstream.Election.Observe(request, ProxyUpstream.Forward(context));
        while (await call.ResponseStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            await responseStream.WriteAsync(call.ResponseStream.Current).ConfigureAwait(false);
        }
    }
}

/// <summary>The grpc-proxy's Lock service (etcd's <c>proxy/grpcproxy/lock.go</c>: lock and unlock go to the cluster). Errors pass to the client unchanged. Thread-safe.</summary>
public sealed class LockProxy : V3Lockpb.Lock.LockBase
{
    private readonly ProxyUpstream _upstream;

    /// <summary>Creates the service.</summary>
    public LockProxy(ProxyUpstream upstream) => _upstream = upstream;

    /// <inheritdoc/>
    public override async Task<V3Lockpb.LockResponse> Lock(V3Lockpb.LockRequest request, ServerCallContext context) =>
        await _upstream.Lock.LockAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<V3Lockpb.UnlockResponse> Unlock(V3Lockpb.UnlockRequest request, ServerCallContext context) =>
        await _upstream.Lock.UnlockAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);
}
