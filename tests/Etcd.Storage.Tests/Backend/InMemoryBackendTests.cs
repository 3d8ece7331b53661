using System.Text;
using Etcd.Storage.Backend;

namespace Etcd.Storage.Tests.Backend;

public sealed class InMemoryBackendTests
{
    private static byte[] K(string s) => Encoding.UTF8.GetBytes(s);

    private static List<string> Scan(IBucketReader r, string bucket, string start, string end)
    {
        var keys = new List<string>();
        r.Range(bucket, K(start), K(end), (k, v) =>
        {
            keys.Add(Encoding.UTF8.GetString(k) + "=" + Encoding.UTF8.GetString(v));
            return true;
        });
        return keys;
    }

    private static InMemoryBackend WithBucket(params string[] keys)
    {
        var b = new InMemoryBackend();
        var tx = b.BatchTx;
        tx.Lock();
        tx.CreateBucket("t");
        foreach (var k in keys)
        {
            tx.Put("t", K(k), K(k.ToUpperInvariant()));
        }

        tx.Unlock();
        return b;
    }

    [Fact]
    public void RangeIsOrderedAndHalfOpen()
    {
        using var b = WithBucket("c", "a", "b", "d", "bb");
        using var r = b.ConcurrentReadTx();
        Assert.Equal(new[] { "b=B", "bb=BB", "c=C" }, Scan(r, "t", "b", "d"));
        Assert.Equal(new[] { "bb=BB", "c=C", "d=D" }, Scan(r, "t", "ba", ""));
        Assert.Equal(new[] { "a=A", "b=B", "bb=BB", "c=C", "d=D" }, Scan(r, "t", "", ""));
        Assert.Empty(Scan(r, "t", "e", ""));
        Assert.Empty(Scan(r, "missing", "", ""));
        Assert.Equal("BB", Encoding.UTF8.GetString(r.Get("t", K("bb"))!));
        Assert.Null(r.Get("t", K("x")));
        Assert.Null(r.Get("missing", K("a")));
        Assert.True(r.BucketExists("t"));
        Assert.False(r.BucketExists("missing"));
    }

    [Fact]
    public void VisitorCanStopEarly()
    {
        using var b = WithBucket("a", "b", "c");
        using var r = b.ConcurrentReadTx();
        var n = 0;
        r.ForEach("t", (_, _) => ++n < 2);
        Assert.Equal(2, n);
    }

    [Fact]
    public void UnsignedByteOrder()
    {
        using var b = new InMemoryBackend();
        var tx = b.BatchTx;
        tx.Lock();
        tx.CreateBucket("t");
        foreach (var k in new byte[][] { [0xff], [0x00], [0x80, 0x01], [0x7f], [0x80] })
        {
            tx.Put("t", k, []);
        }

        tx.Unlock();
        using var r = b.ConcurrentReadTx();
        var keys = new List<string>();
        r.ForEach("t", (k, _) =>
        {
            keys.Add(Convert.ToHexString(k));
            return true;
        });
        Assert.Equal(new[] { "00", "7F", "80", "8001", "FF" }, keys);
    }

    [Fact]
    public void ReadersSeeWritesOnlyAfterUnlock()
    {
        using var b = WithBucket("a");
        using var before = b.ConcurrentReadTx();
        var tx = b.BatchTx;
        tx.Lock();
        tx.Put("t", K("b"), K("1"));
        tx.Delete("t", K("a"));
        // the writer sees its own writes
        Assert.NotNull(tx.Get("t", K("b")));
        Assert.Null(tx.Get("t", K("a")));
        using (var during = b.ConcurrentReadTx())
        {
            Assert.NotNull(during.Get("t", K("a")));
            Assert.Null(during.Get("t", K("b")));
        }

        tx.Unlock();
        using var after = b.ConcurrentReadTx();
        Assert.Null(after.Get("t", K("a")));
        Assert.NotNull(after.Get("t", K("b")));
        // an older read transaction keeps its snapshot
        Assert.NotNull(before.Get("t", K("a")));
        Assert.Null(before.Get("t", K("b")));
    }

    [Fact]
    public void PutReplacesAndSizeTracksLiveBytes()
    {
        using var b = WithBucket();
        Assert.Equal(InMemoryBackend.EmptySizeBytes, b.Size);
        var tx = b.BatchTx;
        tx.Lock();
        tx.Put("t", K("k"), K("12345"));
        tx.Put("t", K("k"), K("1"));
        tx.Unlock();
        Assert.Equal(InMemoryBackend.EmptySizeBytes + 1 + 1 + InMemoryBackend.PairOverheadBytes, b.Size);
        Assert.Equal(b.Size, b.SizeInUse);
        tx.Lock();
        tx.Delete("t", K("k"));
        tx.Delete("t", K("absent"));
        tx.Unlock();
        Assert.Equal(InMemoryBackend.EmptySizeBytes, b.Size);
    }

    [Fact]
    public void WritesNeedTheLockAndAnExistingBucket()
    {
        using var b = new InMemoryBackend();
        var tx = b.BatchTx;
        Assert.Throws<InvalidOperationException>(() => tx.Put("t", K("a"), K("b")));
        Assert.Throws<InvalidOperationException>(() => tx.Get("t", K("a")));
        tx.Lock();
        try
        {
            Assert.Throws<InvalidOperationException>(() => tx.Put("t", K("a"), K("b")));
            Assert.Throws<InvalidOperationException>(() => tx.Delete("t", K("a")));
            tx.CreateBucket("t");
            tx.CreateBucket("t");
            tx.Put("t", K("a"), K("b"));
        }
        finally
        {
            tx.Unlock();
        }
    }

    [Fact]
    public void DeleteBucketRemovesEverything()
    {
        using var b = WithBucket("a", "b");
        var tx = b.BatchTx;
        tx.Lock();
        tx.DeleteBucket("t");
        tx.DeleteBucket("t");
        tx.Unlock();
        using var r = b.ConcurrentReadTx();
        Assert.False(r.BucketExists("t"));
        Assert.Equal(InMemoryBackend.EmptySizeBytes, b.Size);
    }

    [Fact]
    public async Task OnlyOneWriterHoldsTheBatch()
    {
        using var b = WithBucket();
        var tx = b.BatchTx;
        tx.Lock();
        var entered = new TaskCompletionSource();
        var other = Task.Run(() =>
        {
            tx.Lock();
            entered.SetResult();
            tx.Put("t", K("second"), K("2"));
            tx.Unlock();
        });
        // the second writer cannot get in while we hold the lock (a bounded check of a non-event)
        await Task.WhenAny(entered.Task, Task.Delay(100));
        Assert.False(entered.Task.IsCompleted);
        tx.Put("t", K("first"), K("1"));
        tx.Unlock();
        await other.WaitAsync(TimeSpan.FromSeconds(10));
        using var r = b.ConcurrentReadTx();
        Assert.NotNull(r.Get("t", K("first")));
        Assert.NotNull(r.Get("t", K("second")));
    }

    [Fact]
    public void ForceCommitCounts()
    {
        using var b = new InMemoryBackend();
        b.ForceCommit();
        b.ForceCommit();
        Assert.Equal(2, b.CommitCount);
    }
}
