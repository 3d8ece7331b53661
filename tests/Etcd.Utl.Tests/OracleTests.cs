using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Etcd.Storage.Bolt;
using Etcd.Storage.Schema;

namespace Etcd.Utl.Tests;

/// <summary>Our etcdutl against the real etcdctl 3.4.23 and etcd 3.4.23 on the same files.</summary>
public sealed class OracleTests(SnapshotFixture fx) : IClassFixture<SnapshotFixture>
{
    [RealEtcdTheory]
    [InlineData("simple")]
    [InlineData("json")]
    [InlineData("table")]
    [InlineData("fields")]
    [InlineData("protobuf")]
    [InlineData("yaml")]
    public void SnapshotStatus_EqualsEtcdctl(string format)
    {
        var ours = RealEtcd.Etcdutl(fx.Root, "snapshot", "status", fx.SnapshotPath, "-w", format);
        var theirs = RealEtcd.Etcdctl(fx.Root, "snapshot", "status", fx.SnapshotPath, "-w", format);
        Assert.Equal(theirs.Code, ours.Code);
        Assert.Equal(theirs.Out, ours.Out);
        Assert.Equal(theirs.Err, ours.Err);
    }

    [RealEtcdFact]
    public void SnapshotStatus_OfLiveMemberDbCopy_AndMissingFile_EqualsEtcdctl()
    {
        var copy = Path.Combine(fx.NewDir("copy"), "db");
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(Defrag.DbPath(fx.MemberDataDir), copy);
        var dir = Path.GetDirectoryName(copy)!;
        var junk = Path.Combine(dir, "junk.db");
        File.WriteAllBytes(junk, Enumerable.Range(0, 5000).Select(i => (byte)(i * 31)).ToArray());
        var tiny = Path.Combine(dir, "tiny.db");
        File.WriteAllBytes(tiny, [1]);
        var empty = Path.Combine(dir, "empty.db");
        File.WriteAllBytes(empty, []);
        foreach (var file in new[] { copy, Path.Combine(fx.Root, "no-such.db"), junk, tiny, empty, dir })
        {
            var ours = RealEtcd.Etcdutl(fx.Root, "snapshot", "status", file, "-w", "table");
            var theirs = RealEtcd.Etcdctl(fx.Root, "snapshot", "status", file, "-w", "table");
            Assert.Equal((theirs.Code, theirs.Out, theirs.Err), (ours.Code, ours.Out, ours.Err));
        }
    }

    [RealEtcdFact]
    public void SnapshotRestore_ThenRealEtcdServesSameKeysAndRevisions()
    {
        var dir = fx.NewDir("restored");
        var peerPort = RealEtcd.FreePort();
        var peer = $"http://127.0.0.1:{peerPort}";
        var r = RealEtcd.Etcdutl(fx.Root, "snapshot", "restore", fx.SnapshotPath, "--data-dir", dir, "--name", "r1",
            "--initial-cluster", $"r1={peer}", "--initial-advertise-peer-urls", peer, "--initial-cluster-token", "tok-1");
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal("", r.Out);
        using var etcd = EtcdProcess.Start(dir, "r1", peerPort, token: "tok-1");
        var kvs = SnapshotFixture.GetKvs(etcd.Endpoint);
        Assert.Equal(fx.ExpectedKvs.ToString(), kvs.ToString());
        var leases = RealEtcd.Etcdctl(fx.Root, "--endpoints", etcd.Endpoint, "lease", "list");
        Assert.Contains(ulong.Parse(fx.LeaseId, System.Globalization.CultureInfo.InvariantCulture).ToString("x", System.Globalization.CultureInfo.InvariantCulture), leases.Out);
        var members = RealEtcd.Etcdctl(fx.Root, "--endpoints", etcd.Endpoint, "member", "list");
        Assert.Equal(0, members.Code);
        var id = MemberIds.ToIdString(MemberIds.ComputeMemberId([peer], "tok-1"));
        Assert.StartsWith($"{id}, started, r1, {peer}, {etcd.Endpoint}, false", members.Out);
    }

