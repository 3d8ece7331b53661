using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class RestoreTests
{
    [Fact]
    public void RestoredStoreAnswersIdentically()
    {
        var backend = new InMemoryBackend();
        var lessor = new FakeLessor();
        lessor.Granted.UnionWith([5, 6]);
        var s = new KvStore(backend, lessor);
        s.Put("a", "1");
        s.Put("b", "1", lease: 5);
        s.Put("a", "2");
        s.Del("a");
        s.Put("a", "3", lease: 6);
        s.Put("c", "1", lease: 5);
        s.Put("c", "2");
        s.Txn(new TxnRequest { Success = { OpPut("d", "1"), OpDel("d"), OpPut("e", "1") } });
        s.Put("d", "2");
        s.Compact(new CompactionRequest { Revision = 4 });
        var answers = Enumerable.Range(4, (int)s.CurrentRevision - 3).Select(r => s.GetAll(r)).ToList();
        var hash = s.HashByRevision(0);
        var rev = s.CurrentRevision;
        s.Dispose();

        var lessor2 = new FakeLessor();
        lessor2.Granted.UnionWith([5, 6]);
        using var restored = new KvStore(backend, lessor2);
        Assert.Equal(rev, restored.CurrentRevision);
        Assert.Equal(4, restored.CompactRevision);
        Assert.Equal(answers, Enumerable.Range(4, (int)rev - 3).Select(r => restored.GetAll(r)).ToList());
        Assert.Equal(hash, restored.HashByRevision(0));
        // live keys with leases are attached again: a -> 6, b -> 5; c lost its lease
        Assert.Equal(new[] { "attach 5 b", "attach 6 a" }, lessor2.Calls.Order());

        // versions continue from the restored generations
        restored.Put("a", "4");
        var a = restored.Get("a").Kvs[0];
        Assert.Equal((6L, 2L), (a.CreateRevision, a.Version));
        restored.Put("d", "3");
        var d = restored.Get("d").Kvs[0];
        Assert.Equal(2, d.Version);
        // overwriting b detaches its restored lease
        restored.Put("b", "2");
        Assert.Contains("detach 5 b", lessor2.Calls);
    }

    [Fact]
    public void RestoreIgnoresTombstonesOfCompactedKeys()
    {
        var backend = new InMemoryBackend();
        using (var s = new KvStore(backend))
        {
            s.Put("a", "1"); // 2
            s.Put("a", "2"); // 3
            s.Del("a");      // 4
            s.Put("b", "1"); // 5
            s.Compact(new CompactionRequest { Revision = 3 });
        }

        using var restored = new KvStore(backend);
        Assert.Equal(5, restored.CurrentRevision);
        Assert.Equal(new[] { "2" }, restored.Get("a", rev: 3).Values());
        Assert.Empty(restored.Get("a").Kvs);
        Assert.Equal(1, restored.Put("a", "x").Header.Revision - 5);
        Assert.Equal(1, restored.Get("a").Kvs[0].Version);
    }
}

public sealed class RestoreFromSnapshotTests
{
    [Fact]
    public void RestoreSwapsTheBackendAndKeepsTheObserver()
    {
        var other = new InMemoryBackend();
        using (var donor = new KvStore(other))
        {
            donor.Put("x", "1"); // 2
            donor.Put("y", "1"); // 3
            donor.Put("x", "2"); // 4
            donor.Compact(new CompactionRequest { Revision = 3 });
        }

        var observer = new RecordingObserver();
        using var s = new KvStore(new InMemoryBackend());
        s.SetObserver(observer);
        s.Put("old", "1");
        s.Restore(other);
        Assert.Same(other, s.Backend);
        Assert.Equal(4, s.CurrentRevision);
        Assert.Equal(3, s.CompactRevision);
        Assert.Equal(new[] { "x", "y" }, s.GetAll().Keys());
        Assert.Equal(new[] { "1", "1" }, s.GetAll(3).Values());
        s.Put("z", "1");
        Assert.Equal(new long[] { 2, 5 }, observer.Batches.Select(b => b.Rev));
    }
}

public sealed class ConcurrencyTests
{
    [Fact]
    public async Task ReadersNeverSeeHalfATransaction()
    {
        using var s = new KvStore(new InMemoryBackend());
        s.Txn(new TxnRequest { Success = { OpPut("x", "0"), OpPut("y", "0") } });
        using var done = new CancellationTokenSource();
        const int writes = 400;

        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(() =>
        {
            long lastRev = 0;
            var reads = 0;
            while (!done.IsCancellationRequested || reads == 0)
            {
                var r = s.Range(new RangeRequest { Key = B("x"), RangeEnd = B("z") });
                Assert.Equal(2, r.Kvs.Count);
                Assert.Equal(S(r.Kvs[0].Value), S(r.Kvs[1].Value));
                Assert.True(r.Header.Revision >= lastRev);
                lastRev = r.Header.Revision;
                // historical reads stay consistent while the writer works
                var old = s.Range(new RangeRequest { Key = B("x"), Revision = 2 });
                Assert.Equal("0", S(old.Kvs[0].Value));
                reads++;
            }

            return reads;
        })).ToArray();

        var writer = Task.Run(() =>
        {
            for (var i = 1; i <= writes; i++)
            {
                s.Txn(new TxnRequest { Success = { OpPut("x", i.ToString()), OpPut("y", i.ToString()) } });
            }

            done.Cancel();
        });

        await writer.WaitAsync(TimeSpan.FromSeconds(30));
        var counts = await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(counts, c => Assert.True(c > 0));
        Assert.Equal(2 + writes, s.CurrentRevision);
    }

    [Fact]
    public async Task CompactionRunsAlongsideReaders()
    {
        using var s = new KvStore(new InMemoryBackend(), null, new KvStoreOptions { CompactionBatchLimit = 3 });
        for (var i = 0; i < 200; i++)
        {
            s.Put($"k{i % 10}", i.ToString());
        }

        var reader = Task.Run(() =>
        {
            for (var i = 0; i < 300; i++)
            {
                var r = s.Range(new RangeRequest { Key = B("k"), RangeEnd = B("l") });
                Assert.Equal(10, r.Kvs.Count);
            }
        });
        for (var rev = 20; rev <= 200; rev += 20)
        {
            s.Compact(new CompactionRequest { Revision = rev });
        }

        await reader.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(200, s.CompactRevision);
    }
}
