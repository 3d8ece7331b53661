using Etcd.Storage.FileSystem;
using Etcd.Storage.Schema;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Storage.Tests.Wal;

/// <summary>etcd's fileutil.PurgeFile over real files: oldest first, never a locked (in-use) file.</summary>
public sealed class FilePurgerTests
{
    [Fact]
    public void KeepsTheNewestFilesAndStopsAtALockedOne()
    {
        using var dir = new TempDir();
        for (ulong i = 1; i <= 6; i++)
        {
            File.WriteAllText(dir.Sub($"{1UL:x16}-{i:x16}.snap"), "s");
        }

        File.WriteAllText(dir.Sub($"{3UL:x16}.snap.db"), "db");
        var removed = FilePurger.PurgeOnce(dir.Path, "snap", 2);
        Assert.Equal(4, removed.Count);
        Assert.Equal(
            [$"{1UL:x16}-{5UL:x16}.snap", $"{1UL:x16}-{6UL:x16}.snap", $"{3UL:x16}.snap.db"],
            Directory.EnumerateFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // 0 keeps everything.
        Assert.Empty(FilePurger.PurgeOnce(dir.Path, "snap", 0));
    }

    [Fact]
    public void WalSegmentsStayUntilASnapshotReleasesThem()
    {
        using var dir = new TempDir();
        var walDir = dir.Sub("wal");
        var w = Storage.Wal.Wal.CreateWithSegmentSize(walDir, [1, 2, 3], 4096);
        try
        {
            ulong index = 0;
            var payload = new byte[1000];
            for (var i = 0; i < 40; i++)
            {
                index++;
                w.Save(new HardState { Term = 1, Commit = index }, [new Entry { Term = 1, Index = index, Data = ByteString.CopyFrom(payload) }]);
            }

            var segments = Directory.GetFiles(walDir, "*.wal").Length;
            Assert.True(segments >= 6, $"only {segments} segments");

            // Every segment is locked by the open WAL: nothing goes.
            Assert.Empty(FilePurger.PurgeOnce(walDir, "wal", 2));

            w.SaveSnapshot(new Walpb.Snapshot { Index = 30, Term = 1 });
            w.ReleaseLockTo(30);
            var removed = FilePurger.PurgeOnce(walDir, "wal", 2);
            Assert.NotEmpty(removed);
            var left = Directory.GetFiles(walDir, "*.wal").Length;
            Assert.True(left >= 2, $"{left} segments left");
            Assert.Equal(segments - removed.Count, left);
        }
        finally
        {
            w.Dispose();
        }

        // What remains still opens at the snapshot and reads the entries after it.
        using var reopened = Storage.Wal.Wal.Open(walDir, new Walpb.Snapshot { Index = 30, Term = 1 });
        var read = reopened.ReadAll();
        Assert.Equal(Enumerable.Range(31, 10).Select(i => (ulong)i), read.Entries.Select(e => e.Index));
    }

    [Fact]
    public void V2StoreMembershipRoundTrips()
    {
        var members = new List<MemberRecord>
        {
            new(0x8e9e05c52164694d, ["http://127.0.0.1:2380"], "infra1", ["http://127.0.0.1:2379"]),
            new(0x1234, ["http://10.0.0.2:2380", "http://10.0.0.3:2380"], "", [], IsLearner: true),
        };
        var json = V2StoreSnapshot.BuildMembership(members, [0x99], "3.4.0");
        var (read, removed, version) = V2StoreSnapshot.ReadMembership(json);
        Assert.Equal("3.4.0", version);
        Assert.Equal([0x99UL], removed);
        Assert.Equal(2, read.Count);
        var a = read.Single(m => m.Id == 0x8e9e05c52164694d);
        Assert.Equal("infra1", a.Name);
        Assert.Equal(["http://127.0.0.1:2379"], a.ClientUrls);
        Assert.Equal(["http://127.0.0.1:2380"], a.PeerUrls);
        var b = read.Single(m => m.Id == 0x1234);
        Assert.True(b.IsLearner);
        Assert.Equal(2, b.PeerUrls.Count);
        Assert.Empty(b.ClientUrls);

        // The members-only store etcdutl writes reads back too.
        var (boot, none, noVersion) = V2StoreSnapshot.ReadMembership(V2StoreSnapshot.BuildMembersOnly(members));
        Assert.Equal(2, boot.Count);
        Assert.Empty(none);
        Assert.Null(noVersion);
    }
}
