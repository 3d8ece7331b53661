using System.Text;
using System.Text.Json;
using Etcd.Storage.Schema;

namespace Etcd.Utl.Tests;

public sealed class UnitTests
{
    [Theory]
    [InlineData(0UL, "0 B")]
    [InlineData(9UL, "9 B")]
    [InlineData(10UL, "10 B")]
    [InlineData(999UL, "999 B")]
    [InlineData(1000UL, "1.0 kB")]
    [InlineData(1234UL, "1.2 kB")]
    [InlineData(20480UL, "20 kB")]
    [InlineData(24576UL, "25 kB")]
    [InlineData(2_097_152UL, "2.1 MB")]
    [InlineData(82_000_000UL, "82 MB")]
    [InlineData(1_000_000_000UL, "1.0 GB")]
    public void Humanize_MatchesGoHumanize(ulong bytes, string expected) => Assert.Equal(expected, Humanize.Bytes(bytes));

    [Fact]
    public void MemberIds_MatchEtcd()
    {
        // values observed from etcdctl 3.4.23 snapshot restore with --initial-cluster-token tok
        var id = MemberIds.ComputeMemberId(["http://127.0.0.1:12380"], "tok");
        Assert.Equal("d622127685879b3c", MemberIds.ToIdString(id));
        Assert.Equal("6656feb867e68582", MemberIds.ToIdString(MemberIds.ComputeClusterId([id])));
        // etcd's default single member (default token, localhost:2380) is 8e9e05c52164694d in cluster cdf818194e3a8c32
        var def = MemberIds.ComputeMemberId(["http://localhost:2380"], "etcd-cluster");
        Assert.Equal("8e9e05c52164694d", MemberIds.ToIdString(def));
        Assert.Equal("cdf818194e3a8c32", MemberIds.ToIdString(MemberIds.ComputeClusterId([def])));
        Assert.Equal("1", MemberIds.ToIdString(1));
    }

    [Fact]
    public void MemberJson_IsGoEncoding_AndRoundTrips()
    {
        var m = new MemberRecord(10276657743932975437, ["http://localhost:2380"], "default", ["http://a<b>&c:2379"], IsLearner: true);
        const string json = "{\"id\":10276657743932975437,\"peerURLs\":[\"http://localhost:2380\"],\"isLearner\":true,\"name\":\"default\",\"clientURLs\":[\"http://a\\u003cb\\u003e\\u0026c:2379\"]}";
        Assert.Equal(json, m.ToJson());
        var back = MemberRecord.FromJson(Encoding.UTF8.GetBytes(json));
        Assert.Equal(m.Id, back.Id);
        Assert.Equal(m.PeerUrls, back.PeerUrls);
        Assert.Equal(m.ClientUrls, back.ClientUrls);
        Assert.Equal((m.Name, m.IsLearner), (back.Name, back.IsLearner));
        Assert.Equal("{\"id\":1,\"peerURLs\":[\"http://x:1\"]}", new MemberRecord(1, ["http://x:1"], "", []).ToJson());
        Assert.Equal("{\"peerURLs\":[\"http://x:1\"]}", new MemberRecord(1, ["http://x:1"], "n", []).RaftAttributesJson());
    }

    [Fact]
    public void V2StoreSnapshot_HoldsMembersInIndexOrder()
    {
        var ms = new[] { new MemberRecord(0x20, ["http://b:2"], "b", []), new MemberRecord(0x10, ["http://a:1"], "a", []) };
        using var doc = JsonDocument.Parse(V2StoreSnapshot.BuildMembersOnly(ms));
        var root = doc.RootElement;
        Assert.Equal(2, root.GetProperty("CurrentIndex").GetInt32());
        var members = root.GetProperty("Root").GetProperty("Children").GetProperty("0").GetProperty("Children").GetProperty("members");
        Assert.Equal(1, members.GetProperty("CreatedIndex").GetInt32());
        var names = members.GetProperty("Children").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(["10", "20"], names); // Go sorts map keys
        var raft = members.GetProperty("Children").GetProperty("10").GetProperty("Children").GetProperty("raftAttributes");
        Assert.Equal(2, raft.GetProperty("CreatedIndex").GetInt32());
        Assert.Equal("{\"peerURLs\":[\"http://a:1\"]}", raft.GetProperty("Value").GetString());
        var events = root.GetProperty("WatcherHub").GetProperty("EventHistory").GetProperty("Queue").GetProperty("Events");
        Assert.Equal(1000, events.GetArrayLength());
        Assert.Equal("/0/members/20/raftAttributes", events[0].GetProperty("node").GetProperty("key").GetString());
        Assert.Equal(JsonValueKind.Null, events[2].ValueKind);
        Assert.Equal(2, root.GetProperty("Stats").GetProperty("createSuccess").GetInt32());
    }

    [Fact]
    public void Table_MatchesTablewriterLayout()
    {
        var t = Printers.Table(["hash", "revision", "total keys", "total size"], [["165a34a5", "51", "56", "25 kB"]]);
        Assert.Equal("""
            +----------+----------+------------+------------+
            |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |
            +----------+----------+------------+------------+
            | 165a34a5 |       51 |         56 |      25 kB |
            +----------+----------+------------+------------+

            """, t);
    }

    [Fact]
    public void Cli_VersionHelpAndUsageErrors()
    {
        var tmp = Path.GetTempPath();
        var v = RealEtcd.Etcdutl(tmp, "version");
        Assert.Equal((0, "etcdutl version: 3.4.23\nAPI version: 3.4\n"), (v.Code, v.Out));
        var h = RealEtcd.Etcdutl(tmp, "--help");
        Assert.Equal(0, h.Code);
        Assert.Contains("snapshot    Manages etcd node snapshots", h.Out);
        Assert.Contains("--skip-hash-check", RealEtcd.Etcdutl(tmp, "snapshot", "restore", "--help").Out);
        Assert.Contains("Usage:\n  etcdutl defrag [flags]", RealEtcd.Etcdutl(tmp, "help", "defrag").Out);
        Assert.Contains("etcdutl snapshot status <filename>", RealEtcd.Etcdutl(tmp, "snapshot", "status", "-h").Out);
        var bad = RealEtcd.Etcdutl(tmp, "snapshot", "status", "x.db", "--bogus", "1");
        Assert.Equal((1, "Error: unknown flag: --bogus\n"), (bad.Code, bad.Err));
        var unk = RealEtcd.Etcdutl(tmp, "frobnicate");
        Assert.Equal(1, unk.Code);
        Assert.StartsWith("Error: unknown command \"frobnicate\" for \"etcdutl\"", unk.Err);
        var noDir = RealEtcd.Etcdutl(tmp, "defrag");
        Assert.Equal((1, "Error: required flag(s) \"data-dir\" not set\n"), (noDir.Code, noDir.Err));
    }
}
