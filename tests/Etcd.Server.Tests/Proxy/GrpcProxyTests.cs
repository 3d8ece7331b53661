using System.Net;
using Etcd.Client;
using Etcd.Proxy;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Proxy;

/// <summary>
/// The grpc-proxy in-process (<see cref="GrpcProxyServer"/>) in front of an in-process member, driven by our client
/// (<see cref="EtcdClient"/>) through the proxy: KV and the serializable-range cache with its invalidation, watch
/// coalescing (many client watches, one watch on the member), lease keep-alives over one shared stream, --namespace,
/// and the HTTP /health and /metrics. One member and proxy per test.
/// </summary>
public sealed class GrpcProxyTests() : InProcessMemberTests("proxy"), IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    private async Task<(GrpcProxyServer Proxy, EtcdClient Client)> StartProxyAsync(string ns = "")
    {
        var proxy = new GrpcProxyServer(new GrpcProxyOptions
        {
            ListenAddress = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = new ProxyUpstreamOptions { Endpoints = [Host.ClientUrls[0].ToString()] },
            Namespace = ns,
        }, NullLoggerFactory.Instance);
        _owned.Add(proxy);
        await proxy.StartAsync();
        var client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [$"http://{proxy.ListenEndPoint}"] });
        _owned.Add(new DisposeClient(client));
        return (proxy, client);
    }

    Task IAsyncLifetime.InitializeAsync() => InitializeAsync();

    async Task IAsyncLifetime.DisposeAsync()
    {
        // proxies and their clients before the member
        foreach (var d in Enumerable.Reverse(_owned))
        {
            await d.DisposeAsync();
        }

        await DisposeAsync();
    }

    private static RangeRequest Serializable(string key, string end = "") =>
        new() { Key = B(key), RangeEnd = B(end), Serializable = true };

    [Fact]
    public async Task Kv_PassesThrough_WithTheMembersRevisions()
    {
        var (_, client) = await StartProxyAsync();
        var put = await client.Kv.PutAsync("k", "v1");
        var direct = await Client.Kv.GetAsync("k");
        Assert.Equal(put.Header.Revision, direct.Header.Revision);
        Assert.Equal("v1", direct.Kvs[0].Value.ToStringUtf8());
        var txn = await client.Kv.TxnAsync(new TxnRequest
        {
            Compare = { new Compare { Key = B("k"), Target = Compare.Types.CompareTarget.Value, Result = Compare.Types.CompareResult.Equal, Value = B("v1") } },
            Success = { new RequestOp { RequestPut = new PutRequest { Key = B("k"), Value = B("v2") } } },
        });
        Assert.True(txn.Succeeded);
        var del = await client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("k"), PrevKv = true });
        Assert.Equal("v2", del.PrevKvs[0].Value.ToStringUtf8());
        Assert.Equal(0, (await Client.Kv.GetAsync("k")).Count);
    }

    [Fact]
    public async Task SerializableRanges_AreCached_AndWritesThroughTheProxyInvalidateThem()
    {
        var (proxy, client) = await StartProxyAsync();
        await client.Kv.PutAsync("a1", "x");
        var first = await client.Kv.RangeAsync(Serializable("a1"));
        var again = await client.Kv.RangeAsync(Serializable("a1"));
        Assert.Equal("x", again.Kvs[0].Value.ToStringUtf8());
        Assert.Equal(1, proxy.Metrics.CacheHits.Value);
        Assert.Equal(1, proxy.Metrics.CacheMisses.Value);

        // a write that reaches the member another way is not seen (etcd's semantics: serializable may be stale)
        await Client.Kv.PutAsync("a1", "direct");
        Assert.Equal("x", (await client.Kv.RangeAsync(Serializable("a1"))).Kvs[0].Value.ToStringUtf8());

        // a put through the proxy drops the cached key; a prefix range is dropped by a put inside it
        await client.Kv.RangeAsync(Serializable("a", "b"));
        await client.Kv.PutAsync("a1", "y");
        Assert.Equal("y", (await client.Kv.RangeAsync(Serializable("a1"))).Kvs[0].Value.ToStringUtf8());
        var range = await client.Kv.RangeAsync(Serializable("a", "b"));
        Assert.Equal("y", range.Kvs.Single().Value.ToStringUtf8());
        await client.Kv.PutAsync("a2", "z");
        Assert.Equal(2, (await client.Kv.RangeAsync(Serializable("a", "b"))).Count);

        // a delete and a txn put invalidate too; linearizable ranges always go to the member
        await client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("a2") });
        Assert.Equal(1, (await client.Kv.RangeAsync(Serializable("a", "b"))).Count);
        await client.Kv.TxnAsync(new TxnRequest { Success = { new RequestOp { RequestPut = new PutRequest { Key = B("a1"), Value = B("t") } } } });
        Assert.Equal("t", (await client.Kv.RangeAsync(Serializable("a1"))).Kvs[0].Value.ToStringUtf8());
        await Client.Kv.PutAsync("a1", "direct2");
        Assert.Equal("direct2", (await client.Kv.GetAsync("a1")).Kvs[0].Value.ToStringUtf8());
        Assert.True(proxy.Metrics.CacheKeys.Value >= 1);
        _ = first;
    }

    [Fact]
    public async Task ManyClientWatches_ShareOneUpstreamWatch_AndAllGetEachEvent()
    {
        const int Watchers = 12;
        var (proxy, client) = await StartProxyAsync();
        var put = await client.Kv.PutAsync("w", "0");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var enumerators = Enumerable.Range(0, Watchers)
            .Select(_ => client.Watch.WatchAsync(new WatchCreateRequest { Key = B("w"), StartRevision = put.Header.Revision }, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token))
            .ToList();
        try
        {
            // every watcher replays the put from its start revision
            foreach (var e in enumerators)
            {
                Assert.True(await e.MoveNextAsync());
                Assert.Equal("0", e.Current.Events.Single().Kv.Value.ToStringUtf8());
            }

            await WaitUntilAsync(() => proxy.Metrics.UpstreamWatches == 1 && proxy.Watch!.Watchers == Watchers, cts.Token);
            double coalescedBefore = proxy.Metrics.EventsCoalescing.Value;
            await client.Kv.PutAsync("w", "1");
            foreach (var e in enumerators)
            {
                Assert.True(await e.MoveNextAsync());
                Assert.Equal("1", e.Current.Events.Single().Kv.Value.ToStringUtf8());
            }

            Assert.Equal(1, proxy.Metrics.UpstreamWatches);
            Assert.Equal(Watchers - 1, proxy.Metrics.EventsCoalescing.Value - coalescedBefore);
            Assert.Equal(Watchers - 1, proxy.Metrics.WatchersCoalescing.Value);
        }
        finally
        {
            foreach (var e in enumerators)
            {
                await e.DisposeAsync();
            }
        }

        // the streams' end removes the watchers and the upstream watch
        await WaitUntilAsync(() => proxy.Metrics.UpstreamWatches == 0 && proxy.Watch!.Watchers == 0, CancellationToken.None);
        Assert.Equal(0, proxy.Metrics.WatchersCoalescing.Value);
    }

    [Fact]
    public async Task Watch_FiltersAndPrevKv_ArePerClient()
    {
        var (_, client) = await StartProxyAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var put = await client.Kv.PutAsync("f", "0");
        await using var all = client.Watch.WatchAsync(new WatchCreateRequest { Key = B("f"), StartRevision = put.Header.Revision + 1, PrevKv = true }, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        await using var noPut = client.Watch.WatchAsync(new WatchCreateRequest { Key = B("f"), StartRevision = put.Header.Revision + 1, Filters = { WatchCreateRequest.Types.FilterType.Noput } }, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var allNext = all.MoveNextAsync();
        var noPutNext = noPut.MoveNextAsync();
        await client.Kv.PutAsync("f", "1");
        await client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("f") });
        Assert.True(await allNext);
        Assert.Equal("0", all.Current.Events[0].PrevKv.Value.ToStringUtf8());
        Assert.True(await noPutNext);
        Assert.All(noPut.Current.Events, e => Assert.Equal(Mvccpb.Event.Types.EventType.Delete, e.Type));
        Assert.All(noPut.Current.Events, e => Assert.Null(e.PrevKv));
    }

    [Fact]
    public async Task LeaseKeepAlives_OfSeveralClients_GoOverOneStream()
    {
        var (proxy, client) = await StartProxyAsync();
        var grant = await client.Lease.GrantAsync(30);
        using var second = EtcdClient.Create(new EtcdClientOptions { Endpoints = [$"http://{proxy.ListenEndPoint}"] });
        await using var k1 = client.Lease.KeepAlive(grant.ID, TimeSpan.FromMilliseconds(50));
        await using var k2 = second.Lease.KeepAlive(grant.ID, TimeSpan.FromMilliseconds(50));
        var ttls = await Task.WhenAll(k1.RenewedAsync(3), k2.RenewedAsync(3)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(ttls, t => Assert.Equal(30, t));
        Assert.Equal(1, proxy.KeepAlives.StreamsOpened);
        Assert.True(proxy.KeepAlives.UpstreamRequests >= 3);
        var ttl = await client.Lease.TimeToLiveAsync(grant.ID);
        Assert.InRange(ttl.TTL, 1, 30);
        await client.Lease.RevokeAsync(grant.ID);
        await Assert.ThrowsAnyAsync<Exception>(() => k1.Completion.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Namespace_PrefixesKeysUpstream_AndStripsThemForClients()
    {
        var (_, client) = await StartProxyAsync("ns/");
        await client.Kv.PutAsync("a", "1");
        await Client.Kv.PutAsync("outside", "x");
        Assert.Equal("1", (await Client.Kv.GetAsync("ns/a")).Kvs[0].Value.ToStringUtf8());
        var all = await client.Kv.RangeAsync(new RangeRequest { Key = B("\0"), RangeEnd = B("\0") });
        Assert.Equal(["a"], all.Kvs.Select(k => k.Key.ToStringUtf8()));
        var lease = await client.Lease.GrantAsync(60);
        await client.Kv.PutAsync(new PutRequest { Key = B("l"), Value = B("v"), Lease = lease.ID });
        var ttl = await client.Lease.TimeToLiveAsync(lease.ID, keys: true);
        Assert.Equal(["l"], ttl.Keys.Select(k => k.ToStringUtf8()));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var put = await client.Kv.PutAsync("w", "1");
        await using var watch = client.Watch.WatchAsync(new WatchCreateRequest { Key = B("w"), StartRevision = put.Header.Revision }, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal("w", watch.Current.Events[0].Kv.Key.ToStringUtf8());
    }

    [Theory]
    [InlineData("http://127.0.0.1:2379", true, false)]
    [InlineData("https://127.0.0.1:2379", false, true)]
    [InlineData("127.0.0.1:2379", true, true)]
    [InlineData("127.0.0.1:2379", false, false)]
    public void Upstream_DialsTlsByScheme_AsClientv3(string endpoint, bool tlsConfigured, bool secure)
    {
        using var upstream = new ProxyUpstream(new ProxyUpstreamOptions { Endpoints = [endpoint], InsecureSkipTlsVerify = tlsConfigured }, NullLoggerFactory.Instance);
        Assert.Equal(secure, upstream.Secure);
    }

    [Fact]
    public async Task Http_HealthAndMetrics()
    {
        var (proxy, client) = await StartProxyAsync();
        await client.Kv.RangeAsync(Serializable("m"));
        using var http = new HttpClient();
        var health = await http.GetAsync($"http://{proxy.ListenEndPoint}/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("{\"health\":\"true\"}", await health.Content.ReadAsStringAsync());
        var metrics = await http.GetStringAsync($"http://{proxy.ListenEndPoint}/metrics");
        Assert.Contains("etcd_server_has_leader 1", metrics);
        Assert.Single(metrics.Split('\n'), l => l == "# TYPE etcd_grpc_proxy_cache_misses_total gauge");
        Assert.Contains("etcd_grpc_proxy_cache_misses_total 1", metrics);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://{proxy.ListenEndPoint}/nothing")).StatusCode);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 30 s");
            await Task.Delay(20, cancellationToken);
        }
    }

    private sealed class DisposeClient(EtcdClient client) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            client.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
