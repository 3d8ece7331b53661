using System.Net;
using System.Net.Sockets;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Etcd.Server.Grpc;

/// <summary>
/// etcd's client-facing server: on each URL one port that speaks gRPC over HTTP/2 and HTTP/1.1. An http URL
/// serves both in the clear (prior-knowledge h2c, as etcdctl and clientv3 dial <c>http://</c> endpoints), told
/// apart by the connection's first bytes; an https URL serves both over TLS
/// (<see cref="GrpcHttpServerOptions.Tls"/>), ALPN choosing; an http and an https URL on one address share the
/// port, as etcd's do. HTTP/2 requests with <c>content-type: application/grpc*</c> are served by Grpc.AspNetCore
/// (<see cref="GrpcServices"/>): the <see cref="GrpcServiceTable"/>'s methods (generated service bases' overrides), each
/// run through <see cref="GrpcCallInterceptor"/> and <see cref="GrpcHttpServerOptions.Interceptors"/> (deadline, auth,
/// <c>hasleader</c>, metrics, grpc-go's statuses; unknown methods: Unimplemented in grpc-go's words); every other request, of any HTTP version, goes to the fallback <see cref="RequestDelegate"/>
/// (health, version, metrics, JSON gateway).
/// Lifecycle: construct, <see cref="StartAsync"/> once, <see cref="StopAsync"/>, dispose. Start and stop are not
/// to be called concurrently; <see cref="BoundUrls"/> may be read from any thread after start.
/// </summary>
public sealed class GrpcHttpServer : IAsyncDisposable
{
    /// <summary>After the drain time, how long the calls ended with a status get to reach their clients before connections are aborted.</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromMilliseconds(500);

    private readonly GrpcHttpServerOptions _options;
    private readonly RequestDelegate _fallback;
    private readonly GrpcCallInterceptor _calls;
    private readonly GrpcServiceTable _table;
    private readonly List<SniffedPort> _ports = [];
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abortAll = new();
    private KestrelServer? _kestrel;

    /// <summary>The largest request header list accepted (bytes): Go's <c>http.DefaultMaxHeaderBytes</c>.</summary>
    private const int MaxHeaderBytes = 1 << 20;
    private ServiceProvider? _services;
    private RequestDelegate? _grpc;
    private IReadOnlyList<Uri> _boundUrls = [];

