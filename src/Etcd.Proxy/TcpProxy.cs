using System.Net;
using System.Net.Sockets;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Proxy;

/// <summary>
/// One backend of a <see cref="TcpProxy"/>: a host and port with the SRV priority and weight that choose among
/// backends (0 and 0 for endpoints given on the command line).
/// </summary>
/// <param name="Host">Host name or IP address, dialled as given.</param>
/// <param name="Port">TCP port.</param>
/// <param name="Priority">SRV priority: the lowest class with an active backend is used.</param>
/// <param name="Weight">SRV weight within a priority class; 0 backends are picked round-robin.</param>
public sealed record TcpProxyEndpoint(string Host, int Port, ushort Priority = 0, ushort Weight = 0)
{
    /// <summary><c>host:port</c>, as etcd names the endpoint in its log lines.</summary>
    public string Address => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

/// <summary>
/// etcd's L4 gateway (<c>proxy/tcpproxy/userspace.go</c>): accepts TCP connections and pipes each, byte for byte,
/// to one backend chosen by <see cref="Pick"/> (best SRV priority class; weighted random among weighted backends,
/// else round-robin over the active ones). A backend that refuses a dial is deactivated ("deactivated endpoint") and
/// the next one is tried for the same connection; a connection no backend takes is closed. Every
/// <c>monitorInterval</c> each inactive backend is dialled once and reactivated ("activated") when it answers.
/// Thread-safe: <see cref="RunAsync"/> once; <see cref="Pick"/> and <see cref="IsActive"/> from any thread.
/// </summary>
public sealed class TcpProxy
{
    private readonly Socket _listener;
    private readonly Remote[] _remotes;
    private readonly TimeSpan _monitorInterval;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _pickLock = new();
    private int _pickCount;

    /// <summary>Creates a proxy over a bound, listening socket.</summary>
    /// <param name="listener">The listening socket; the proxy closes it when <see cref="RunAsync"/> ends.</param>
    /// <param name="endpoints">The backends, in order (round-robin follows this order).</param>
    /// <param name="monitorInterval">How long a failed backend stays inactive before it is dialled again
    /// (etcd's <c>--retry-delay</c>); zero means etcd's default of 5 minutes.</param>
    /// <param name="loggerFactory">Where etcd's lines go (category <c>proxy/tcpproxy</c>).</param>
    /// <param name="time">The clock of the monitor.</param>
    public TcpProxy(Socket listener, IReadOnlyList<TcpProxyEndpoint> endpoints, TimeSpan monitorInterval, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(endpoints);
        _listener = listener;
        _remotes = endpoints.Select(e => new Remote(e)).ToArray();
        _monitorInterval = monitorInterval <= TimeSpan.Zero ? TimeSpan.FromMinutes(5) : monitorInterval;
        _logger = loggerFactory.CreateLogger("proxy/tcpproxy");
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The backends, in the order given.</summary>
    public IReadOnlyList<TcpProxyEndpoint> Endpoints => _remotes.Select(r => r.Endpoint).ToArray();

    /// <summary>Whether backend <paramref name="index"/> is taking connections.</summary>
    public bool IsActive(int index) => _remotes[index].Active;

    /// <summary>Raised after the monitor's round of reactivation dials (tests wait on it instead of sleeping).</summary>
    public event Action? MonitorRoundCompleted;

    /// <summary>
    /// Logs "ready to proxy client requests", then accepts and pipes connections until
    /// <paramref name="cancellationToken"/> is cancelled (the listener is then closed; open connections are left to
    /// finish, as etcd's <c>Stop</c> does).
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var addresses = _remotes.Select(r => r.Endpoint.Address).ToArray();
        _logger.LogEtcd(LogLevel.Information, "tcpproxy/userspace.go:90", "ready to proxy client requests",
            $"ready to proxy client requests to [{string.Join(' ', addresses)}]", ("endpoints", addresses));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var monitor = MonitorAsync(stop.Token);
        try
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                _ = ServeAsync(client);
            }
        }
        finally
        {
            _listener.Dispose();
            await stop.CancelAsync().ConfigureAwait(false);
            await monitor.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Chooses a backend as etcd's <c>pick</c>: among active backends of the best (lowest) priority, a weighted random
    /// choice when any has a weight (weight-0 ones then get a 1% chance), else the next active backend in round-robin
    /// order over all backends. Null when no backend is active.
    /// </summary>
    public TcpProxyEndpoint? Pick()
    {
        lock (_pickLock)
        {
            return PickRemote()?.Endpoint;
        }
    }

    private Remote? PickRemote()
    {
        List<Remote>? weighted = null;
        List<Remote>? unweighted = null;
        int bestPriority = ushort.MaxValue;
        int totalWeight = 0;
        foreach (var r in _remotes)
        {
            if (!r.Active)
            {
                continue;
            }

            if (r.Endpoint.Priority < bestPriority)
            {
                bestPriority = r.Endpoint.Priority;
                totalWeight = 0;
                weighted = null;
                unweighted = [];
            }

            if (r.Endpoint.Priority == bestPriority)
            {
                if (r.Endpoint.Weight > 0)
                {
                    (weighted ??= []).Add(r);
                    totalWeight += r.Endpoint.Weight;
                }
                else
                {
                    (unweighted ??= []).Add(r);
                }
            }
        }

        if (weighted is not null)
        {
            if (unweighted is { Count: > 0 } && Random.Shared.Next(100) == 1)
            {
                return unweighted[_pickCount++ % unweighted.Count];
            }

            int choose = Random.Shared.Next(totalWeight);
            foreach (var r in weighted)
            {
                choose -= r.Endpoint.Weight;
                if (choose <= 0)
                {
                    return r;
                }
            }
        }

        if (unweighted is not null)
        {
            for (int i = 0; i < _remotes.Length; i++)
            {
                var picked = _remotes[_pickCount++ % _remotes.Length];
                if (picked.Active)
                {
                    return picked;
                }
            }
        }

        return null;
    }

    private async Task ServeAsync(Socket client)
    {
        Socket? upstream = null;
        try
        {
            while (true)
            {
                Remote? remote;
                lock (_pickLock)
                {
                    remote = PickRemote();
                }

                if (remote is null)
                {
                    break;
                }

                var attempt = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await attempt.ConnectAsync(remote.Endpoint.Host, remote.Endpoint.Port).ConfigureAwait(false);
                    upstream = attempt;
                    break;
                }
                catch (SocketException e)
                {
                    attempt.Dispose();
                    remote.Active = false;
                    _logger.LogEtcd(LogLevel.Warning, "tcpproxy/userspace.go:176", "deactivated endpoint",
                        $"deactivated endpoint [{remote.Endpoint.Address}] due to {DialError(remote, e)} for {GoDuration.Format(_monitorInterval)}",
                        ("address", remote.Endpoint.Address), ("interval", GoDuration.Format(_monitorInterval)), ("error", DialError(remote, e)));
                }
            }

            if (upstream is null)
            {
                return;
            }

            client.NoDelay = true;
            var up = CopyAsync(client, upstream);
            var down = CopyAsync(upstream, client);
            await Task.WhenAny(up, down).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            // a connection that breaks mid-copy is closed on both sides, as io.Copy's return does in etcd
        }
        finally
        {
            client.Dispose();
            upstream?.Dispose();
        }
    }

