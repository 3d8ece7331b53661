using System.Net.Sockets;
using Etcd.Api.Grpc;
using Etcd.Server.Grpc;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Http;

/// <summary>
/// The listeners of <c>--listen-metrics-urls</c> (etcd 3.4.23's <c>embed/etcd.go</c> <c>serveMetrics</c>): each URL
/// serves only <c>GET /metrics</c> and <c>/health</c> (see <see cref="HealthHandler"/>), every other path is Go's
/// <c>404 page not found</c>. An <c>http</c> URL serves in the clear; an <c>https</c> URL uses the client TLS
/// settings (<c>--cert-file</c>, <c>--key-file</c>, <c>--client-cert-auth</c>, <c>--trusted-ca-file</c>, CRL, auto-TLS),
/// as etcd's <c>ClientTLSInfo</c>. They serve from before the member is ready (the kubelet's startup probe asks
/// <c>/health</c> while the member waits for its peers). Start once, dispose to stop; requests are served concurrently.
/// </summary>
public sealed class MetricsListener : IAsyncDisposable
{
    private const string PlainText = "text/plain; charset=utf-8";

    private readonly EtcdServer _server;
    private readonly HealthHandler _health;
    private GrpcHttpServer? _http;

    private MetricsListener(EtcdServer server, ILoggerFactory loggerFactory)
    {
        _server = server;
        _health = new HealthHandler(server, loggerFactory);
    }

    /// <summary>The URLs actually bound (port 0 resolved), in the order given; empty when no URL was given.</summary>
    public IReadOnlyList<Uri> BoundUrls => _http?.BoundUrls ?? [];

    /// <summary>
    /// Binds every URL of <paramref name="urls"/> and starts serving; returns a listener with nothing bound when the
    /// list is empty.
    /// </summary>
    /// <param name="server">The member whose metrics and health are served.</param>
    /// <param name="urls">The <c>--listen-metrics-urls</c>, <c>http</c> or <c>https</c>.</param>
    /// <param name="clientTls">The member's client TLS (null when none is configured).</param>
    /// <param name="loggerFactory">Logging; none when null.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="EtcdStartException">etcd's start errors: <c>cannot listen on TLS for HOST:PORT: KeyFile and CertFile
    /// are not presented</c> (an https URL without client TLS), <c>listen tcp HOST:PORT: bind: address already in use</c>.</exception>
    public static async Task<MetricsListener> StartAsync(
        EtcdServer server, IReadOnlyList<Uri> urls, EtcdTlsInfo? clientTls, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(urls);
        loggerFactory ??= NullLoggerFactory.Instance;
        var listener = new MetricsListener(server, loggerFactory);
        if (urls.Count == 0)
        {
            return listener;
        }

        foreach (var u in urls.Where(u => u.Scheme == Uri.UriSchemeHttps && clientTls is null))
        {
            throw new EtcdStartException($"cannot listen on TLS for {u.Authority}: KeyFile and CertFile are not presented");
        }

        var http = new GrpcHttpServer(
            new GrpcHttpServerOptions
            {
                Urls = urls.Select(u => u.OriginalString).ToList(),
                LoggerFactory = loggerFactory,
                Tls = clientTls,
            },
            new Grpc.GrpcServiceTable(),
            listener.HandleAsync);
        try
        {
            await http.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await http.DisposeAsync().ConfigureAwait(false);
            var se = e as SocketException ?? e.InnerException as SocketException ?? e.InnerException?.InnerException as SocketException;
            var inUse = se?.SocketErrorCode == SocketError.AddressAlreadyInUse
                        || e is Microsoft.AspNetCore.Connections.AddressInUseException
                        || e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException;
            var reason = inUse ? "address already in use" : se?.Message ?? e.Message;
            throw new EtcdStartException($"listen tcp {string.Join(",", urls.Select(u => u.Authority))}: bind: {reason}", e);
        }

        listener._http = http;
        var log = loggerFactory.CreateLogger("embed/etcd.go");
        foreach (var u in http.BoundUrls)
        {
            log.LogFields(LogLevel.Information, "serving metrics", ("address", u.GetLeftPart(UriPartial.Authority)));
        }

        return listener;
    }

    /// <summary>Stops serving and frees the ports.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_http is { } http)
        {
            _http = null;
            await http.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HandleAsync(HttpContext http)
    {
        switch (http.Request.Path.Value)
        {
            case "/metrics":
                http.Response.ContentType = Metrics.EtcdMetrics.ContentType;
                await _server.Metrics.WriteAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
                return;
            case "/health":
                await _health.HandleAsync(http).ConfigureAwait(false);
                return;
        }

        var notFound = "404 page not found\n"u8.ToArray();
        http.Response.StatusCode = StatusCodes.Status404NotFound;
        http.Response.ContentType = PlainText;
        http.Response.ContentLength = notFound.Length;
        http.Response.Headers.XContentTypeOptions = "nosniff";
        await http.Response.Body.WriteAsync(notFound, http.RequestAborted).ConfigureAwait(false);
    }
}
