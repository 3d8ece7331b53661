using System.Buffers.Binary;
using Etcd.Storage.FileSystem;
using Etcd.Storage.Wal;
using Google.Protobuf;
using Raftpb;
using WalLog = Etcd.Storage.Wal.Wal;

namespace Etcd.Storage.Tests.Wal;

public class WalTests
{
    private static readonly byte[] Meta = new Etcdserverpb.Metadata { NodeID = 0x1234, ClusterID = 0x5678 }.ToByteArray();

    internal static Entry Ent(ulong index, ulong term, string data = "") => new()
    {
        Type = EntryType.EntryNormal,
        Term = term,
        Index = index,
        Data = ByteString.CopyFromUtf8(data.Length == 0 ? $"entry-{index}" : data),
    };

    internal static HardState Hs(ulong term, ulong vote, ulong commit) => new() { Term = term, Vote = vote, Commit = commit };

    private static string WalDir(TempDir t) => t.Sub("member/wal");

    private static string[] Segments(string dir) =>
        Directory.GetFiles(dir, "*.wal").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Fact]
    public void CreateLaysOutFirstSegmentExactlyAsEtcd()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        Assert.False(WalLog.Exist(dir));
        using (WalLog.Create(dir, Meta))
        {
        }
        Assert.True(WalLog.Exist(dir));
        Assert.False(Directory.Exists(dir + ".tmp"));
        Assert.Equal(["0000000000000000-0000000000000000.wal"], Segments(dir));
        string seg = Path.Combine(dir, "0000000000000000-0000000000000000.wal");
        Assert.Equal(WalLog.SegmentSizeBytes, new FileInfo(seg).Length);

        // Expected bytes built by hand from etcd's format: crc record, metadata record, empty snapshot record.
        var expected = new List<byte>();
        uint crc = 0;
        void Frame(long type, byte[]? data)
        {
            crc = Crc32C.Update(crc, data ?? []);
            var rec = new List<byte> { 0x08 };
            rec.AddRange(Varint((ulong)type));
            rec.Add(0x10);
            rec.AddRange(Varint(crc));
            if (data != null)
            {
                rec.Add(0x1a);
                rec.AddRange(Varint((ulong)data.Length));
                rec.AddRange(data);
            }
            int pad = (8 - (rec.Count % 8)) % 8;
            ulong len = (ulong)(uint)rec.Count | (pad != 0 ? (ulong)(uint)(0x80 | pad) << 56 : 0UL);
            byte[] lenBytes = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lenBytes, len);
            expected.AddRange(lenBytes);
            expected.AddRange(rec);
            expected.AddRange(new byte[pad]);
        }
        Frame(4, null);
        Frame(1, Meta);
        Frame(5, [0x08, 0x00, 0x10, 0x00]);

        byte[] head = new byte[expected.Count + 64];
        using (var fs = File.OpenRead(seg))
        {
            fs.ReadExactly(head);
        }
        Assert.Equal(expected.ToArray(), head[..expected.Count]);
        Assert.All(head[expected.Count..], b => Assert.Equal(0, b));
        // The first crc record: length word 4 with 4 pad bytes flagged.
        Assert.Equal(new byte[] { 4, 0, 0, 0, 0, 0, 0, 0x84, 0x08, 0x04, 0x10, 0x00, 0, 0, 0, 0 }, head[..16]);
    }

    private static IEnumerable<byte> Varint(ulong v)
    {
        while (v >= 0x80)
        {
            yield return (byte)(v | 0x80);
            v >>= 7;
        }
        yield return (byte)v;
    }

    [Fact]
    public void CreateRefusesExistingWal()
    {
        using var t = new TempDir();
        using (WalLog.Create(WalDir(t), Meta))
        {
        }
        var ex = Assert.Throws<WalException>(() => WalLog.Create(WalDir(t), Meta));
        Assert.Equal(WalErrorKind.AlreadyExists, ex.Kind);
    }

    [Fact]
    public void RoundTripAcrossReopen()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 0), [Ent(1, 1), Ent(2, 1)]);
            w.Save(Hs(1, 1, 2), []);
            w.Save(Hs(2, 3, 2), [Ent(3, 2, "three")]);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            WalReadResult r = w.ReadAll();
            Assert.Equal(Meta, r.Metadata);
            Assert.Equal(Hs(2, 3, 2), r.State);
            Assert.Equal([Ent(1, 1), Ent(2, 1), Ent(3, 2, "three")], r.Entries);
            // After ReadAll it appends.
            w.Save(Hs(2, 3, 3), [Ent(4, 2)]);
        }
        using (var w = WalLog.OpenForRead(dir, new Walpb.Snapshot()))
        {
            WalReadResult r = w.ReadAll();
            Assert.Equal(4, r.Entries.Count);
            Assert.Equal(Hs(2, 3, 3), r.State);
            Assert.Throws<InvalidOperationException>(() => w.Save(Hs(3, 3, 3), [Ent(5, 3)]));
        }
    }

    [Fact]
    public void EntriesOverwrittenByLaterIndexesAreReplaced()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1), Ent(2, 1), Ent(3, 1), Ent(4, 1)]);
            w.Save(Hs(2, 2, 1), [Ent(2, 2, "new2"), Ent(3, 2, "new3")]);
        }
        using var r = WalLog.Open(dir, new Walpb.Snapshot());
        var res = r.ReadAll();
        Assert.Equal([Ent(1, 1), Ent(2, 2, "new2"), Ent(3, 2, "new3")], res.Entries);
    }

    [Fact]
    public void ReadAllFromSnapshotIndex()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 10), Enumerable.Range(1, 10).Select(i => Ent((ulong)i, 1)).ToList());
            w.SaveSnapshot(new Walpb.Snapshot { Index = 5, Term = 1 });
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot { Index = 5, Term = 1 }))
        {
            var r = w.ReadAll();
            Assert.Equal(Enumerable.Range(6, 5).Select(i => (ulong)i), r.Entries.Select(e => e.Index));
            Assert.Equal(10ul, r.State.Commit);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot { Index = 5, Term = 2 }))
        {
            Assert.Equal(WalErrorKind.SnapshotMismatch, Assert.Throws<WalException>(() => w.ReadAll()).Kind);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot { Index = 7, Term = 1 }))
        {
            var ex = Assert.Throws<WalException>(() => w.ReadAll());
            Assert.Equal(WalErrorKind.SnapshotNotFound, ex.Kind);
            Assert.Equal("wal: snapshot not found", ex.Message);
        }
        Assert.Equal([new Walpb.Snapshot { Index = 0, Term = 0 }, new Walpb.Snapshot { Index = 5, Term = 1 }], WalLog.ValidSnapshotEntries(dir));
    }

    [Fact]
    public void ValidSnapshotEntriesDropsSnapshotsAboveCommit()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 3), Enumerable.Range(1, 6).Select(i => Ent((ulong)i, 1)).ToList());
            w.SaveSnapshot(new Walpb.Snapshot { Index = 2, Term = 1 });
            w.SaveSnapshot(new Walpb.Snapshot { Index = 5, Term = 1 });
        }
        Assert.Equal([0ul, 2ul], WalLog.ValidSnapshotEntries(dir).Select(s => s.Index));
    }

    [Fact]
    public void SegmentsAreCutAndCrcChainsAcrossThem()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        const long seg = 8 * 1024;
        var written = new List<Entry>();
        using (var w = WalLog.CreateWithSegmentSize(dir, Meta, seg))
        {
            for (ulong i = 1; i <= 200; i++)
            {
                var e = Ent(i, 1, new string('x', 100 + (int)(i % 37)));
                written.Add(e);
                w.Save(Hs(1, 1, i), [e]);
            }
        }
        string[] segs = Segments(dir);
        Assert.True(segs.Length >= 3, $"only {segs.Length} segments");
        Assert.DoesNotContain(Directory.GetFiles(dir), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        ulong prevIndex = 0;
        for (int i = 0; i < segs.Length; i++)
        {
            Assert.StartsWith($"{(ulong)i:x16}-", segs[i]);
            ulong idx = Convert.ToUInt64(segs[i][17..33], 16);
            Assert.True(i == 0 || idx > prevIndex);
            prevIndex = idx;
            if (i < segs.Length - 1)
            {
                // Closed segments are truncated to their last record: just past the segment size, not preallocated.
                long len = new FileInfo(Path.Combine(dir, segs[i])).Length;
                Assert.InRange(len, seg, seg + 1024);
            }
        }
        using (var w = WalLog.OpenWithSegmentSize(dir, new Walpb.Snapshot(), seg))
        {
            var r = w.ReadAll();
            Assert.Equal(written, r.Entries);
            Assert.Equal(Hs(1, 1, 200), r.State);
        }

        // Each later segment opens with a crc record carrying the previous segment's final crc: break one.
        string second = Path.Combine(dir, segs[1]);
        byte[] b = File.ReadAllBytes(second);
        Assert.Equal(0x08, b[8]);
        Assert.Equal(0x04, b[9]);
        Assert.Equal(0x10, b[10]);
        b[11] ^= 0x01;
        File.WriteAllBytes(second, b);
        using (var w = WalLog.OpenWithSegmentSize(dir, new Walpb.Snapshot(), seg))
        {
            var ex = Assert.Throws<WalException>(() => w.ReadAll());
            Assert.Equal(WalErrorKind.CrcMismatch, ex.Kind);
            Assert.Equal("wal: crc mismatch", ex.Message);
        }
    }

    [Fact]
    public void OpenAtSnapshotSkipsEarlierSegmentsAndFindsNamedIndex()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        const long seg = 4 * 1024;
        using (var w = WalLog.CreateWithSegmentSize(dir, Meta, seg))
        {
            for (ulong i = 1; i <= 100; i++)
            {
                w.Save(Hs(1, 1, i), [Ent(i, 1, new string('y', 120))]);
                if (i == 60)
                {
                    w.SaveSnapshot(new Walpb.Snapshot { Index = 60, Term = 1 });
                }
            }
        }
        using var r = WalLog.OpenWithSegmentSize(dir, new Walpb.Snapshot { Index = 60, Term = 1 }, seg);
        var res = r.ReadAll();
        Assert.Equal(Enumerable.Range(61, 40).Select(i => (ulong)i), res.Entries.Select(e => e.Index));

        // A gap in the sequence is refused.
        string[] segs = Segments(dir);
        File.Delete(Path.Combine(dir, segs[^2]));
        Assert.Equal(WalErrorKind.FileNotFound,
            Assert.Throws<WalException>(() => WalLog.OpenForRead(dir, new Walpb.Snapshot())).Kind);
    }

    [Fact]
    public void TornTailTruncatedMidRecordIsRepaired()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1), Ent(2, 1)]);
            w.Save(Hs(1, 1, 2), [Ent(3, 1, new string('z', 700))]);
        }
        string seg = Path.Combine(dir, Segments(dir)[0]);
        long end = EndOfRecords(seg);
        // Cut into the middle of the last records (the state record and part of entry 3).
        using (var fs = new FileStream(seg, FileMode.Open))
        {
            fs.SetLength(end - 300);
        }

        using (var r = WalLog.OpenForRead(dir, new Walpb.Snapshot()))
        {
            Assert.Equal(2, r.ReadAll().Entries.Count); // read mode stops at the torn record without repairing
        }
        Assert.False(File.Exists(seg + ".broken"));

        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            var res = w.ReadAll();
            Assert.Equal([Ent(1, 1), Ent(2, 1)], res.Entries);
            Assert.Equal(Hs(1, 1, 1), res.State);
            Assert.True(File.Exists(seg + ".broken"));
            w.Save(Hs(2, 2, 2), [Ent(3, 2, "again")]);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            var res = w.ReadAll();
            Assert.Equal([Ent(1, 1), Ent(2, 1), Ent(3, 2, "again")], res.Entries);
            Assert.Equal(Hs(2, 2, 2), res.State);
        }
    }

    [Fact]
    public void TornTailWithZeroedSectorIsRepairedAndJunkAfterIsZeroed()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1)]);
            w.Save(Hs(1, 1, 1), [Ent(2, 1, new string('q', 2000))]);
        }
        string seg = Path.Combine(dir, Segments(dir)[0]);
        long end = EndOfRecords(seg);
        byte[] b = File.ReadAllBytes(seg);
        // Zero one 512-byte sector inside entry 2's payload (as a crash before that sector reached the disk would).
        long sector = ((end - 1200) / 512) * 512;
        Array.Clear(b, (int)sector, 512);
        // Leave stray non-zero bytes past the end, as a torn later write might.
        b[end + 100] = 0xAB;
        File.WriteAllBytes(seg, b);

        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            var res = w.ReadAll();
            Assert.Equal([Ent(1, 1)], res.Entries);
            w.Save(Hs(1, 1, 2), [Ent(2, 1, "short")]);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            Assert.Equal([Ent(1, 1), Ent(2, 1, "short")], w.ReadAll().Entries);
        }
    }

    [Fact]
    public void BitFlipInsideARecordIsCrcMismatch()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1, "aaaaaaaaaaaaaaaaaaaaaaaa"), Ent(2, 1), Ent(3, 1)]);
        }
        string seg = Path.Combine(dir, Segments(dir)[0]);
        byte[] b = File.ReadAllBytes(seg);
        int at = IndexOf(b, "aaaaaaaaaaaa"u8.ToArray());
        Assert.True(at > 0);
        b[at + 3] ^= 0x04;
        File.WriteAllBytes(seg, b);
        using var r = WalLog.Open(dir, new Walpb.Snapshot());
        var ex = Assert.Throws<WalException>(() => r.ReadAll());
        Assert.Equal(WalErrorKind.CrcMismatch, ex.Kind);
        Assert.Equal("walpb: crc mismatch", ex.Message);
    }

    [Fact]
    public void ConflictingMetadataIsRefused()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1)]);
        }
        string seg = Path.Combine(dir, Segments(dir)[0]);
        // Append a metadata record with other bytes (correctly chained) after the existing records.
        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            w.ReadAll();
        }
        long end = EndOfRecords(seg, out uint crc);
        using (var h = File.OpenHandle(seg, FileMode.Open, FileAccess.ReadWrite))
        {
            using var enc = new WalEncoder(h, end, crc);
            enc.EncodeRaw(1, [1, 2, 3], hasData: true);
            enc.Flush();
        }
        using var r = WalLog.Open(dir, new Walpb.Snapshot());
        var ex = Assert.Throws<WalException>(() => r.ReadAll());
        Assert.Equal(WalErrorKind.MetadataConflict, ex.Kind);
        Assert.Equal("wal: conflicting metadata found", ex.Message);
    }

    [Fact]
    public void DecodesEtcdsOwnRecordFixture()
    {
        // etcd's wal/record_test.go infoRecord: an unpadded 14-byte record of type 1.
        byte[] infoData = [0x08, 0xef, 0xfd, 0x02];
        byte[] info = [0x0e, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x01, 0x10, 0x99, 0xb5, 0xe4, 0xd0, 0x03, 0x1a, 0x04, .. infoData];
        using var t = new TempDir();
        string f = t.Sub("r");
        File.WriteAllBytes(f, info);
        using (var h = File.OpenHandle(f))
        {
            var d = new WalDecoder([h]);
            Assert.Equal(DecodeStatus.Record, d.Decode());
            Assert.Equal(1, d.Type);
            Assert.Equal(Crc32C.Compute(infoData), d.RecordCrc);
            Assert.Equal(infoData, d.Data.ToArray());
            Assert.Equal(DecodeStatus.Eof, d.Decode());
        }
        foreach (int cut in new[] { 8, info.Length - 4 - 8, info.Length - 4, info.Length - 8, 5 })
        {
            File.WriteAllBytes(f, info[..cut]);
            using var h = File.OpenHandle(f);
            Assert.Equal(DecodeStatus.UnexpectedEof, new WalDecoder([h]).Decode());
        }
    }

    [Fact]
    public void SecondOpenForAppendIsLockedOut()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(Hs(1, 1, 1), [Ent(1, 1)]);
            var ex = Assert.Throws<FileLockedException>(() => WalLog.Open(dir, new Walpb.Snapshot()));
            Assert.Equal("fileutil: file already locked", ex.Message);
            // Reading beside a writer is allowed.
            using var r = WalLog.OpenForRead(dir, new Walpb.Snapshot());
            Assert.Single(r.ReadAll().Entries);
        }
        using (var w = WalLog.Open(dir, new Walpb.Snapshot()))
        {
            Assert.Single(w.ReadAll().Entries);
        }
    }

    [Fact]
    public void ReleaseLockToFreesOldSegments()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        const long seg = 4 * 1024;
        using var w = WalLog.CreateWithSegmentSize(dir, Meta, seg);
        for (ulong i = 1; i <= 120; i++)
        {
            w.Save(Hs(1, 1, i), [Ent(i, 1, new string('r', 150))]);
        }
        string[] segs = Segments(dir);
        Assert.True(segs.Length >= 4);
        Assert.Throws<FileLockedException>(() => LockedFile.TryLock(Path.Combine(dir, segs[0]), create: false).Dispose());
        ulong thirdIndex = Convert.ToUInt64(segs[2][17..33], 16);
        w.ReleaseLockTo(thirdIndex); // keeps the segment before the third (it may hold index - 1)
        LockedFile.TryLock(Path.Combine(dir, segs[0]), create: false).Dispose();
        Assert.Throws<FileLockedException>(() => LockedFile.TryLock(Path.Combine(dir, segs[1]), create: false).Dispose());
        Assert.Throws<FileLockedException>(() => LockedFile.TryLock(Path.Combine(dir, segs[^1]), create: false).Dispose());
    }

    [Fact]
    public void EmptySaveIsNoOpAndUnsyncedCommitSurvivesClose()
    {
        using var t = new TempDir();
        string dir = WalDir(t);
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(new HardState(), []);
            w.Save(Hs(1, 1, 0), [Ent(1, 1)]);
            w.Save(Hs(1, 1, 1), []); // commit only: no sync needed, written at the next sync / close
        }
        using var r = WalLog.Open(dir, new Walpb.Snapshot());
        Assert.Equal(Hs(1, 1, 1), r.ReadAll().State);
        Assert.Equal(WalErrorKind.DecoderNotFound, Assert.Throws<WalException>(() => r.ReadAll()).Kind);
    }

    [Fact]
    public void OpenOnMissingOrEmptyDirIsFileNotFound()
    {
        using var t = new TempDir();
        Assert.Equal(WalErrorKind.FileNotFound, Assert.Throws<WalException>(() => WalLog.Open(t.Sub("nope"), new Walpb.Snapshot())).Kind);
        Assert.Equal(WalErrorKind.FileNotFound, Assert.Throws<WalException>(() => WalLog.Open(t.Path, new Walpb.Snapshot())).Kind);
    }

    /// <summary>Offset just past the last valid record in a single segment file, and the crc there.</summary>
    internal static long EndOfRecords(string seg) => EndOfRecords(seg, out _);

    internal static long EndOfRecords(string seg, out uint crc)
    {
        using var h = File.OpenHandle(seg);
        var d = new WalDecoder([h]);
        while (d.Decode() == DecodeStatus.Record)
        {
            if (d.Type == 4)
            {
                d.UpdateCrc(d.RecordCrc);
            }
        }
        crc = d.Crc;
        return d.LastOffset;
    }

    private static int IndexOf(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle);
}

