using System.Text;
using System.Text.Json;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// A data directory moves between real etcd 3.4.23 and the server under test in both directions: the WAL, the
/// bbolt <c>member/snap/db</c> with etcd's schema (keys, compaction, lease, membership, consistent index). The
/// second server must serve the same keys, values and revisions, the same compacted revision, the lease with
/// its key, and go on from the same revision.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class DataDirCompatTests
{
    private const int Txns = 30;
    private const int PutsPerTxn = 100;
    private const long CompactAt = 20;

    [Fact]
    public Task RealEtcdDataDir_IsServedByServerUnderTest()
        => MoveDataDirAsync(CompatEnvironment.RequireReferenceEtcd(), CompatEnvironment.RequireUnderTest());

    [Fact]
    public Task ServerUnderTestDataDir_IsServedByRealEtcd()
        => MoveDataDirAsync(CompatEnvironment.RequireUnderTest(), CompatEnvironment.RequireReferenceEtcd());

    /// <summary>With raft snapshots every 20 entries: our snap files (v2 store JSON) are read by real etcd.</summary>
    [Fact]
    public Task ServerUnderTestDataDirWithSnapFiles_IsServedByRealEtcd()
        => MoveDataDirAsync(CompatEnvironment.RequireUnderTest(), CompatEnvironment.RequireReferenceEtcd(), ["--snapshot-count", "20"]);

    /// <summary>Real etcd's snap files (written every 20 entries) are read by the server under test.</summary>
    [Fact]
    public Task RealEtcdDataDirWithSnapFiles_IsServedByServerUnderTest()
        => MoveDataDirAsync(CompatEnvironment.RequireReferenceEtcd(), CompatEnvironment.RequireUnderTest(), ["--snapshot-count", "20"]);

    /// <summary>
    /// A snapshot saved (etcdctl snapshot save) from our member is restored with etcdctl and served by real etcd.
    /// </summary>
    [Fact]
    public Task ServerUnderTestSnapshot_RestoredWithEtcdctl_IsServedByRealEtcd()
        => MoveDataDirAsync(CompatEnvironment.RequireUnderTest(), CompatEnvironment.RequireReferenceEtcd(), viaSnapshot: true);

    /// <summary>A snapshot saved from real etcd is restored with our etcdutl and served by our member.</summary>
    [Fact]
    public Task RealEtcdSnapshot_RestoredWithEtcdutl_IsServedByServerUnderTest()
        => MoveDataDirAsync(CompatEnvironment.RequireReferenceEtcd(), CompatEnvironment.RequireUnderTest(), viaSnapshot: true);

    private static async Task MoveDataDirAsync(string writer, string reader, IReadOnlyList<string>? extraArgs = null, bool viaSnapshot = false)
    {
        CompatEnvironment.RequireEtcdctl();
        await using var member = await EtcdProcess.StartAsync(writer, "datadir", extraArgs ?? []);
        var ep = member.Endpoint;

        // Several thousand keys (one revision per txn), overwrites, deletes, a compaction and a lease with a key.
        for (var t = 0; t < Txns; t++)
        {
            var script = new StringBuilder("\n");
            for (var i = 0; i < PutsPerTxn; i++)
            {
                script.Append("put key/").Append(t.ToString("D2")).Append('/').Append(i.ToString("D3")).Append(" value-").Append(t).Append('-').Append(i).Append('\n');
            }

            script.Append("\n\n");
            await OkAsync(ep, ["txn"], script.ToString());
        }

        await OkAsync(ep, ["put", "key/00/000", "overwritten"]);
        await OkAsync(ep, ["del", "key/01/", "--prefix"]);
        await OkAsync(ep, ["compaction", CompactAt.ToString()]);
        var grant = await OkAsync(ep, ["lease", "grant", "900"]);
        var leaseId = grant.Split(' ')[1];
        await OkAsync(ep, ["put", "leased", "with-lease", "--lease=" + leaseId]);
        for (var i = 0; i < 5; i++)
        {
            await OkAsync(ep, ["put", "tail", "v" + i]);
        }

        var before = Snapshot(await OkAsync(ep, ["get", "", "--prefix", "-w", "json"]));
        if (extraArgs is { Count: > 0 })
        {
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(member.DataDir, "member", "snap"), "*.snap"));
        }

        Assert.True(before.Kvs.Count > 2500, $"only {before.Kvs.Count} keys written");
        var history = await OkAsync(ep, ["get", "tail", "--rev", (before.Revision - 2).ToString(), "-w", "json"]);

        if (viaSnapshot)
        {
            // The snapshot restores with the reader's own tool (etcdctl for real etcd, our etcdutl for ours) into the
            // member's data dir, as the same single member on the same peer URL.
            var snapshot = Path.Combine(Path.GetTempPath(), "etcd-compat-snap-" + Guid.NewGuid().ToString("N")[..12] + ".db");
            try
            {
                await OkAsync(ep, ["snapshot", "save", snapshot]);
                Assert.True(await member.StopAsync(), $"writer {writer} did not stop\n{member.LogTail()}");
                Directory.Delete(member.DataDir, recursive: true);
                string[] restore =
                [
                    "snapshot", "restore", snapshot, "--data-dir", member.DataDir, "--name", "datadir",
                    "--initial-cluster", "datadir=" + member.PeerUrl, "--initial-advertise-peer-urls", member.PeerUrl,
                ];
                if (reader == CompatEnvironment.ReferenceEtcdPath)
                {
                    await OkAsync(ep, restore);
                }
                else
                {
                    await RunEtcdutlAsync(Path.Combine(Path.GetDirectoryName(reader)!, "etcdutl"), restore);
                }
            }
            finally
            {
                File.Delete(snapshot);
            }
        }
        else
        {
            Assert.True(await member.StopAsync(), $"writer {writer} did not stop\n{member.LogTail()}");
        }

        await member.RestartAsync(reader);

        var after = Snapshot(await OkAsync(ep, ["get", "", "--prefix", "-w", "json"]));
        Assert.Equal(before.Revision, after.Revision);
        Assert.Equal(before.Kvs, after.Kvs);
        Assert.Equal(
            Snapshot(history).Kvs,
            Snapshot(await OkAsync(ep, ["get", "tail", "--rev", (before.Revision - 2).ToString(), "-w", "json"])).Kvs);

        var compacted = await Etcdctl.RunAsync(ep, "get", "key/00/000", "--rev", (CompactAt - 1).ToString());
        Assert.NotEqual(0, compacted.ExitCode);
        Assert.Contains("required revision has been compacted", compacted.Stderr);

        var ttl = await OkAsync(ep, ["lease", "timetolive", leaseId, "--keys"]);
        Assert.Contains($"lease {leaseId} granted with TTL(900s)", ttl);
        Assert.Contains("attached keys([leased])", ttl);

        var members = await OkAsync(ep, ["member", "list"]);
        Assert.Contains(", started, datadir, " + member.PeerUrl + ", " + member.ClientUrl + ", false", members);

        // Goes on from the same revision.
        await OkAsync(ep, ["put", "moved", "on"]);
        var moved = Snapshot(await OkAsync(ep, ["get", "moved", "-w", "json"]));
        Assert.Equal(before.Revision + 1, moved.Revision);

        // Revoking the lease deletes its key.
        await OkAsync(ep, ["lease", "revoke", leaseId]);
        Assert.Empty(Snapshot(await OkAsync(ep, ["get", "leased", "-w", "json"])).Kvs);
    }

    private static async Task RunEtcdutlAsync(string etcdutl, string[] args)
    {
        Assert.True(File.Exists(etcdutl), $"{etcdutl} not found (run scripts/publish.sh)");
        var psi = new System.Diagnostics.ProcessStartInfo(etcdutl) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        Assert.True(p.ExitCode == 0, $"etcdutl {string.Join(' ', args)}: exit {p.ExitCode}\n{await stdout}{await stderr}");
    }

    private static async Task<string> OkAsync(string endpoint, string[] args, string? stdin = null)
    {
        var r = await Etcdctl.RunAsync(endpoint, args, stdin, TimeSpan.FromSeconds(30));
        Assert.True(r.ExitCode == 0, $"etcdctl {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>The header revision and every kv (key, value, create/mod revision, version, lease) of a <c>get -w json</c>.</summary>
    private static (long Revision, List<string> Kvs) Snapshot(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var rev = root.GetProperty("header").GetProperty("revision").GetInt64();
        var kvs = new List<string>();
        if (root.TryGetProperty("kvs", out var arr))
        {
            foreach (var kv in arr.EnumerateArray())
            {
                kvs.Add(kv.GetRawText());
            }
        }

        return (rev, kvs);
    }
}
