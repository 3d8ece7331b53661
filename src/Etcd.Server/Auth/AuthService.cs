using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;

namespace Etcd.Server.Auth;

/// <summary>
/// The <c>etcdserverpb.Auth</c> gRPC service (etcd's <c>api/v3rpc/auth.go</c>): a thin adapter over the server's
/// auth part; every RPC but Authenticate is proposed through raft as it arrives, Authenticate checks the password
/// first. Errors are etcd's (e.g. <c>etcdserver: user name already exists</c>, <c>etcdserver: permission denied</c>).
/// </summary>
public static class AuthService
{
    /// <summary>Registers every Auth RPC for <paramref name="server"/>.</summary>
    public static ServiceRegistry Register(ServiceRegistry registry, EtcdServer server)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(server);
        var m = EtcdMethods.AuthService.AuthEnable;
        registry.MapUnary(m, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthEnableResponse>(new InternalRaftRequest { AuthEnable = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.AuthDisable, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthDisableResponse>(new InternalRaftRequest { AuthDisable = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.AuthStatus, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthStatusResponse>(new InternalRaftRequest { AuthStatus = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.Authenticate, async (req, ctx) =>
            await server.AuthenticateAsync(req, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserAdd, async (req, ctx) =>
            await server.UserAddAsync(req, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserGet, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthUserGetResponse>(new InternalRaftRequest { AuthUserGet = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserList, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthUserListResponse>(new InternalRaftRequest { AuthUserList = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserDelete, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthUserDeleteResponse>(new InternalRaftRequest { AuthUserDelete = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserChangePassword, async (req, ctx) =>
            await server.UserChangePasswordAsync(req, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserGrantRole, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthUserGrantRoleResponse>(new InternalRaftRequest { AuthUserGrantRole = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.UserRevokeRole, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthUserRevokeRoleResponse>(new InternalRaftRequest { AuthUserRevokeRole = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleAdd, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleAddResponse>(new InternalRaftRequest { AuthRoleAdd = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleGet, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleGetResponse>(new InternalRaftRequest { AuthRoleGet = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleList, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleListResponse>(new InternalRaftRequest { AuthRoleList = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleDelete, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleDeleteResponse>(new InternalRaftRequest { AuthRoleDelete = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleGrantPermission, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleGrantPermissionResponse>(new InternalRaftRequest { AuthRoleGrantPermission = req }, ctx.CancellationToken).ConfigureAwait(false));
        registry.MapUnary(EtcdMethods.AuthService.RoleRevokePermission, async (req, ctx) =>
            await server.ProposeAuthAsync<AuthRoleRevokePermissionResponse>(new InternalRaftRequest { AuthRoleRevokePermission = req }, ctx.CancellationToken).ConfigureAwait(false));
        return registry;
    }
}
