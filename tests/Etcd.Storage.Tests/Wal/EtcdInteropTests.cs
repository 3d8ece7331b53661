using Etcd.Storage.Wal;
using Google.Protobuf;
using Raftpb;
using WalLog = Etcd.Storage.Wal.Wal;

namespace Etcd.Storage.Tests.Wal;

/// <summary>Reads WALs written by the real etcd 3.4.23 and checks our encoder reproduces them byte for byte.</summary>
public class EtcdInteropTests
{
    [RealEtcdFact]
    public async Task ReadsWalWrittenByRealEtcd()
    {
        using var t = new TempDir();
        string dataDir = t.Sub("etcd-data");
        await using (RealEtcd etcd = await RealEtcd.StartAsync(dataDir))
        {
            for (int i = 1; i <= 3; i++)
            {
                Assert.Equal("OK", (await etcd.CtlAsync("put", $"interop-key-{i}", $"value-{i}")).Trim());
            }
            await etcd.CtlAsync("del", "interop-key-2");
            // etcd holds OFD locks on its segments; ours are the same kind, so a second writer is refused.
            Assert.Throws<Etcd.Storage.FileSystem.FileLockedException>(
                () => WalLog.Open(Path.Combine(dataDir, "member", "wal"), new Walpb.Snapshot()).Dispose());
            await etcd.StopAsync();
        }

        string walDir = Path.Combine(dataDir, "member", "wal");
        Assert.True(WalLog.Exist(walDir));

        WalReadResult r;
        using (WalLog w = WalLog.Open(walDir, new Walpb.Snapshot()))
        {
            r = w.ReadAll();
        }
        var meta = Etcdserverpb.Metadata.Parser.ParseFrom(r.Metadata);
        Assert.NotEqual(0ul, meta.NodeID);
        Assert.NotEqual(0ul, meta.ClusterID);

        var puts = new List<(ulong Index, string Key, string Value)>();
        ulong deleteIndex = 0;
        int confChanges = 0;
        ulong expected = 1;
        foreach (Entry e in r.Entries)
        {
            Assert.Equal(expected++, e.Index);
            if (e.Type == EntryType.EntryConfChange)
            {
                var cc = ConfChange.Parser.ParseFrom(e.Data);
                Assert.Equal(ConfChangeType.ConfChangeAddNode, cc.Type);
                Assert.Equal(meta.NodeID, cc.NodeId);
                confChanges++;
            }
            else if (e.Type == EntryType.EntryNormal && e.Data.Length > 0)
            {
                Etcdserverpb.InternalRaftRequest req;
                try
                {
                    req = Etcdserverpb.InternalRaftRequest.Parser.ParseFrom(e.Data);
                }
                catch (InvalidProtocolBufferException)
                {
                    continue; // a v2 Request (member attributes / cluster version), not an InternalRaftRequest
                }
                if (req.Put != null)
                {
                    puts.Add((e.Index, req.Put.Key.ToStringUtf8(), req.Put.Value.ToStringUtf8()));
                }
                if (req.DeleteRange != null)
                {
                    Assert.Equal("interop-key-2", req.DeleteRange.Key.ToStringUtf8());
                    deleteIndex = e.Index;
                }
            }
        }
        Assert.Equal(1, confChanges);
        Assert.Equal(
            [("interop-key-1", "value-1"), ("interop-key-2", "value-2"), ("interop-key-3", "value-3")],
            puts.Select(p => (p.Key, p.Value)).ToList());
        Assert.True(deleteIndex > puts[^1].Index);
        Assert.True(r.State.Commit >= deleteIndex, $"commit {r.State.Commit} < last write {deleteIndex}");
        Assert.NotEqual(0ul, r.State.Term);
        Assert.Equal(meta.NodeID, r.State.Vote);

        // Re-encoding every record etcd wrote with our encoder gives the same bytes.
        string seg = Directory.GetFiles(walDir, "*.wal").Order(StringComparer.Ordinal).Single();
        Assert.Equal(WalLog.SegmentSizeBytes, new FileInfo(seg).Length); // etcd preallocates 64 * 1000 * 1000 bytes
        AssertReencodesIdentically(seg, t.Sub("reencoded"));
    }

    [RealEtcdFact]
    public async Task RealEtcdAppliesAnEntryWeAppended()
    {
        using var t = new TempDir();
        string dataDir = t.Sub("etcd-data");
        int clientPort, peerPort;
        await using (RealEtcd etcd = await RealEtcd.StartAsync(dataDir))
        {
            clientPort = etcd.ClientPort;
            peerPort = etcd.PeerPort;
            await etcd.CtlAsync("put", "from-etcd", "v1");
            await etcd.StopAsync();
        }

        string walDir = Path.Combine(dataDir, "member", "wal");
        Walpb.Snapshot walSnap = WalLog.ValidSnapshotEntries(walDir)[^1];
        using (WalLog w = WalLog.Open(walDir, walSnap))
        {
            WalReadResult r = w.ReadAll();
            Entry last = r.Entries[^1];
            var req = new Etcdserverpb.InternalRaftRequest
            {
                Header = new Etcdserverpb.RequestHeader { ID = 0x5eed_0001 },
                Put = new Etcdserverpb.PutRequest { Key = ByteString.CopyFromUtf8("from-csharp-wal"), Value = ByteString.CopyFromUtf8("appended") },
            };
            var e = new Entry { Type = EntryType.EntryNormal, Term = r.State.Term, Index = last.Index + 1, Data = req.ToByteString() };
            w.Save(new HardState { Term = r.State.Term, Vote = r.State.Vote, Commit = e.Index }, [e]);
        }
        Assert.Empty(Directory.GetFiles(walDir, "*.tmp"));

        await using (RealEtcd etcd = await RealEtcd.StartAsync(dataDir, clientPort, peerPort))
        {
            Assert.Equal("appended", (await etcd.CtlAsync("get", "from-csharp-wal", "--print-value-only")).Trim());
            Assert.Equal("v1", (await etcd.CtlAsync("get", "from-etcd", "--print-value-only")).Trim());
            await etcd.StopAsync();
        }
    }

