using System.Diagnostics;
using System.Net;
using System.Net.Security;
using Etcd.Server.Grpc;
using Etcd.Server.Tls;
using Etcdserverpb;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Etcd.Proxy;

/// <summary>What a <see cref="GrpcProxyServer"/> serves. Immutable.</summary>
public sealed record GrpcProxyOptions
{
    /// <summary>The client address (<c>--listen-addr</c>); port 0 picks a free port.</summary>
    public required IPEndPoint ListenAddress { get; init; }

    /// <summary>TLS for clients (<c>--cert-file</c>, <c>--key-file</c>, <c>--trusted-ca-file</c>, <c>--auto-tls</c>,
    /// <c>--listen-cipher-suites</c>, <c>--client-crl-file</c>); null serves h2c and HTTP/1.1 in the clear.</summary>
    public EtcdTlsInfo? Tls { get; init; }

    /// <summary>The extra <c>/metrics</c> and <c>/health</c> listener (<c>--metrics-addr</c>, http or https); null for none.</summary>
    public Uri? MetricsUrl { get; init; }

    /// <summary>The cluster.</summary>
    public required ProxyUpstreamOptions Upstream { get; init; }

    /// <summary><c>--namespace</c>; empty for none.</summary>
    public string Namespace { get; init; } = "";

    /// <summary><c>--max-concurrent-streams</c>: HTTP/2 streams per client connection.</summary>
    public int MaxConcurrentStreams { get; init; } = int.MaxValue;
}

/// <summary>
/// etcd's <c>grpc-proxy start</c> server (<c>etcdmain/grpc_proxy.go</c>): on one port gRPC over HTTP/2 (h2c in the clear,
/// ALPN h2 over TLS) serving the proxies of KV, Watch, Lease, Cluster, Maintenance, Auth, Election and Lock through
/// Grpc.AspNetCore on their generated service bases, and HTTP/1.1 serving <c>/metrics</c> (the first endpoint's
/// <c>/metrics</c> fetched, as etcd 3.4's proxy answers, with its <c>etcd_grpc_proxy_*</c> families replaced by the proxy's own),
/// <c>/proxy/metrics</c> (the proxy's own families alone) and <c>/health</c> (a one-second range of key <c>a</c> on the
/// cluster: success or permission denied is healthy). <see cref="GrpcProxyOptions.MetricsUrl"/> serves the same HTTP
/// paths on a listener of its own. Lifecycle: <see cref="StartAsync"/> once, then <see cref="DisposeAsync"/>.
/// </summary>
public sealed class GrpcProxyServer : IAsyncDisposable
{
    private readonly GrpcProxyOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly List<SniffedPort> _ports = [];
    private readonly HttpClient _metricsClient;
    private KestrelServer? _kestrel;
    private ServiceProvider? _services;
    private RequestDelegate? _grpc;

    /// <summary>Creates a stopped server and its connection to the cluster (not dialled yet).</summary>
    public GrpcProxyServer(GrpcProxyOptions options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        Upstream = new ProxyUpstream(options.Upstream, loggerFactory);
        Metrics = new ProxyMetrics();
        Cache = new RangeCache();
        KeepAlives = new LeaseKeepAliveHub(Upstream);
        var handler = new SocketsHttpHandler { UseProxy = false };
        if (options.Upstream.Tls is { } tls)
        {
            handler.SslOptions = tls.ClientOptions("", null, options.Upstream.InsecureSkipTlsVerify);
            handler.SslOptions.TargetHost = null;
        }
        else if (options.Upstream.InsecureSkipTlsVerify)
        {
            handler.SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true };
        }

        _metricsClient = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>The connection to the cluster.</summary>
    public ProxyUpstream Upstream { get; }

    /// <summary>The proxy's own metric families.</summary>
    public ProxyMetrics Metrics { get; }

    /// <summary>The serializable-range cache.</summary>
    public RangeCache Cache { get; }

    /// <summary>The shared keep-alive stream.</summary>
    public LeaseKeepAliveHub KeepAlives { get; }