    [RealEtcdFact]
    public void SnapshotRestore_ThreeMembers_RealEtcdClusterForms()
    {
        // The ports are picked free, released, then baked into the restored members: another test process may take
        // one in between. Such a round is retried with new ports (bounded); any other failure fails the test.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                RestoreThreeMembersAndServe(attempt);
                return;
            }
            catch (Exception e) when (attempt < 3 && e.ToString().Contains("address already in use", StringComparison.Ordinal))
            {
            }
        }
    }

    private void RestoreThreeMembersAndServe(int attempt)
    {
        var ports = Enumerable.Range(0, 3).Select(_ => RealEtcd.FreePort()).ToArray();
        var cluster = string.Join(",", ports.Select((p, i) => $"c{i}=http://127.0.0.1:{p}"));
        var dirs = new string[3];
        for (var i = 0; i < 3; i++)
        {
            dirs[i] = fx.NewDir($"c{i}-{attempt}");
            var r = RealEtcd.Etcdutl(fx.Root, "snapshot", "restore", fx.SnapshotPath, "--data-dir", dirs[i], "--name", $"c{i}",
                "--initial-cluster", cluster, "--initial-advertise-peer-urls", $"http://127.0.0.1:{ports[i]}", "--initial-cluster-token", "tok-3");
            Assert.True(r.Code == 0, r.Err);
        }
        // members become ready only once a quorum is up, so start them together
        var starts = Enumerable.Range(0, 3).Select(i => Task.Run(() => EtcdProcess.Start(dirs[i], $"c{i}", ports[i], cluster, "tok-3"))).ToArray();
        try
        {
            Assert.True(Task.WaitAll(starts, TimeSpan.FromSeconds(60)), "cluster did not become ready");
            foreach (var t in starts)
            {
                Assert.Equal(fx.ExpectedKvs.ToString(), SnapshotFixture.GetKvs(t.Result.Endpoint).ToString());
            }
            var list = RealEtcd.Etcdctl(fx.Root, "--endpoints", starts[0].Result.Endpoint, "member", "list");
            Assert.Equal(3, list.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.Contains(", started, c", StringComparison.Ordinal)));
        }
        finally
        {
            foreach (var t in starts)
            {
                if (t.IsCompletedSuccessfully)
                {
                    t.Result.Dispose();
                }
            }
        }
    }

    [RealEtcdTheory]
    [InlineData(1)]
    [InlineData(3)]
    public void SnapshotRestore_WritesSameWalSnapAndMetaAsEtcdctl(int memberCount)
    {
        var urls = Enumerable.Range(0, memberCount).Select(i => $"http://127.0.0.1:{31000 + i}").ToArray();
        var cluster = string.Join(",", urls.Select((u, i) => $"n{i}={u}"));
        var ourDir = fx.NewDir("ours");
        var theirDir = fx.NewDir("theirs");
        string[] Flags(string d) => ["snapshot", "restore", fx.SnapshotPath, "--data-dir", d, "--name", "n0",
            "--initial-cluster", cluster, "--initial-advertise-peer-urls", urls[0], "--initial-cluster-token", "tok-x"];
        var ours = RealEtcd.Etcdutl(fx.Root, Flags(ourDir));
        var theirs = RealEtcd.Etcdctl(fx.Root, Flags(theirDir));
        Assert.True(theirs.Code == 0, theirs.Err);
        Assert.True(ours.Code == 0, ours.Err);
        Assert.Equal(theirs.Out, ours.Out);
        Assert.Equal(NormalizeLog(theirs.Err, theirDir), NormalizeLog(ours.Err, ourDir));

        // the WAL segment and the snap file are byte for byte etcd's
        foreach (var rel in new[] { "member/wal/0000000000000000-0000000000000000.wal", $"member/snap/0000000000000001-{memberCount:x16}.snap" })
        {
            Assert.True(File.ReadAllBytes(Path.Combine(theirDir, rel)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(ourDir, rel))), rel);
        }
        Assert.Equal(
            Directory.GetFiles(theirDir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(theirDir, f)).Order(),
            Directory.GetFiles(ourDir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(ourDir, f)).Order());

        var t = DbState.Read(Path.Combine(theirDir, "member/snap/db"));
        var o = DbState.Read(Path.Combine(ourDir, "member/snap/db"));
        Assert.Equal((ulong)memberCount, t.ConsistentIndex);
        Assert.Equal(t.ConsistentIndex, o.ConsistentIndex);
        Assert.Equal(1UL, o.Term); // etcd 3.5 writes meta/term; 3.4 does not
        Assert.Equal(t.KeyBucket, o.KeyBucket);
        Assert.Equal(t.Lease, o.Lease);
        // etcd 3.5 replaces the members buckets with the new cluster (3.4 left the old member in place)
        var expected = urls.Select((u, i) => new MemberRecord(MemberIds.ComputeMemberId([u], "tok-x"), [u], $"n{i}", []))
            .OrderBy(m => m.Id).Select(m => (MemberIds.ToIdString(m.Id), m.ToJson())).ToList();
        Assert.Equal(expected, o.Members);
        Assert.Empty(o.MembersRemoved);
    }

    [RealEtcdFact]
    public void SnapshotRestore_WithSeparateWalDir_EqualsEtcdctl()
    {
        var ourDir = fx.NewDir("ours-wal");
        var theirDir = fx.NewDir("theirs-wal");
        string[] Flags(string d) => ["snapshot", "restore", fx.SnapshotPath, "--data-dir", d, "--wal-dir", d + "-wal"];
        var ours = RealEtcd.Etcdutl(fx.Root, Flags(ourDir));
        var theirs = RealEtcd.Etcdctl(fx.Root, Flags(theirDir));
        Assert.True(theirs.Code == 0, theirs.Err);
        Assert.True(ours.Code == 0, ours.Err);
        Assert.Equal(NormalizeLog(theirs.Err, theirDir), NormalizeLog(ours.Err, ourDir));
        const string wal = "0000000000000000-0000000000000000.wal";
        Assert.True(File.ReadAllBytes(Path.Combine(theirDir + "-wal", wal)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(ourDir + "-wal", wal))));
        Assert.False(Directory.Exists(Path.Combine(ourDir, "member", "wal")));
        // an existing --wal-dir is refused like etcdctl does
        var again = RealEtcd.Etcdutl(fx.Root, "snapshot", "restore", fx.SnapshotPath, "--data-dir", fx.NewDir("w2"), "--wal-dir", ourDir + "-wal");
        var againTheirs = RealEtcd.Etcdctl(fx.Root, "snapshot", "restore", fx.SnapshotPath, "--data-dir", fx.NewDir("w3"), "--wal-dir", ourDir + "-wal");
        Assert.Equal((againTheirs.Code, LastLine(againTheirs.Err)), (again.Code, LastLine(again.Err)));
    }

    [RealEtcdFact]
    public void SnapshotRestore_Errors_EqualEtcdctl()
    {
        var copy = Path.Combine(fx.NewDir("copydb"), "db");
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(Defrag.DbPath(fx.MemberDataDir), copy);
        var existing = fx.NewDir("exists");
        Directory.CreateDirectory(existing);
        var dir = Path.GetDirectoryName(copy)!;
        var corrupt = Path.Combine(dir, "corrupt.db");
        var bytes = File.ReadAllBytes(fx.SnapshotPath);
        bytes[bytes.Length / 2] ^= 0x55;
        File.WriteAllBytes(corrupt, bytes);
        var tiny = Path.Combine(dir, "tiny.db");
        File.WriteAllBytes(tiny, [1]);
        var cases = new List<Func<string, string[]>>
        {
            d => ["snapshot", "restore", corrupt, "--data-dir", d],
            d => ["snapshot", "restore", tiny, "--data-dir", d],
            d => ["snapshot", "restore", Path.Combine(dir, "missing.db"), "--data-dir", d],
            d => ["snapshot", "restore", copy, "--data-dir", d],
            _ => ["snapshot", "restore", fx.SnapshotPath, "--data-dir", existing],
            d => ["snapshot", "restore", fx.SnapshotPath, "--data-dir", d, "--name", "nobody"],
            d => ["snapshot", "restore", fx.SnapshotPath, "--data-dir", d, "--initial-cluster", "default=http://127.0.0.1:1,x=http://127.0.0.1:1",
                "--initial-advertise-peer-urls", "http://127.0.0.1:1"],
            _ => ["snapshot", "restore"],
            _ => ["snapshot", "status"],
            _ => ["snapshot", "status", fx.SnapshotPath, fx.SnapshotPath],
        };
        foreach (var c in cases)
        {
            var ours = RealEtcd.Etcdutl(fx.Root, c(fx.NewDir("e")));
            var theirs = RealEtcd.Etcdctl(fx.Root, c(fx.NewDir("e")));
            Assert.Equal(theirs.Code, ours.Code);
            Assert.Equal(LastLine(theirs.Err), LastLine(ours.Err));
        }

        // a copied db restores with --skip-hash-check, like etcdctl
        var ok = RealEtcd.Etcdutl(fx.Root, "snapshot", "restore", copy, "--data-dir", fx.NewDir("skip"), "--skip-hash-check");
        Assert.True(ok.Code == 0, ok.Err);
    }

    [RealEtcdFact]
    public void Defrag_OfStoppedMember_ThenRealEtcdServesKeys()
    {
        var dir = fx.NewDir("defrag");
        CopyDir(fx.MemberDataDir, dir);
        var before = new FileInfo(Defrag.DbPath(dir)).Length;
        var r = RealEtcd.Etcdutl(fx.Root, "defrag", "--data-dir", dir);
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal($"Finished defragmenting etcd member[{dir}]\n", r.Out);
        Assert.True(new FileInfo(Defrag.DbPath(dir)).Length <= before);
        Assert.False(File.Exists(Defrag.DbPath(dir) + ".tmp"));
        // the status of the defragmented file equals the original's except for its size
        var st = SnapshotStatusResult.Read(Defrag.DbPath(dir));
        var orig = SnapshotStatusResult.Read(Defrag.DbPath(fx.MemberDataDir));
        Assert.Equal((orig.Hash, orig.Revision, orig.TotalKey), (st.Hash, st.Revision, st.TotalKey));

        // real etcdctl's offline defrag of the same directory writes the very same bytes
        var theirs = fx.NewDir("defrag-etcdctl");
        CopyDir(fx.MemberDataDir, theirs);
        var t = RealEtcd.Etcdctl(fx.Root, "defrag", "--data-dir", theirs);
        Assert.True(t.Code == 0, t.Err);
        Assert.True(File.ReadAllBytes(Defrag.DbPath(theirs)).AsSpan().SequenceEqual(File.ReadAllBytes(Defrag.DbPath(dir))), "defragmented db differs from etcdctl's");

        // restart with the original member's peer URL: the WAL and snapshot hold it
        using var etcd = EtcdProcess.Start(dir, "m0", fx.MemberPeerPort);
        Assert.Equal(fx.ExpectedKvs.ToString(), SnapshotFixture.GetKvs(etcd.Endpoint).ToString());
    }

    [RealEtcdFact]
    public void Defrag_MissingDir_FailsWithEtcdMessage()
    {
        var dir = fx.NewDir("none");
        var r = RealEtcd.Etcdutl(fx.Root, "defrag", "--data-dir", dir);
        Assert.Equal(1, r.Code);
        Assert.StartsWith($"Error: Failed to defragment etcd data[{dir}] (", r.Err);
    }

    private static string LastLine(string s) => s.TrimEnd('\n').Split('\n')[^1];

    private static string NormalizeLog(string log, string dir) =>
        Regex.Replace(log.Replace(dir, "DIR"), "\"ts\":[0-9.e+]+", "\"ts\":0");

    private static void CopyDir(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        }
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (!f.EndsWith(".lock", StringComparison.Ordinal))
            {
                File.Copy(f, Path.Combine(to, Path.GetRelativePath(from, f)));
            }
        }
    }
}

/// <summary>The parts of a restored backend the tests compare.</summary>
internal sealed record DbState(ulong? ConsistentIndex, ulong? Term, List<(string, string)> KeyBucket, List<(string, string)> Lease,
    List<(string, string)> Members, List<string> MembersRemoved)
{
    public static DbState Read(string path)
    {
        using var db = BoltDb.Open(path, new BoltOptions { ReadOnly = true });
        using var tx = db.Begin(false);
        List<(string, string)> Pairs(string bucket)
        {
            var l = new List<(string, string)>();
            tx.Bucket(Encoding.ASCII.GetBytes(bucket))?.ForEach((k, v) =>
            {
                l.Add((Encoding.Latin1.GetString(k), Encoding.Latin1.GetString(v)));
                return true;
            });
            return l;
        }
        return new DbState(
            MembershipSchema.ReadMetaUInt64(tx, MetaKeys.ConsistentIndex),
            MembershipSchema.ReadMetaUInt64(tx, MetaKeys.Term),
            Pairs(Buckets.Key), Pairs(Buckets.Lease), Pairs(Buckets.Members), Pairs(Buckets.MembersRemoved).Select(p => p.Item1).ToList());
    }
}
