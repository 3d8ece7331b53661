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

    /// <summary>Creates the endpoints of <paramref name="server"/>; the gateway dispatches through <paramref name="registry"/>.</summary>
    public HttpEndpoints(EtcdServer server, ServiceRegistry registry)
    {
        _server = server;
        _gateway = new JsonGateway(registry, server.Options.MaxConcurrentStreams);
    }

    /// <summary>Serves one HTTP request (any method, any path).</summary>
    public async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "/";
        switch (path)
        {
            case "/health":
                await HealthAsync(http).ConfigureAwait(false);
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

    private async Task HealthAsync(HttpContext http)
    {
        // etcd 3.4: healthy when there is a leader and a linearizable-free QGET (a serializable range) succeeds.
        // Any raised alarm (NOSPACE, CORRUPT) makes the member unhealthy, as etcd's checkHealth.
        var healthy = _server.Leader != 0 && _server.Alarms.Get(Etcdserverpb.AlarmType.None).Count == 0;
        if (healthy)
        {
            try
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
                cts.CancelAfter(TimeSpan.FromSeconds(1));
                await _server.RangeAsync(new Etcdserverpb.RangeRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8("health"), Serializable = false }, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                healthy = false;
            }
        }

        http.Response.StatusCode = healthy ? 200 : 503;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(healthy ? "{\"health\":\"true\"}" : "{\"health\":\"false\"}", http.RequestAborted).ConfigureAwait(false);
    }
}
