using System.Net.Http.Headers;
using System.Text;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// The same sequence of v2 auth requests (<c>/v2/auth</c> users, roles, enable/disable, the guest role, basic auth
/// on <c>/v2/keys</c>, error 110 "The request requires user authentication") against real etcd 3.4.23 and the
/// server under test, one fresh member each with <c>--enable-v2</c>: statuses, <c>X-Etcd-Index</c>,
/// <c>WWW-Authenticate</c> and bodies must be equal.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class V2AuthCompatTests
{
    private const string Json = "application/json";
    private const string Form = "application/x-www-form-urlencoded";

    private static readonly (string Method, string Path, string? Body, string? Type, string? User)[] Script =
    [
        ("GET", "/v2/auth/enable", null, null, null),
        ("PUT", "/v2/auth/enable", null, null, null),
        ("PUT", "/v2/auth/users/root", """{"user":"root","password":"rootpw"}""", Json, null),
        ("PUT", "/v2/auth/users/alice", """{"user":"alice","password":"alicepw"}""", Json, null),
        ("PUT", "/v2/auth/roles/readers", """{"role":"readers","permissions":{"kv":{"read":["/pub/*"],"write":[]}}}""", Json, null),
        ("PUT", "/v2/auth/roles/writers", """{"role":"writers","permissions":{"kv":{"read":["/pub/*"],"write":["/pub/*"]}}}""", Json, null),
        ("PUT", "/v2/auth/users/alice", """{"user":"alice","grant":["readers"]}""", Json, null),
        ("PUT", "/v2/auth/users/nobody", """{"user":"nobody","grant":["nosuchrole"]}""", Json, null),
        ("PUT", "/v2/auth/users/bad", "not json", Json, null),
        ("GET", "/v2/auth/users/alice", null, null, null),
        ("GET", "/v2/auth/roles/readers", null, null, null),
        ("GET", "/v2/auth/roles/nosuch", null, null, null),
        ("PUT", "/v2/keys/pub/a", "value=1", Form, null),
        ("PUT", "/v2/auth/enable", null, null, null),
        ("GET", "/v2/auth/enable", null, null, null),

        // Auth on: anonymous requests go through the guest role (full access until it is revoked).
        ("GET", "/v2/keys/pub/a", null, null, null),
        ("PUT", "/v2/auth/roles/guest", """{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}""", Json, "root:rootpw"),
        ("GET", "/v2/keys/pub/a", null, null, null),
        ("PUT", "/v2/keys/pub/b", "value=2", Form, null),
        ("GET", "/v2/auth/users", null, null, null),
        ("GET", "/v2/keys/pub/a", null, null, "alice:alicepw"),
        ("GET", "/v2/keys/pub/a", null, null, "alice:wrongpw"),
        ("GET", "/v2/keys/pub/a", null, null, "ghost:pw"),
        ("PUT", "/v2/keys/pub/c", "value=3", Form, "alice:alicepw"),
        ("GET", "/v2/keys/secret/x", null, null, "alice:alicepw"),
        ("PUT", "/v2/auth/users/alice", """{"user":"alice","grant":["writers"]}""", Json, "root:rootpw"),
        ("PUT", "/v2/keys/pub/c", "value=3", Form, "alice:alicepw"),
        ("GET", "/v2/auth/users", null, null, "root:rootpw"),
        ("GET", "/v2/auth/roles", null, null, "root:rootpw"),
        ("GET", "/v2/auth/users/alice", null, null, "alice:alicepw"),
        ("DELETE", "/v2/auth/roles/root", null, null, "root:rootpw"),
        ("PUT", "/v2/auth/users/alice", """{"user":"alice","password":"newpw"}""", Json, "root:rootpw"),
        ("GET", "/v2/keys/pub/a", null, null, "alice:alicepw"),
        ("GET", "/v2/keys/pub/a", null, null, "alice:newpw"),
        ("DELETE", "/v2/auth/enable", null, null, "alice:newpw"),
        ("DELETE", "/v2/auth/enable", null, null, "root:rootpw"),
        ("GET", "/v2/keys/pub/a", null, null, null),
        ("DELETE", "/v2/auth/users/alice", null, null, null),
        ("GET", "/v2/auth/users/alice", null, null, null),
    ];

    [Fact]
    public async Task SameAuthRequests_SameAnswers()
    {
        var real = await RunAsync(CompatEnvironment.RequireReferenceEtcd());
        var ours = await RunAsync(CompatEnvironment.RequireUnderTest());
        for (var i = 0; i < Script.Length; i++)
        {
            var s = Script[i];
            Assert.True(real[i] == ours[i], $"request {i} {s.Method} {s.Path} {s.Body} as {s.User ?? "anonymous"}\nreal: {real[i]}\nours: {ours[i]}");
        }
    }

    private static async Task<List<string>> RunAsync(string binary)
    {
        await using var member = await EtcdProcess.StartAsync(binary, "v2auth", ["--enable-v2"]);
        using var http = new HttpClient { BaseAddress = new Uri(member.ClientUrl), Timeout = TimeSpan.FromSeconds(30) };
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            while (!(await http.GetStringAsync("/version", cts.Token)).Contains("\"etcdcluster\":\"3.4.0\"", StringComparison.Ordinal))
            {
                await Task.Delay(50, cts.Token);
            }
        }

        var answers = new List<string>();
        foreach (var (method, path, body, type, user) in Script)
        {
            using var req = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null)
            {
                req.Content = new StringContent(body, Encoding.UTF8, type ?? Form);
                req.Content.Headers.ContentType = new MediaTypeHeaderValue(type ?? Form);
            }

            if (user is not null)
            {
                req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user)));
            }

            using var resp = await http.SendAsync(req);
            var index = resp.Headers.TryGetValues("X-Etcd-Index", out var v) ? string.Join(",", v) : "-";
            var challenge = resp.Headers.WwwAuthenticate.Count > 0 ? " www-authenticate=" + resp.Headers.WwwAuthenticate : "";
            answers.Add($"{(int)resp.StatusCode} index={index}{challenge} {(await resp.Content.ReadAsStringAsync()).TrimEnd('\n')}");
        }

        return answers;
    }
}
