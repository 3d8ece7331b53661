using System.Net;
using System.Net.Sockets;
using Etcd.Api.Grpc;
using Etcd.Server.Grpc;
using Etcd.Server.Http;
using Etcd.Server.Logging;
using Etcd.Server.Services;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server;

/// <summary>
/// Starts a member from typed options (etcd's <c>embed.StartEtcd</c>): the <see cref="EtcdServer"/>, its
/// gRPC + HTTP listeners on the client URLs, the <c>--listen-metrics-urls</c> listeners (<see cref="Http.MetricsListener"/>) and the peer listeners. Tests and benchmarks embed a member
/// through it; the <c>etcd</c> executable is a thin shell over it. Dispose to stop.
/// </summary>
public sealed class EtcdHost : IAsyncDisposable
{
    private readonly GrpcHttpServer _client;
    private readonly MetricsListener _metrics;
    private readonly List<Transport.PeerListener> _peerListeners;
    private readonly ILogger _log;

    private EtcdHost(EtcdServer server, GrpcHttpServer client, MetricsListener metrics, List<Transport.PeerListener> peerListeners, ILogger log)
    {
        Server = server;
        _client = client;
        _metrics = metrics;
        _peerListeners = peerListeners;
        _log = log;
    }

    /// <summary>The member.</summary>
    public EtcdServer Server { get; }

    /// <summary>The client URLs actually bound (port 0 resolved).</summary>
    public IReadOnlyList<Uri> ClientUrls => _client.BoundUrls;

    /// <summary>The <c>--listen-metrics-urls</c> actually bound (port 0 resolved); empty when none was given.</summary>
    public IReadOnlyList<Uri> MetricsUrls => _metrics.BoundUrls;

    /// <summary>Completes when the member stops (disposal or a fatal raft-loop error).</summary>
    public Task Stopped => Server.Stopped;

    /// <summary>
    /// Starts the member and waits until it serves clients (it has a leader and has published itself), then
    /// logs etcd's readiness lines.
    /// </summary>
    /// <exception cref="EtcdStartException">Bad configuration, unusable data directory, or a port that is already in use.</exception>
    public static async Task<EtcdHost> StartAsync(EtcdOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        var log = loggerFactory.CreateLogger("embed/etcd.go");
        var clientTls = Tls.TlsConfig.ForClients(options, loggerFactory);

        // Claim the peer ports first, as etcd does: a busy port fails the start before anything is written.
        var peers = new List<Transport.PeerListener>();
        EtcdHostLog.ConfiguringPeerListeners(log, options);
        try
        {
            foreach (var u in options.ListenPeerUrls)
            {
                peers.Add(Transport.PeerListener.Start(u, ResolveListenAddress));
            }
        }
        catch (SocketException e)
        {
            StopAll(peers);
            throw new EtcdStartException($"listen tcp {PeerHostPort(options)}: bind: {BindReason(e)}", e);
        }

        // Likewise the client ports: a busy one must fail the start before the data directory is touched.
        EtcdHostLog.ConfiguringClientListeners(log, options);
        foreach (var u in options.ListenClientUrls.Where(u => u.Port != 0))
        {
            try
            {
                var probe = new TcpListener(ResolveListenAddress(u.Host), u.Port);
                probe.Start();
                probe.Stop();
            }
            catch (SocketException e)
            {
                StopAll(peers);
                throw new EtcdStartException($"listen tcp {u.Authority}: bind: {BindReason(e)}", e);
            }
        }

        EtcdServer server;
        Transport.TcpRaftTransport transport;
        try
        {
            var peerTls = Tls.TlsConfig.ForPeers(options, loggerFactory);
            foreach (var u in options.ListenPeerUrls.Where(u => u.Scheme is "https" or "unixs" && peerTls is null))
            {
                throw new EtcdStartException($"cannot listen on TLS for {u.Authority}: KeyFile and CertFile are not presented");
            }

            transport = new Transport.TcpRaftTransport(loggerFactory.CreateLogger("rafthttp"), peerTls);
            EtcdHostLog.StartingServer(log, options, memberInitialized: Directory.Exists(options.ResolvedWalDir));
            server = EtcdServer.Start(options, loggerFactory, startLoop: false, transport);
        }
        catch
        {
            StopAll(peers);
            throw;
        }

        // etcd checks a restarting member's data against its peers before it serves anything (embed.StartEtcd).
        try
        {
            await server.CheckInitialHashKvAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            StopAll(peers);
            throw;
        }

        var registry = EtcdServices.Bind(new GrpcServiceTable(), server);
        server.Metrics.Grpc.Register(registry.Methods.Select(m => m.Method));
        var http = new HttpEndpoints(server, registry, new AccessController(options, loggerFactory), loggerFactory);
        var client = new GrpcHttpServer(
            new GrpcHttpServerOptions
            {
                Urls = options.ListenClientUrls.Select(u => u.OriginalString).ToList(),
                MaxReceiveMessageBytes = options.MaxRequestBytes + 512 * 1024,
                MaxConcurrentStreams = options.MaxConcurrentStreams == 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, options.MaxConcurrentStreams),
                KeepAlivePingInterval = KeepAliveDefaults(options) ? TimeSpan.FromHours(2) : TimeSpan.FromMilliseconds(options.GrpcKeepaliveIntervalMs),
                KeepAlivePingTimeout = KeepAliveDefaults(options) ? TimeSpan.FromSeconds(20) : TimeSpan.FromMilliseconds(options.GrpcKeepaliveTimeoutMs),
                LoggerFactory = loggerFactory,
                Tls = clientTls,
                Metrics = server.Metrics.Grpc,
                Interceptors = [new Auth.AuthCallInterceptor(options.ClientTls.ClientCertAuth), new RequireLeaderInterceptor(server)],
            },
            registry,
            http.HandleAsync);
        try
        {
            await client.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await server.DisposeAsync().ConfigureAwait(false);
            StopAll(peers);
            var se = e as SocketException ?? e.InnerException as SocketException;
            throw new EtcdStartException(
                $"listen tcp {string.Join(",", options.ListenClientUrls.Select(u => u.Authority))}: bind: {(se is null ? e.Message : BindReason(se))}", e);
        }

