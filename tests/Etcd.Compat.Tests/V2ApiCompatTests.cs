using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// The same sequence of v2 requests against real etcd 3.4.23 and the server under test (one fresh member each, with
/// <c>--enable-v2</c>): statuses, <c>X-Etcd-Index</c> and bodies must be equal after only the expiration times and
/// TTL seconds are normalised. The sequence covers etcd's write kinds, every store error code, bad form fields,
/// in-order keys, hidden keys, TTL expiry, waitIndex replay and an index older than the 1,000-event history.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class V2ApiCompatTests
{
    private static readonly (string Method, string Path, string? Form)[] Script =
    [
        ("PUT", "/v2/keys/foo", "value=bar"),
        ("GET", "/v2/keys/foo", null),
        ("PUT", "/v2/keys/foo", "value=baz"),
        ("PUT", "/v2/keys/foo?prevExist=false", "value=x"),
        ("PUT", "/v2/keys/foo?prevExist=true", "value=upd"),
        ("PUT", "/v2/keys/nope?prevExist=true", "value=x"),
        ("PUT", "/v2/keys/foo?prevValue=wrong", "value=x"),
        ("PUT", "/v2/keys/foo?prevIndex=1", "value=x"),
        ("PUT", "/v2/keys/foo?prevValue=upd", "value=cas"),
        ("DELETE", "/v2/keys/foo?prevValue=wrong", null),
        ("DELETE", "/v2/keys/foo?prevValue=cas", null),
        ("GET", "/v2/keys/foo", null),
        ("PUT", "/v2/keys/dir/a", "value=1"),
        ("PUT", "/v2/keys/dir/b/c", "value=2"),
        ("PUT", "/v2/keys/dir/_hidden", "value=h"),
        ("GET", "/v2/keys/dir?recursive=true&sorted=true", null),
        ("GET", "/v2/keys/dir?sorted=true", null),
        ("GET", "/v2/keys/dir/_hidden", null),
        ("PUT", "/v2/keys/dir", "value=x"),
        ("PUT", "/v2/keys/dir/a/x", "value=x"),
        ("DELETE", "/v2/keys/dir", null),
        ("DELETE", "/v2/keys/dir?dir=true", null),
        ("PUT", "/v2/keys/emptydir?dir=true", null),
        ("PUT", "/v2/keys/emptydir?dir=true&prevExist=false", null),
        ("DELETE", "/v2/keys/emptydir?dir=true", null),
        ("DELETE", "/v2/keys/dir?recursive=true", null),
        ("POST", "/v2/keys/queue", "value=job1"),
        ("POST", "/v2/keys/queue", "value=job2"),
        ("GET", "/v2/keys/queue?sorted=true", null),
        ("PUT", "/v2/keys/", "value=root"),
        ("DELETE", "/v2/keys/?recursive=true", null),
        ("GET", "/v2/keys/x?recursive=maybe", null),
        ("PUT", "/v2/keys/x?prevIndex=abc", "value=1"),
        ("PUT", "/v2/keys/x?ttl=abc", "value=1"),
        ("PUT", "/v2/keys/x?prevValue=", "value=1"),
        ("PUT", "/v2/keys/x?wait=true", "value=1"),
        ("PUT", "/v2/keys/x?refresh=true", "value=1"),
        ("PUT", "/v2/keys/x?refresh=true&ttl=5", "value=1"),
        ("PUT", "/v2/keys/x?refresh=true&ttl=5", null),
        ("PUT", "/v2/keys/t?ttl=100", "value=ttl"),
        ("PUT", "/v2/keys/t?refresh=true&ttl=200", null),
        ("GET", "/v2/keys/t", null),
        ("PUT", "/v2/keys/t?prevExist=true&ttl=", "value=permanent"),
        ("GET", "/v2/keys/t", null),
        ("PUT", "/v2/keys/short?ttl=1", "value=gone"),
        ("GET", "/v2/keys/short?wait=true", null),
        ("GET", "/v2/keys/short", null),
        ("GET", "/v2/keys/t?wait=true&waitIndex=5", null),
        ("PATCH", "/v2/keys/t", null),

        // Bad input: negative and overflowing TTLs, a malformed form, waitIndex that is not a number, a deep path,
        // a 2 MB value (etcd 3.4's v2 API has no request size limit of its own).
        ("PUT", "/v2/keys/neg?ttl=-1", "value=1"),
        ("PUT", "/v2/keys/huge?ttl=99999999999999999999", "value=1"),
        ("PUT", "/v2/keys/bad", "value=%zz"),
        ("GET", "/v2/keys/t?wait=true&waitIndex=abc", null),
        ("PUT", "/v2/keys/" + DeepPath, "value=deep"),
        ("GET", "/v2/keys/d?recursive=true", null),
        ("PUT", "/v2/keys/big", "value=" + new string('v', 2 * 1024 * 1024)),
        ("GET", "/v2/keys/big", null),
        ("GET", "/v2/stats/store", null),

        // Go's JSON escaping (HTML characters, U+2028, control characters) in keys, values and error causes.
        ("PUT", "/v2/keys/esc%3Ca%3E", "value=a%3Cb%3E%26c%27%2B%E2%80%A8%01%08%C3%A9"),
        ("GET", "/v2/keys/esc%3Ca%3E", null),
        ("GET", "/v2/keys/no%26such", null),
    ];

    private static string DeepPath => string.Concat(Enumerable.Repeat("d/", 200)) + "leaf";

    [Fact]
    public async Task SameRequests_SameAnswers()
    {
        var real = await RunAsync(CompatEnvironment.RequireReferenceEtcd());
        var ours = await RunAsync(CompatEnvironment.RequireUnderTest());
        for (var i = 0; i < Script.Length; i++)
        {
            Assert.True(real[i] == ours[i], $"request {i} {Script[i].Method} {Script[i].Path} {Script[i].Form}\nreal: {real[i]}\nours: {ours[i]}");
        }

        Assert.Equal(real[^1], ours[^1]);
    }

    private static async Task<List<string>> RunAsync(string binary)
    {
        await using var member = await EtcdProcess.StartAsync(binary, "v2api", ["--enable-v2"]);
        using var http = new HttpClient { BaseAddress = new Uri(member.ClientUrl), Timeout = TimeSpan.FromSeconds(30) };

        // The cluster version is the third membership write in the v2 store; start once it is there so that indexes line up.
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            while (!(await http.GetStringAsync("/version", cts.Token)).Contains("\"etcdcluster\":\"3.4.0\"", StringComparison.Ordinal))
            {
                await Task.Delay(50, cts.Token);
            }
        }

        var answers = new List<string>();
        foreach (var (method, path, form) in Script)
        {
            using var req = new HttpRequestMessage(new HttpMethod(method), path);
            if (form is not null)
            {
                req.Content = new StringContent(form, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded");
            }

            using var resp = await http.SendAsync(req);
            var index = resp.Headers.TryGetValues("X-Etcd-Index", out var v) ? string.Join(",", v) : "-";
            answers.Add($"{(int)resp.StatusCode} index={index} {Normalise(await resp.Content.ReadAsStringAsync())}");
        }

        // An index older than the 1,000-event history.
        for (var i = 0; i < 1010; i++)
        {
            using var put = await http.PutAsync("/v2/keys/many", new StringContent("value=" + i, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
            Assert.True(put.IsSuccessStatusCode);
        }

        using var outdated = await http.GetAsync("/v2/keys/many?wait=true&waitIndex=2");
        answers.Add($"{(int)outdated.StatusCode} {await outdated.Content.ReadAsStringAsync()}");
        return answers;
    }

    private static string Normalise(string body)
        => Ttl().Replace(Expiration().Replace(body, "\"expiration\":\"T\""), "\"ttl\":N");

    [GeneratedRegex("\"expiration\":\"[^\"]+\"")]
    private static partial Regex Expiration();

    [GeneratedRegex("\"ttl\":[0-9]+")]
    private static partial Regex Ttl();
}
