using System.Net;
using System.Text;
using Etcd.Compat.Tests.Harness;
using Xunit.Abstractions;

namespace Etcd.Compat.Tests;

/// <summary>
/// <c>--listen-metrics-urls</c> and <c>/health</c> compared byte for byte (status, content type, length, headers, body)
/// between real etcd 3.4.23 and the server under test: the kubelet's probes of kubeadm's etcd pod
/// (<c>?exclude=NOSPACE&amp;serializable=true</c>, <c>?serializable=false</c>) and their neighbours, on a healthy
/// member, while a NOSPACE alarm is raised, and on a member without a leader.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class MetricsHealthCompatTests(ITestOutputHelper output)
{
    private static readonly (string Method, string Path)[] Requests =
    [
        ("GET", "/health"),
        ("GET", "/health?exclude=NOSPACE&serializable=true"),
        ("GET", "/health?serializable=false"),
        ("GET", "/health?serializable=true"),
        ("GET", "/health?exclude=NOSPACE&exclude=CORRUPT"),
        ("GET", "/health?exclude=nospace"),
        ("GET", "/health?exclude=CORRUPT"),
        ("POST", "/health"),
        ("GET", "/health/"),
        ("GET", "/version"),
        ("GET", "/v3/kv/range"),
    ];

    [Fact]
    public async Task NospaceAlarm_KubeletProbes_MatchRealEtcd()
    {
        CompatEnvironment.RequireAll();
        var real = await StartWithQuotaAsync(CompatEnvironment.ReferenceEtcdPath);
        await using var realMember = real.Member;
        var ours = await StartWithQuotaAsync(CompatEnvironment.UnderTestPath);
        await using var ourMember = ours.Member;

        var before = await CompareAsync(real.MetricsUrl, ours.MetricsUrl);
        Assert.Contains("/health?exclude=NOSPACE&serializable=true -> 200", before, StringComparison.Ordinal);

        await FillUntilNospaceAsync(real.Member);
        await FillUntilNospaceAsync(ours.Member);

        var during = await CompareAsync(real.MetricsUrl, ours.MetricsUrl);
        // The kubelet's liveness probe excludes NOSPACE: the member stays alive; the startup probe does not.
        Assert.Contains("/health?exclude=NOSPACE&serializable=true -> 200", during, StringComparison.Ordinal);
        Assert.Contains("/health?serializable=false -> 503", during, StringComparison.Ordinal);

        // /metrics is served on the metrics URL too (its content is compared elsewhere).
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var metrics = await http.GetAsync(ours.MetricsUrl + "/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", metrics.Content.Headers.ContentType?.ToString());
        Assert.Contains("# TYPE etcd_server_has_leader gauge", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoLeader_KubeletProbes_MatchRealEtcd()
    {
        CompatEnvironment.RequireAll();
        var root = Path.Combine(Path.GetTempPath(), "etcd-noleader-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var real = await StartWithoutQuorumAsync(CompatEnvironment.ReferenceEtcdPath, Path.Combine(root, "real"));
            await using var realMember = real.Member;
            var ours = await StartWithoutQuorumAsync(CompatEnvironment.UnderTestPath, Path.Combine(root, "ours"));
            await using var ourMember = ours.Member;

            var transcript = await CompareAsync(real.MetricsUrl, ours.MetricsUrl);
            // etcd 3.4.23 reads no "serializable" parameter: without a leader every probe fails.
            Assert.Contains("/health?exclude=NOSPACE&serializable=true -> 503", transcript, StringComparison.Ordinal);
            Assert.Contains("/health?serializable=false -> 503", transcript, StringComparison.Ordinal);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // Best effort.
            }
        }
    }

    private static async Task<(EtcdProcess Member, string MetricsUrl)> StartWithQuotaAsync(string binary)
    {
        var port = FreePorts.Next();
        var url = $"http://127.0.0.1:{port}";
        var member = await EtcdProcess.StartAsync(binary, "health", ["--listen-metrics-urls", url, "--quota-backend-bytes", "200000"]);
        return (member, url);
    }

    /// <summary>Member a of a two-member initial cluster whose member b never starts: it serves metrics but has no leader.</summary>
    private static async Task<(EtcdProcess Member, string MetricsUrl)> StartWithoutQuorumAsync(string binary, string dataDir)
    {
        int client = FreePorts.Next(), peer = FreePorts.Next(), absentPeer = FreePorts.Next(), metrics = FreePorts.Next();
        var url = $"http://127.0.0.1:{metrics}";
        var member = await EtcdProcess.StartWithCommandLineAsync(
            binary, "a", dataDir, client, peer,
            [
                "--name", "a", "--data-dir", dataDir,
                "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                "--initial-cluster", $"a=http://127.0.0.1:{peer},b=http://127.0.0.1:{absentPeer}",
                "--listen-metrics-urls", url,
            ],
            waitForReady: false);

        // The metrics listener serves from before the member is ready; wait until it answers at all.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(url + "/health");
                return (member, url);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && DateTime.UtcNow < deadline && member.IsRunning)
            {
                await Task.Delay(200);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // The caller never receives the member, so it is stopped here.
                var tail = member.LogTail();
                await member.DisposeAsync();
                Assert.Fail($"{binary}: metrics URL {url} never answered: {e.Message}\n{tail}");
            }
        }
    }

    private static async Task FillUntilNospaceAsync(EtcdProcess member)
    {
        var value = new string('x', 50_000);
        for (var i = 0; i < 100; i++)
        {
            var put = await Etcdctl.RunAsync(member.Endpoint, "put", $"fill/{i:D3}", value);
            if (put.ExitCode != 0)
            {
                Assert.Contains("etcdserver: mvcc: database space exceeded", put.Stderr, StringComparison.Ordinal);
                var alarms = await Etcdctl.RunAsync(member.Endpoint, "alarm", "list");
                Assert.Contains("alarm:NOSPACE", alarms.Stdout, StringComparison.Ordinal);
                return;
            }
        }

        Assert.Fail($"{member.BinaryPath}: 100 puts of 50 kB did not exceed a 200 kB quota\n{member.LogTail()}");
    }

    /// <summary>Sends every request to both metrics URLs and asserts the transcripts are equal; returns ours.</summary>
    private async Task<string> CompareAsync(string realUrl, string ourUrl)
    {
        var real = await TranscriptAsync(realUrl);
        var ours = await TranscriptAsync(ourUrl);
        output.WriteLine(ours);
        Assert.Equal(real, ours);
        return ours;
    }

    private static async Task<string> TranscriptAsync(string baseUrl)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var sb = new StringBuilder();
        foreach (var (method, path) in Requests)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), baseUrl + path);
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            sb.Append(method == "GET" ? "" : method + " ").Append(path).Append(" -> ").Append((int)response.StatusCode)
                .Append(" type=").Append(response.Content.Headers.ContentType)
                .Append(" length=").Append(response.Content.Headers.ContentLength)
                .Append(" nosniff=").Append(response.Headers.TryGetValues("X-Content-Type-Options", out var n) ? string.Join(",", n) : "")
                .Append(" allow=").Append(response.Content.Headers.Allow.Count > 0 ? string.Join(",", response.Content.Headers.Allow) : "")
                .Append(" body=").Append(body.Replace("\n", "\\n", StringComparison.Ordinal))
                .Append('\n');
        }

        return sb.ToString();
    }
}
