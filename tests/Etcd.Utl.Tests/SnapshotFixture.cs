using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Etcd.Utl.Tests;

/// <summary>
/// Once per test class: a real etcd member with 300 keys written, 20 deleted, compacted at revision 150,
/// a snapshot saved with the real etcdctl (<see cref="SnapshotPath"/>), then the member stopped, its data
/// directory kept (<see cref="MemberDataDir"/>) and its <c>get --prefix ""</c> JSON kvs recorded.
/// </summary>
public sealed class SnapshotFixture : IDisposable
{
    public SnapshotFixture()
    {
        Root = Directory.CreateTempSubdirectory("etcdutl-tests-").FullName;
        if (!RealEtcd.Available)
        {
            return;
        }
        MemberDataDir = Path.Combine(Root, "member0");
        SnapshotPath = Path.Combine(Root, "snap.db");
        MemberPeerPort = RealEtcd.FreePort();
        using var etcd = EtcdProcess.Start(MemberDataDir, "m0", MemberPeerPort);
        using var http = new HttpClient { BaseAddress = new Uri(etcd.Endpoint), Timeout = TimeSpan.FromSeconds(30) };
        static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
        for (var i = 0; i < 300; i++)
        {
            var r = http.PostAsJsonAsync("/v3/kv/put", new { key = B64($"key/{i:d4}"), value = B64(new string('v', i % 50) + i) }).Result;
            r.EnsureSuccessStatusCode();
        }
        for (var i = 0; i < 20; i++)
        {
            http.PostAsJsonAsync("/v3/kv/deleterange", new { key = B64($"key/{i * 7:d4}") }).Result.EnsureSuccessStatusCode();
        }
        // a lease with keys attached survives snapshot and restore
        var grant = http.PostAsJsonAsync("/v3/lease/grant", new { TTL = "3600" }).Result;
        grant.EnsureSuccessStatusCode();
        LeaseId = JsonDocument.Parse(grant.Content.ReadAsStringAsync().Result).RootElement.GetProperty("ID").GetString()!;
        for (var i = 0; i < 3; i++)
        {
            http.PostAsJsonAsync("/v3/kv/put", new { key = B64($"leased/{i}"), value = B64("x"), lease = LeaseId }).Result.EnsureSuccessStatusCode();
        }
        http.PostAsJsonAsync("/v3/kv/compaction", new { revision = "150", physical = true }).Result.EnsureSuccessStatusCode();
        var save = RealEtcd.Etcdctl(Root, "--endpoints", etcd.Endpoint, "snapshot", "save", SnapshotPath);
        Assert.True(save.Code == 0, save.Err);
        ExpectedKvs = GetKvs(etcd.Endpoint);
        Assert.Equal(283, ExpectedKvs.GetArrayLength());
    }

    public string Root { get; }

    public int MemberPeerPort { get; }

    /// <summary>Decimal ID of the 3600 s lease holding keys <c>leased/0..2</c>.</summary>
    public string LeaseId { get; } = "";

    public string MemberDataDir { get; } = "";

    public string SnapshotPath { get; } = "";

    public JsonElement ExpectedKvs { get; }

    /// <summary>The kvs array of <c>etcdctl get --prefix "" -w json</c> (key, create/mod revision, version, value).</summary>
    public static JsonElement GetKvs(string endpoint)
    {
        var r = RealEtcd.Etcdctl(Path.GetTempPath(), "--endpoints", endpoint, "get", "--prefix", "", "-w", "json");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        return doc.RootElement.GetProperty("kvs").Clone();
    }

    public string NewDir(string name) => Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
