using Etcd.Api;
using Etcd.Server.Grpc;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Services;

/// <summary>
/// The gRPC services of a member (etcd's <c>api/v3rpc</c>) as overrides of the service bases Grpc.Tools generates from
/// our <c>.proto</c> files: each validates a request as etcd's v3rpc layer does, calls <see cref="EtcdServer"/> and
/// returns its response. Interceptors (auth token, <c>hasleader</c>, metrics, Go statuses) run around them; the JSON
/// gateway calls the same overrides. Methods an implementation leaves to its base are not served (Unimplemented).
/// </summary>
public static class EtcdServices
{
    /// <summary>Binds every service of <paramref name="server"/> (KV, Watch, Lease, Cluster, Maintenance, Auth, Election, Lock) into <paramref name="table"/>.</summary>
    public static GrpcServiceTable Bind(GrpcServiceTable table, EtcdServer server)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(server);
        KV.BindService(table, new KvGrpcService(server));
        Etcdserverpb.Watch.BindService(table, new WatchGrpcService(server));
        Etcdserverpb.Lease.BindService(table, new LeaseGrpcService(server));
        Etcdserverpb.Cluster.BindService(table, new ClusterGrpcService(server));
        Etcdserverpb.Maintenance.BindService(table, new MaintenanceGrpcService(server));
        Etcdserverpb.Auth.BindService(table, new Auth.AuthGrpcService(server));
        var core = new Election.ElectionCore(server, new Election.AppliedKeyEventWaiter(server));
        V3Electionpb.Election.BindService(table, new ElectionGrpcService(core));
        V3Lockpb.Lock.BindService(table, new LockGrpcService(core));
        return table;
    }
}

