using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.Mvcc;
using Etcdserverpb;

namespace Etcd.Server.Services;

/// <summary>
/// The gRPC services of a member (etcd's <c>api/v3rpc</c>): thin adapters that validate a request as
/// etcd's v3rpc layer does, call <see cref="EtcdServer"/> and return its response. Methods not
/// registered here answer Unimplemented.
/// </summary>
public static class EtcdServices
{
    /// <summary>Registers KV and Maintenance (Status, Alarm, Hash, HashKV, Defragment, Snapshot) for <paramref name="server"/>.</summary>
    public static ServiceRegistry Register(ServiceRegistry registry, EtcdServer server)
    {
        var maxTxnOps = server.Options.MaxTxnOps;
        registry.MapUnary(EtcdMethods.KVService.Range, async (req, ctx) =>
        {
            KvStore.ValidateRange(req);
            return await server.RangeAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.KVService.Put, async (req, ctx) =>
        {
            KvStore.ValidatePut(req);
            return await server.PutAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.KVService.DeleteRange, async (req, ctx) =>
        {
            KvStore.ValidateDeleteRange(req);
            return await server.DeleteRangeAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.KVService.Txn, async (req, ctx) =>
        {
            KvStore.ValidateTxn(req, maxTxnOps);
            return await server.TxnAsync(req, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.KVService.Compact, async (req, ctx) =>
            await server.CompactAsync(req, ctx.CancellationToken).ConfigureAwait(false));

        registry.MapUnary(EtcdMethods.MaintenanceService.Status, (req, ctx) => ValueTask.FromResult(server.Status()));
        registry.MapUnary(EtcdMethods.MaintenanceService.HashKV, async (req, ctx) =>
        {
            await server.CheckMaintenanceAdminAsync(ctx.CancellationToken).ConfigureAwait(false);

            // etcd hashes local state; a linearizable barrier first makes the answer comparable across members.
            await server.LinearizableReadNotifyAsync(ctx.CancellationToken).ConfigureAwait(false);
            var h = server.Kv.HashByRevision(req.Revision);
            var resp = new HashKVResponse
            {
                Header = new ResponseHeader { Revision = h.CurrentRevision },
                Hash = h.Hash,
                CompactRevision = h.CompactRevision,
                HashRevision = h.HashRevision,
            };
            server.FillHeader(resp.Header);
            return resp;
        });
        registry.MapUnary(EtcdMethods.MaintenanceService.Defragment, async (req, ctx) =>
        {
            await server.CheckMaintenanceAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return await server.DefragmentAsync(ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.MaintenanceService.Hash, async (req, ctx) =>
        {
            await server.CheckMaintenanceAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            return server.Hash();
        });
        registry.MapServerStreaming(EtcdMethods.MaintenanceService.Snapshot, async (req, responses, ctx) =>
        {
            await server.CheckMaintenanceAdminAsync(ctx.CancellationToken).ConfigureAwait(false);
            await server.SnapshotAsync(responses, ctx.CancellationToken).ConfigureAwait(false);
        });
        registry.MapUnary(EtcdMethods.MaintenanceService.Alarm, async (req, ctx) =>
        {
            // etcd proposes every alarm request, GET included, through raft (an auth error comes back untranslated).
            var resp = (AlarmResponse)(await EtcdServer.WithUntranslatedAuthErrorsAsync(() => server.ProposeAsync(new InternalRaftRequest { Alarm = req }, ctx.CancellationToken)).ConfigureAwait(false))!;
            server.FillHeader(resp.Header ??= new ResponseHeader());
            return resp;
        });

        Watch.WatchService.Register(registry, server);
        Lease.LeaseServices.Register(registry, server);
        Election.ElectionServices.Register(registry, server);
        return registry;
    }
}
