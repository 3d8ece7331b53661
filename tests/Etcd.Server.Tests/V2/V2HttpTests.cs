using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Etcd.Server.Tests.V2;

/// <summary>
/// The v2 API of an in-process member with <c>--enable-v2</c>, through real HTTP: keys (writes through raft, errors,
/// watches, TTL expiry by the leader's SYNC), members, machines, stats and auth; persistence through the WAL and
/// through snap files.
/// </summary>
public sealed class V2HttpTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private EtcdHost _host = null!;
    private HttpClient _http = null!;

    private async Task StartAsync(bool enableV2 = true, ulong snapshotCount = 100_000)
    {
        var options = TestMember.Options("v2", _dir.Path) with { EnableV2 = enableV2, SnapshotCount = snapshotCount };
        _host = await EtcdHost.StartAsync(options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        await _host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(20));
        _http = new HttpClient { BaseAddress = _host.ClientUrls[0], Timeout = TimeSpan.FromSeconds(20) };
    }

    private async Task StopAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    public Task InitializeAsync() => StartAsync();

    public async Task DisposeAsync()
    {
        await StopAsync();
        _dir.Dispose();
    }

    private static FormUrlEncodedContent Form(params (string Key, string Value)[] fields)
        => new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> Read(Task<HttpResponseMessage> call)
    {
        var r = await call;
        return (r.StatusCode, await r.Content.ReadAsStringAsync(), r);
    }

    private static string Header(HttpResponseMessage r, string name) => r.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : "";

    [Fact]
    public async Task Keys_SetGetAndErrors_AsEtcd()
    {
        var (status, body, resp) = await Read(_http.PutAsync("/v2/keys/foo", Form(("value", "bar"))));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.StartsWith("""{"action":"set","node":{"key":"/foo","value":"bar","modifiedIndex":""", body);
        Assert.EndsWith("}\n", body);
        // As etcd: the membership is in the v2 store too (the member and its published attributes before the member
        // serves, then the cluster version), so a one-member cluster's first key is at index 3 or (usually) 4.
        var index = Header(resp, "X-Etcd-Index");
        Assert.InRange(ulong.Parse(index, System.Globalization.CultureInfo.InvariantCulture), 3UL, 4UL);
        Assert.True(ulong.Parse(Header(resp, "X-Raft-Index"), System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.Equal(_host.Server.Term.ToString(System.Globalization.CultureInfo.InvariantCulture), Header(resp, "X-Raft-Term"));
        Assert.Equal(Membership.Member.IdString(_host.Server.Cluster.ClusterId), Header(resp, "X-Etcd-Cluster-ID"));

        (status, body, _) = await Read(_http.GetAsync("/v2/keys/foo?quorum=true"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\",\"modifiedIndex\":" + index + ",\"createdIndex\":" + index + "}}\n", body);

        (status, body, resp) = await Read(_http.PutAsync("/v2/keys/foo?prevExist=false", Form(("value", "x"))));
        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        Assert.Equal($$"""{"errorCode":105,"message":"Key already exists","cause":"/foo","index":{{index}}}""" + "\n", body);
        Assert.Equal(index, Header(resp, "X-Etcd-Index"));

        (status, body, _) = await Read(_http.DeleteAsync("/v2/keys/nope"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\"", body);

        (status, body, _) = await Read(_http.PutAsync("/v2/keys/foo?prevValue=zzz", Form(("value", "y"))));
        Assert.Equal(HttpStatusCode.PreconditionFailed, status);
        Assert.Contains("\"cause\":\"[zzz != bar]\"", body);

        (status, body, _) = await Read(_http.GetAsync("/v2/keys/foo?recursive=maybe"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("""{"errorCode":209,"message":"Invalid field","cause":"invalid value for \"recursive\"","index":0}""" + "\n", body);
        (status, body, _) = await Read(_http.PutAsync("/v2/keys/foo?ttl=abc", Form(("value", "y"))));
        Assert.Equal((HttpStatusCode.BadRequest, 202), (status, JsonDocument.Parse(body).RootElement.GetProperty("errorCode").GetInt32()));
        (status, body, _) = await Read(_http.PutAsync("/v2/keys/foo?wait=true", Form(("value", "y"))));
        Assert.Contains("\\\"wait\\\" can only be used with GET requests", body);
        (status, _, resp) = await Read(_http.PatchAsync("/v2/keys/foo", Form(("value", "y"))));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
        Assert.Equal("HEAD,GET,PUT,POST,DELETE", resp.Content.Headers.Allow.Count > 0 ? string.Join(",", resp.Content.Headers.Allow) : Header(resp, "Allow"));

        (status, body, _) = await Read(_http.PostAsync("/v2/keys/queue", Form(("value", "job"))));
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Matches("\"action\":\"create\",\"node\":\\{\"key\":\"/queue/[0-9]{20}\"", body);
    }

    [Fact]
    public async Task Watch_WaitsForTheNextChange_AndReplaysAWaitIndex()
    {
        var first = await Read(_http.PutAsync("/v2/keys/w", Form(("value", "1"))));
        var firstIndex = Header(first.Response, "X-Etcd-Index");
        var watch = _http.GetAsync("/v2/keys/w?wait=true");
        await WaitForWatchersAsync(1);
        await _http.PutAsync("/v2/keys/w", Form(("value", "2")));
        var (status, body, _) = await Read(watch.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("\"action\":\"set\",\"node\":{\"key\":\"/w\",\"value\":\"2\"", body);

        (_, body, _) = await Read(_http.GetAsync($"/v2/keys/w?wait=true&waitIndex={firstIndex}"));
        Assert.Contains("\"value\":\"1\"", body);
    }

    [Fact]
    public async Task Watch_WithAFutureWaitIndex_AnswersWithTheEventAtThatIndex()
    {
        var first = await Read(_http.PutAsync("/v2/keys/fw", Form(("value", "0"))));
        var target = ulong.Parse(Header(first.Response, "X-Etcd-Index"), System.Globalization.CultureInfo.InvariantCulture) + 3;
        var watch = _http.GetAsync($"/v2/keys/fw?wait=true&waitIndex={target}");
        await WaitForWatchersAsync(1);
        for (var i = 1; i <= 3; i++)
        {
            Assert.False(watch.IsCompleted, $"answered before index {target} existed");
            await _http.PutAsync("/v2/keys/fw", Form(("value", $"{i}")));
        }

        var (status, body, _) = await Read(watch.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.StartsWith($$"""{"action":"set","node":{"key":"/fw","value":"3","modifiedIndex":{{target}},""", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamWatch_DeliversEveryChange_AsOneJsonLineEach()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var resp = await _http.GetAsync("/v2/keys/sw?wait=true&stream=true&recursive=true", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.NotEqual("", Header(resp, "X-Etcd-Index"));
        using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync(cts.Token));
        await WaitForWatchersAsync(1);
        for (var i = 0; i < 3; i++)
        {
            await _http.PutAsync($"/v2/keys/sw/k{i}", Form(("value", $"v{i}")), cts.Token);
        }

        await _http.DeleteAsync("/v2/keys/sw/k0", cts.Token);
        for (var i = 0; i < 3; i++)
        {
            var line = await reader.ReadLineAsync(cts.Token);
            Assert.StartsWith($$"""{"action":"set","node":{"key":"/sw/k{{i}}","value":"v{{i}}","modifiedIndex":""", line, StringComparison.Ordinal);
        }

        Assert.StartsWith("""{"action":"delete","node":{"key":"/sw/k0","modifiedIndex":""", await reader.ReadLineAsync(cts.Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ttl_ExpiresThroughTheLeadersSync()
    {
        await _http.PutAsync("/v2/keys/ttl", Form(("value", "v"), ("ttl", "1")));
        var (_, body, _) = await Read(_http.GetAsync("/v2/keys/ttl"));
        Assert.Contains("\"ttl\":1", body);
        (_, body, _) = await Read(_http.GetAsync("/v2/keys/ttl?wait=true").WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.StartsWith("""{"action":"expire","node":{"key":"/ttl","modifiedIndex":""", body);
        var (status, _, _) = await Read(_http.GetAsync("/v2/keys/ttl"));
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task MembersMachinesAndStats()
    {
        var (status, body, _) = await Read(_http.GetAsync("/v2/members"));
        Assert.Equal(HttpStatusCode.OK, status);
        var id = Membership.Member.IdString(_host.Server.MemberId);
        Assert.Equal($$"""{"members":[{"id":"{{id}}","name":"v2","peerURLs":["http://127.0.0.1:12380"],"clientURLs":["http://127.0.0.1:2379"]}]}""" + "\n", body);
        (_, body, _) = await Read(_http.GetAsync("/v2/members/leader"));
        Assert.Contains($"\"id\":\"{id}\"", body);
        (_, body, _) = await Read(_http.GetAsync("/v2/machines"));
        Assert.Equal("http://127.0.0.1:2379", body);
        (_, body, _) = await Read(_http.GetAsync("/v2/stats/store"));
        var setsBefore = JsonDocument.Parse(body).RootElement.GetProperty("setsSuccess").GetInt64();
        await _http.PutAsync("/v2/keys/s", Form(("value", "1")));
        (_, body, _) = await Read(_http.GetAsync("/v2/stats/store"));
        Assert.Equal(setsBefore + 1, JsonDocument.Parse(body).RootElement.GetProperty("setsSuccess").GetInt64());
        (_, body, _) = await Read(_http.GetAsync("/v2/stats/self"));
        Assert.Equal("StateLeader", JsonDocument.Parse(body).RootElement.GetProperty("state").GetString());
        (status, _, _) = await Read(_http.GetAsync("/v2/stats/leader"));
        Assert.Equal(HttpStatusCode.OK, status);
        (status, body, _) = await Read(_http.GetAsync("/v2/nothing"));
        Assert.Equal((HttpStatusCode.NotFound, "404 page not found\n"), (status, body));
    }

    [Fact]
    public async Task Auth_UsersRolesAndBasicAuth()
    {
        static StringContent Json(string s) => new(s, Encoding.UTF8, "application/json");
        var (status, body, _) = await Read(_http.PutAsync("/v2/auth/users/foo", Json("""{"user":"foo", "password":"pass"}""")));
        Assert.Equal((HttpStatusCode.Created, """{"user":"foo","roles":null}""" + "\n"), (status, body));
        (status, body, _) = await Read(_http.PutAsync("/v2/auth/roles/foo", Json("""{"role":"foo", "permissions": {"kv": {"read": ["/foo/*"]}}}""")));
        Assert.Equal((HttpStatusCode.Created, """{"role":"foo","permissions":{"kv":{"read":["/foo/*"],"write":null}}}""" + "\n"), (status, body));
        (status, body, _) = await Read(_http.PutAsync("/v2/auth/users/foo", Json("""{"user": "foo", "grant": ["foo"]}""")));
        Assert.Equal((HttpStatusCode.OK, """{"user":"foo","roles":["foo"]}""" + "\n"), (status, body));
        (status, body, _) = await Read(_http.PutAsync("/v2/auth/users/foo", Json("""{"user": "foo", "grant": ["foo"]}""")));
        Assert.Equal((HttpStatusCode.Conflict, """{"message":"auth: Granting duplicate role foo for user foo"}"""), (status, body));
        (status, body, _) = await Read(_http.PutAsync("/v2/auth/enable", null));
        Assert.Equal((HttpStatusCode.Conflict, """{"message":"auth: No root user available, please create one"}"""), (status, body));
        await _http.PutAsync("/v2/auth/users/root", Json("""{"user":"root", "password":"a"}"""));
        (status, _, _) = await Read(_http.PutAsync("/v2/auth/enable", null));
        Assert.Equal(HttpStatusCode.OK, status);
        await _http.PutAsync("/v2/keys/foo/k", Form(("value", "v")));

        (_, body, _) = await Read(_http.GetAsync("/v2/auth/enable"));
        Assert.Equal("""{"enabled":true}""" + "\n", body);

        async Task<(HttpStatusCode, string)> As(string user, string password, string path)
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, path);
            req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
            var r = await _http.SendAsync(req);
            return (r.StatusCode, await r.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.OK, (await As("root", "a", "/v2/keys/foo/")).Item1);
        Assert.Equal(HttpStatusCode.OK, (await As("foo", "pass", "/v2/keys/foo/")).Item1);
        var denied = await As("foo", "", "/v2/keys/foo/");
        Assert.Equal((HttpStatusCode.Unauthorized, """{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}""" + "\n"), denied);
        Assert.Equal(HttpStatusCode.Unauthorized, (await As("foo", "pass", "/v2/auth/users")).Item1);
        (_, body) = await As("root", "a", "/v2/auth/users");
        Assert.Contains("\"user\":\"root\"", body);
        (_, body) = await As("root", "a", "/v2/auth/roles");
        Assert.Contains("\"role\":\"guest\"", body);
    }

    [Fact]
    public async Task V2Data_SurvivesRestart_ThroughTheWal_AndThroughSnapFiles()
    {
        await _http.PutAsync("/v2/keys/dir/a", Form(("value", "1")));
        await StopAsync();
        await StartAsync();
        Assert.Contains("\"value\":\"1\"", await _http.GetStringAsync("/v2/keys/dir/a"));

        await StopAsync();
        await StartAsync(snapshotCount: 3);
        for (var i = 0; i < 10; i++)
        {
            await _http.PutAsync($"/v2/keys/dir/k{i}", Form(("value", i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }

        var snaps = Directory.GetFiles(Path.Combine(_dir.Path, "member", "snap"), "*.snap");
        Assert.NotEmpty(snaps);
        await StopAsync();
        await StartAsync(snapshotCount: 3);
        var body = await _http.GetStringAsync("/v2/keys/dir?recursive=true&sorted=true");
        Assert.Equal(11, JsonDocument.Parse(body).RootElement.GetProperty("node").GetProperty("nodes").GetArrayLength());
    }

    [Fact]
    public async Task WithoutEnableV2_TheV2PathsAreNotServed()
    {
        await StopAsync();
        await StartAsync(enableV2: false);
        var r = await _http.GetAsync("/v2/keys/foo");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
    }

    private async Task WaitForWatchersAsync(int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (_host.Server.V2Store.WatcherCount < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }
}
