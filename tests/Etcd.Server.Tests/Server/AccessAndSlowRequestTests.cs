using System.Net;
using System.Text;
using System.Text.Json;
using Etcd.Server.Logging;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// A member started with etcd's access flags and a zero apply-warning threshold, logging zap lines to a file:
/// <c>--host-whitelist</c> (421 and etcd's text), <c>--cors</c> (headers, preflight), <c>--enable-grpc-gateway=false</c>
/// (404 on /v3) and <c>--experimental-warning-apply-duration</c> ("apply request took too long" with etcd's fields).
/// Expected texts are real etcd 3.4.23's answers to the same requests.
/// </summary>
public sealed class AccessAndSlowRequestTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private ILoggerFactory _logs = null!;
    private EtcdHost _host = null!;

    private string LogPath => Path.Combine(_dir.Path, "etcd.log");

    public async Task InitializeAsync()
    {
        _logs = EtcdLogging.CreateLoggerFactory("zap", "info", [LogPath]);
        _host = await EtcdHost.StartAsync(
            TestMember.Options("access", Path.Combine(_dir.Path, "data")) with
            {
                HostWhitelist = ["127.0.0.1", "example.com"],
                Cors = ["http://a.example:80"],
                EnableGrpcGateway = false,
                ExperimentalWarningApplyDuration = TimeSpan.Zero,
            },
            _logs).WaitAsync(TimeSpan.FromSeconds(20));
        _http.BaseAddress = _host.ClientUrls[0];
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        _logs.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task UnlistedHost_IsMisdirected_WithEtcdsText()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/version");
        req.Headers.Host = "evil.com:2379";
        using var resp = await _http.SendAsync(req);
        Assert.Equal((HttpStatusCode)421, resp.StatusCode);
        Assert.Equal("text/plain; charset=utf-8", resp.Content.Headers.ContentType!.ToString());
        Assert.Equal("nosniff", resp.Headers.GetValues("X-Content-Type-Options").Single());
        var body = await resp.Content.ReadAsStringAsync();
        Assert.Equal(
            "\netcd received your request, but the Host header was unrecognized.\n\nTo fix this, choose one of the following options:\n" +
            "- Enable TLS, then any HTTPS request will be allowed.\n- Add the hostname you want to use to the whitelist in settings.\n" +
            "  - e.g. etcd --host-whitelist \"evil.com\"\n\nThis requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n\n",
            body);
        Assert.Equal(370, Encoding.UTF8.GetByteCount(body)); // etcd's Content-Length for this host
        var line = LogLines().Single(l => l.GetProperty("msg").GetString() == "rejecting HTTP request to prevent DNS rebinding attacks");
        Assert.Equal("warn", line.GetProperty("level").GetString());
        Assert.Equal("embed/serve.go:344", line.GetProperty("caller").GetString());
        Assert.Equal("evil.com", line.GetProperty("host").GetString());

        // A listed host (with or without port) is served.
        using var ok = new HttpRequestMessage(HttpMethod.Get, "/version");
        ok.Headers.Host = "example.com";
        using var okResp = await _http.SendAsync(ok);
        Assert.Equal(HttpStatusCode.OK, okResp.StatusCode);
    }

    [Fact]
    public async Task Cors_ListedOriginGetsHeaders_OthersNone_AndPreflightAnswers()
    {
        using var allowed = new HttpRequestMessage(HttpMethod.Get, "/version");
        allowed.Headers.Add("Origin", "http://a.example:80");
        using var a = await _http.SendAsync(allowed);
        Assert.Equal("http://a.example:80", a.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("POST, GET, OPTIONS, PUT, DELETE", a.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Equal("accept, content-type, authorization", a.Headers.GetValues("Access-Control-Allow-Headers").Single());

        using var other = new HttpRequestMessage(HttpMethod.Get, "/version");
        other.Headers.Add("Origin", "http://b.example");
        using var b = await _http.SendAsync(other);
        Assert.Equal(HttpStatusCode.OK, b.StatusCode);
        Assert.False(b.Headers.Contains("Access-Control-Allow-Origin"));

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/nothing");
        preflight.Headers.Add("Origin", "http://a.example:80");
        using var p = await _http.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.OK, p.StatusCode);
        Assert.Equal("http://a.example:80", p.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("", await p.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/v3/kv/range")]
    [InlineData("/v3beta/kv/range")]
    public async Task DisabledGateway_IsNotFound(string path)
    {
        using var resp = await _http.PostAsync(path, new StringContent("{\"key\":\"Zm9v\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode);
        Assert.Equal("404 page not found\n", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task SlowRequests_LogEtcdsWarning()
    {
        var server = _host.Server;
        await server.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("foo"), Value = ByteString.CopyFromUtf8("bar") }, CancellationToken.None);
        await server.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("foo") }, CancellationToken.None);
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Target = Compare.Types.CompareTarget.Value, Key = ByteString.CopyFromUtf8("foo"), Value = ByteString.CopyFromUtf8("bar") });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8("a"), Value = ByteString.CopyFromUtf8("b") } });
        await server.TxnAsync(txn, CancellationToken.None);

        var slow = LogLines().Where(l => l.GetProperty("msg").GetString() == "apply request took too long").ToList();
        Assert.All(slow, l =>
        {
            Assert.Equal("warn", l.GetProperty("level").GetString());
            Assert.Equal("etcdserver/util.go:167", l.GetProperty("caller").GetString());
            Assert.Equal(["level", "ts", "caller", "msg", "took", "expected-duration", "prefix", "request", "response"], l.EnumerateObject().Select(p => p.Name));
            Assert.Equal("0s", l.GetProperty("expected-duration").GetString());
        });
        Assert.Contains(slow, l => l.GetProperty("prefix").GetString() == "" &&
            System.Text.RegularExpressions.Regex.IsMatch(l.GetProperty("request").GetString()!, "^header:<ID:[0-9]+ > put:<key:\"foo\" value_size:3 >$") &&
            System.Text.RegularExpressions.Regex.IsMatch(l.GetProperty("response").GetString()!, "^size:[0-9]+$"));
        Assert.Contains(slow, l => l.GetProperty("prefix").GetString() == "read-only range " &&
            l.GetProperty("request").GetString() == "key:\"foo\" " &&
            l.GetProperty("response").GetString()!.StartsWith("range_response_count:1 size:", StringComparison.Ordinal));
        Assert.Contains(slow, l => System.Text.RegularExpressions.Regex.IsMatch(
            l.GetProperty("request").GetString()!,
            "^header:<ID:[0-9]+ > txn:<compare:<target:VALUE key:\"foo\" value_size:3 > success:<request_put:<key:\"a\" value_size:1 >> failure:<>>$"));
        // Members publishing themselves go through the v2 path, printed as etcd's v2 request.
        Assert.Contains(slow, l => l.GetProperty("request").GetString()!.Contains("Method:\"PUT\" Path:\"/0/members/", StringComparison.Ordinal));
    }

    private List<JsonElement> LogLines()
    {
        using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(fs);
        var lines = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(JsonDocument.Parse(line).RootElement.Clone());
        }

        return lines;
    }
}