/// <summary>The <c>etcdserverpb.KV</c> service (etcd's <c>api/v3rpc/key.go</c>).</summary>
public sealed class KvGrpcService(EtcdServer server) : KV.KVBase
{
    /// <inheritdoc/>
    public override async Task<RangeResponse> Range(RangeRequest request, GrpcCore.ServerCallContext context)
    {
        KvStore.ValidateRange(request);
        return await server.RangeAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<PutResponse> Put(PutRequest request, GrpcCore.ServerCallContext context)
    {
        KvStore.ValidatePut(request);
        return await server.PutAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<DeleteRangeResponse> DeleteRange(DeleteRangeRequest request, GrpcCore.ServerCallContext context)
    {
        KvStore.ValidateDeleteRange(request);
        return await server.DeleteRangeAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<TxnResponse> Txn(TxnRequest request, GrpcCore.ServerCallContext context)
    {
        KvStore.ValidateTxn(request, server.Options.MaxTxnOps);
        return await server.TxnAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<CompactionResponse> Compact(CompactionRequest request, GrpcCore.ServerCallContext context)
        => await server.CompactAsync(request, context.CancellationToken).ConfigureAwait(false);
}

/// <summary>The <c>etcdserverpb.Watch</c> service (etcd's <c>api/v3rpc/watch.go</c>; see <see cref="Watch.WatchService"/>).</summary>
public sealed class WatchGrpcService(EtcdServer server) : Etcdserverpb.Watch.WatchBase
{
    private readonly Etcd.Server.Watch.WatchServiceOptions _options = Etcd.Server.Watch.WatchService.OptionsFor(server.Options);

    /// <inheritdoc/>
    public override Task Watch(GrpcCore.IAsyncStreamReader<WatchRequest> requestStream, GrpcCore.IServerStreamWriter<WatchResponse> responseStream, GrpcCore.ServerCallContext context)
        => Etcd.Server.Watch.WatchService.ServeAsync(
            server,
            _options,
            StreamAdapters.Reader(requestStream),
            StreamAdapters.Writer(responseStream),
            RequireLeaderInterceptor.RequiresLeader(context.RequestHeaders),
            context.CancellationToken);
}

/// <summary>The <c>etcdserverpb.Lease</c> service (etcd's <c>api/v3rpc/lease.go</c>; see <see cref="Lease.LeaseServices"/>).</summary>
public sealed class LeaseGrpcService(EtcdServer server) : Etcdserverpb.Lease.LeaseBase
{
    /// <inheritdoc/>
    public override async Task<LeaseGrantResponse> LeaseGrant(LeaseGrantRequest request, GrpcCore.ServerCallContext context)
        => await server.LeaseGrantAsync(request, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<LeaseRevokeResponse> LeaseRevoke(LeaseRevokeRequest request, GrpcCore.ServerCallContext context)
        => await server.LeaseRevokeAsync(request, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override Task<LeaseTimeToLiveResponse> LeaseTimeToLive(LeaseTimeToLiveRequest request, GrpcCore.ServerCallContext context)
        => Lease.LeaseServices.TimeToLiveAsync(server, request, context.CancellationToken);

    /// <inheritdoc/>
    public override Task<LeaseLeasesResponse> LeaseLeases(LeaseLeasesRequest request, GrpcCore.ServerCallContext context)
        => Task.FromResult(server.LeaseLeases());

    /// <inheritdoc/>
    public override Task LeaseKeepAlive(GrpcCore.IAsyncStreamReader<LeaseKeepAliveRequest> requestStream, GrpcCore.IServerStreamWriter<LeaseKeepAliveResponse> responseStream, GrpcCore.ServerCallContext context)
        => Lease.LeaseServices.KeepAliveAsync(server, StreamAdapters.Reader(requestStream), StreamAdapters.Writer(responseStream), context.CancellationToken);
}

/// <summary>The <c>etcdserverpb.Cluster</c> service (etcd's <c>api/v3rpc/member.go</c>).</summary>
public sealed class ClusterGrpcService(EtcdServer server) : Etcdserverpb.Cluster.ClusterBase
{
    /// <inheritdoc/>
    public override async Task<MemberListResponse> MemberList(MemberListRequest request, GrpcCore.ServerCallContext context)
        => await server.MemberListAsync(request.Linearizable, context.CancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<MemberAddResponse> MemberAdd(MemberAddRequest request, GrpcCore.ServerCallContext context)
    {
        server.ThrowIfLearner();
        await server.CheckAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return await server.MemberAddAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<MemberRemoveResponse> MemberRemove(MemberRemoveRequest request, GrpcCore.ServerCallContext context)
    {
        server.ThrowIfLearner();
        await server.CheckAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return await server.MemberRemoveAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<MemberUpdateResponse> MemberUpdate(MemberUpdateRequest request, GrpcCore.ServerCallContext context)
    {
        server.ThrowIfLearner();
        await server.CheckAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return await server.MemberUpdateAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<MemberPromoteResponse> MemberPromote(MemberPromoteRequest request, GrpcCore.ServerCallContext context)
    {
        server.ThrowIfLearner();
        await server.CheckAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return await server.MemberPromoteAsync(request, context.CancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The <c>etcdserverpb.Maintenance</c> service (etcd's <c>api/v3rpc/maintenance.go</c>); 3.5's Downgrade is not served, as in 3.4.</summary>
public sealed class MaintenanceGrpcService(EtcdServer server) : Etcdserverpb.Maintenance.MaintenanceBase
{
    /// <inheritdoc/>
    public override Task<StatusResponse> Status(StatusRequest request, GrpcCore.ServerCallContext context)
        => Task.FromResult(server.Status());

    /// <inheritdoc/>
    public override async Task<HashKVResponse> HashKV(HashKVRequest request, GrpcCore.ServerCallContext context)
    {
        await server.CheckMaintenanceAdminAsync(context.CancellationToken).ConfigureAwait(false);

        // etcd hashes local state; a linearizable barrier first makes the answer comparable across members.
        await server.LinearizableReadNotifyAsync(context.CancellationToken).ConfigureAwait(false);
        var h = server.Kv.HashByRevision(request.Revision);
        var resp = new HashKVResponse
        {
            Header = new ResponseHeader { Revision = h.CurrentRevision },
            Hash = h.Hash,
            CompactRevision = h.CompactRevision,
            HashRevision = h.HashRevision,
        };
        server.FillHeader(resp.Header);
        return resp;
    }

    /// <inheritdoc/>
    public override async Task<DefragmentResponse> Defragment(DefragmentRequest request, GrpcCore.ServerCallContext context)
    {
        await server.CheckMaintenanceAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return await server.DefragmentAsync(context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<HashResponse> Hash(HashRequest request, GrpcCore.ServerCallContext context)
    {
        await server.CheckMaintenanceAdminAsync(context.CancellationToken).ConfigureAwait(false);
        return server.Hash();
    }

    /// <inheritdoc/>
    public override async Task Snapshot(SnapshotRequest request, GrpcCore.IServerStreamWriter<SnapshotResponse> responseStream, GrpcCore.ServerCallContext context)
    {
        await server.CheckMaintenanceAdminAsync(context.CancellationToken).ConfigureAwait(false);
        await server.SnapshotAsync(StreamAdapters.Writer(responseStream), context.CancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<AlarmResponse> Alarm(AlarmRequest request, GrpcCore.ServerCallContext context)
    {
        // etcd proposes every alarm request, GET included, through raft (an auth error comes back untranslated).
        var resp = (AlarmResponse)(await EtcdServer.WithUntranslatedAuthErrorsAsync(() => server.ProposeAsync(new InternalRaftRequest { Alarm = request }, context.CancellationToken)).ConfigureAwait(false))!;
        server.FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <inheritdoc/>
    public override async Task<MoveLeaderResponse> MoveLeader(MoveLeaderRequest request, GrpcCore.ServerCallContext context)
    {
        server.ThrowIfLearner();
        return await server.MoveLeaderAsync(request.TargetID, context.CancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The <c>v3electionpb.Election</c> service (etcd's <c>api/v3election</c>; see <see cref="Election.ElectionServices"/>).</summary>
public sealed class ElectionGrpcService : V3Electionpb.Election.ElectionBase
{
    private readonly Election.ElectionCore _core;

    internal ElectionGrpcService(Election.ElectionCore core) => _core = core;

    /// <inheritdoc/>
    public override Task<V3Electionpb.CampaignResponse> Campaign(V3Electionpb.CampaignRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.CampaignAsync(request, context.CancellationToken));

    /// <inheritdoc/>
    public override Task<V3Electionpb.ProclaimResponse> Proclaim(V3Electionpb.ProclaimRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.ProclaimAsync(request, context.CancellationToken));

    /// <inheritdoc/>
    public override Task<V3Electionpb.LeaderResponse> Leader(V3Electionpb.LeaderRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.LeaderAsync(request, context.CancellationToken));

    /// <inheritdoc/>
    public override Task<V3Electionpb.ResignResponse> Resign(V3Electionpb.ResignRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.ResignAsync(request, context.CancellationToken));

    /// <inheritdoc/>
    public override Task Observe(V3Electionpb.LeaderRequest request, GrpcCore.IServerStreamWriter<V3Electionpb.LeaderResponse> responseStream, GrpcCore.ServerCallContext context)
        => _core.ObserveAsync(request, StreamAdapters.Writer(responseStream), context.CancellationToken);
}

/// <summary>The <c>v3lockpb.Lock</c> service (etcd's <c>api/v3lock</c>; see <see cref="Election.ElectionServices"/>).</summary>
public sealed class LockGrpcService : V3Lockpb.Lock.LockBase
{
    private readonly Election.ElectionCore _core;

    internal LockGrpcService(Election.ElectionCore core) => _core = core;

    /// <inheritdoc/>
    public override Task<V3Lockpb.LockResponse> Lock(V3Lockpb.LockRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.LockAsync(request, context.CancellationToken));

    /// <inheritdoc/>
    public override Task<V3Lockpb.UnlockResponse> Unlock(V3Lockpb.UnlockRequest request, GrpcCore.ServerCallContext context) => Election.ElectionServices.AsClientErrors(_core.UnlockAsync(request, context.CancellationToken));
}