    /// <summary>The Watch service (its broadcasts and watcher counts).</summary>
    public WatchProxy? Watch { get; private set; }

    /// <summary>The bound client address (real port); null before start.</summary>
    public IPEndPoint? ListenEndPoint => _ports.Count > 0 ? _ports[0].BoundEndPoint : null;

    /// <summary>The bound metrics address; null without one.</summary>
    public IPEndPoint? MetricsEndPoint => _ports.Count > 1 ? _ports[1].BoundEndPoint : null;

    /// <summary>Binds the listeners and serves. Throws <see cref="IOException"/> when an address is taken.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var kestrelOptions = new KestrelServerOptions { AddServerHeader = false, AllowAlternateSchemes = true };
        var limits = kestrelOptions.Limits;
        limits.KeepAliveTimeout = TimeSpan.FromDays(365);
        limits.Http2.MaxStreamsPerConnection = _options.MaxConcurrentStreams;
        limits.MaxRequestBodySize = null;

        var services = new ServiceCollection();
        services.AddLogging(b =>
        {
            b.ClearProviders();
            b.AddProvider(new ForwardingLoggerProvider(_loggerFactory));
            b.SetMinimumLevel(LogLevel.Trace);
            b.AddFilter("Grpc", LogLevel.Warning);
            b.AddFilter("Microsoft", LogLevel.Warning);
        });
        var listener = new DiagnosticListener("Microsoft.AspNetCore");
        services.AddSingleton(listener);
        services.AddSingleton<DiagnosticSource>(listener);
        services.AddRouting();
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = null;
            o.MaxSendMessageSize = null;
        });
        var ns = new KeyNamespace(_options.Namespace);
        services.AddSingleton(new KvProxy(Upstream, ns, Cache, Metrics));
        Watch = new WatchProxy(Upstream, ns, Metrics, _loggerFactory);
        services.AddSingleton(Watch);
        services.AddSingleton(new LeaseProxy(Upstream, ns, KeepAlives));
        services.AddSingleton(new ClusterProxy(Upstream));
        services.AddSingleton(new MaintenanceProxy(Upstream));
        services.AddSingleton(new AuthProxy(Upstream));
        services.AddSingleton(new ElectionProxy(Upstream));
        services.AddSingleton(new LockProxy(Upstream));
        _services = services.BuildServiceProvider();
        kestrelOptions.ApplicationServices = _services;
        var app = new ApplicationBuilder(_services);
        app.UseRouting();
        app.UseEndpoints(e =>
        {
            e.MapGrpcService<KvProxy>();
            e.MapGrpcService<WatchProxy>();
            e.MapGrpcService<LeaseProxy>();
            e.MapGrpcService<ClusterProxy>();
            e.MapGrpcService<MaintenanceProxy>();
            e.MapGrpcService<AuthProxy>();
            e.MapGrpcService<ElectionProxy>();
            e.MapGrpcService<LockProxy>();
        });
        _grpc = app.Build();

        Bind(kestrelOptions, _options.ListenAddress, _options.Tls, cleartext: _options.Tls is null);
        if (_options.MetricsUrl is { } murl)
        {
            var secure = murl.Scheme == Uri.UriSchemeHttps;
            if (secure && _options.Tls is null)
            {
                throw new InvalidOperationException($"TLS key/cert (--cert-file, --key-file) must be provided for metrics url {murl} with HTTPS scheme");
            }

            var address = murl.Host is "localhost" ? IPAddress.Loopback : IPAddress.Parse(murl.Host.Trim('[', ']'));
            Bind(kestrelOptions, new IPEndPoint(address, murl.Port), secure ? _options.Tls : null, cleartext: !secure);
        }

        _kestrel = new KestrelServer(Options.Create(kestrelOptions), new SniffingListenerFactory(), _loggerFactory);
        await _kestrel.StartAsync(new Application(HandleAsync), cancellationToken).ConfigureAwait(false);
    }

    private void Bind(KestrelServerOptions kestrelOptions, IPEndPoint endPoint, EtcdTlsInfo? tls, bool cleartext)
    {
        var port = new SniffedPort(endPoint, cleartext, tls, _loggerFactory);
        _ports.Add(port);
        var logger = _loggerFactory.CreateLogger("Etcd.Proxy.GrpcProxyServer");
        kestrelOptions.Listen(new SniffedEndPoint(port, HttpProtocols.Http2), l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.Use(Http2AuthorityFilter.Middleware(kestrelOptions.Limits.Http2.MaxFrameSize, kestrelOptions.Limits.Http2.HeaderTableSize, logger));
        });
        kestrelOptions.Listen(new SniffedEndPoint(port, HttpProtocols.Http1), l => l.Protocols = HttpProtocols.Http1);
    }

    private Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (HttpProtocol.IsHttp2(request.Protocol) && (request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            context.RequestServices = _services!;
            return _grpc!(context);
        }

        return request.Path.Value switch
        {
            "/metrics" => MetricsAsync(context, upstreamToo: true),
            "/proxy/metrics" => MetricsAsync(context, upstreamToo: false),
            "/health" => HealthAsync(context),
            _ => NotFoundAsync(context),
        };
    }

    private static async Task NotFoundAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers["X-Content-Type-Options"] = "nosniff";
        await context.Response.WriteAsync("404 page not found\n").ConfigureAwait(false);
    }

    private async Task MetricsAsync(HttpContext context, bool upstreamToo)
    {
        byte[]? upstream = null;
        if (upstreamToo)
        {
            var ep = Upstream.Endpoints[0];
            var url = ep.Contains("://", StringComparison.Ordinal) ? ep : (context.Request.IsHttps ? "https://" : "http://") + ep;
            try
            {
                upstream = await _metricsClient.GetByteArrayAsync(url.TrimEnd('/') + "/metrics", context.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("Internal server error\n").ConfigureAwait(false);
                return;
            }
        }

        context.Response.ContentType = "text/plain; version=0.0.4";
        if (upstream is not null)
        {
            // A member registers the proxy's families too (at zero); the proxy's own values replace them.
            var text = System.Text.Encoding.UTF8.GetString(upstream);
            var kept = text.Split('\n').Where(l => !l.StartsWith("etcd_grpc_proxy_", StringComparison.Ordinal)
                && !l.StartsWith("# HELP etcd_grpc_proxy_", StringComparison.Ordinal) && !l.StartsWith("# TYPE etcd_grpc_proxy_", StringComparison.Ordinal));
            await context.Response.WriteAsync(string.Join('\n', kept), context.RequestAborted).ConfigureAwait(false);
        }

        await Metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private async Task HealthAsync(HttpContext context)
    {
        if (!HttpMethods.IsGet(context.Request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "GET";
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync("Method Not Allowed\n").ConfigureAwait(false);
            return;
        }

        bool healthy;
        try
        {
            await Upstream.Kv.RangeAsync(new RangeRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8("a") },
                deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: context.RequestAborted).ConfigureAwait(false);
            healthy = true;
        }
        catch (RpcException e)
        {
            healthy = e.StatusCode == StatusCode.PermissionDenied;
        }

        if (healthy)
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            await context.Response.WriteAsync("{\"health\":\"true\"}").ConfigureAwait(false);
        }
        else
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.ContentType = "text/plain; charset=utf-8";
            context.Response.Headers["X-Content-Type-Options"] = "nosniff";
            await context.Response.WriteAsync("{\"health\":\"false\"}\n").ConfigureAwait(false);
        }
    }

    /// <summary>Stops serving (open streams end) and closes the connection to the cluster.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_kestrel is { } kestrel)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await kestrel.StopAsync(cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
            }

            kestrel.Dispose();
            _kestrel = null;
        }

        foreach (var port in _ports)
        {
            await port.DisposeAsync().ConfigureAwait(false);
        }

        _ports.Clear();
        KeepAlives.Dispose();
        Upstream.Dispose();
        _metricsClient.Dispose();
        if (_services is not null)
        {
            await _services.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Application(RequestDelegate handler) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => handler(context);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }

    private sealed class ForwardingLoggerProvider(ILoggerFactory target) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => target.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
