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
/// gRPC + HTTP listeners on the client URLs, and the peer listeners. Tests and benchmarks embed a member
/// through it; the <c>etcd</c> executable is a thin shell over it. Dispose to stop.
/// </summary>
public sealed class EtcdHost : IAsyncDisposable
{
    private readonly GrpcHttpServer _client;
    private readonly List<TcpListener> _peerListeners;
    private readonly ILogger _log;

    private EtcdHost(EtcdServer server, GrpcHttpServer client, List<TcpListener> peerListeners, ILogger log)
    {
        Server = server;
        _client = client;
        _peerListeners = peerListeners;
        _log = log;
    }

    /// <summary>The member.</summary>
    public EtcdServer Server { get; }

    /// <summary>The client URLs actually bound (port 0 resolved).</summary>
    public IReadOnlyList<Uri> ClientUrls => _client.BoundUrls;

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
        var peers = new List<TcpListener>();
        try
        {
            foreach (var u in options.ListenPeerUrls)
            {
                var l = new TcpListener(ResolveListenAddress(u.Host), u.Port);
                l.Start();
                peers.Add(l);
                log.LogFields(LogLevel.Information, "configuring peer listeners", ("listen-peer-urls", new[] { u.OriginalString }));
            }
        }
        catch (SocketException e)
        {
            StopAll(peers);
            throw new EtcdStartException($"listen tcp {PeerHostPort(options)}: bind: {BindReason(e)}", e);
        }

        // Likewise the client ports: a busy one must fail the start before the data directory is touched.
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
            foreach (var u in options.ListenPeerUrls.Where(u => u.Scheme == "https" && peerTls is null))
            {
                throw new EtcdStartException($"cannot listen on TLS for {u.Authority}: KeyFile and CertFile are not presented");
            }

            transport = new Transport.TcpRaftTransport(loggerFactory.CreateLogger("rafthttp"), peerTls);
            server = EtcdServer.Start(options, loggerFactory, startLoop: false, transport);
        }
        catch
        {
            StopAll(peers);
            throw;
        }

        var registry = ClusterServices.Register(EtcdServices.Register(new ServiceRegistry(), server), server);
        registry.Interceptor = new RequireLeaderInterceptor(server);
        var http = new HttpEndpoints(server, registry);
        var client = new GrpcHttpServer(
            new GrpcHttpServerOptions
            {
                Urls = options.ListenClientUrls.Select(u => u.OriginalString).ToList(),
                MaxReceiveMessageBytes = options.MaxRequestBytes + 512 * 1024,
                MaxConcurrentStreams = options.MaxConcurrentStreams == 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, options.MaxConcurrentStreams),
                KeepAlivePingInterval = TimeSpan.FromMilliseconds(options.GrpcKeepaliveIntervalMs),
                KeepAlivePingTimeout = TimeSpan.FromMilliseconds(options.GrpcKeepaliveTimeoutMs),
                LoggerFactory = loggerFactory,
                Tls = clientTls,
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

        for (var i = 0; i < peers.Count; i++)
        {
            transport.Serve(peers[i], options.ListenPeerUrls[i].Scheme == "https");
        }

        server.StartLoop();
        var host = new EtcdHost(server, client, peers, log);
        try
        {
            await server.ReadyToServe.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        log.LogFields(LogLevel.Information, "ready to serve client requests");
        foreach (var u in client.BoundUrls)
        {
            if (u.Scheme == "http")
            {
                log.LogFields(LogLevel.Warning, "serving client traffic insecurely; this is strongly discouraged!", ("address", u.Authority));
            }
            else
            {
                log.LogFields(LogLevel.Information, "serving client traffic securely", ("address", u.Authority));
            }
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
        StopAll(_peerListeners);
        await _client.DisposeAsync().ConfigureAwait(false);
        await Server.DisposeAsync().ConfigureAwait(false);
    }

    private static IPAddress ResolveListenAddress(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        "" or "0.0.0.0" => IPAddress.Any,
        "[::]" or "::" => IPAddress.IPv6Any,
        _ => IPAddress.TryParse(host.Trim('[', ']'), out var a) ? a : IPAddress.Loopback,
    };

    private static string PeerHostPort(EtcdOptions o) => string.Join(",", o.ListenPeerUrls.Select(u => u.Authority));

    private static string BindReason(SocketException e) => e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : e.Message;

    private static void StopAll(List<TcpListener> listeners)
    {
        foreach (var l in listeners)
        {
            l.Stop();
        }
    }
}
