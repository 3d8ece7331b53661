using System.Threading.Channels;
using Etcdserverpb;
using Grpc.Core;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's Lease service (etcd's <c>proxy/grpcproxy/lease.go</c>): grant, revoke, time-to-live (attached keys
/// out of the namespace) and leases go to the cluster; keep-alives of every client stream are fanned in on one
/// keep-alive stream to the cluster (<see cref="LeaseKeepAliveHub"/>), where concurrent requests for one lease become one
/// request whose response answers them all. Thread-safe.
/// </summary>
public sealed class LeaseProxy : Etcdserverpb.Lease.LeaseBase
{
    private readonly ProxyUpstream _upstream;
    private readonly KeyNamespace _ns;
    private readonly LeaseKeepAliveHub _hub;

    /// <summary>Creates the service.</summary>
    public LeaseProxy(ProxyUpstream upstream, KeyNamespace ns, LeaseKeepAliveHub hub)
    {
        _upstream = upstream;
        _ns = ns;
        _hub = hub;
    }

    /// <inheritdoc/>
    public override async Task<LeaseGrantResponse> LeaseGrant(LeaseGrantRequest request, ServerCallContext context) =>
        await _upstream.Lease.LeaseGrantAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<LeaseRevokeResponse> LeaseRevoke(LeaseRevokeRequest request, ServerCallContext context) =>
        await _upstream.Lease.LeaseRevokeAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task<LeaseTimeToLiveResponse> LeaseTimeToLive(LeaseTimeToLiveRequest request, ServerCallContext context) =>
        _ns.Down(await _upstream.Lease.LeaseTimeToLiveAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false));

    /// <inheritdoc/>
    public override async Task<LeaseLeasesResponse> LeaseLeases(LeaseLeasesRequest request, ServerCallContext context) =>
        await _upstream.Lease.LeaseLeasesAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);

    /// <inheritdoc/>
    public override async Task LeaseKeepAlive(IAsyncStreamReader<LeaseKeepAliveRequest> requestStream, IServerStreamWriter<LeaseKeepAliveResponse> responseStream, ServerCallContext context)
    {
        var outbox = Channel.CreateUnbounded<LeaseKeepAliveResponse>(new UnboundedChannelOptions { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        Exception? failure = null;
        var send = Task.Run(async () =>
        {
            await foreach (var r in outbox.Reader.ReadAllAsync(stop.Token).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(r).ConfigureAwait(false);
            }
        }, CancellationToken.None);
        var inFlight = new List<Task>();
        try
        {
            while (await requestStream.MoveNext(stop.Token).ConfigureAwait(false))
            {
                long id = requestStream.Current.ID;
                inFlight.RemoveAll(t => t.IsCompleted);
                inFlight.Add(Task.Run(async () =>
                {
                    try
                    {
                        outbox.Writer.TryWrite(await _hub.KeepAliveAsync(id, stop.Token).ConfigureAwait(false));
                    }
                    catch (RpcException e)
                    {
                        failure ??= e;
                        await stop.CancelAsync().ConfigureAwait(false);
                    }
                }, CancellationToken.None));
            }

            await Task.WhenAll(inFlight).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (failure is not null || context.CancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            outbox.Writer.TryComplete();
            try
            {
                await send.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
            }
        }

        if (failure is not null)
        {
            throw failure;
        }
    }
}

/// <summary>
/// One keep-alive stream to the cluster shared by every client of the proxy. <see cref="KeepAliveAsync"/> sends a
/// request for the lease unless one is already waiting for its answer, and completes with the next response for that
/// lease. The stream is opened on first use and again after it fails (its waiters then fail with the error).
/// Thread-safe.
/// </summary>
public sealed class LeaseKeepAliveHub : IDisposable
{
    private readonly ProxyUpstream _upstream;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly Dictionary<long, TaskCompletionSource<LeaseKeepAliveResponse>> _pending = [];
    private readonly CancellationTokenSource _disposed = new();
    private AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse>? _call;
    private long _upstreamRequests;
    private long _streamsOpened;

    /// <summary>Creates the hub; no stream is opened yet.</summary>
    public LeaseKeepAliveHub(ProxyUpstream upstream) => _upstream = upstream;

    /// <summary>Keep-alive streams opened to the cluster so far (one while the cluster keeps it open).</summary>
    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    /// <summary>Keep-alive requests sent to the cluster so far (fan-in: fewer than the clients sent when they overlap).</summary>
    public long UpstreamRequests => Interlocked.Read(ref _upstreamRequests);

    /// <summary>Keeps the lease alive once; the cluster's response (TTL 0 when the lease is gone).</summary>
    /// <exception cref="RpcException">The cluster's stream failed.</exception>
    public async Task<LeaseKeepAliveResponse> KeepAliveAsync(long id, CancellationToken cancellationToken)
    {
        TaskCompletionSource<LeaseKeepAliveResponse> waiter;
        bool send;
        AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call;
        lock (_lock)
        {
            send = !_pending.TryGetValue(id, out waiter!);
            if (send)
            {
                waiter = new TaskCompletionSource<LeaseKeepAliveResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pending[id] = waiter;
            }

            if (_call is null)
            {
                _call = _upstream.Lease.LeaseKeepAlive(cancellationToken: _disposed.Token);
                Interlocked.Increment(ref _streamsOpened);
                _ = ReadAsync(_call);
            }

            call = _call;
        }

        if (send)
        {
            await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                Interlocked.Increment(ref _upstreamRequests);
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                Fail(call, new RpcException(new Status(StatusCode.Unavailable, e.Message)));
            }
            finally
            {
                _write.Release();
            }
        }

        return await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task ReadAsync(AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call)
    {
        try
        {
            while (await call.ResponseStream.MoveNext(_disposed.Token).ConfigureAwait(false))
            {
                var r = call.ResponseStream.Current;
                TaskCompletionSource<LeaseKeepAliveResponse>? waiter;
                lock (_lock)
                {
                    _pending.Remove(r.ID, out waiter);
                }

                waiter?.TrySetResult(r);
            }

            Fail(call, new RpcException(new Status(StatusCode.Unavailable, "lease keep-alive stream closed")));
        }
        catch (RpcException e)
        {
            Fail(call, e);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            Fail(call, new RpcException(new Status(StatusCode.Unavailable, e.Message)));
        }
    }

    private void Fail(AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse> call, RpcException e)
    {
        List<TaskCompletionSource<LeaseKeepAliveResponse>> waiters;
        lock (_lock)
        {
            if (_call != call)
            {
                return;
            }

            _call = null;
            waiters = [.. _pending.Values];
            _pending.Clear();
        }

        call.Dispose();
        foreach (var w in waiters)
        {
            w.TrySetException(e);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed.Cancel();
        lock (_lock)
        {
            _call?.Dispose();
            _call = null;
        }
    }
}
