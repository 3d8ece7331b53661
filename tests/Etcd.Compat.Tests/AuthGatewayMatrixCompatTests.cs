using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// The permission matrix through the JSON gateway: every <c>/v3/...</c> route (KV, watch, lease, cluster,
/// maintenance, auth, election, lock) called with no <c>Authorization</c> header, with the token of a user without
/// roles, of a user with key-range permissions, of root and with a token nobody issued, against real etcd 3.4.23
/// and against ours with the same data. Each answer (HTTP status, and the body without its header and with
/// run-specific IDs blanked) must be the same row by row; the defining rows are also asserted outright.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class AuthGatewayMatrixCompatTests
{
    private static readonly string[] Identities = ["none", "bogus", "bob", "alice", "root"];

    [Fact]
    public async Task EveryRoute_AsEveryUser_AnswersAsRealEtcd()
    {
        CompatEnvironment.RequireAll();
        var referenceTask = RunMatrixAsync(CompatEnvironment.ReferenceEtcdPath);
        var underTestTask = RunMatrixAsync(CompatEnvironment.UnderTestPath);
        var reference = await referenceTask;
        var underTest = await underTestTask;

        Assert.Equal(reference.Count, underTest.Count);
        var diffs = new List<string>();
        for (var i = 0; i < reference.Count; i++)
        {
            if (reference[i] != underTest[i])
            {
                diffs.Add($"--- etcd 3.4.23:\n{reference[i]}\n--- ours:\n{underTest[i]}");
            }
        }

        Assert.True(diffs.Count == 0, $"{diffs.Count} of {reference.Count} rows differ:\n" + string.Join("\n", diffs));

        // A row that failed at the transport (-1) hides the answer; none may, on our side.
        Assert.DoesNotContain(underTest, r => r.Contains("\n-1\n", StringComparison.Ordinal));
        string Row(string who, string label) => underTest.Single(r => r.StartsWith($"[{who}] {label}\n", StringComparison.Ordinal));
        Assert.Contains("etcdserver: user name is empty", Row("none", "/v3/kv/range a1"), StringComparison.Ordinal);
        Assert.Contains("etcdserver: invalid auth token", Row("bogus", "/v3/kv/range a1"), StringComparison.Ordinal);
        Assert.Contains("etcdserver: permission denied", Row("bob", "/v3/kv/range a1"), StringComparison.Ordinal);
        Assert.StartsWith("[alice] /v3/kv/range a1\n200\n", Row("alice", "/v3/kv/range a1"), StringComparison.Ordinal);
        Assert.Contains("etcdserver: permission denied", Row("alice", "/v3/kv/range secret"), StringComparison.Ordinal);
        Assert.DoesNotContain(B64("s"), Row("alice", "/v3/kv/range secret"), StringComparison.Ordinal);
        Assert.Contains("etcdserver: permission denied", Row("alice", "/v3/kv/txn failure-reads-secret"), StringComparison.Ordinal);
        Assert.Contains("etcdserver: permission denied", Row("alice", "/v3/auth/user/list"), StringComparison.Ordinal);
        Assert.StartsWith("[root] /v3/auth/user/list\n200\n", Row("root", "/v3/auth/user/list"), StringComparison.Ordinal);
    }

    private static async Task<List<string>> RunMatrixAsync(string binary)
    {
        await using var member = await EtcdProcess.StartAsync(binary, "gwmatrix", []);
        using var http = new HttpClient { BaseAddress = new Uri(member.ClientUrl), Timeout = TimeSpan.FromSeconds(30) };
        var ids = new Dictionary<string, string>();

        async Task<(int Status, string Body)> Post(string path, object body, string? token, bool stream = false)
        {
            try
            {
                return await PostOnce(path, body, token, stream);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                return (-1, $"{path} failed: {e.GetType().Name}: {e.Message} {e.InnerException?.Message}");
            }
        }

        async Task<(int Status, string Body)> PostOnce(string path, object body, string? token, bool stream)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, path)
            {
                Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
            };
            if (token is not null)
            {
                req.Headers.TryAddWithoutValidation("Authorization", token);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(stream ? 4 : 30));
            using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            if (!stream)
            {
                return ((int)resp.StatusCode, await resp.Content.ReadAsStringAsync(cts.Token));
            }

            // A stream: its first message (a line of JSON), or what came before the bound ran out.
            await using var s = await resp.Content.ReadAsStreamAsync(cts.Token);
            var got = new StringBuilder();
            var buf = new byte[4096];
            try
            {
                while (!got.ToString().Contains('\n', StringComparison.Ordinal))
                {
                    var n = await s.ReadAsync(buf, cts.Token);
                    if (n == 0)
                    {
                        break;
                    }

                    got.Append(Encoding.UTF8.GetString(buf, 0, n));
                }
            }
            catch (OperationCanceledException)
            {
                got.Append("<no message within 4 s>");
            }

            return ((int)resp.StatusCode, got.ToString().Split('\n')[0]);
        }

        async Task<JsonNode> Setup(string path, object body, string? token = null)
        {
            var (status, text) = await Post(path, body, token);
            Assert.True(status == 200, $"{binary}: {path}: {status} {text}");
            return JsonNode.Parse(text)!;
        }

        await Setup("/v3/auth/user/add", new { name = "root", password = "rootpw" });
        await Setup("/v3/auth/role/add", new { name = "root" });
        await Setup("/v3/auth/user/grant", new { user = "root", role = "root" });
        await Setup("/v3/auth/user/add", new { name = "alice", password = "alicepw" });
        await Setup("/v3/auth/role/add", new { name = "app" });
        await Setup("/v3/auth/role/grant", new { name = "app", perm = new { key = B64("a"), range_end = B64("c"), permType = "READWRITE" } });
        await Setup("/v3/auth/role/grant", new { name = "app", perm = new { key = B64("r/"), range_end = B64("r0"), permType = "READ" } });
        await Setup("/v3/auth/user/grant", new { user = "alice", role = "app" });
        await Setup("/v3/auth/user/add", new { name = "bob", password = "bobpw" });
        await Setup("/v3/kv/put", new { key = B64("a1"), value = B64("1") });
        await Setup("/v3/kv/put", new { key = B64("secret"), value = B64("s") });
        await Setup("/v3/kv/put", new { key = B64("r/x"), value = B64("rx") });
        await Setup("/v3/auth/enable", new { });

        var tokens = new Dictionary<string, string?> { ["none"] = null, ["bogus"] = "NotATokenAnyoneIssued.1" };
        foreach (var (user, pw) in new[] { ("bob", "bobpw"), ("alice", "alicepw"), ("root", "rootpw") })
        {
            tokens[user] = (string)(await Setup("/v3/auth/authenticate", new { name = user, password = pw }))["token"]!;
        }

        var rootLease = (string)(await Setup("/v3/lease/grant", new { TTL = 600 }, tokens["root"]))["ID"]!;
        await Setup("/v3/kv/put", new { key = B64("secret-leased"), value = B64("v"), lease = rootLease }, tokens["root"]);
        var aliceLease = (string)(await Setup("/v3/lease/grant", new { TTL = 600 }, tokens["root"]))["ID"]!;
        await Setup("/v3/kv/put", new { key = B64("a-leased"), value = B64("v"), lease = aliceLease }, tokens["root"]);
        var lockLease = (string)(await Setup("/v3/lease/grant", new { TTL = 600 }, tokens["root"]))["ID"]!;
        ids[lockLease] = "<LOCK_LEASE>";
        ids[rootLease] = "<ROOT_LEASE>";
        ids[aliceLease] = "<ALICE_LEASE>";
        var status = await Setup("/v3/maintenance/status", new { }, tokens["root"]);
        ids[(string)status["header"]!["member_id"]!] = "<MEMBER_ID>";
        ids[(string)status["header"]!["cluster_id"]!] = "<CLUSTER_ID>";

        var rows = new List<string>();
        async Task Row(string path, object body, string? label = null, bool stream = false, bool compareBody = true)
        {
            foreach (var who in Identities)
            {
                var (code, text) = await Post(path, body, tokens[who], stream);
                var shown = compareBody || code != 200 ? Normalise(text, ids) : "<not compared>";
                rows.Add($"[{who}] {path}{(label is null ? string.Empty : " " + label)}\n{code}\n{shown}");
            }
        }

        var txnFailureReadsSecret = new
        {
            compare = new[] { new { key = B64("a1"), target = "VALUE", result = "EQUAL", value = B64("nope") } },
            success = new[] { new { request_put = new { key = B64("a3"), value = B64("t") } } },
            failure = new[] { new { request_range = new { key = B64("secret") } } },
        };
        var txnPermitted = new
        {
            compare = new[] { new { key = B64("a1"), target = "VERSION", result = "GREATER", version = "0" } },
            success = new[] { new { request_put = new { key = B64("a4"), value = B64("t") } } },
            failure = new[] { new { request_put = new { key = B64("b4"), value = B64("t") } } },
        };

        // KV.
        await Row("/v3/kv/range", new { key = B64("a1") }, "a1");
        await Row("/v3/kv/range", new { key = B64("secret") }, "secret");
        await Row("/v3/kv/range", new { key = B64("secret"), serializable = true }, "secret serializable");
        await Row("/v3/kv/range", new { key = B64("a"), range_end = B64("c") }, "[a, c)");
        await Row("/v3/kv/range", new { key = B64("\0"), range_end = B64("\0") }, "everything");
        await Row("/v3/kv/put", new { key = B64("a2"), value = B64("v") }, "a2");
        await Row("/v3/kv/put", new { key = B64("r/y"), value = B64("v") }, "r/y");
        await Row("/v3/kv/put", new { key = B64("r/x"), value = B64("v"), prev_kv = true }, "r/x prev_kv");
        await Row("/v3/kv/deleterange", new { key = B64("a2") }, "a2");
        await Row("/v3/kv/deleterange", new { key = B64("secret"), prev_kv = true }, "secret prev_kv");
        await Row("/v3/kv/txn", txnFailureReadsSecret, "failure-reads-secret");
        await Row("/v3/kv/txn", txnPermitted, "permitted");
        await Row("/v3/kv/compaction", new { revision = "3" });

        // Watch from an old revision.
        await Row("/v3/watch", new { create_request = new { key = B64("secret"), start_revision = "1" } }, "secret from 1", stream: true);
        await Row("/v3/watch", new { create_request = new { key = B64("a1"), start_revision = "4" } }, "a1 from 4", stream: true);

        // Lease.
        await Row("/v3/lease/grant", new { TTL = 60 }, compareBody: false);
        await Row("/v3/lease/timetolive", new { ID = rootLease, keys = true });
        await Row("/v3/kv/lease/timetolive", new { ID = rootLease, keys = true });
        await Row("/v3/lease/leases", new { }, compareBody: false);
        await Row("/v3/lease/keepalive", new { ID = rootLease }, stream: true);
        await Row("/v3/lease/revoke", new { ID = aliceLease });
        await Row("/v3/kv/lease/revoke", new { ID = rootLease });

        // Cluster.
        await Row("/v3/cluster/member/list", new { }, compareBody: false);
        await Row("/v3/cluster/member/add", new { peerURLs = new[] { "http://127.0.0.1:1" }, isLearner = true }, compareBody: false);
        var members = await Setup("/v3/cluster/member/list", new { }, tokens["root"]);
        var learner = (string)members["members"]!.AsArray().Single(m => (bool?)m!["isLearner"] == true)!["ID"]!;
        ids[learner] = "<LEARNER>";
        await Row("/v3/cluster/member/update", new { ID = learner, peerURLs = new[] { "http://127.0.0.1:2" } }, compareBody: false);
        await Row("/v3/cluster/member/promote", new { ID = learner });
        await Row("/v3/cluster/member/remove", new { ID = learner }, compareBody: false);

        // Maintenance.
        await Row("/v3/maintenance/alarm", new { action = "GET" });
        await Row("/v3/maintenance/status", new { }, compareBody: false);
        await Row("/v3/maintenance/defragment", new { });
        await Row("/v3/maintenance/hash", new { }, compareBody: false);
        await Row("/v3/maintenance/snapshot", new { }, stream: true, compareBody: false);
        await Row("/v3/maintenance/transfer-leadership", new { targetID = "65535" });

        // Auth.
        await Row("/v3/auth/user/list", new { });
        await Row("/v3/auth/user/get", new { name = "alice" });
        await Row("/v3/auth/user/get", new { name = "root" });
        await Row("/v3/auth/role/list", new { });
        await Row("/v3/auth/role/get", new { role = "app" });
        await Row("/v3/auth/role/get", new { role = "root" });
        await Row("/v3/auth/user/add", new { name = "carol", password = "pw" });
        await Row("/v3/auth/user/changepw", new { name = "carol", password = "pw2" });
        await Row("/v3/auth/role/add", new { name = "r2" });
        await Row("/v3/auth/role/grant", new { name = "r2", perm = new { key = B64("x"), permType = "READ" } });
        await Row("/v3/auth/user/grant", new { user = "carol", role = "r2" });
        await Row("/v3/auth/user/revoke", new { name = "carol", role = "r2" });
        await Row("/v3/auth/role/revoke", new { role = "r2", key = B64("x") });
        await Row("/v3/auth/role/delete", new { role = "r2" });
        await Row("/v3/auth/user/delete", new { name = "carol" });
        await Row("/v3/auth/authenticate", new { name = "alice", password = "wrong" }, "wrong password");
        await Row("/v3/auth/enable", new { });

        // Election and lock.
        await Row("/v3/lock/lock", new { name = B64("a-lock"), lease = lockLease }, compareBody: false);
        await Row("/v3/election/leader", new { name = B64("e1") });
        await Row("/v3/auth/disable", new { });
        return rows;
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    /// <summary>The body without its header, with the IDs learnt in this run named.</summary>
    private static string Normalise(string body, Dictionary<string, string> ids)
    {
        var s = HeaderPattern().Replace(body, string.Empty);
        foreach (var (id, name) in ids)
        {
            s = s.Replace("\"" + id + "\"", "\"" + name + "\"", StringComparison.Ordinal);
        }

        return TtlPattern().Replace(s, "\"TTL\":\"<TTL>\"");
    }

    [GeneratedRegex("\"header\":\\{[^}]*\\},?")]
    private static partial Regex HeaderPattern();

    [GeneratedRegex("\"TTL\":\"[0-9]+\"")]
    private static partial Regex TtlPattern();
}
