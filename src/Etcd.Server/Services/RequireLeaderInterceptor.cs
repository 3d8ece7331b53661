using Etcd.Api;
using Etcd.Api.Grpc;

namespace Etcd.Server.Services;

/// <summary>
/// etcd's <c>hasleader</c> rule for every gRPC call (<c>etcdserver/api/v3rpc/interceptor.go</c>): a call whose
/// metadata carries <c>hasleader: true</c> (clientv3's <c>WithRequireLeader</c>) fails with
/// <see cref="EtcdErrors.NoLeader"/> (<c>etcdserver: no leader</c>, Unavailable) when the member knows no leader;
/// such a streaming call (Watch, LeaseKeepAlive, ...) that started with a leader is ended with the same error once
/// the member has found no leader at <see cref="MaxNoLeaderChecks"/> checks in a row, one check per election
/// timeout (etcd's monitorLeader). Thread-safe. The monitor runs until the server stops or this is disposed.
/// </summary>
public sealed class RequireLeaderInterceptor : ServerCallInterceptor, IDisposable
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
    public static bool RequiresLeader(Metadata requestHeaders) =>
        string.Equals(requestHeaders.Get(RequireLeaderKey), "true", StringComparison.Ordinal);

    /// <inheritdoc/>
    /// <exception cref="EtcdException"><c>etcdserver: no leader</c> for a <c>hasleader</c> call while leaderless.</exception>
    public override StreamGuard? BeforeCall(IMethod method, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(context);
        if (!RequiresLeader(context.RequestHeaders))
        {
            return null;
        }

        if (!_hasLeader())
        {
            throw EtcdErrors.NoLeader.ToException();
        }

        if (method.Type == MethodType.Unary)
        {
            return null;
        }

        lock (_gate)
        {
            _monitor ??= Task.Run(MonitorAsync);
            return new StreamGuard(_lostLeader.Token, EtcdErrors.NoLeader.ToException());
        }
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
