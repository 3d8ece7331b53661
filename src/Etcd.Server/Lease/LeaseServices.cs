using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;

namespace Etcd.Server.Lease;

/// <summary>
/// The <c>etcdserverpb.Lease</c> gRPC service (etcd's <c>api/v3rpc/lease.go</c>) over <see cref="EtcdServer"/>, served by <see cref="Services.LeaseGrpcService"/>.
/// </summary>
public static class LeaseServices
{
    /// <summary>LeaseTimeToLive as etcd answers it: an unknown lease is TTL -1, not an error.</summary>
    public static async Task<LeaseTimeToLiveResponse> TimeToLiveAsync(EtcdServer server, LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            return await server.LeaseTimeToLiveAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (EtcdException e) when (e.Error == EtcdErrors.LeaseNotFound)
        {
            var resp = new LeaseTimeToLiveResponse { Header = new ResponseHeader(), ID = request.ID, TTL = -1 };
            server.FillHeader(resp.Header);
            return resp;
        }
    }

    /// <summary>
    /// Serves one keep-alive stream: each request renews its lease and is answered with header, ID and TTL
    /// (TTL 0 for a lease that is not found); the stream ends when the client half-closes. Other errors
    /// (timeout, stopped) end the stream with their gRPC status.
    /// </summary>
    public static async Task KeepAliveAsync(
        EtcdServer server,
        IAsyncStreamReader<LeaseKeepAliveRequest> requests,
        IAsyncStreamWriter<LeaseKeepAliveResponse> responses,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(responses);
        while (true)
        {
            try
            {
                if (!await requests.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    break;
                }
            }
            catch (RpcException e) when (Metrics.GrpcServerMetrics.IsStreamFailure(e))
            {
                server.Metrics.Grpc.StreamFailed("receive", "lease-keepalive");
                throw;
            }

            var req = requests.Current;

            // The header is taken before renewing, so its revision is never after the renewal (as etcd).
            var resp = new LeaseKeepAliveResponse { ID = req.ID, Header = new ResponseHeader() };
            server.FillHeader(resp.Header);
            try
            {
                resp.TTL = await server.LeaseRenewAsync(req.ID, cancellationToken).ConfigureAwait(false);
            }
            catch (EtcdException e) when (e.Error == EtcdErrors.LeaseNotFound)
            {
                resp.TTL = 0;
            }

            try
            {
                await responses.WriteAsync(resp, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (Metrics.GrpcServerMetrics.IsStreamFailure(e))
            {
                server.Metrics.Grpc.StreamFailed("send", "lease-keepalive");
                throw;
            }
        }
    }
}
