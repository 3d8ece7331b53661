using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class CompactionTests
{
    private readonly InMemoryBackend _backend = new();

    private static void Fill(KvStore s)
    {
        s.Put("a", "5"); // 2
        s.Put("b", "3"); // 3
        s.Put("c", "4"); // 4
        s.Put("b", "1"); // 5
        s.Put("d", "2"); // 6
        s.Put("a", "9"); // 7
        s.Put("a", "0"); // 8
        s.Put("e", "7"); // 9
    }

    private List<Revision> StoredRevisions()
    {
        var revs = new List<Revision>();
        using var rtx = _backend.ConcurrentReadTx();
        rtx.ForEach(MvccSchema.KeyBucket, (k, _) =>
        {
            revs.Add(Revision.FromBytes(k));
            return true;
        });
        return revs;
    }

    [Fact]
    public void CompactErrors()
    {
        using var s = new KvStore(_backend);
        Fill(s);
        Assert.Same(EtcdErrors.FutureRev, Error(() => s.Compact(new CompactionRequest { Revision = 10 })));
        var r = s.Compact(new CompactionRequest { Revision = 5 });
        Assert.Equal(9, r.Header.Revision);
        Assert.Equal(5, s.CompactRevision);
        Assert.Same(EtcdErrors.Compacted, Error(() => s.Compact(new CompactionRequest { Revision = 5 })));
        Assert.Same(EtcdErrors.Compacted, Error(() => s.Compact(new CompactionRequest { Revision = 4 })));
        s.Compact(new CompactionRequest { Revision = 9, Physical = true });
        Assert.Equal(9, s.CompactRevision);
    }

    [Fact]
    public void ReadsAtOrAfterCompactRevisionStillWork()
    {
        using var s = new KvStore(_backend);
        Fill(s);
        var before = s.GetAll(5);
        s.Compact(new CompactionRequest { Revision = 5 });
        Assert.Equal(before, s.GetAll(5));
        Assert.Equal(new[] { "5", "1", "4" }, s.GetAll(5).Values());
        Assert.Same(EtcdErrors.Compacted, Error(() => s.GetAll(4)));
        Assert.Same(EtcdErrors.Compacted, Error(() => s.Get("a", rev: 1)));
        Assert.Equal(5, s.GetAll(9).Count);
    }

    [Fact]
    public void PhysicalRemovalKeepsOnlyWhatIsNeeded()
    {
        using var s = new KvStore(_backend, null, new KvStoreOptions { CompactionBatchLimit = 2 });
        Fill(s);
        s.Del("c"); // 10
        s.Compact(new CompactionRequest { Revision = 7 });
        // needed at 7: a@7, b@5, c@4, d@6; a@2 and b@3 go; everything after 7 stays
        Assert.Equal(
            new[] { new Revision(4, 0), new Revision(5, 0), new Revision(6, 0), new Revision(7, 0), new Revision(8, 0), new Revision(9, 0), new Revision(10, 0) },
            StoredRevisions());
        s.Compact(new CompactionRequest { Revision = 10 });
        // c's tombstone at 10 ends its only generation: both c@4 and the tombstone go
        Assert.Equal(new[] { new Revision(5, 0), new Revision(6, 0), new Revision(8, 0), new Revision(9, 0) }, StoredRevisions());
        Assert.Equal(new[] { "a", "b", "d", "e" }, s.GetAll().Keys());
        using var rtx = _backend.ConcurrentReadTx();
        Assert.Equal(new Revision(10, 0).ToBytes(), rtx.Get(MvccSchema.MetaBucket, MvccSchema.ScheduledCompactKey));
        Assert.Equal(new Revision(10, 0).ToBytes(), rtx.Get(MvccSchema.MetaBucket, MvccSchema.FinishedCompactKey));
    }

    [Fact]
    public void CompactedKeyIndexDropsDeadKeys()
    {
        using var s = new KvStore(_backend);
        s.Put("x", "1"); // 2
        s.Del("x");      // 3
        s.Put("y", "1"); // 4
        s.Compact(new CompactionRequest { Revision = 4 });
        Assert.Equal(new[] { new Revision(4, 0) }, StoredRevisions());
        Assert.Equal(new[] { "y" }, s.GetAll().Keys());
        // recreate the dead key: a new life with version 1
        s.Put("x", "2");
        var kv = s.Get("x").Kvs[0];
        Assert.Equal((5L, 1L), (kv.CreateRevision, kv.Version));
    }

    [Fact]
    public void RestartFinishesAScheduledCompaction()
    {
        using (var s = new KvStore(_backend))
        {
            Fill(s);
        }

        // simulate a crash after scheduling compaction at 8 but before the physical phase
        var tx = _backend.BatchTx;
        tx.Lock();
        tx.Put(MvccSchema.MetaBucket, MvccSchema.ScheduledCompactKey, new Revision(8, 0).ToBytes());
        tx.Unlock();
        Assert.Equal(8, StoredRevisions().Count);

        using var restored = new KvStore(_backend);
        Assert.Equal(8, restored.CompactRevision);
        Assert.Equal(9, restored.CurrentRevision);
        Assert.DoesNotContain(new Revision(2, 0), StoredRevisions());
        Assert.DoesNotContain(new Revision(7, 0), StoredRevisions());
        Assert.Same(EtcdErrors.Compacted, Error(() => restored.GetAll(7)));
        Assert.Equal(new[] { "0", "1", "4", "2" }, restored.GetAll(8).Values());
    }

    [Fact]
    public void RestartAfterCompactingEverythingKeepsTheRevision()
    {
        using (var s = new KvStore(_backend))
        {
            s.Put("a", "1");
            s.Del("a");
            s.Compact(new CompactionRequest { Revision = 3 });
            Assert.Empty(StoredRevisions());
        }

        using var restored = new KvStore(_backend);
        Assert.Equal(3, restored.CurrentRevision);
        Assert.Equal(3, restored.CompactRevision);
        Assert.Equal(4, restored.Put("a", "2").Header.Revision);
    }

    // Hashes below were produced by etcd 3.4.23 (`etcdctl endpoint hashkv`) for the same writes.
    [Fact]
    public void HashMatchesEtcdOnEmptyStore()
    {
        using var s = new KvStore(_backend);
        var h = s.HashByRevision(0);
        Assert.Equal(new KvHash(1084519789u, 1, -1, 1), h);
    }

    [Fact]
    public void HashMatchesEtcdWithoutCompaction()
    {
        using var s = new KvStore(_backend);
        Fill(s);
        s.Del("b"); // 10
        Assert.Equal(494066251u, s.HashByRevision(0).Hash);
        Assert.Equal(new KvHash(690805775u, 4, -1, 10), s.HashByRevision(4));
    }

    [Fact]
    public void HashMatchesEtcdAfterCompaction()
    {
        using var s = new KvStore(_backend);
        Fill(s);
        s.Compact(new CompactionRequest { Revision = 5 });
        Assert.Equal(new KvHash(2771851033u, 9, 5, 9), s.HashByRevision(0));
        Assert.Equal(3661768492u, s.HashByRevision(6).Hash);
        Assert.Equal(1440067291u, s.HashByRevision(7).Hash);
        Assert.Equal(2771851033u, s.HashByRevision(9).Hash);
        Assert.Same(EtcdErrors.Compacted, Error(() => s.HashByRevision(5)));
        Assert.Same(EtcdErrors.FutureRev, Error(() => s.HashByRevision(10)));
        s.Del("c");
        s.Put("c", "x");
        Assert.Equal(3196946730u, s.HashByRevision(0).Hash);
    }
}
