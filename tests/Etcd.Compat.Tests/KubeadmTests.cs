using System.Net;
using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// kubeadm's stacked etcd, unchanged: kubeadm's PKI, its static pod's exact command line, the kubelet's probes on
/// the metrics URL, etcdctl with the health-check client certificate, control-plane joins (member add as learner,
/// start with <c>--initial-cluster-state=existing</c>, promote) and a reset (member remove). The same scenario runs
/// against real etcd 3.4.23 and the server under test.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class KubeadmTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The executables the scenario runs against: all real etcd 3.4.23, all the server under test, or a mix in which
    /// the control-plane nodes alternate (the first node's kind bootstraps the cluster, the other kind joins it as a
    /// learner over peer TLS with client-certificate auth, is promoted, and in the etcd-first mix is the one reset).
    /// </summary>
    public static TheoryData<string> Servers => new() { "real etcd 3.4.23", "under test", "mixed: etcd, ours, etcd", "mixed: ours, etcd, ours" };

    /// <summary>The executable of control-plane node <paramref name="index"/> (0-based) in <paramref name="server"/>'s setting.</summary>
    private static string BinaryOf(string server, int index) => server switch
    {
        "under test" => CompatEnvironment.RequireUnderTest(),
        "real etcd 3.4.23" => CompatEnvironment.RequireReferenceEtcd(),
        _ => (index % 2 == 0) == server.StartsWith("mixed: ours", StringComparison.Ordinal)
            ? CompatEnvironment.RequireUnderTest()
            : CompatEnvironment.RequireReferenceEtcd(),
    };

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task StackedControlPlane_InitJoinTwoAndReset_AsKubeadm(string server)
    {
        CompatEnvironment.RequireEtcdctl();
        var root = Path.Combine(Path.GetTempPath(), "etcd-kubeadm-" + Guid.NewGuid().ToString("N")[..12]);
        var pki = KubeadmPki.Create(Path.Combine(root, "pki"));
        var nodes = Enumerable.Range(1, 3)
            .Select(i => KubeadmNode.Create(pki, $"cp-{i}", IPAddress.Parse($"127.0.0.{10 + i}"), Path.Combine(root, $"cp-{i}", "etcd")))
            .ToList();
        var members = new Dictionary<string, EtcdProcess>();
        try
        {
            // kubeadm init: the first control-plane node's etcd.
            var first = nodes[0];
            members[first.Name] = await EtcdProcess.StartWithCommandLineAsync(
                BinaryOf(server, 0), first.Name, first.DataDir, first.ClientPort, first.PeerPort, first.CommandLine());
            await AssertKubeletProbesHealthyAsync(first, members);
            await AssertEndpointsHealthyAsync(pki, [first.LocalClientUrl, first.ClientUrl], members);

            var put = await ApiServerCtlAsync(pki, first.LocalClientUrl, "put", "/registry/namespaces/default", "v1");
            Assert.True(put.ExitCode == 0, $"put failed: {put}");
            var get = await ApiServerCtlAsync(pki, first.ClientUrl, "get", "/registry/namespaces/default", "--print-value-only");
            Assert.Equal("v1\n", get.Stdout);

            // --client-cert-auth=true: a client without a certificate signed by the etcd CA is refused.
            var anonymous = await Etcdctl.RunAsync(first.LocalClientUrl, ["--cacert", pki.CaCert, "--dial-timeout=2s", "--command-timeout=3s", "get", "x"]);
            Assert.True(anonymous.ExitCode != 0, $"a client without a certificate was served: {anonymous}");

            // kubeadm join --control-plane, twice. kubeadm 1.30 (EtcdLearnerMode) adds the member as a learner,
            // writes the static pod with the member list of the add response and --initial-cluster-state=existing,
            // then promotes it, retrying while the learner catches up. etcd 3.4.23 has learners and MemberPromote
            // (etcdctl member add --learner / member promote), so that sequence is what runs here; the kubeadm
            // releases that shipped etcd 3.4 (1.19-1.21) added a voting member directly instead.
            foreach (var node in nodes.Skip(1))
            {
                var existing = string.Join(",", nodes.Where(n => members.ContainsKey(n.Name)).Select(n => n.ClientUrl));
                var add = await MembershipCtlAsync(pki, existing, "member", "add", node.Name, "--learner", $"--peer-urls={node.PeerUrl}");
                Assert.True(add.ExitCode == 0, $"member add {node.Name} failed: {add}\n{Tails(members)}");
                var id = MemberAdded().Match(add.Stdout).Groups[1].Value;
                var initialCluster = InitialCluster().Match(add.Stdout).Groups[1].Value;
                Assert.True(id.Length > 0 && initialCluster.Contains($"{node.Name}={node.PeerUrl}", StringComparison.Ordinal), add.Stdout);

                members[node.Name] = await EtcdProcess.StartWithCommandLineAsync(
                    BinaryOf(server, nodes.IndexOf(node)), node.Name, node.DataDir, node.ClientPort, node.PeerPort, node.CommandLine(initialCluster));

                // The kubelet's startup probe passes on the learner before kubeadm promotes it.
                await WaitForHealthAsync(node, "?serializable=false", members);
                await PromoteAsync(pki, existing, id, members);
            }

            var list = await ApiServerCtlAsync(pki, nodes[0].ClientUrl, "member", "list");
            Assert.True(list.ExitCode == 0, list.ToString());
            var rows = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, rows.Length);
            Assert.All(rows, r => Assert.Matches(@"^[0-9a-f]+, started, cp-\d, https://127\.0\.0\.1\d:\d+, https://127\.0\.0\.1\d:\d+, false$", r));

            await AssertEndpointsHealthyAsync(pki, nodes.Select(n => n.ClientUrl).ToList(), members);
            foreach (var node in nodes)
            {
                await AssertKubeletProbesHealthyAsync(node, members);
            }

            put = await ApiServerCtlAsync(pki, nodes[2].LocalClientUrl, "put", "/registry/configmaps/kube-system/kubeadm-config", "v2");
            Assert.True(put.ExitCode == 0, $"put on the last joined member failed: {put}");
            get = await ApiServerCtlAsync(pki, nodes[0].ClientUrl, "get", "/registry/configmaps/kube-system/kubeadm-config", "--print-value-only");
            Assert.Equal("v2\n", get.Stdout);

            // kubeadm reset on cp-2: its member is removed through the others, then its static pod goes away.
            var removed = nodes[1];
            var removedId = rows.Single(r => r.Contains($", {removed.Name}, ", StringComparison.Ordinal)).Split(',')[0];
            var rest = nodes.Where(n => n != removed).ToList();
            var remove = await MembershipCtlAsync(pki, string.Join(",", rest.Select(n => n.ClientUrl)), "member", "remove", removedId);
            Assert.True(remove.ExitCode == 0, $"member remove failed: {remove}\n{Tails(members)}");
            if (!await members[removed.Name].WaitForExitAsync(TimeSpan.FromSeconds(20)))
            {
                await members[removed.Name].StopAsync();
            }

            list = await ApiServerCtlAsync(pki, rest[0].ClientUrl, "member", "list");
            Assert.Equal(2, list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            Assert.DoesNotContain(removed.Name, list.Stdout, StringComparison.Ordinal);
            await AssertEndpointsHealthyAsync(pki, rest.Select(n => n.ClientUrl).ToList(), members);
            foreach (var node in rest)
            {
                await AssertKubeletProbesHealthyAsync(node, members);
            }

            put = await ApiServerCtlAsync(pki, rest[1].ClientUrl, "put", "after-reset", "v3");
            Assert.True(put.ExitCode == 0, $"put after the reset failed: {put}");

            // Every etcdctl run above hung up its TLS connection; a client going away is no server error.
            foreach (var m in members.Values)
            {
                Assert.DoesNotContain(" E | Microsoft.AspNetCore", m.Logs, StringComparison.Ordinal);
            }
        }
        finally
        {
            foreach (var m in members.Values)
            {
                await m.DisposeAsync();
            }

            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a temp dir left behind must not fail the test.
            }
        }
    }

    /// <summary>The kubelet's liveness and startup probes of kubeadm's etcd pod, both answered 200 <c>{"health":"true"}</c>.</summary>
    private static async Task AssertKubeletProbesHealthyAsync(KubeadmNode node, Dictionary<string, EtcdProcess> members)
    {
        foreach (var query in new[] { "?exclude=NOSPACE&serializable=true", "?serializable=false" })
        {
            var (status, body) = await ProbeAsync(node.MetricsUrl + "/health" + query);
            Assert.True(status == HttpStatusCode.OK && body == "{\"health\":\"true\"}",
                $"{node.Name} {query}: {(int)status} {body}\n{Tails(members)}");
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = await http.GetStringAsync(node.MetricsUrl + "/metrics");
        Assert.Contains("etcd_server_has_leader 1", metrics, StringComparison.Ordinal);
    }

    private static async Task WaitForHealthAsync(KubeadmNode node, string query, Dictionary<string, EtcdProcess> members)
    {
        var deadline = DateTime.UtcNow + Bound;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var (status, body) = await ProbeAsync(node.MetricsUrl + "/health" + query);
            if (status == HttpStatusCode.OK)
            {
                return;
            }

            last = $"{(int)status} {body}";
            await Task.Delay(250);
        }

        Assert.Fail($"{node.Name}'s {node.MetricsUrl}/health{query} not healthy within {Bound.TotalSeconds:0} s: {last}\n{Tails(members)}");
    }

    private static async Task PromoteAsync(KubeadmPki pki, string endpoints, string id, Dictionary<string, EtcdProcess> members)
    {
        var deadline = DateTime.UtcNow + Bound;
        EtcdctlResult promote;
        do
        {
            promote = await ApiServerCtlAsync(pki, endpoints, "member", "promote", id);
            if (promote.ExitCode == 0)
            {
                // etcdctl prints the ID with %16x: space-padded when it has fewer than 16 hex digits.
                Assert.Contains($"Member {id,16} promoted in cluster", promote.Stdout, StringComparison.Ordinal);
                return;
            }

            Assert.Contains("can only promote a learner member which is in sync with leader", promote.Stderr, StringComparison.Ordinal);
            await Task.Delay(500);
        }
        while (DateTime.UtcNow < deadline);

        Assert.Fail($"member promote {id} did not succeed within {Bound.TotalSeconds:0} s: {promote}\n{Tails(members)}");
    }

    private static async Task AssertEndpointsHealthyAsync(KubeadmPki pki, IReadOnlyList<string> endpoints, Dictionary<string, EtcdProcess> members)
    {
        var health = await Etcdctl.RunAsync(
            string.Join(",", endpoints),
            ["--cacert", pki.CaCert, "--cert", pki.HealthcheckClientCert, "--key", pki.HealthcheckClientKey, "endpoint", "health"]);
        Assert.True(health.ExitCode == 0, $"endpoint health: {health}\n{Tails(members)}");
        foreach (var e in endpoints)
        {
            Assert.Contains($"{e} is healthy: successfully committed proposal", health.Stdout + health.Stderr, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A membership change, retried (bounded) while etcd's strict reconfiguration check answers
    /// <c>etcdserver: unhealthy cluster</c> (a member just added or promoted is not yet counted as active), as
    /// kubeadm's etcd client retries member add and remove with a backoff.
    /// </summary>
    private static async Task<EtcdctlResult> MembershipCtlAsync(KubeadmPki pki, string endpoints, params string[] args)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var result = await ApiServerCtlAsync(pki, endpoints, args);
            if (result.ExitCode == 0 || !result.Stderr.Contains("etcdserver: unhealthy cluster", StringComparison.Ordinal) || DateTime.UtcNow > deadline)
            {
                return result;
            }

            await Task.Delay(500);
        }
    }

    private static Task<EtcdctlResult> ApiServerCtlAsync(KubeadmPki pki, string endpoints, params string[] args) =>
        Etcdctl.RunAsync(endpoints, ["--cacert", pki.CaCert, "--cert", pki.ApiServerClientCert, "--key", pki.ApiServerClientKey, .. args]);

    private static async Task<(HttpStatusCode Status, string Body)> ProbeAsync(string url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var response = await http.GetAsync(url);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException e)
        {
            return (0, e.Message);
        }
        catch (TaskCanceledException e)
        {
            return (0, e.Message);
        }
    }

    private static string Tails(Dictionary<string, EtcdProcess> members) =>
        string.Join("\n", members.Values.Select(m => $"---- {m.Name} ----\n{m.LogTail(40)}"));

    [GeneratedRegex(@"Member +([0-9a-f]+) added to cluster")]
    private static partial Regex MemberAdded();

    [GeneratedRegex("ETCD_INITIAL_CLUSTER=\"([^\"]*)\"")]
    private static partial Regex InitialCluster();
}
