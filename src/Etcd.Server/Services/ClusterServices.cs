using Etcd.Api;
using Etcd.Api.Grpc;

namespace Etcd.Server.Services;

/// <summary>
/// The Cluster service (MemberAdd, MemberRemove, MemberUpdate, MemberList, MemberPromote) and Maintenance.MoveLeader
/// (etcd's <c>api/v3rpc/member.go</c> and <c>maintenance.go</c>): thin adapters over <see cref="EtcdServer"/>.
/// </summary>
public static class ClusterServices
{
    /// <summary>The metadata key a client sets to <c>true</c> to refuse service by a member without a leader (clientv3.WithRequireLeader).</summary>
    public const string RequireLeaderKey = "hasleader";

    /// <summary>
    /// etcd's interceptor rule for <c>hasleader=true</c> metadata: throws <see cref="EtcdErrors.NoLeader"/> ("etcdserver: no leader")
    /// when <paramref name="server"/> currently knows no leader. Meant to run before every RPC (the dispatcher's hook).
    /// </summary>
    public static void CheckRequireLeader(EtcdServer server, Metadata requestHeaders)
    {
        if (string.Equals(requestHeaders.Get(RequireLeaderKey), "true", StringComparison.Ordinal) && server.Leader == 0)
        {
            throw EtcdErrors.NoLeader.ToException();
        }
    }

    /// <summary>Registers the membership RPCs and MoveLeader for <paramref name="server"/>.</summary>
    public static ServiceRegistry Register(ServiceRegistry registry, EtcdServer server)
    {
        registry.MapUnary(EtcdMethods.ClusterService.MemberList, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            return await server.MemberListAsync(req.Linearizable, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberAdd, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            server.ThrowIfLearner();
            return await server.MemberAddAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberRemove, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            server.ThrowIfLearner();
            return await server.MemberRemoveAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberUpdate, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            server.ThrowIfLearner();
            return await server.MemberUpdateAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.ClusterService.MemberPromote, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            server.ThrowIfLearner();
            return await server.MemberPromoteAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.MaintenanceService.MoveLeader, async (req, ctx) =>
        {
            CheckRequireLeader(server, ctx.RequestHeaders);
            server.ThrowIfLearner();
            return await server.MoveLeaderAsync(req.TargetID, ctx.CancellationToken).ConfigureAwait(false);
        });
        return registry;
    }
}
