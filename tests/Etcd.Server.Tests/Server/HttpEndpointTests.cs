using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>/health, /version, /metrics and the JSON gateway over HTTP/1.1 on the client port.</summary>
public sealed class HttpEndpointTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private EtcdHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = await EtcdHost.StartAsync(
            new EtcdOptions
            {
                Name = "http",
                DataDir = _dir.Path,
                ListenClientUrls = [new Uri("http://127.0.0.1:0")],
                ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
                InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
                HeartbeatIntervalMs = 10,
                ElectionTimeoutMs = 100,
            },
            NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        _http.BaseAddress = _host.ClientUrls[0];
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, string json)
    {
        using var resp = await _http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthAndVersion()
    {
        Assert.Equal("{\"health\":\"true\"}", await _http.GetStringAsync("/health"));
        using var doc = JsonDocument.Parse(await _http.GetStringAsync("/version"));
        Assert.Equal("3.4.23", doc.RootElement.GetProperty("etcdserver").GetString());
    }

    [Fact]
    public async Task DefaultCors_AllowsEveryOrigin_AsEtcd()
    {
        // etcd's default --cors=* puts its CORS headers on every client HTTP response, Origin or not.
        using var resp = await _http.GetAsync("/health");
        Assert.Equal("*", resp.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("POST, GET, OPTIONS, PUT, DELETE", resp.Headers.GetValues("Access-Control-Allow-Methods").Single());
        using var preflight = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Options, "/v3/kv/put"));
        Assert.Equal(HttpStatusCode.OK, preflight.StatusCode);
    }

    [Fact]
    public async Task IdleKeepAliveConnection_StaysOpen()
    {
        // Go's HTTP server keeps an idle keep-alive connection open; Kestrel must not drop it at its next heartbeat.
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(_host.ClientUrls[0].Host, _host.ClientUrls[0].Port);
        var stream = tcp.GetStream();
        var request = Encoding.ASCII.GetBytes($"GET /health HTTP/1.1\r\nHost: {_host.ClientUrls[0].Authority}\r\n\r\n");
        for (var i = 0; i < 2; i++)
        {
            if (i > 0)
            {
                // the idle time is what is under test: longer than Kestrel's one-second heartbeat
                await Task.Delay(TimeSpan.FromSeconds(2.5));
            }

            await stream.WriteAsync(request);
            var buffer = new byte[4096];
            var text = "";
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!text.Contains("{\"health\":\"true\"}", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                Assert.True(n > 0, $"the server closed the idle connection before request {i + 1}");
                text += Encoding.ASCII.GetString(buffer, 0, n);
            }

            Assert.StartsWith("HTTP/1.1 200", text);
        }
    }

    [Fact]
    public async Task MetricsUseEtcdNames()
    {
        var text = await _http.GetStringAsync("/metrics");
        Assert.Contains("etcd_server_has_leader 1\n", text);
        Assert.Contains("etcd_server_version{server_version=\"3.4.23\"} 1\n", text);
        Assert.Contains("# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n", text);
    }

    [Theory]
    [InlineData("/v3")]
    [InlineData("/v3beta")]
    public async Task GatewayPutRangeTxnInEtcdsJsonShape(string prefix)
    {
        // bytes are base64 ("Zm9v" = foo), int64 as strings, proto field names, no whitespace
        var (status, put) = await PostAsync(prefix + "/kv/put", "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Matches("^\\{\"header\":\\{\"cluster_id\":\"\\d+\",\"member_id\":\"\\d+\",\"revision\":\"\\d+\",\"raft_term\":\"2\"\\}\\}$", put);

        var (_, range) = await PostAsync(prefix + "/kv/range", "{\"key\":\"Zm9v\"}");
        Assert.Contains("\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"", range);
        Assert.Contains("\"value\":\"YmFy\"}],\"count\":\"1\"}", range);

        var (_, txn) = await PostAsync(prefix + "/kv/txn", "{\"compare\":[{\"key\":\"Zm9v\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"YmFy\"}],\"success\":[{\"request_range\":{\"key\":\"Zm9v\"}}]}");
        Assert.Contains("\"succeeded\":true,\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"", txn);
    }

    [Fact]
    public async Task GatewayErrorsUseEtcdsBody()
    {
        var (status, body) = await PostAsync("/v3/kv/put", "{\"value\":\"YmFy\"}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("{\"error\":\"etcdserver: key is not provided\",\"message\":\"etcdserver: key is not provided\",\"code\":3}", body);

        var (badStatus, badBody) = await PostAsync("/v3/kv/txn", "{\"compare\":[{\"TargetUnion\":null}]}");
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.Contains("\"code\":3", badBody);

        using var missing = await _http.PostAsync("/v3/kv/nothing", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}
