using Etcd.Storage.Snap;
using Etcd.Storage.Tests.Wal;
using Etcd.Storage.Wal;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Storage.Tests.Snap;

public class SnapshotterTests
{
    private static Raftpb.Snapshot Snap(ulong term, ulong index, string data = "state-machine")
    {
        var s = new Raftpb.Snapshot
        {
            Data = ByteString.CopyFromUtf8(data),
            Metadata = new SnapshotMetadata { Term = term, Index = index, ConfState = new ConfState() },
        };
        s.Metadata.ConfState.Voters.Add(1);
        s.Metadata.ConfState.Voters.Add(2);
        return s;
    }

    [Fact]
    public void SaveAndLoadRoundTrip()
    {
        using var t = new TempDir();
        var ss = new Snapshotter(t.Path);
        Assert.Null(ss.Load());
        ss.SaveSnap(Snap(1, 5));
        ss.SaveSnap(Snap(2, 10, "newer"));
        ss.SaveSnap(Snap(0, 0)); // empty: not saved
        Assert.Equal(["0000000000000001-0000000000000005.snap", "0000000000000002-000000000000000a.snap"],
            Directory.GetFiles(t.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(Snap(2, 10, "newer"), ss.Load());

        // The envelope is snappb.snapshot{crc = CRC-32C(data), data = raftpb.Snapshot}.
        byte[] file = File.ReadAllBytes(t.Sub(Snapshotter.SnapName(1, 5)));
        var env = Snappb.snapshot.Parser.ParseFrom(file);
        Assert.Equal(Crc32C.Compute(env.Data.Span), env.Crc);
        Assert.Equal(Snap(1, 5), Raftpb.Snapshot.Parser.ParseFrom(env.Data));

        Assert.Equal(Snap(1, 5), ss.LoadNewestAvailable([new Walpb.Snapshot { Term = 1, Index = 5 }]));
        Assert.Null(ss.LoadNewestAvailable([new Walpb.Snapshot { Term = 3, Index = 5 }]));
    }

    [Fact]
    public void BrokenNewestIsRenamedAndOlderIsLoaded()
    {
        using var t = new TempDir();
        var ss = new Snapshotter(t.Path);
        ss.SaveSnap(Snap(1, 5));
        ss.SaveSnap(Snap(1, 9));
        string newest = t.Sub(Snapshotter.SnapName(1, 9));
        byte[] b = File.ReadAllBytes(newest);
        b[^3] ^= 0xFF; // flip a byte of the payload: CRC mismatch
        File.WriteAllBytes(newest, b);
        File.WriteAllBytes(t.Sub(Snapshotter.SnapName(1, 12)), []); // empty file: ErrEmptySnapshot
        File.WriteAllBytes(t.Sub("db.tmp.123"), [1, 2, 3]); // orphaned defrag file: removed

        Assert.Equal(Snap(1, 5), ss.Load());
        Assert.True(File.Exists(newest + ".broken"));
        Assert.False(File.Exists(newest));
        Assert.True(File.Exists(t.Sub(Snapshotter.SnapName(1, 12)) + ".broken"));
        Assert.False(File.Exists(t.Sub("db.tmp.123")));

        Assert.Equal("snap: crc mismatch", Assert.Throws<SnapException>(() => Snapshotter.Read(newest + ".broken")).Message);
    }

    [Fact]
    public async Task DbSnapshotSaveFindAndRelease()
    {
        using var t = new TempDir();
        var ss = new Snapshotter(t.Path);
        Assert.Equal(SnapErrorKind.NoDbSnapshot, Assert.Throws<SnapException>(() => ss.DBFilePath(7)).Kind);
        byte[] payload = new byte[100_000];
        new Random(1).NextBytes(payload);
        Assert.Equal(payload.Length, await ss.SaveDBFromAsync(new MemoryStream(payload), 7));
        string p = ss.DBFilePath(7);
        Assert.Equal("0000000000000007.snap.db", Path.GetFileName(p));
        Assert.Equal(payload, File.ReadAllBytes(p));
        await ss.SaveDBFromAsync(new MemoryStream([1]), 20);
        ss.ReleaseSnapDBs(Snap(1, 10));
        Assert.False(File.Exists(p));
        Assert.True(File.Exists(ss.DBFilePath(20)));
        Assert.Single(Directory.GetFiles(t.Path));
    }
}