public class WalSegmentTests
{
    private static readonly byte[] Meta = [0x08, 0x01, 0x10, 0x02];

    [Fact]
    public void RealSegmentSizeCutsAt64MB()
    {
        using var t = new TempDir();
        string dir = t.Sub("wal");
        var payload = new string('m', 1024 * 1024);
        int n = 0;
        using (var w = WalLog.Create(dir, Meta))
        {
            w.UnsafeNoFsync = true; // keep the test fast; the bytes are the same
            while (Directory.GetFiles(dir, "*.wal").Length < 2 && n < 80)
            {
                n++;
                w.Save(WalTests.Hs(1, 1, (ulong)n), [WalTests.Ent((ulong)n, 1, payload)]);
            }
        }
        string[] segs = Directory.GetFiles(dir, "*.wal").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, segs.Length);
        // 61 one-MiB entry records stay below 64,000,000 bytes; the Save that reaches it (the 62nd) cuts.
        Assert.Equal(62, n);
        long first = new FileInfo(segs[0]).Length;
        Assert.InRange(first, WalLog.SegmentSizeBytes, WalLog.SegmentSizeBytes + (1024 * 1024) + 64);
        Assert.Equal($"0000000000000001-{(ulong)(n + 1):x16}.wal", Path.GetFileName(segs[1]));
        Assert.Equal(WalLog.SegmentSizeBytes, new FileInfo(segs[1]).Length); // preallocated
        using var r = WalLog.OpenForRead(dir, new Walpb.Snapshot());
        Assert.Equal(n, r.ReadAll().Entries.Count);
    }

    [Fact]
    public void StaleTempFilesAreIgnoredAndReused()
    {
        using var t = new TempDir();
        string dir = t.Sub("wal");
        const long seg = 4 * 1024;
        using (var w = WalLog.CreateWithSegmentSize(dir, Meta, seg))
        {
            w.Save(WalTests.Hs(1, 1, 1), [WalTests.Ent(1, 1)]);
        }
        byte[] junk = new byte[3 * seg];
        new Random(7).NextBytes(junk);
        File.WriteAllBytes(Path.Combine(dir, "0.tmp"), junk);
        File.WriteAllBytes(Path.Combine(dir, "1.tmp"), junk);
        using (var w = WalLog.OpenWithSegmentSize(dir, new Walpb.Snapshot(), seg))
        {
            Assert.Single(w.ReadAll().Entries);
            for (ulong i = 2; i <= 100; i++)
            {
                w.Save(WalTests.Hs(1, 1, i), [WalTests.Ent(i, 1, new string('s', 200))]);
            }
        }
        Assert.True(Directory.GetFiles(dir, "*.wal").Length > 3);
        using (var w = WalLog.OpenWithSegmentSize(dir, new Walpb.Snapshot(), seg))
        {
            Assert.Equal(100, w.ReadAll().Entries.Count);
        }
    }

    [Fact]
    public void MissingSnapshotCanBeToleratedOnRequest()
    {
        using var t = new TempDir();
        string dir = t.Sub("wal");
        using (var w = WalLog.Create(dir, Meta))
        {
            w.Save(WalTests.Hs(1, 1, 3), [WalTests.Ent(1, 1), WalTests.Ent(2, 1), WalTests.Ent(3, 1)]);
        }
        using var r = WalLog.OpenForRead(dir, new Walpb.Snapshot { Index = 1, Term = 1 });
        WalReadResult res = r.ReadAll(requireSnapshot: false);
        Assert.False(res.SnapshotFound);
        Assert.Equal([2ul, 3ul], res.Entries.Select(e => e.Index));
    }
}

