using System.Text;
using Etcd.Storage.Backend;
using Etcd.Storage.Bolt;
using static Etcd.Storage.Tests.Bolt.BoltTestUtil;

namespace Etcd.Storage.Tests.Bolt;

public class BoltBackendTests
{
    private static BoltBackend Open(string path, int batchLimit = 10000, int intervalMs = 100)
        => new(new BoltBackendOptions { Path = path, BatchLimit = batchLimit, BatchInterval = TimeSpan.FromMilliseconds(intervalMs), UnsafeNoFsync = true, InitialMmapSize = 0 });

    private static List<string> Scan(IBucketReader r, string bucket, byte[]? start = null, byte[]? end = null)
    {
        var list = new List<string>();
        r.Range(bucket, start ?? default, end ?? default, (k, v) =>
        {
            list.Add(Convert.ToHexString(k) + "=" + Convert.ToHexString(v));
            return true;
        });
        return list;
    }

    [Fact]
    public void ReadersSeeUnlockedWritesBeforeCommitAndDurableAfterForceCommit()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using (var be = Open(path, intervalMs: 60_000))
        {
            var tx = be.BatchTx;
            tx.Lock();
            tx.CreateBucket("key");
            tx.Put("key", B("a"), B("1"));
            tx.Put("key", B("b"), B("2"));
            using (var during = be.ConcurrentReadTx())
            {
                Assert.False(during.BucketExists("key")); // not unlocked yet
            }

            Assert.Equal(B("2"), tx.Get("key", B("b")));
            tx.Unlock();
            Assert.Equal(0, be.CommitCount);

            using (var r = be.ConcurrentReadTx())
            {
                Assert.True(r.BucketExists("key"));
                Assert.Equal(B("1"), r.Get("key", B("a")));
                Assert.Equal(2, Scan(r, "key").Count);
            }

            be.ForceCommit();
            Assert.Equal(1, be.CommitCount);
            tx.Lock();
            tx.Delete("key", B("a"));
            tx.Put("key", B("c"), B("3"));
            tx.Unlock();
            using (var r = be.ConcurrentReadTx())
            {
                Assert.Null(r.Get("key", B("a")));
                Assert.Equal(new[] { "62=32", "63=33" }, Scan(r, "key"));
            }

            tx.Lock();
            Assert.Throws<InvalidOperationException>(() => tx.Put("nope", B("a"), B("1")));
            tx.Unlock();
            Assert.Throws<InvalidOperationException>(() => tx.Put("key", B("a"), B("1")));
        }

