using System.Net.Http.Headers;
using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Server.Watch;
using Etcdserverpb;
using Microsoft.Extensions.Logging.Abstractions;
using static Etcd.Server.Tests.Watch.WatchCall;

namespace Etcd.Server.Tests.Watch;

/// <summary>The service driven directly (options the host does not expose yet), and the JSON gateway's /v3/watch.</summary>
public sealed class WatchDirectTests : WatchMemberFixture
{
    [Fact]
    public async Task ProgressNotifyAtTheConfiguredIntervalOnlyForWatchersThatAskedAndHadNoEvents()
    {
        using var cts = new CancellationTokenSource();
        var req = new DirectWatch.Requests();
        var resp = new DirectWatch.Responses();
        var serve = WatchService.ServeAsync(Host.Server, new WatchServiceOptions { ProgressNotifyInterval = TimeSpan.FromMilliseconds(50) }, req, resp, requireLeader: false, cts.Token);
        req.Queue.Writer.TryWrite(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("quiet"), ProgressNotify = true } });
        req.Queue.Writer.TryWrite(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("quiet") } });
        Assert.Equal((true, 0L), ((await resp.NextAsync()).Created, 0L));
        Assert.Equal(1, (await resp.NextAsync()).WatchId);
        var rev = Host.Server.Kv.CurrentRevision;
        for (var i = 0; i < 3; i++)
        {
            var p = await resp.NextAsync();
            Assert.Equal(0, p.WatchId); // never the watcher without progress_notify
            Assert.Empty(p.Events);
            Assert.False(p.Created || p.Canceled);
            Assert.True(p.Header.Revision >= rev);
        }

        cts.Cancel();
        await serve.WaitAsync(DefaultTimeout); // ends quietly when the client goes away
    }

    [Fact]
    public async Task HasLeaderRequiredWithoutLeaderFailsWithNoLeader()
    {
        using var dir = new TempDir();
        var server = EtcdServer.Start(
            new EtcdOptions
            {
                Name = "alone",
                DataDir = dir.Path,
                ListenClientUrls = [new Uri("http://127.0.0.1:0")],
                InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12390")],
            },
            NullLoggerFactory.Instance,
            startLoop: false);
        try
        {
            Assert.Equal(0UL, server.Leader);
            var e = await Assert.ThrowsAsync<EtcdException>(() =>
                WatchService.ServeAsync(server, new WatchServiceOptions(), new DirectWatch.Requests(), new DirectWatch.Responses(), requireLeader: true, CancellationToken.None));
            Assert.Equal(StatusCode.Unavailable, e.Status);
            Assert.Equal("etcdserver: no leader", e.Detail);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task HasLeaderWithLeaderServes()
    {
        using var w = new WatchCall(Client, new Etcd.Client.Grpc.CallOptions { Headers = [new("hasleader", "true")] });
        await w.CreateAsync("hl");
        Assert.True((await w.NextAsync()).Created);
    }

    [Fact]
    public async Task GatewayStreamsNewlineDelimitedResults()
    {
        var put = await Client.Kv.PutAsync("foo", "bar");
        using var http = new HttpClient { BaseAddress = Host.ClientUrls[0], Timeout = DefaultTimeout };
        using var cts = new CancellationTokenSource(DefaultTimeout);
        var body = new StringContent("{\"create_request\" : {\"key\":\"Zm9v\",\"start_revision\":1}}", Encoding.UTF8);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var msg = new HttpRequestMessage(HttpMethod.Post, "/v3/watch") { Content = body };
        using var res = await http.SendAsync(msg, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(200, (int)res.StatusCode);
        using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(cts.Token));
        var created = await reader.ReadLineAsync(cts.Token);
        Assert.StartsWith("{\"result\":{\"header\":{\"cluster_id\":\"", created);
        Assert.Contains("\"created\":true", created);
        var events = await reader.ReadLineAsync(cts.Token);
        Assert.Contains("\"value\":\"YmFy\"", events);
        Assert.Contains($"\"mod_revision\":\"{put.Header.Revision}\"", events);

        // live events keep streaming on the same response
        await Client.Kv.PutAsync("foo", "baz");
        var live = await reader.ReadLineAsync(cts.Token);
        Assert.Contains("\"value\":\"YmF6\"", live);
    }

    [Fact]
    public async Task GatewayAnswersATruncatedFirstRequestAsEtcdDoes()
    {
        using var http = new HttpClient { BaseAddress = Host.ClientUrls[0], Timeout = DefaultTimeout };
        using var res = await http.PostAsync("/v3/watch", new StringContent("{\"create_request\": {\"key\": 12", Encoding.UTF8, "application/json"));
        Assert.Equal(500, (int)res.StatusCode);
        Assert.Equal("{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":2}", await res.Content.ReadAsStringAsync());
    }
}
