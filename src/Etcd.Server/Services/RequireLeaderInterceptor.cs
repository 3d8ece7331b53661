using Etcd.Api;
using Etcd.Server.Grpc;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Services;

/// <summary>
/// etcd's <c>hasleader</c> rule for every gRPC call (<c>etcdserver/api/v3rpc/interceptor.go</c>): a call whose
/// metadata carries <c>hasleader: true</c> (clientv3's <c>WithRequireLeader</c>) fails with
/// <see cref="EtcdErrors.NoLeader"/> (<c>etcdserver: no leader</c>, Unavailable) when the member knows no leader;
/// such a streaming call (Watch, LeaseKeepAlive, ...) that started with a leader is ended with the same error once
/// the member has found no leader at <see cref="MaxNoLeaderChecks"/> checks in a row, one check per election
/// timeout (etcd's monitorLeader). A Grpc.AspNetCore interceptor inside the server's call interceptor (whose call it aborts).
/// Thread-safe. The monitor runs until the server stops or this is disposed.
/// </summary>
public sealed class RequireLeaderInterceptor : GrpcCore.Interceptors.Interceptor, IDisposable
{
    /// <summary>The metadata key clientv3 sets (etcd's <c>rpctypes.MetadataRequireLeaderKey</c>).</summary>
    public const string RequireLeaderKey = "hasleader";

    /// <summary>Consecutive leaderless checks after which guarded streams end (etcd's <c>maxNoLeaderCnt</c>).</summary>
    public const int MaxNoLeaderChecks = 3;

    private readonly Func<bool> _hasLeader;
    private readonly TimeSpan _checkInterval;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private CancellationTokenSource _lostLeader = new();
    private Task? _monitor;

    /// <summary>Guards the calls of <paramref name="server"/>, checking once per its election timeout.</summary>
    public RequireLeaderInterceptor(EtcdServer server)
        : this(() => server.Leader != 0, TimeSpan.FromMilliseconds(server.Options.ElectionTimeoutMs))
    {
        server.Stopped.ContinueWith(_ => Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Guards calls against <paramref name="hasLeader"/>, checked every <paramref name="checkInterval"/>.</summary>
    public RequireLeaderInterceptor(Func<bool> hasLeader, TimeSpan checkInterval)
    {
        ArgumentNullException.ThrowIfNull(hasLeader);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(checkInterval, TimeSpan.Zero);
        _hasLeader = hasLeader;
        _checkInterval = checkInterval;
    }

    /// <summary>Whether <paramref name="requestHeaders"/> ask for a leader (<c>hasleader: true</c>).</summary>
    public static bool RequiresLeader(GrpcCore.Metadata requestHeaders)
    {
        ArgumentNullException.ThrowIfNull(requestHeaders);
        return string.Equals(requestHeaders.GetValue(RequireLeaderKey), "true", StringComparison.Ordinal);
    }

    /// <summary>
    /// Checks a call with <paramref name="requestHeaders"/> before its handler runs. Returns a token that fires when a
    /// streaming call must end for a lost leader (none for unary calls or calls that do not ask for a leader).
    /// </summary>
    /// <exception cref="EtcdException"><c>etcdserver: no leader</c> for a <c>hasleader</c> call while leaderless.</exception>
    public CancellationToken Check(GrpcCore.Metadata requestHeaders, bool streaming)
    {
        if (!RequiresLeader(requestHeaders))
        {
            return CancellationToken.None;
        }

        if (!_hasLeader())
        {
            throw EtcdErrors.NoLeader.ToException();
        }

        if (!streaming)
        {
            return CancellationToken.None;
        }

        lock (_gate)
        {
            _monitor ??= Task.Run(MonitorAsync);
            return _lostLeader.Token;
        }
    }

    // The handlers below add no async frame of their own to a call that needs no guard (every unary call, and every
    // streaming call without hasleader): the check runs and the continuation's task is returned as it is.

    /// <inheritdoc/>
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, GrpcCore.ServerCallContext context, GrpcCore.UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context.RequestHeaders, streaming: false);
        return continuation(request, context);
    }

    /// <inheritdoc/>
    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, GrpcCore.IServerStreamWriter<TResponse> responseStream, GrpcCore.ServerCallContext context, GrpcCore.ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var guard = Guard(context);
        return guard == default ? continuation(request, responseStream, context) : GuardedAsync(guard, () => continuation(request, responseStream, context));
    }

    /// <inheritdoc/>
    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(GrpcCore.IAsyncStreamReader<TRequest> requestStream, GrpcCore.ServerCallContext context, GrpcCore.ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var guard = Guard(context);
        return guard == default ? continuation(requestStream, context) : GuardedAsync(guard, () => continuation(requestStream, context));
    }

    /// <inheritdoc/>
    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(GrpcCore.IAsyncStreamReader<TRequest> requestStream, GrpcCore.IServerStreamWriter<TResponse> responseStream, GrpcCore.ServerCallContext context, GrpcCore.DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var guard = Guard(context);
        return guard == default ? continuation(requestStream, responseStream, context) : GuardedAsync(guard, () => continuation(requestStream, responseStream, context));
    }

    /// <summary>Runs a guarded call, then drops its lost-leader registration.</summary>
    private static async Task GuardedAsync(CancellationTokenRegistration guard, Func<Task> call)
    {
        using (guard)
        {
            await call().ConfigureAwait(false);
        }
    }

    /// <summary>Runs a guarded call, then drops its lost-leader registration.</summary>
    private static async Task<T> GuardedAsync<T>(CancellationTokenRegistration guard, Func<Task<T>> call)
    {
        using (guard)
        {
            return await call().ConfigureAwait(false);
        }
    }

    /// <summary>Checks a streaming call and, when it asks for a leader, ends it with <c>etcdserver: no leader</c> once the leader is lost.</summary>
    private CancellationTokenRegistration Guard(GrpcCore.ServerCallContext context)
    {
        var lost = Check(context.RequestHeaders, streaming: true);
        return lost.CanBeCanceled && GrpcCall.Of(context) is { } call
            ? lost.Register(() => call.Abort(EtcdErrors.NoLeader.ToException()))
            : default;
    }

    /// <summary>Stops the monitor; streams already guarded are no longer ended for a lost leader.</summary>
    public void Dispose()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task MonitorAsync()
    {
        var leaderless = 0;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_checkInterval, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            leaderless = _hasLeader() ? 0 : leaderless + 1;
            if (leaderless < MaxNoLeaderChecks)
            {
                continue;
            }

            CancellationTokenSource lost;
            lock (_gate)
            {
                lost = _lostLeader;
                _lostLeader = new CancellationTokenSource();
            }

            lost.Cancel();
        }
    }
}
