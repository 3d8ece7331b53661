using System.Text.Json;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// The member's HTTP endpoints on the client URLs (etcd's <c>embed/serve.go</c> and <c>etcdhttp</c>):
/// <c>/health</c>, <c>/version</c>, <c>/metrics</c>, the JSON gateway under <c>/v3</c> and
/// <c>/v3beta</c>, and the dashboard under <c>/ui/</c> with <see cref="EtcdOptions.EnableDashboard"/>. Thread-safe.
/// </summary>
public sealed class HttpEndpoints
{
    private readonly EtcdServer _server;
    private readonly JsonGateway? _gateway;
    private readonly AccessController? _access;
    private readonly HealthHandler _health;
    private readonly V2.V2HttpHandler? _v2;
    private readonly Dashboard.DashboardHandler? _dashboard;

    /// <summary>
    /// Creates the endpoints of <paramref name="server"/>; the gateway dispatches through <paramref name="registry"/>
    /// unless the member's <see cref="EtcdOptions.EnableGrpcGateway"/> is off (then <c>/v3</c> paths are 404, as
    /// etcd's). <paramref name="access"/> (host whitelist, CORS) runs before every request when given;
    /// <paramref name="loggerFactory"/> receives the health check's warnings.
    /// </summary>
    public HttpEndpoints(EtcdServer server, Grpc.GrpcServiceTable registry, AccessController? access = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        _server = server;
        _gateway = server.Options.EnableGrpcGateway ? new JsonGateway(registry, server.Options.MaxConcurrentStreams) : null;
        _access = access;
        _health = new HealthHandler(server, loggerFactory);
        _v2 = server.Options.EnableV2 ? new V2.V2HttpHandler(server) : null;
        _dashboard = server.Options.EnableDashboard ? new Dashboard.DashboardHandler(server) : null;
    }

    /// <summary>Serves one HTTP request (any method, any path).</summary>
    public async Task HandleAsync(HttpContext http)
    {
        if (_access is not null && await _access.AnswerAsync(http).ConfigureAwait(false))
        {
            return;
        }

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
                http.Response.ContentType = Metrics.EtcdMetrics.ContentType;
                await _server.Metrics.WriteAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
                return;
        }

        if (_v2 is not null && V2.V2HttpHandler.IsV2Path(path))
        {
            await _v2.HandleAsync(http).ConfigureAwait(false);
            return;
        }

        if (_dashboard is not null && Dashboard.DashboardHandler.IsDashboardPath(path))
        {
            await _dashboard.HandleAsync(http).ConfigureAwait(false);
            return;
        }

        if (_gateway is not null && JsonGateway.IsGatewayPath(http.Request.Path, out var route))
        {
            await _gateway.HandleAsync(http, route).ConfigureAwait(false);
            return;
        }

        await AccessController.WriteErrorAsync(http, 404, "404 page not found").ConfigureAwait(false);
    }
}
