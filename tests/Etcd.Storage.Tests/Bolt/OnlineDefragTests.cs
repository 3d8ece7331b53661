using System.Buffers.Binary;
using System.Diagnostics;
using Etcd.Storage.Backend;
using Xunit.Abstractions;
using static Etcd.Storage.Tests.Bolt.BoltTestUtil;

namespace Etcd.Storage.Tests.Bolt;

/// <summary>
/// Defragmentation does not stop the member (etcd#9222): on a database of about 200 MB, puts and reads go on
/// while <see cref="BoltBackend.Defrag"/> copies the file; the longest stall of each is measured and reported.
/// </summary>
public sealed class OnlineDefragTests(ITestOutputHelper output)
{
    private const int Keys = 150_000;
    private const int ValueBytes = 1024;

    [Fact]
    public void PutsAndReadsGoOnDuringDefragOfAFewHundredMegabytes()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using var be = new BoltBackend(new BoltBackendOptions { Path = path, UnsafeNoFsync = true, BatchInterval = TimeSpan.FromMilliseconds(100) });
        var value = new byte[ValueBytes];
        new Random(7).NextBytes(value);
        var key = new byte[8];
        var tx = be.BatchTx;
        tx.Lock();
        tx.CreateBucket("key");
        tx.Unlock();
        for (var i = 0; i < Keys; i += 5000)
        {
            tx.Lock();
            for (var j = i; j < i + 5000; j++)
            {
                BinaryPrimitives.WriteInt64BigEndian(key, j);
                tx.Put("key", key, value);
            }

            tx.Unlock();
        }

        // Delete every other key so the copy has something to reclaim.
        for (var i = 0; i < Keys; i += 10_000)
        {
            tx.Lock();
            for (var j = i; j < i + 10_000; j += 2)
            {
                BinaryPrimitives.WriteInt64BigEndian(key, j);
                tx.Delete("key", key);
            }

            tx.Unlock();
        }

        be.ForceCommit();
        var sizeBefore = be.Size;

        using var stop = new CancellationTokenSource();
        long maxPutTicks = 0, maxReadTicks = 0, puts = 0, reads = 0;
        var small = new byte[16];
        var writer = new Thread(() =>
        {
            var k = new byte[8];
            var n = (long)Keys;
            while (!stop.IsCancellationRequested)
            {
                var t0 = Stopwatch.GetTimestamp();
                tx.Lock();
                BinaryPrimitives.WriteInt64BigEndian(k, n++);
                tx.Put("key", k, small);
                tx.Unlock();
                maxPutTicks = Math.Max(maxPutTicks, Stopwatch.GetTimestamp() - t0);
                puts++;
            }
        });
        var reader = new Thread(() =>
        {
            var k = new byte[8];
            var rng = new Random(3);
            while (!stop.IsCancellationRequested)
            {
                var t0 = Stopwatch.GetTimestamp();
                using (var r = be.ConcurrentReadTx())
                {
                    BinaryPrimitives.WriteInt64BigEndian(k, (rng.Next(Keys / 2) * 2) + 1);
                    Assert.NotNull(r.Get("key", k));
                }

                maxReadTicks = Math.Max(maxReadTicks, Stopwatch.GetTimestamp() - t0);
                reads++;
            }
        });

        writer.Start();
        reader.Start();
        var sw = Stopwatch.StartNew();
        be.Defrag(out var swapStall);
        var defrag = sw.Elapsed;
        stop.Cancel();
        writer.Join();
        reader.Join();

        var maxPut = Stopwatch.GetElapsedTime(0, maxPutTicks);
        var maxRead = Stopwatch.GetElapsedTime(0, maxReadTicks);
        output.WriteLine($"db {sizeBefore / (1024 * 1024)} MiB -> {be.Size / (1024 * 1024)} MiB; defrag {defrag.TotalMilliseconds:F0} ms; " +
            $"swap stall {swapStall.TotalMilliseconds:F1} ms; puts {puts} (longest {maxPut.TotalMilliseconds:F1} ms); reads {reads} (longest {maxRead.TotalMilliseconds:F1} ms)");

        Assert.True(sizeBefore > 150L * 1024 * 1024, $"database only {sizeBefore} bytes");
        Assert.True(be.Size < sizeBefore, $"defrag did not shrink {sizeBefore} -> {be.Size}");
        Assert.True(puts > 100, $"only {puts} puts during a {defrag.TotalMilliseconds:F0} ms defrag");
        Assert.True(maxPut < defrag / 2, $"longest put {maxPut.TotalMilliseconds:F0} ms of a {defrag.TotalMilliseconds:F0} ms defrag");
        Assert.True(maxRead < defrag / 2, $"longest read {maxRead.TotalMilliseconds:F0} ms of a {defrag.TotalMilliseconds:F0} ms defrag");

        // Every write made during the copy is in the defragmented file.
        using var after = be.ConcurrentReadTx();
        var k2 = new byte[8];
        for (var n = (long)Keys; n < Keys + puts; n += Math.Max(1, puts / 1000))
        {
            BinaryPrimitives.WriteInt64BigEndian(k2, n);
            Assert.NotNull(after.Get("key", k2));
        }

        BinaryPrimitives.WriteInt64BigEndian(k2, 2);
        Assert.Null(after.Get("key", k2));
    }
}
