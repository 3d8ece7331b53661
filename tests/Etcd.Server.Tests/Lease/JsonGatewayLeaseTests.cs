using System.Net.Http;
using System.Text;
using Etcd.Server.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Lease;

/// <summary>The JSON gateway's lease and election routes, over HTTP/1.1 as curl uses them.</summary>
public sealed class JsonGatewayLeaseTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private EtcdHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = await EtcdHost.StartAsync(
            TestMember.Options("gw", _dir.Path),
            NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        await _host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(20));
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<string> Post(string path, string body)
    {
        using var resp = await _http.PostAsync(new Uri(_host.ClientUrls[0], path), new StringContent(body, Encoding.UTF8, "application/json"));
        return await resp.Content.ReadAsStringAsync();
    }

    [Theory]
    [InlineData("{\"ID\":4044265583582467976,\"TTL\":5}", "{\"ID\":\"4044265583582467976\",\"TTL\":5}")]
    [InlineData("{\"ID\":-4044265583582467976}", "{\"ID\":\"-4044265583582467976\"}")]
    [InlineData("{\"a\":\"12345678901234567890\",\"b\":1.5e300,\"c\":123456789012345}", "{\"a\":\"12345678901234567890\",\"b\":1.5e300,\"c\":123456789012345}")]
    [InlineData("{\"s\":\"x\\\"1234567890123456789\"}", "{\"s\":\"x\\\"1234567890123456789\"}")]
    public void LargeIntegersAreQuoted(string input, string expected)
        => Assert.Equal(expected, JsonGatewayLease.QuoteLargeIntegers(input));

    [Fact]
    public async Task GrantKeepAliveTimeToLiveWithExactIds()
    {
        const long id = 4044265583582467976;
        Assert.Contains($"\"ID\":\"{id}\"", await Post("/v3/lease/grant", $"{{\"ID\":{id},\"TTL\":20}}"));
        var ka = await Post("/v3/lease/keepalive", $"{{\"ID\":{id}}}{{\"ID\":\"{id}\"}}");
        var lines = ka.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("{\"result\":{\"header\":", l, StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains($"\"ID\":\"{id}\",\"TTL\":\"20\"", l, StringComparison.Ordinal));

        var unknown = await Post("/v3/lease/keepalive", "{\"ID\":77}");
        Assert.Contains("\"ID\":\"77\"}}", unknown, StringComparison.Ordinal);
        Assert.Contains("\"TTL\":\"-1\"", await Post("/v3/lease/timetolive", "{\"ID\":77}"), StringComparison.Ordinal);
        Assert.Contains("\"grantedTTL\":\"20\"", await Post("/v3/kv/lease/timetolive", $"{{\"ID\":{id},\"keys\":true}}"), StringComparison.Ordinal);
        Assert.Equal(
            "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}",
            await Post("/v3/lease/revoke", "{\"ID\":77}"));
    }

    [Fact]
    public async Task ElectionRoutes()
    {
        Assert.Equal(
            "{\"error\":\"\\\"leader\\\" field must be provided\",\"message\":\"\\\"leader\\\" field must be provided\",\"code\":2}",
            await Post("/v3/election/proclaim", "{\"value\":\"djI=\"}"));
        Assert.Equal(
            "{\"error\":\"election: no leader\",\"message\":\"election: no leader\",\"code\":2}",
            await Post("/v3/election/leader", "{\"name\":\"eA==\"}"));
        var campaign = await Post("/v3/election/campaign", "{\"name\":\"eA==\",\"value\":\"djE=\"}");
        Assert.Contains("\"leader\":{\"name\":\"eA==\"", campaign, StringComparison.Ordinal);

        using var observe = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(_host.ClientUrls[0], "/v3/election/observe")) { Content = new StringContent("{\"name\":\"eA==\"}") };
        using var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, observe.Token);
        using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(observe.Token));
        var first = await reader.ReadLineAsync(observe.Token);
        Assert.StartsWith("{\"result\":{\"header\":", first, StringComparison.Ordinal);
        Assert.Contains("\"value\":\"djE=\"", first, StringComparison.Ordinal);
    }
}