        MetricsListener metrics;
        try
        {
            metrics = await MetricsListener.StartAsync(server, options.ListenMetricsUrls, clientTls, loggerFactory, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            StopAll(peers);
            throw;
        }

        server.StartLoop();
        EtcdHostLog.NowServing(log, options, Membership.Member.IdString(server.MemberId));
        for (var i = 0; i < peers.Count; i++)
        {
            transport.Serve(peers[i]);
            EtcdHostLog.ServingPeerTraffic(log, peers[i].LocalEndpoint.ToString() ?? "");
        }

        var host = new EtcdHost(server, client, metrics, peers, log);
        try
        {
            await server.ReadyToServe.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        log.LogEtcd(LogLevel.Information, "embed/serve.go:100", "", "ready to serve client requests"); // capnslog only, as etcd 3.4
        foreach (var u in client.BoundUrls)
        {
            EtcdHostLog.ServingClientTraffic(log, u);
        }

        return host;
    }

    /// <summary>
    /// Stops gracefully, as etcd does on SIGTERM/SIGINT (<c>Etcd.Close</c>, then <c>EtcdServer.Stop</c>): client
    /// listeners close and connections get GOAWAY, streams end with <c>etcdserver: server stopped</c>, unary requests in
    /// flight finish (bounded by the member's request timeout, 5 s + 2 election timeouts, after which they end with that
    /// status too); then a leader of several voters transfers leadership (same bound); then the hard stop of
    /// <see cref="DisposeAsync"/>. Never throws for a failed transfer (logged).
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        using (var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            drain.CancelAfter(Server.RequestTimeout);
            await _client.StopAsync(drain.Token).ConfigureAwait(false);
        }

        await Server.TransferLeadershipAsync(cancellationToken).ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the listeners and the member at once (etcd's <c>HardStop</c>: no drain, no leadership transfer).</summary>
    public async ValueTask DisposeAsync()
    {
        EtcdHostLog.Closing(_log, Server.Options, closed: false);
        StopAll(_peerListeners);
        await _metrics.DisposeAsync().ConfigureAwait(false);
        await _client.DisposeAsync().ConfigureAwait(false);
        await Server.DisposeAsync().ConfigureAwait(false);
        EtcdHostLog.Closing(_log, Server.Options, closed: true);
    }

    // etcd passes keepalive server parameters to grpc-go only when both are positive; otherwise grpc-go's defaults hold.
    private static bool KeepAliveDefaults(EtcdOptions o) => o.GrpcKeepaliveIntervalMs <= 0 || o.GrpcKeepaliveTimeoutMs <= 0;

    private static IPAddress ResolveListenAddress(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        "" or "0.0.0.0" => IPAddress.Any,
        "[::]" or "::" => IPAddress.IPv6Any,
        _ => IPAddress.TryParse(host.Trim('[', ']'), out var a) ? a : IPAddress.Loopback,
    };

    private static string PeerHostPort(EtcdOptions o) => string.Join(",", o.ListenPeerUrls.Select(u => u.Authority));

    private static string BindReason(SocketException e) => e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : e.Message;

    private static void StopAll(List<Transport.PeerListener> listeners)
    {
        foreach (var l in listeners)
        {
            l.Stop();
        }
    }
}