    /// <summary>Creates a stopped server.</summary>
    /// <param name="options">URLs, limits, keepalive, logging.</param>
    /// <param name="services">The gRPC methods served (frozen at the first request).</param>
    /// <param name="fallback">Serves every request that is not gRPC over HTTP/2.</param>
    public GrpcHttpServer(GrpcHttpServerOptions options, GrpcServiceTable services, RequestDelegate fallback)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(fallback);
        _options = options;
        _fallback = fallback;
        _logger = options.LoggerFactory.CreateLogger<GrpcHttpServer>();
        _table = services;
        _calls = new GrpcCallInterceptor(services, options, _logger);
    }

    /// <summary>
    /// The URLs actually bound, in the order of <see cref="GrpcHttpServerOptions.Urls"/>, with real ports
    /// (e.g. <c>http://127.0.0.1:41234/</c>). Empty before <see cref="StartAsync"/>.
    /// </summary>
    public IReadOnlyList<Uri> BoundUrls => _boundUrls;

    /// <summary>The bound socket addresses, in the order of <see cref="BoundUrls"/>.</summary>
    public IReadOnlyList<IPEndPoint> BoundEndPoints => _ports.Select(p => p.BoundEndPoint!).ToArray();

    /// <summary>
    /// Binds every URL and starts serving. Throws <see cref="IOException"/> (Kestrel's address-in-use error)
    /// when a port is taken, <see cref="InvalidOperationException"/> for an https URL without
    /// <see cref="GrpcHttpServerOptions.Tls"/> (etcd's message <c>TLS key/cert (--cert-file, --key-file) must be
    /// provided for client url URL with HTTPS scheme</c>), <see cref="FormatException"/> for malformed URLs.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_kestrel is not null)
        {
            throw new InvalidOperationException("the server is already started");
        }

        var loggerFactory = _options.LoggerFactory;
        var kestrelOptions = new KestrelServerOptions
        {
            AddServerHeader = false,

            // Go's HTTP/2 server does not hold :scheme against the connection; neither do we.
            AllowAlternateSchemes = true,
        };
        var limits = kestrelOptions.Limits;
        // Go's HTTP servers keep idle connections open. Kestrel turns an infinite keep-alive timeout into
        // TimeSpan.MaxValue, which overflows its deadline arithmetic and drops every idle connection (HTTP/1.1
        // keep-alive and idle HTTP/2 alike) at the next one-second heartbeat; a year is "never" without overflowing.
        limits.KeepAliveTimeout = TimeSpan.FromDays(365);
        limits.Http2.MaxStreamsPerConnection = _options.MaxConcurrentStreams;

        // etcd answers a large auth token (64 KiB, 1 MiB) with "etcdserver: invalid auth token": grpc-go accepts header
        // lists up to 16 MiB and Go's HTTP/1.1 server headers up to 1 MiB. Kestrel's 32 KiB / 16 KiB defaults would close
        // the connection instead. 1 MiB for both protocols: Kestrel needs its request buffer (1 MiB, the backpressure
        // bound per connection) to hold the headers, and raising that would cost memory on every busy connection.
        limits.MaxRequestHeadersTotalSize = MaxHeaderBytes;
        limits.Http2.MaxRequestHeaderFieldSize = MaxHeaderBytes;
        limits.Http2.KeepAlivePingDelay = _options.KeepAlivePingInterval;
        limits.Http2.KeepAlivePingTimeout = _options.KeepAlivePingTimeout;

        _services = GrpcServices.Build(loggerFactory, _table, _calls, _options);
        kestrelOptions.ApplicationServices = _services;
        _grpc = GrpcServices.Pipeline(_services, _calls);

        var urls = new List<(Uri Url, SniffedPort Port)>();
        try
        {
            // URLs of one address share a port (etcd's clientTLSAndNonTLS: http and https on one host:port);
            // port 0 always binds a port of its own.
            var parsed = new List<(Uri Url, IPEndPoint EndPoint)>();
            foreach (var text in _options.Urls)
            {
                var (url, endPoint) = await ParseUrlAsync(text, cancellationToken).ConfigureAwait(false);
                if (url.Scheme == Uri.UriSchemeHttps && _options.Tls is null)
                {
                    throw new InvalidOperationException($"TLS key/cert (--cert-file, --key-file) must be provided for client url {text} with HTTPS scheme");
                }

                parsed.Add((url, endPoint));
            }

            var shared = new Dictionary<IPEndPoint, SniffedPort>();
            foreach (var (url, endPoint) in parsed)
            {
                if (endPoint.Port == 0 || !shared.TryGetValue(endPoint, out var port))
                {
                    var group = endPoint.Port == 0 ? [(url, endPoint)] : parsed.Where(p => p.EndPoint.Equals(endPoint)).ToList();
                    var cleartext = group.Any(p => p.Url.Scheme == Uri.UriSchemeHttp);
                    var secure = group.Any(p => p.Url.Scheme == Uri.UriSchemeHttps);
                    port = new SniffedPort(endPoint, cleartext, secure ? _options.Tls : null, loggerFactory);
                    _ports.Add(port);
                    if (endPoint.Port != 0)
                    {
                        shared[endPoint] = port;
                    }

                    kestrelOptions.Listen(new SniffedEndPoint(port, HttpProtocols.Http2), l =>
                    {
                        l.Protocols = HttpProtocols.Http2;
                        l.Use(Http2AuthorityFilter.Middleware(limits.Http2.MaxFrameSize, limits.Http2.HeaderTableSize, _logger));
                    });
                    kestrelOptions.Listen(new SniffedEndPoint(port, HttpProtocols.Http1), l => l.Protocols = HttpProtocols.Http1);
                }

                urls.Add((url, port));
            }

            _kestrel = new KestrelServer(Options.Create(kestrelOptions), new SniffingListenerFactory(), loggerFactory);
            await _kestrel.StartAsync(new Application(HandleAsync), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Leave nothing bound: a half-started server would hold ports nobody can free.
            await CleanUpAsync().ConfigureAwait(false);
            throw;
        }

        _boundUrls = urls.Select(u =>
        {
            var bound = u.Port.BoundEndPoint!;
            return new UriBuilder(u.Url) { Port = bound.Port }.Uri;
        }).ToArray();
        foreach (var u in _boundUrls)
        {
            if (u.Scheme == Uri.UriSchemeHttps)
            {
                _logger.LogDebug("serving gRPC and HTTP (ALPN h2, http/1.1) over TLS on {Url}", u);
            }
            else
            {
                _logger.LogDebug("serving gRPC (h2c) and HTTP/1.1 on {Url}", u);
            }
        }
    }

    /// <summary>
    /// Stops gracefully (etcd's <c>stopServers</c>, with GOAWAY instead of its reset): the listening sockets close, every
    /// HTTP/2 connection gets GOAWAY and idle HTTP/1.1 connections close; streaming calls, which never end by themselves
    /// (gRPC watch, keep-alive, observe, snapshot, and the gateway's watch, keep-alive and observe), end at once with
    /// <c>etcdserver: server stopped</c> (Unavailable); unary requests in flight run to completion until
    /// <paramref name="cancellationToken"/> fires. Then what is left ends with the same status, and connections still
    /// open after a short grace are aborted. Returns when every connection is closed. Idempotent.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var kestrel = _kestrel;
        if (kestrel is null)
        {
            return;
        }

        _calls.BeginDrain();
        Cancel(_stopping);
        using var hard = new CancellationTokenSource();
        var stop = kestrel.StopAsync(hard.Token);
        try
        {
            await stop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Drain time is up: the calls left get a status (not a reset), then Kestrel aborts whatever still lingers.
            _calls.AbortAll();
            Cancel(_abortAll);
            hard.CancelAfter(AbortGrace);
            await stop.ConfigureAwait(false);
        }

        foreach (var port in _ports)
        {
            await port.StopAcceptingAsync().ConfigureAwait(false);
        }
    }

    private static void Cancel(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Stops (in-flight requests get <see cref="GrpcHttpServerOptions.ShutdownTimeout"/> to finish, then are
    /// aborted) and frees the sockets and pools.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        using (var cts = new CancellationTokenSource(_options.ShutdownTimeout))
        {
            await StopAsync(cts.Token).ConfigureAwait(false);
        }

        await CleanUpAsync().ConfigureAwait(false);
    }

    private async Task CleanUpAsync()
    {
        if (_kestrel is { } kestrel)
        {
            using (var cts = new CancellationTokenSource(_options.ShutdownTimeout))
            {
                try
                {
                    await kestrel.StopAsync(cts.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    // Stopping a server that never fully started.
                }
            }

            kestrel.Dispose();
            _kestrel = null;
        }

        foreach (var port in _ports)
        {
            await port.DisposeAsync().ConfigureAwait(false);
        }

        _ports.Clear();
        if (_services is not null)
        {
            await _services.DisposeAsync().ConfigureAwait(false);
            _services = null;
        }
    }

    private Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (HttpProtocol.IsHttp2(request.Protocol) && GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            // Deadlines are ours (GrpcCall), so a timed-out call ends with Go's status and etcd's metrics, not
            // Grpc.AspNetCore's; it never sees the header.
            if (request.Headers.Remove(GrpcProtocol.TimeoutHeader, out var timeout) && GrpcTimeout.TryParse(timeout.ToString(), out var parsed))
            {
                context.Items[GrpcCallInterceptor.TimeoutItem] = parsed;
            }

            context.RequestServices = _services!;
            return _grpc!(context);
        }

        return FallbackAsync(context);
    }

    private async Task FallbackAsync(HttpContext context)
    {
        // Requests still running when the drain time is up end as their client went away; long-lived ones see
        // IServerStopFeature.Stopping and end when the stop begins.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _abortAll.Token);
        context.RequestAborted = linked.Token;
        context.Features.Set<IServerStopFeature>(new ServerStopFeature(_stopping.Token));
        await _fallback(context).ConfigureAwait(false);
    }

    private static async Task<(Uri Url, IPEndPoint EndPoint)> ParseUrlAsync(string text, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url))
        {
            throw new FormatException($"expected a URL http://host:port, got {text}");
        }

        if (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
        {
            throw new FormatException($"URL scheme must be http or https, got {text}");
        }

        var host = url.Host;
        IPAddress address;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (!IPAddress.TryParse(url.HostNameType == UriHostNameType.IPv6 ? url.Host.Trim('[', ']') : host, out address!))
        {
            var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
            address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new FormatException($"cannot resolve {host} in {text}");
        }

        return (url, new IPEndPoint(address, url.Port));
    }

    /// <summary>The Kestrel application: one <see cref="DefaultHttpContext"/> per request, no DI scope.</summary>
    private sealed class Application : IHttpApplication<HttpContext>
    {
        private readonly RequestDelegate _handler;

        public Application(RequestDelegate handler) => _handler = handler;

        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => _handler(context);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }
}
