using System.Buffers.Binary;
using Etcd.Storage.Bolt;
using static Etcd.Storage.Tests.Bolt.BoltTestUtil;

namespace Etcd.Storage.Tests.Bolt;

public class BoltConcurrencyTests
{
    private const int Keys = 300;

    private static void WriteGeneration(BoltDb db, int gen)
    {
        db.Update(tx =>
        {
            var b = tx.CreateBucketIfNotExists(B("gen"));
            for (int i = 0; i < Keys; i++)
            {
                b.Put(B($"k{i:D4}"), B($"gen-{gen}"));
            }

            // Growth: large values make the file remap while readers are open.
            var g = tx.CreateBucketIfNotExists(B("grow"));
            for (int i = 0; i < 4; i++)
            {
                g.Put(B($"g{gen:D5}-{i}"), new byte[5000 + gen]);
            }
        });
    }

    [Fact]
    public async Task ReadersSeeStableSnapshotsWhileWriterCommitsAndRemaps()
    {
        using var dir = new TempDir();
        using var db = BoltDb.Open(dir.File("db"), new BoltOptions { NoSync = true });
        WriteGeneration(db, 0);

        // A long-lived reader from the start: its pages must never be reused under it.
        var longTx = db.Begin(false);
        long startFile = db.FileSize;

        const int generations = 120;
        var writer = Task.Run(() =>
        {
            for (int gen = 1; gen <= generations; gen++)
            {
                WriteGeneration(db, gen);
            }
        });

        long checks = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            while (!writer.IsCompleted)
            {
                using var tx = db.Begin(false);
                var first = tx.Bucket(B("gen"))!.Get(B("k0000"))!;
                int gen = int.Parse(System.Text.Encoding.ASCII.GetString(first).AsSpan(4));
                var c = tx.Bucket(B("gen"))!.Cursor();
                int n = 0;
                for (bool ok = c.First(out _, out var v); ok; ok = c.Next(out _, out v))
                {
                    Assert.True(v.SequenceEqual(first));
                    n++;
                }

                Assert.Equal(Keys, n);
                int grown = 0;
                tx.Bucket(B("grow"))!.ForEach((_, _) => { grown++; return true; });
                Assert.Equal((gen + 1) * 4, grown);
                Interlocked.Increment(ref checks);
            }
        })).ToArray();

        await writer;
        await Task.WhenAll(readers);

        Assert.True(db.FileSize > startFile * 4, "the file should have grown (remapped) during the test");
        Assert.True(Interlocked.Read(ref checks) > 0);
        var lb = longTx.Bucket(B("gen"))!;
        for (int i = 0; i < Keys; i++)
        {
            Assert.Equal(B("gen-0"), lb.Get(B($"k{i:D4}")));
        }

        Assert.Empty(longTx.Check());
        longTx.Dispose();

        db.View(tx =>
        {
            Assert.Empty(tx.Check());
            Assert.Equal(B($"gen-{generations}"), tx.Bucket(B("gen"))!.Get(B("k0299")));
            return 0;
        });
    }

    [Fact]
    public void WriteToWhileWritesGoOnIsConsistent()
    {
        using var dir = new TempDir();
        using var db = BoltDb.Open(dir.File("db"), new BoltOptions { NoSync = true });
        WriteGeneration(db, 0);
        var copy = dir.File("copy");
        using (var tx = db.Begin(false))
        {
            WriteGeneration(db, 1);
            WriteGeneration(db, 2);
            using var fs = File.Create(copy);
            Assert.Equal(tx.Size, tx.WriteTo(fs));
        }

        using var copyDb = BoltDb.Open(copy, new BoltOptions { ReadOnly = true });
        copyDb.View(tx =>
        {
            Assert.Empty(tx.Check());
            Assert.Equal(B("gen-0"), tx.Bucket(B("gen"))!.Get(B("k0100")));
            return 0;
        });
    }
}

public class BoltCrashTests
{
    private static void Fill(BoltDb db, string tag, int n)
    {
        db.Update(tx =>
        {
            var b = tx.CreateBucketIfNotExists(B("data"));
            for (int i = 0; i < n; i++)
            {
                b.Put(B($"k{i:D5}"), B($"{tag}-{i}-{new string('x', i % 300)}"));
            }
        });
    }

    private static void AssertTag(string path, string tag, int n)
    {
        using var db = BoltDb.Open(path, new BoltOptions { ReadOnly = true });
        db.View(tx =>
        {
            Assert.Empty(tx.Check());
            var b = tx.Bucket(B("data"))!;
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(B($"{tag}-{i}-{new string('x', i % 300)}"), b.Get(B($"k{i:D5}")));
            }

            return 0;
        });
    }

    [Fact]
    public void FailpointBetweenPageWritesAndMetaWriteLandsOnPreviousCommit()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using (var db = BoltDb.Open(path))
        {
            Fill(db, "one", 3000);
            Fill(db, "two", 3000);
            db.BeforeMetaWrite = () => throw new IOException("failpoint: crash before meta write");
            var ex = Assert.Throws<IOException>(() => Fill(db, "three", 3000));
            Assert.Contains("failpoint", ex.Message);

            // The live db rolled back too and keeps working.
            db.BeforeMetaWrite = null;
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                return 0;
            });
        }

        // The abandoned commit's pages reached the file, its meta did not.
        AssertTag(path, "two", 3000);
        using (var db = BoltDb.Open(path))
        {
            Fill(db, "four", 3000);
        }

        AssertTag(path, "four", 3000);
    }

    [Fact]
    public void TornMetaPageFallsBackToOtherMeta()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        ulong lastTxid;
        using (var db = BoltDb.Open(path))
        {
            Fill(db, "one", 2000);
            Fill(db, "two", 2000);
            lastTxid = db.View(tx => tx.Id);
        }

        // Corrupt one byte of the newest meta (page txid % 2): its checksum no longer matches.
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = ((long)(lastTxid % 2) * 4096) + 16 + 40;
            fs.WriteByte(0xAB);
        }

        AssertTag(path, "one", 2000);
        using (var db = BoltDb.Open(path))
        {
            Assert.Equal(lastTxid - 1, db.View(tx => tx.Id));
            Fill(db, "three", 2000);
        }

        AssertTag(path, "three", 2000);

        // Both metas bad: bbolt's error.
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            for (int p = 0; p < 2; p++)
            {
                fs.Position = (p * 4096) + 16 + 60;
                fs.WriteByte(0xAB);
            }
        }

        Assert.Equal(BoltException.ChecksumError, Assert.Throws<BoltException>(() => BoltDb.Open(path)).Message);
    }

    [Fact]
    public void SecondOpenOfLockedFileTimesOut()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using var db = BoltDb.Open(path);
        Assert.Equal(BoltException.Timeout, Assert.Throws<BoltException>(() => BoltDb.Open(path, new BoltOptions { Timeout = TimeSpan.Zero })).Message);
        Assert.Equal(BoltException.Invalid, Assert.Throws<BoltException>(() =>
        {
            var junk = dir.File("junk");
            File.WriteAllBytes(junk, new byte[16384]);
            BoltDb.Open(junk).Dispose();
        }).Message);
    }
}