    [RealEtcdFact]
    public async Task ReadsSegmentsRealEtcdCut()
    {
        using var t = new TempDir();
        string dataDir = t.Sub("etcd-data");
        byte[] value = new byte[1_000_000];
        new Random(3).NextBytes(value);
        for (int i = 0; i < value.Length; i++)
        {
            value[i] = (byte)('a' + (value[i] % 26)); // printable: etcdctl reads it as text
        }
        int puts = 0;
        string walDir = Path.Combine(dataDir, "member", "wal");
        await using (RealEtcd etcd = await RealEtcd.StartAsync(dataDir))
        {
            // ~1 MB per put: etcd cuts its 64,000,000-byte segment after about 64 of them.
            while (puts < 80 && Directory.GetFiles(walDir, "*.wal").Length < 2)
            {
                puts++;
                value[0] = (byte)('A' + (puts % 26));
                await etcd.CtlWithInputAsync(value, "put", $"big-{puts:D3}");
            }
            await etcd.StopAsync();
        }
        string[] segs = Directory.GetFiles(walDir, "*.wal").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, segs.Length);

        WalReadResult r;
        using (WalLog w = WalLog.Open(walDir, new Walpb.Snapshot()))
        {
            r = w.ReadAll();
        }
        var keys = new List<string>();
        foreach (Entry e in r.Entries.Where(e => e.Type == EntryType.EntryNormal && e.Data.Length > 0))
        {
            try
            {
                var req = Etcdserverpb.InternalRaftRequest.Parser.ParseFrom(e.Data);
                if (req.Put != null)
                {
                    keys.Add(req.Put.Key.ToStringUtf8());
                    Assert.Equal(value.Length, req.Put.Value.Length);
                }
            }
            catch (InvalidProtocolBufferException)
            {
            }
        }
        Assert.Equal(Enumerable.Range(1, puts).Select(i => $"big-{i:D3}"), keys);

        // The second segment starts with etcd's crc record chained from the first; we re-encode both identically.
        AssertReencodesIdentically(segs[0], t.Sub("re0"));
        AssertReencodesIdentically(segs[1], t.Sub("re1"), firstCrcFromChain: true);
    }

    internal static void AssertReencodesIdentically(string seg, string scratch, bool firstCrcFromChain = false)
    {
        long end;
        using (var src = File.OpenHandle(seg))
        using (var dst = File.OpenHandle(scratch, FileMode.Create, FileAccess.ReadWrite))
        {
            var dec = new WalDecoder([src]);
            var enc = new WalEncoder(dst, 0, 0);
            int records = 0;
            while (dec.Decode() == DecodeStatus.Record)
            {
                records++;
                switch (dec.Type)
                {
                    case 2:
                        enc.EncodeEntry(Entry.Parser.ParseFrom(dec.Data));
                        break;
                    case 3:
                        var hs = HardState.Parser.ParseFrom(dec.Data);
                        enc.EncodeState(hs.Term, hs.Vote, hs.Commit);
                        break;
                    case 4:
                        dec.UpdateCrc(dec.RecordCrc);
                        if (records == 1 && firstCrcFromChain)
                        {
                            // A later segment: our encoder continues the chain from the previous segment's crc.
                            enc.Dispose();
                            enc = new WalEncoder(dst, 0, dec.RecordCrc);
                        }
                        enc.EncodeCrc();
                        break;
                    case 5:
                        var s = Walpb.Snapshot.Parser.ParseFrom(dec.Data);
                        enc.EncodeSnapshot(s.Index, s.Term);
                        break;
                    default:
                        enc.EncodeRaw(dec.Type, dec.Data, dec.HasData);
                        break;
                }
            }
            enc.Flush();
            end = dec.LastOffset;
            Assert.Equal(end, enc.Offset);
            Assert.True(records > 2, $"only {records} records");
            enc.Dispose();
        }
        byte[] a = File.ReadAllBytes(seg)[..(int)end];
        byte[] b = File.ReadAllBytes(scratch);
        Assert.Equal(a.Length, b.Length);
        int diff = a.AsSpan().CommonPrefixLength(b);
        Assert.True(diff == a.Length, $"first differing byte at {diff} of {a.Length}");
    }
}
