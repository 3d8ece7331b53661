using System.Buffers.Binary;
using Etcd.Storage.Bolt;
using static Etcd.Storage.Tests.Bolt.BoltTestUtil;

namespace Etcd.Storage.Tests.Bolt;

public class BoltDbBasicTests
{
    [Fact]
    public void NewFileHasBboltLayout()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        BoltDb.Open(path).Dispose();
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(4 * 4096, bytes.Length);
        for (int i = 0; i < 2; i++)
        {
            var page = bytes.AsSpan(i * 4096, 4096);
            Assert.Equal((ulong)i, BinaryPrimitives.ReadUInt64LittleEndian(page));
            Assert.Equal(0x04, BinaryPrimitives.ReadUInt16LittleEndian(page.Slice(8)));
            Assert.Equal(0xED0CDAEDu, BinaryPrimitives.ReadUInt32LittleEndian(page.Slice(16)));
            Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(page.Slice(20)));
            Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(page.Slice(24)));
            Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(32))); // root
            Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(48))); // freelist
            Assert.Equal(4ul, BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(56))); // pgid
            Assert.Equal((ulong)i, BinaryPrimitives.ReadUInt64LittleEndian(page.Slice(64))); // txid
        }

        Assert.Equal(0x10, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * 4096 + 8)));
        Assert.Equal(0x02, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(3 * 4096 + 8)));
    }

    [Fact]
    public void PutGetDeleteCursorAndReopen()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using (var db = BoltDb.Open(path))
        {
            db.Update(tx =>
            {
                var b = tx.CreateBucket(B("widgets"));
                b.Put(B("b"), B("2"));
                b.Put(B("a"), B("1"));
                b.Put(B("c"), B("3"));
                b.Delete(B("b"));
                var nested = b.CreateBucket(B("nested"));
                nested.Put(B("x"), B("y"));
                Assert.Equal(BoltException.BucketExists, Assert.Throws<BoltException>(() => tx.CreateBucket(B("widgets"))).Message);
                Assert.Equal(BoltException.IncompatibleValue, Assert.Throws<BoltException>(() => b.Put(B("nested"), B("v"))).Message);
                Assert.Equal(BoltException.KeyRequired, Assert.Throws<BoltException>(() => b.Put(default, B("v"))).Message);
            });
        }

        using (var db = BoltDb.Open(path))
        {
            using var tx = db.Begin(false);
            var b = tx.Bucket(B("widgets"))!;
            Assert.Equal(B("1"), b.Get(B("a")));
            Assert.Null(b.Get(B("b")));
            Assert.Null(b.Get(B("nested")));
            Assert.Equal(B("y"), b.GetBucket(B("nested"))!.Get(B("x")));
            var c = b.Cursor();
            var keys = new List<string>();
            for (bool ok = c.Last(out var k, out _); ok; ok = c.Prev(out k, out _))
            {
                keys.Add(System.Text.Encoding.UTF8.GetString(k));
            }

            Assert.Equal(new[] { "nested", "c", "a" }, keys);
            Assert.True(c.Seek(B("b"), out var sk, out var sv));
            Assert.Equal(B("c"), sk.ToArray());
            Assert.Equal(B("3"), sv.ToArray());
            Assert.False(c.Seek(B("z"), out _, out _));
            Assert.Empty(tx.Check());
            var seen = new List<string>();
            tx.ForEach((name, bucket) =>
            {
                seen.Add(System.Text.Encoding.UTF8.GetString(name) + ":" + (bucket.GetBucket(B("nested")) != null));
                return true;
            });
            Assert.Equal(new[] { "widgets:True" }, seen);
            Assert.Equal(BoltException.TxNotWritable, Assert.Throws<BoltException>(() => b.Put(B("q"), B("r"))).Message);
        }
    }

    [Fact]
    public void CursorDeleteAndSequenceSurviveReopen()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using (var db = BoltDb.Open(path))
        {
            db.Update(tx =>
            {
                var b = tx.CreateBucket(B("b"));
                for (int i = 0; i < 10; i++)
                {
                    b.Put(B($"k{i}"), B($"v{i}"));
                }

                var c = b.Cursor();
                Assert.True(c.Seek(B("k5"), out _, out _));
                c.Delete();
                Assert.Equal(3ul, b.NextSequence() + b.NextSequence());
                b.CreateBucket(B("sub"));
                Assert.True(c.Seek(B("sub"), out _, out _));
                Assert.True(c.IsBucket);
                Assert.Equal(BoltException.IncompatibleValue, Assert.Throws<BoltException>(() => c.Delete()).Message);
                Assert.Equal(BoltException.IncompatibleValue, Assert.Throws<BoltException>(() => b.DeleteBucket(B("k1"))).Message);
                Assert.Equal(BoltException.BucketNotFound, Assert.Throws<BoltException>(() => b.DeleteBucket(B("nope"))).Message);
            });
        }

        using (var db = BoltDb.Open(path))
        {
            db.View(tx =>
            {
                var b = tx.Bucket(B("b"))!;
                Assert.Null(b.Get(B("k5")));
                Assert.Equal(B("v6"), b.Get(B("k6")));
                Assert.Equal(2ul, b.Sequence);
                Assert.NotNull(b.GetBucket(B("sub")));
                Assert.Empty(tx.Check());
                return 0;
            });
        }
    }

    [Fact]
    public void ManyKeysSplitThenMergeWithOverflowValues()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        const int n = 20000;
        using (var db = BoltDb.Open(path))
        {
            db.Update(tx =>
            {
                var b = tx.CreateBucket(B("k"));
                for (int i = 0; i < n; i++)
                {
                    b.Put(B($"key-{i:D6}"), B($"value-{i}"));
                }

                b.Put(B("big"), new byte[50_000]);
            });
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                var b = tx.Bucket(B("k"))!;
                Assert.Equal(B("value-12345"), b.Get(B("key-012345")));
                Assert.Equal(50_000, b.Get(B("big"))!.Length);
                return 0;
            });
            db.Update(tx =>
            {
                var b = tx.Bucket(B("k"))!;
                for (int i = 0; i < n; i++)
                {
                    if (i % 50 != 0)
                    {
                        b.Delete(B($"key-{i:D6}"));
                    }
                }

                b.Delete(B("big"));
            });
            Assert.True(db.Stats().FreePageN + db.Stats().PendingPageN > 50);
        }

        using (var db = BoltDb.Open(path))
        {
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                var b = tx.Bucket(B("k"))!;
                int count = 0;
                b.ForEach((k, v) => { count++; return true; });
                Assert.Equal(n / 50, count);
                Assert.Null(b.Get(B("key-000001")));
                Assert.Equal(B("value-100"), b.Get(B("key-000100")));
                return 0;
            });
        }
    }
}

