using System.Text.Json;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// The member's HTTP endpoints on the client URLs (etcd's <c>embed/serve.go</c> and <c>etcdhttp</c>):
/// <c>/health</c>, <c>/version</c>, <c>/metrics</c> and the JSON gateway under <c>/v3</c> and
/// <c>/v3beta</c>. Thread-safe.
/// </summary>
public sealed class HttpEndpoints
{
    private readonly EtcdServer _server;
    private readonly JsonGateway _gateway;
    private readonly HealthHandler _health;

    /// <summary>Creates the endpoints of <paramref name="server"/>; the gateway dispatches through <paramref name="registry"/>.</summary>
    public HttpEndpoints(EtcdServer server, ServiceRegistry registry, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        _server = server;
        _gateway = new JsonGateway(registry);
        _health = new HealthHandler(server, loggerFactory);
    }

    /// <summary>Serves one HTTP request (any method, any path).</summary>
    public async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "/";
        switch (path)
        {
            case "/health":
                await _health.HandleAsync(http).ConfigureAwait(false);
                return;
            case "/version":
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync(
                    JsonSerializer.Serialize(new Dictionary<string, string>
                    {
                        ["etcdserver"] = EtcdServer.Version,
                        ["etcdcluster"] = _server.Cluster.Version is { } v ? string.Join('.', v.Split('.').Take(2)) + ".0" : "not_decided",
                    }),
                    http.RequestAborted).ConfigureAwait(false);
                return;
            case "/metrics":
                http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                await http.Response.WriteAsync(_server.Metrics.Render(_server), http.RequestAborted).ConfigureAwait(false);
                return;
        }

        if (JsonGateway.IsGatewayPath(http.Request.Path, out var route))
        {
            await _gateway.HandleAsync(http, route).ConfigureAwait(false);
            return;
        }

        http.Response.StatusCode = 404;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync("404 page not found\n", http.RequestAborted).ConfigureAwait(false);
    }
}
