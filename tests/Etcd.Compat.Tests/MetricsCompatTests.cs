using System.Diagnostics;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// <c>/metrics</c> compared with real etcd 3.4.23 after the same etcdctl workload, on a single member and on a
/// 3-member cluster: every family etcd exposes must be ours too, with the same type and, where both have samples,
/// the same label names; and Prometheus' own text-format parser (Debian's <c>python3-prometheus-client</c>) must
/// accept our output.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class MetricsCompatTests
{
    /// <summary>Families of etcd's that we deliberately do not serve, with the reason.</summary>
    private static readonly Dictionary<string, string> NotServed = new(StringComparer.Ordinal)
    {
        ["go_*"] = "Go runtime figures have no meaning for a .NET process; .NET's runtime figures are served under prometheus-net's names (dotnet_*, process_working_set_bytes, ...)",
    };

    /// <summary>Families etcd has samples of after the workload where ours is declared but has none, with the reason.</summary>
    private static readonly Dictionary<string, string> NoSamplesExpected = new(StringComparer.Ordinal)
    {
        ["etcd_debugging_store_reads_total"] = "etcd 3.4 reads its v2 membership store when it starts; membership here lives in the backend, so only the store's writes are counted",
    };

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task SingleMember_FamiliesTypesAndLabels_MatchRealEtcd()
    {
        CompatEnvironment.RequireAll();
        await using var reference = await EtcdProcess.StartAsync(CompatEnvironment.ReferenceEtcdPath, "metrics-ref");
        await using var ours = await EtcdProcess.StartAsync(CompatEnvironment.UnderTestPath, "metrics-ours");
        await Task.WhenAll(RunWorkloadAsync(reference.Endpoint), RunWorkloadAsync(ours.Endpoint));
        var expected = MetricsExposition.Parse(await ScrapeAsync(reference));
        var actual = MetricsExposition.Parse(await ScrapeAsync(ours));
        AssertCovers(expected, actual);
    }

    [Fact]
    public async Task ThreeMembers_FamiliesTypesAndLabels_MatchRealEtcd()
    {
        CompatEnvironment.RequireAll();
        var reference = await StartClusterAsync(CompatEnvironment.ReferenceEtcdPath, "mref");
        try
        {
            var ours = await StartClusterAsync(CompatEnvironment.UnderTestPath, "mours");
            try
            {
                await Task.WhenAll(RunWorkloadAsync(reference[0].Endpoint), RunWorkloadAsync(ours[0].Endpoint));
                var expected = Merge(await Task.WhenAll(reference.Select(ScrapeAsync)));
                var actual = Merge(await Task.WhenAll(ours.Select(ScrapeAsync)));
                AssertCovers(expected, actual);
                Assert.True(actual["etcd_network_peer_sent_bytes_total"].HasSamples, "no peer traffic counted in a 3-member cluster");
                Assert.True(actual["etcd_network_peer_received_bytes_total"].HasSamples, "no peer traffic counted in a 3-member cluster");
            }
            finally
            {
                await DisposeAllAsync(ours);
            }
        }
        finally
        {
            await DisposeAllAsync(reference);
        }
    }

    [Fact]
    public async Task OurExposition_IsAcceptedByPrometheusTextParser()
    {
        CompatEnvironment.RequireAll();
        const string python = "/usr/bin/python3";
        const string script =
            "import sys\n" +
            "from prometheus_client.parser import text_string_to_metric_families\n" +
            "fams = list(text_string_to_metric_families(sys.stdin.read()))\n" +
            "print(len(fams))\n";
        var probe = await RunAsync(python, ["-c", "import prometheus_client"], string.Empty);
        Assert.True(
            probe.ExitCode == 0,
            $"Prometheus' text-format parser is missing ({python} cannot import prometheus_client): install Debian's python3-prometheus-client (scripts/setup.sh does)\n{probe.Stderr}");

        await using var ours = await EtcdProcess.StartAsync(CompatEnvironment.UnderTestPath, "metrics-parse", ["--metrics", "extensive"]);
        await RunWorkloadAsync(ours.Endpoint);
        var text = await ScrapeAsync(ours);
        var parsed = await RunAsync(python, ["-c", script], text);
        Assert.True(parsed.ExitCode == 0, $"the Prometheus parser rejected our /metrics:\n{parsed.Stderr}");
        var families = MetricsExposition.Parse(text);
        Assert.Equal(families.Count, int.Parse(parsed.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(families["grpc_server_handling_seconds"].HasSamples, "--metrics extensive did not add grpc_server_handling_seconds");
    }

    private static void AssertCovers(IReadOnlyDictionary<string, MetricFamily> expected, IReadOnlyDictionary<string, MetricFamily> actual)
    {
        var problems = new List<string>();
        foreach (var (name, family) in expected.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (name.StartsWith("go_", StringComparison.Ordinal))
            {
                Assert.True(NotServed.ContainsKey("go_*"));
                continue;
            }

            if (!actual.TryGetValue(name, out var ours))
            {
                problems.Add($"missing family {name} ({family.Type})");
                continue;
            }

            if (ours.Type != family.Type)
            {
                problems.Add($"{name}: type {ours.Type}, etcd's is {family.Type}");
            }

            if (family.HasSamples && !ours.HasSamples)
            {
                if (!NoSamplesExpected.ContainsKey(name))
                {
                    problems.Add($"{name}: etcd has samples after the workload, ours has none");
                }

                continue;
            }

            if (family.HasSamples && !family.LabelNames.SetEquals(ours.LabelNames))
            {
                problems.Add($"{name}: labels {{{string.Join(",", ours.LabelNames.Order())}}}, etcd's are {{{string.Join(",", family.LabelNames.Order())}}}");
            }
        }

        Assert.True(problems.Count == 0, $"{problems.Count} difference(s) from etcd 3.4.23's /metrics (etcd {expected.Count} families, ours {actual.Count}):\n" + string.Join('\n', problems));
    }

    private static IReadOnlyDictionary<string, MetricFamily> Merge(IEnumerable<string> scrapes)
    {
        var merged = new Dictionary<string, MetricFamily>(StringComparer.Ordinal);
        foreach (var family in scrapes.SelectMany(s => MetricsExposition.Parse(s).Values))
        {
            merged[family.Name] = merged.TryGetValue(family.Name, out var seen)
                ? seen with { HasSamples = seen.HasSamples || family.HasSamples, LabelNames = seen.LabelNames.Union(family.LabelNames).ToHashSet(StringComparer.Ordinal) }
                : family;
        }

        return merged;
    }

    /// <summary>The same load on either server: puts, ranges, a delete, a txn, a lease, a failing read, compaction, a watch, defrag, hashkv, a snapshot.</summary>
    private static async Task RunWorkloadAsync(string endpoint)
    {
        for (var i = 0; i < 20; i++)
        {
            await RequireOk(endpoint, "put", $"k{i}", $"v{i}");
        }

        await RequireOk(endpoint, "get", "k", "--prefix");
        await RequireOk(endpoint, "get", "k1", "--consistency", "s");
        await RequireOk(endpoint, "del", "k1");
        await RequireOk(endpoint, "lease", "grant", "100");
        var txn = await Etcdctl.RunAsync(endpoint, ["txn"], "value(\"k2\") = \"v2\"\n\nput k2 again\n\nput k2 other\n\n");
        Assert.True(txn.ExitCode == 0, txn.ToString());
        var future = await Etcdctl.RunAsync(endpoint, "get", "nokey", "--rev", "1000");
        Assert.NotEqual(0, future.ExitCode);
        await RequireOk(endpoint, "compaction", "5");
        var watch = await Etcdctl.RunUntilAsync(endpoint, ["watch", "k", "--prefix", "--rev", "6"], o => o.Contains("k19", StringComparison.Ordinal), TimeSpan.FromSeconds(20));
        Assert.True(watch.ExitCode == Etcdctl.StoppedAfterCondition, watch.ToString());
        await RequireOk(endpoint, "defrag");
        await RequireOk(endpoint, "endpoint", "hashkv");
        var snapshot = Path.Combine(Path.GetTempPath(), "metrics-snap-" + Guid.NewGuid().ToString("N")[..8] + ".db");
        try
        {
            await RequireOk(endpoint, "snapshot", "save", snapshot);
        }
        finally
        {
            File.Delete(snapshot);
        }
    }

    private static async Task RequireOk(string endpoint, params string[] args)
    {
        var r = await Etcdctl.RunAsync(endpoint, args);
        Assert.True(r.ExitCode == 0, $"etcdctl {string.Join(' ', args)} on {endpoint}: {r}");
    }

    private static async Task<string> ScrapeAsync(EtcdProcess member)
    {
        using var response = await Http.GetAsync(member.ClientUrl + "/metrics");
        Assert.True(response.IsSuccessStatusCode, $"GET /metrics on {member}: {(int)response.StatusCode}");
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType ?? string.Empty, StringComparison.Ordinal);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Three members of one cluster on free ports, started together (each needs a quorum to be ready).</summary>
    private static async Task<EtcdProcess[]> StartClusterAsync(string binary, string prefix)
    {
        var peers = Enumerable.Range(0, 3).Select(i => (Name: $"{prefix}{i}", Url: $"http://127.0.0.1:{FreePorts.Next()}")).ToArray();
        var initial = string.Join(',', peers.Select(p => $"{p.Name}={p.Url}"));
        var token = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        var starts = peers.Select(p => EtcdProcess.StartAsync(
            binary,
            p.Name,
            ["--listen-peer-urls", p.Url, "--initial-advertise-peer-urls", p.Url, "--initial-cluster", initial, "--initial-cluster-token", token])).ToArray();
        try
        {
            return await Task.WhenAll(starts);
        }
        catch
        {
            await DisposeAllAsync(starts.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
            throw;
        }
    }

    private static async Task DisposeAllAsync(IEnumerable<EtcdProcess> members)
    {
        foreach (var m in members)
        {
            await m.DisposeAsync();
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, IEnumerable<string> args, string stdin)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, string.Empty, $"{file}: {e.Message}");
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(cts.Token);
            return (process.ExitCode, await stdout, await stderr);
        }
    }
}