public class FreelistTests
{
    [Fact]
    public void FreelistPageRoundTripsPastTheUint16Count()
    {
        var fl = new Freelist();
        const int n = 70000;
        for (ulong i = 0; i < n; i++)
        {
            fl.Free(5, 10 + (i * 2), 0);
        }

        fl.Free(6, 5, 1);
        Assert.Equal(n + 2, fl.Count);
        var page = new byte[fl.Size];
        fl.Write(page);
        Assert.Equal(0xFFFF, BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(10)));
        Assert.Equal((ulong)(n + 2), BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(16)));

        var back = new Freelist();
        back.Read(page);
        Assert.Equal(n + 2, back.FreeCount);
        Assert.Equal(fl.All(), back.All());

        // Pending pages are released once no reader can see them: tx 5's at reader 5, tx 6's later.
        fl.ReleaseUpTo(4);
        Assert.Equal(0, fl.FreeCount);
        fl.ReleaseUpTo(5);
        Assert.Equal(n, fl.FreeCount);
        Assert.Equal(0ul, fl.Allocate(2)); // ids 10,12,14,... hold no run of 2
        Assert.Equal(10ul, fl.Allocate(1));
        fl.ReleaseUpTo(ulong.MaxValue);
        Assert.Equal(n + 1, fl.FreeCount);
        Assert.Equal(5ul, fl.Allocate(2));
    }
}