    /// <summary>Copies until the source ends, then half-closes the target.</summary>
    private static async Task CopyAsync(Socket source, Socket target)
    {
        var buffer = new byte[32 * 1024];
        try
        {
            while (true)
            {
                int n = await source.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                await target.SendAsync(buffer.AsMemory(0, n), SocketFlags.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private static string DialError(Remote remote, SocketException e) =>
        $"dial tcp {remote.Endpoint.Address}: connect: {(e.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : e.Message.ToLowerInvariant())}";

    private async Task MonitorAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_monitorInterval, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var dials = _remotes.Where(r => !r.Active).Select(TryReactivateAsync).ToArray();
            await Task.WhenAll(dials).ConfigureAwait(false);
            MonitorRoundCompleted?.Invoke();
        }
    }

    private async Task TryReactivateAsync(Remote remote)
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await probe.ConnectAsync(remote.Endpoint.Host, remote.Endpoint.Port).ConfigureAwait(false);
            remote.Active = true;
            _logger.LogEtcd(LogLevel.Information, "tcpproxy/userspace.go:212", "activated", $"activated {remote.Endpoint.Address}",
                ("address", remote.Endpoint.Address));
        }
        catch (SocketException e)
        {
            _logger.LogEtcd(LogLevel.Warning, "tcpproxy/userspace.go:204", "failed to activate endpoint (stay inactive for another interval)",
                $"failed to activate endpoint [{remote.Endpoint.Address}] due to {DialError(remote, e)} (stay inactive for another {GoDuration.Format(_monitorInterval)})",
                ("address", remote.Endpoint.Address), ("interval", GoDuration.Format(_monitorInterval)), ("error", DialError(remote, e)));
        }
    }

    private sealed class Remote(TcpProxyEndpoint endpoint)
    {
        private volatile bool _active = true;

        public TcpProxyEndpoint Endpoint { get; } = endpoint;

        public bool Active
        {
            get => _active;
            set => _active = value;
        }
    }
}
