using Etcdserverpb;

namespace Etcd.Server.Auth;

/// <summary>
/// The <c>etcdserverpb.Auth</c> gRPC service (etcd's <c>api/v3rpc/auth.go</c>) as an override of the generated base: a
/// thin adapter over the server's auth part; every RPC but Authenticate is proposed through raft as it arrives,
/// Authenticate checks the password first. Errors are etcd's (e.g. <c>etcdserver: user name already exists</c>,
/// <c>etcdserver: permission denied</c>).
/// </summary>
public sealed class AuthGrpcService(EtcdServer server) : Etcdserverpb.Auth.AuthBase
{
    /// <inheritdoc/>
    public override async Task<AuthEnableResponse> AuthEnable(AuthEnableRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthEnableResponse>(new InternalRaftRequest { AuthEnable = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthDisableResponse> AuthDisable(AuthDisableRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthDisableResponse>(new InternalRaftRequest { AuthDisable = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthStatusResponse> AuthStatus(AuthStatusRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthStatusResponse>(new InternalRaftRequest { AuthStatus = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthenticateResponse> Authenticate(AuthenticateRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.AuthenticateAsync(request, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserAddResponse> UserAdd(AuthUserAddRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.UserAddAsync(request, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserGetResponse> UserGet(AuthUserGetRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthUserGetResponse>(new InternalRaftRequest { AuthUserGet = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserListResponse> UserList(AuthUserListRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthUserListResponse>(new InternalRaftRequest { AuthUserList = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserDeleteResponse> UserDelete(AuthUserDeleteRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthUserDeleteResponse>(new InternalRaftRequest { AuthUserDelete = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserChangePasswordResponse> UserChangePassword(AuthUserChangePasswordRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.UserChangePasswordAsync(request, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserGrantRoleResponse> UserGrantRole(AuthUserGrantRoleRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthUserGrantRoleResponse>(new InternalRaftRequest { AuthUserGrantRole = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthUserRevokeRoleResponse> UserRevokeRole(AuthUserRevokeRoleRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthUserRevokeRoleResponse>(new InternalRaftRequest { AuthUserRevokeRole = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleAddResponse> RoleAdd(AuthRoleAddRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleAddResponse>(new InternalRaftRequest { AuthRoleAdd = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleGetResponse> RoleGet(AuthRoleGetRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleGetResponse>(new InternalRaftRequest { AuthRoleGet = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleListResponse> RoleList(AuthRoleListRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleListResponse>(new InternalRaftRequest { AuthRoleList = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleDeleteResponse> RoleDelete(AuthRoleDeleteRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleDeleteResponse>(new InternalRaftRequest { AuthRoleDelete = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleGrantPermissionResponse> RoleGrantPermission(AuthRoleGrantPermissionRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleGrantPermissionResponse>(new InternalRaftRequest { AuthRoleGrantPermission = request }, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<AuthRoleRevokePermissionResponse> RoleRevokePermission(AuthRoleRevokePermissionRequest request, global::Grpc.Core.ServerCallContext context)
        => await server.ProposeAuthAsync<AuthRoleRevokePermissionResponse>(new InternalRaftRequest { AuthRoleRevokePermission = request }, context.CancellationToken).ConfigureAwait(false);
}
