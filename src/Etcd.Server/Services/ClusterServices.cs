using Etcd.Api;
using Etcd.Api.Grpc;

namespace Etcd.Server.Services;

/// <summary>
/// The Cluster service (MemberAdd, MemberRemove, MemberUpdate, MemberList, MemberPromote) and Maintenance.MoveLeader
/// (etcd's <c>api/v3rpc/member.go</c> and <c>maintenance.go</c>): thin adapters over <see cref="EtcdServer"/>.
/// </summary>
public static class ClusterServices
{
    /// <summary>
    /// Registers the membership RPCs and MoveLeader for <paramref name="server"/>. The <c>hasleader</c> rule is the
    /// registry's <see cref="RequireLeaderInterceptor"/> (set by <see cref="EtcdHost"/>).
    /// </summary>
    public static ServiceRegistry Register(ServiceRegistry registry, EtcdServer server)
    {
        registry.MapUnary(EtcdMethods.ClusterService.MemberList, async (req, ctx) =>
        {
            return await server.MemberListAsync(req.Linearizable, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberAdd, async (req, ctx) =>
        {
            server.ThrowIfLearner();
            await server.CheckAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return await server.MemberAddAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberRemove, async (req, ctx) =>
        {
            server.ThrowIfLearner();
            await server.CheckAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return await server.MemberRemoveAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberUpdate, async (req, ctx) =>
        {
            server.ThrowIfLearner();
            await server.CheckAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return await server.MemberUpdateAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberPromote, async (req, ctx) =>
        {
            server.ThrowIfLearner();
            await server.CheckAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return await server.MemberPromoteAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.MaintenanceService.MoveLeader, async (req, ctx) =>
        {
            server.ThrowIfLearner();
            return await server.MoveLeaderAsync(req.TargetID, ctx.CancellationToken).ConfigureAwait(false);
        });
        return registry;
    }
}
