using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcdserverpb;

namespace Etcd.Client;

/// <summary>clientv3's Lease: grant, revoke, time-to-live, and keep-alive handles (<see cref="KeepAlive"/>). Thread-safe.</summary>
public sealed class LeaseClient
{
    private readonly EtcdClient _client;

    internal LeaseClient(EtcdClient client) => _client = client;

    /// <summary>Grants a lease of <paramref name="ttlSeconds"/> seconds (<paramref name="id"/> 0: the server picks the ID).</summary>
    public Task<LeaseGrantResponse> GrantAsync(long ttlSeconds, long id = 0, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = ttlSeconds, ID = id }, options, cancellationToken);

    /// <summary>Revokes a lease and deletes its keys; <see cref="EtcdException"/> <c>etcdserver: requested lease not found</c> when unknown.</summary>
    public Task<LeaseRevokeResponse> RevokeAsync(long id, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = id }, options, cancellationToken);

    /// <summary>A lease's remaining TTL in seconds (-1 when it does not exist), optionally with its keys.</summary>
    public Task<LeaseTimeToLiveResponse> TimeToLiveAsync(long id, bool keys = false, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.LeaseService.LeaseTimeToLive, new LeaseTimeToLiveRequest { ID = id, Keys = keys }, options, cancellationToken);

    /// <summary>
    /// Keeps lease <paramref name="id"/> alive until the handle is disposed: a LeaseKeepAlive stream on the current
    /// endpoint renews it at once and then every <paramref name="interval"/> (default: a third of the TTL the server
    /// last granted, as clientv3 does). See <see cref="LeaseKeepAlive"/>.
    /// </summary>
    /// <param name="id">The lease.</param>
    /// <param name="interval">Time between renewals; null for TTL/3.</param>
    /// <param name="timeProvider">The clock the renewals wait on; <see cref="TimeProvider.System"/> when null.</param>
    public LeaseKeepAlive KeepAlive(long id, TimeSpan? interval = null, TimeProvider? timeProvider = null)
    {
        if (interval is { } i)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(i, TimeSpan.Zero, nameof(interval));
        }

        return new LeaseKeepAlive(_client.GetChannel(), id, interval, timeProvider ?? TimeProvider.System);
    }
}

/// <summary>
/// A lease kept alive until disposed (clientv3's <c>KeepAlive</c>): renews over one LeaseKeepAlive stream, exposes the
/// TTL the server last granted and lets callers wait for renewals. When the lease is gone (expired or revoked: the
/// server answers TTL 0) <see cref="Completion"/> faults with <see cref="EtcdException"/>
/// <c>etcdserver: requested lease not found</c>; when the stream fails it faults with that failure; disposing ends it
/// normally (the lease then lives out its TTL). Thread-safe.
/// </summary>
public sealed class LeaseKeepAlive : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(int Count, TaskCompletionSource<long> Done)> _waiters = [];
    private readonly GrpcChannel _channel;
    private readonly TimeSpan? _interval;
    private readonly TimeProvider _time;
    private long _ttl;
    private int _renewals;
    private Exception? _failure;

    internal LeaseKeepAlive(GrpcChannel channel, long id, TimeSpan? interval, TimeProvider time)
    {
        _channel = channel;
        Id = id;
        _interval = interval;
        _time = time;
        Completion = Task.Run(RunAsync);
    }

    /// <summary>The lease.</summary>
    public long Id { get; }

    /// <summary>The TTL in seconds the server granted at the last renewal; 0 before the first.</summary>
    public long Ttl => Interlocked.Read(ref _ttl);

    /// <summary>How many renewals the server has answered.</summary>
    public int Renewals => Volatile.Read(ref _renewals);

    /// <summary>Ends when the handle is disposed (normally) or the lease or stream is lost (faulted).</summary>
    public Task Completion { get; }

    /// <summary>Completes with the granted TTL once <paramref name="count"/> renewals have been answered; faults if the keep-alive ends first.</summary>
    public Task<long> RenewedAsync(int count)
    {
        lock (_gate)
        {
            if (_renewals >= count)
            {
                return Task.FromResult(Ttl);
            }

            if (_failure is not null || _stop.IsCancellationRequested)
            {
                return Task.FromException<long>(_failure ?? new ObjectDisposedException(nameof(LeaseKeepAlive)));
            }

            var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, done));
            return done.Task;
        }
    }

    /// <summary>Stops renewing and closes the stream; waits for the renewal loop to end.</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            await Completion.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The keep-alive had already failed; its failure stays on Completion.
        }

        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        try
        {
            using var call = _channel.DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive, null, _stop.Token);
            while (true)
            {
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = Id }, _stop.Token).ConfigureAwait(false);
                if (!await call.ResponseStream.MoveNext(_stop.Token).ConfigureAwait(false))
                {
                    throw new RpcException(StatusCode.Unavailable, "the lease keep-alive stream ended");
                }

                var ttl = call.ResponseStream.Current.TTL;
                if (ttl <= 0)
                {
                    throw EtcdErrors.LeaseNotFound.ToException();
                }

                Renewed(ttl);
                var wait = _interval ?? TimeSpan.FromSeconds(Math.Max(ttl / 3.0, 0.5));
                await Task.Delay(wait, _time, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (_stop.IsCancellationRequested && e is OperationCanceledException or RpcException)
        {
            Fail(new ObjectDisposedException(nameof(LeaseKeepAlive)));
        }
        catch (Exception e)
        {
            Fail(e);
            throw;
        }
    }

    private void Renewed(long ttl)
    {
        List<TaskCompletionSource<long>> done = [];
        lock (_gate)
        {
            Interlocked.Exchange(ref _ttl, ttl);
            _renewals++;
            _waiters.RemoveAll(w =>
            {
                if (w.Count > _renewals)
                {
                    return false;
                }

                done.Add(w.Done);
                return true;
            });
        }

        done.ForEach(d => d.TrySetResult(ttl));
    }

    private void Fail(Exception e)
    {
        List<(int, TaskCompletionSource<long> Done)> waiters;
        lock (_gate)
        {
            _failure ??= e;
            waiters = [.. _waiters];
            _waiters.Clear();
        }

        waiters.ForEach(w => w.Done.TrySetException(e));
    }
}