        using (var be = Open(path))
        {
            using var r = be.ConcurrentReadTx();
            Assert.Equal(new[] { "62=32", "63=33" }, Scan(r, "key"));
        }
    }

    [Fact]
    public void BatchLimitAndIntervalCommit()
    {
        using var dir = new TempDir();
        using (var be = Open(dir.File("a"), batchLimit: 10, intervalMs: 60_000))
        {
            var tx = be.BatchTx;
            tx.Lock();
            tx.CreateBucket("key");
            tx.Unlock();
            for (int i = 0; i < 9; i++)
            {
                tx.Lock();
                tx.Put("key", B($"k{i}"), B("v"));
                tx.Unlock();
            }

            Assert.Equal(1, be.CommitCount); // create + 9 puts = 10 writes
        }

        using (var be = Open(dir.File("b"), intervalMs: 20))
        {
            var tx = be.BatchTx;
            tx.Lock();
            tx.CreateBucket("key");
            tx.Put("key", B("k"), B("v"));
            tx.Unlock();
            Assert.True(SpinWait.SpinUntil(() => be.CommitCount > 0, TimeSpan.FromSeconds(10)));
        }
    }

    /// <summary>The same random operations on BoltBackend and on InMemoryBackend (the oracle) read the same.</summary>
    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void MatchesInMemoryBackendUnderRandomOperations(int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var rng = new Random(seed);
        var oracle = new InMemoryBackend();
        var be = Open(path, batchLimit: 500, intervalMs: 60_000);
        try
        {
            string[] buckets = ["key", "meta", "lease"];
            for (int step = 0; step < 3000; step++)
            {
                int roll = rng.Next(100);
                var bucket = buckets[rng.Next(buckets.Length)];
                foreach (var target in new IBackend[] { be, oracle })
                {
                    target.BatchTx.Lock();
                }

                var key = B("k" + rng.Next(400).ToString("D4"));
                var val = new byte[rng.Next(0, rng.Next(10) == 0 ? 6000 : 50)];
                rng.NextBytes(val);
                foreach (var target in new IBackend[] { be, oracle })
                {
                    var tx = target.BatchTx;
                    if (roll < 3)
                    {
                        tx.DeleteBucket(bucket);
                    }
                    else if (!tx.BucketExists(bucket) || roll < 6)
                    {
                        tx.CreateBucket(bucket);
                    }
                    else if (roll < 70)
                    {
                        tx.Put(bucket, key, val);
                    }
                    else
                    {
                        tx.Delete(bucket, key);
                    }

                    tx.Unlock();
                }

                if (rng.Next(50) == 0)
                {
                    be.ForceCommit();
                }

                if (rng.Next(400) == 0)
                {
                    be.Dispose();
                    be = Open(path, batchLimit: 500, intervalMs: 60_000);
                }

                if (step % 25 == 0)
                {
                    using var r1 = be.ConcurrentReadTx();
                    using var r2 = oracle.ConcurrentReadTx();
                    foreach (var b in buckets)
                    {
                        Assert.Equal(r2.BucketExists(b), r1.BucketExists(b));
                        Assert.Equal(Scan(r2, b), Scan(r1, b));
                        var s = B("k" + rng.Next(400).ToString("D4"));
                        var e = B("k" + rng.Next(400).ToString("D4"));
                        Assert.Equal(Scan(r2, b, s, e), Scan(r1, b, s, e));
                        Assert.Equal(r2.Get(b, s), r1.Get(b, s));
                    }
                }
            }
        }
        finally
        {
            be.Dispose();
        }
    }

    [Fact]
    public async Task DefragShrinksFileWhileReadersKeepReading()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using var be = Open(path, intervalMs: 60_000);
        var tx = be.BatchTx;
        tx.Lock();
        tx.CreateBucket("key");
        for (int i = 0; i < 20000; i++)
        {
            tx.Put("key", B($"k{i:D6}"), new byte[200]);
        }

        tx.Unlock();
        be.ForceCommit();
        tx.Lock();
        for (int i = 0; i < 20000; i++)
        {
            if (i % 10 != 0)
            {
                tx.Delete("key", B($"k{i:D6}"));
            }
        }

        tx.Unlock();
        be.ForceCommit();
        long before = be.Size;
        Assert.True(be.SizeInUse < before);

        using var stop = new CancellationTokenSource();
        long reads = 0;
        var readers = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
        {
            var rng = new Random(t);
            while (!stop.IsCancellationRequested)
            {
                using var r = be.ConcurrentReadTx();
                int i = rng.Next(2000) * 10;
                Assert.Equal(200, r.Get("key", B($"k{i:D6}"))!.Length);
                Assert.Null(r.Get("key", B($"k{i + 1:D6}")));
                Interlocked.Increment(ref reads);
            }
        })).ToArray();

        tx.Lock();
        tx.CreateBucket("during");
        tx.Unlock();

        // A writer keeps applying during the defrag: it waits for the lock, and nothing it wrote is lost.
        int written = 0;
        var writer = Task.Run(() =>
        {
            for (int i = 0; i < 300 && !stop.IsCancellationRequested; i++)
            {
                tx.Lock();
                tx.Put("during", B($"w{i:D4}"), B("x"));
                tx.Unlock();
                Interlocked.Increment(ref written);
            }
        });

        SpinWait.SpinUntil(() => Interlocked.Read(ref reads) > 100, TimeSpan.FromSeconds(10));
        be.Defrag();
        long atSwap = Interlocked.Read(ref reads);
        SpinWait.SpinUntil(() => Interlocked.Read(ref reads) > atSwap + 100, TimeSpan.FromSeconds(10));
        await writer;
        stop.Cancel();
        await Task.WhenAll(readers);
        using (var r = be.ConcurrentReadTx())
        {
            Assert.Equal(written, Scan(r, "during").Count);
        }

        Assert.True(be.Size < before, $"defrag did not shrink: {be.Size} >= {before}");
        Assert.Empty(Directory.GetFiles(dir.Path, "db.tmp.*"));
        tx.Lock();
        tx.Put("key", B("after"), B("defrag"));
        tx.Unlock();
        using (var r = be.ConcurrentReadTx())
        {
            Assert.Equal(2001, Scan(r, "key").Count);
        }
    }

    [Fact]
    public void SnapshotIsAConsistentOpenableCopy()
    {
        using var dir = new TempDir();
        using var be = Open(dir.File("db"), intervalMs: 60_000);
        var tx = be.BatchTx;
        tx.Lock();
        tx.CreateBucket("key");
        tx.CreateBucket("meta");
        for (int i = 0; i < 3000; i++)
        {
            tx.Put("key", B($"k{i:D6}"), B($"v{i}"));
        }

        tx.Put("meta", B("consistent_index"), new byte[8]);
        tx.Unlock();

        var snap = dir.File("snap.db");
        using (var fs = File.Create(snap))
        {
            long n = be.Snapshot(fs);
            Assert.Equal(fs.Length, n);
        }

        using var db = BoltDb.Open(snap, new BoltOptions { ReadOnly = true });
        db.View(t =>
        {
            Assert.Empty(t.Check());
            Assert.Equal(B("v2999"), t.Bucket(B("key"))!.Get(B("k002999")));
            Assert.NotNull(t.Bucket(B("meta"))!.Get(B("consistent_index")));
            return 0;
        });
    }

    [Fact]
    public async Task ConcurrentReadersNeverSeeHalfABatch()
    {
        using var dir = new TempDir();
        using var be = Open(dir.File("db"), batchLimit: 35, intervalMs: 5);
        var tx = be.BatchTx;
        tx.Lock();
        tx.CreateBucket("key");
        for (int k = 0; k < 10; k++)
        {
            tx.Put("key", B($"k{k}"), B("0000"));
        }

        tx.Unlock();

        const int batches = 400;
        var writer = Task.Run(() =>
        {
            for (int gen = 1; gen <= batches; gen++)
            {
                tx.Lock();
                for (int k = 0; k < 10; k++)
                {
                    tx.Put("key", B($"k{k}"), B($"{gen:D4}"));
                }

                tx.Unlock();
            }
        });

        long observed = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            int last = 0;
            while (!writer.IsCompleted)
            {
                using var r = be.ConcurrentReadTx();
                var values = Scan(r, "key");
                Assert.Equal(10, values.Count);
                Assert.Single(values.Select(v => v.Split('=')[1]).Distinct());
                int gen = int.Parse(System.Text.Encoding.ASCII.GetString(r.Get("key", B("k3"))!));
                Assert.True(gen >= last, $"went back from {last} to {gen}");
                last = gen;
                Interlocked.Increment(ref observed);
            }
        })).ToArray();

        await writer;
        await Task.WhenAll(readers);
        Assert.True(be.CommitCount > 10);
        using var final = be.ConcurrentReadTx();
        Assert.Equal(B($"{batches:D4}"), final.Get("key", B("k9")));
    }
}