public class WalCrashTests
{
    private static readonly byte[] Meta = [0x08, 0x01, 0x10, 0x02];

    private static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }

    [Fact]
    public void CopyTakenWhileOpenReadsLikeACrashAtThatPoint()
    {
        using var t = new TempDir();
        string dir = t.Sub("wal");
        const long seg = 4 * 1024;
        using var w = WalLog.CreateWithSegmentSize(dir, Meta, seg);
        for (ulong i = 1; i <= 50; i++)
        {
            w.Save(WalTests.Hs(1, 1, i - 1), [WalTests.Ent(i, 1, new string('c', 180))]);
        }
        w.Save(WalTests.Hs(1, 1, 50), []); // commit only: buffered, not yet on disk

        // "Crash" now: what the files hold is every synced record; the unsynced commit is not there.
        string crashed = t.Sub("crashed");
        CopyDir(dir, crashed);
        using (var r = WalLog.OpenWithSegmentSize(crashed, new Walpb.Snapshot(), seg))
        {
            var res = r.ReadAll();
            Assert.Equal(50, res.Entries.Count);
            Assert.Equal(WalTests.Hs(1, 1, 49), res.State);
            r.Save(WalTests.Hs(2, 2, 50), [WalTests.Ent(51, 2)]);
        }
        using (var r = WalLog.OpenWithSegmentSize(crashed, new Walpb.Snapshot(), seg))
        {
            Assert.Equal(51, r.ReadAll().Entries.Count);
        }

        // After an explicit Sync the commit is durable too.
        w.Sync();
        string synced = t.Sub("synced");
        CopyDir(dir, synced);
        using (var r = WalLog.OpenWithSegmentSize(synced, new Walpb.Snapshot(), seg))
        {
            Assert.Equal(WalTests.Hs(1, 1, 50), r.ReadAll().State);
        }
    }

    [Fact]
    public void LargeUnsyncedSavesAreWrittenPastTheWatermark()
    {
        using var t = new TempDir();
        string dir = t.Sub("wal");
        using var w = WalLog.Create(dir, Meta);
        w.Save(WalTests.Hs(1, 1, 0), [WalTests.Ent(1, 1)]);
        string seg = Directory.GetFiles(dir, "*.wal").Single();
        long before = WalTests.EndOfRecords(seg);
        // Commit-only saves need no sync; once more than 128 KiB are pending they are written out anyway.
        for (ulong c = 1; c <= 6000; c++)
        {
            w.Save(WalTests.Hs(1, 1, c % 2 == 0 ? 1UL : 0UL), []);
        }
        // What is on disk (read through a separate handle) already runs past the watermark.
        Assert.True(WalTests.EndOfRecords(seg) - before > 128 * 1024);
    }
}
