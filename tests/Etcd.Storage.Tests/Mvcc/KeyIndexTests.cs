using Etcd.Storage.Mvcc;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class KeyIndexTests
{
    // g0: 2, 4, 6(tombstone)   g1: 8, 10, 12(tombstone)   g2: 14, 16 (open)
    private static KeyIndex Sample()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Put(2, 0);
        ki.Put(4, 0);
        Assert.True(ki.Tombstone(6, 0));
        ki.Put(8, 0);
        ki.Put(10, 0);
        Assert.True(ki.Tombstone(12, 0));
        ki.Put(14, 0);
        ki.Put(16, 0);
        return ki;
    }

    private static long[] Mains(KeyIndex ki) => ki.Generations.SelectMany(g => g.Revs).Select(r => r.Main).ToArray();

    [Fact]
    public void GenerationsFollowPutsAndTombstones()
    {
        var ki = Sample();
        Assert.Equal(3, ki.Generations.Count);
        Assert.Equal((3L, new Revision(2, 0)), (ki.Generations[0].Ver, ki.Generations[0].Created));
        Assert.Equal((3L, new Revision(8, 0)), (ki.Generations[1].Ver, ki.Generations[1].Created));
        Assert.Equal((2L, new Revision(14, 0)), (ki.Generations[2].Ver, ki.Generations[2].Created));
        Assert.Equal(new Revision(16, 0), ki.Modified);
    }

    [Theory]
    [InlineData(1L, false, 0L, 0L, 0L)]
    [InlineData(2L, true, 2L, 2L, 1L)]
    [InlineData(3L, true, 2L, 2L, 1L)]
    [InlineData(5L, true, 4L, 2L, 2L)]
    [InlineData(6L, false, 0L, 0L, 0L)]
    [InlineData(7L, false, 0L, 0L, 0L)]
    [InlineData(8L, true, 8L, 8L, 1L)]
    [InlineData(11L, true, 10L, 8L, 2L)]
    [InlineData(12L, false, 0L, 0L, 0L)]
    [InlineData(13L, false, 0L, 0L, 0L)]
    [InlineData(14L, true, 14L, 14L, 1L)]
    [InlineData(100L, true, 16L, 14L, 2L)]
    public void GetAtRevision(long at, bool found, long mod, long created, long ver)
    {
        var ki = Sample();
        Assert.Equal(found, ki.TryGet(at, out var m, out var c, out var v));
        if (found)
        {
            Assert.Equal((mod, created, ver), (m.Main, c.Main, v));
        }
    }

    [Fact]
    public void TombstoneOfDeadKeyFails()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Put(2, 0);
        Assert.True(ki.Tombstone(3, 0));
        Assert.False(ki.Tombstone(4, 0));
        Assert.Throws<InvalidOperationException>(() => new KeyIndex("x"u8.ToArray()).Tombstone(1, 0));
    }

    [Fact]
    public void PutWithOlderRevisionThrows()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Put(5, 1);
        Assert.Throws<InvalidOperationException>(() => ki.Put(5, 1));
        Assert.Throws<InvalidOperationException>(() => ki.Put(5, 0));
        ki.Put(5, 2);
    }

    [Theory]
    [InlineData(1L, new long[0], new long[] { 2, 4, 6, 8, 10, 12, 14, 16 })]
    [InlineData(2L, new long[] { 2 }, new long[] { 2, 4, 6, 8, 10, 12, 14, 16 })]
    [InlineData(4L, new long[] { 4 }, new long[] { 4, 6, 8, 10, 12, 14, 16 })]
    [InlineData(5L, new long[] { 4 }, new long[] { 4, 6, 8, 10, 12, 14, 16 })]
    [InlineData(6L, new long[0], new long[] { 8, 10, 12, 14, 16 })]
    [InlineData(7L, new long[0], new long[] { 8, 10, 12, 14, 16 })]
    [InlineData(8L, new long[] { 8 }, new long[] { 8, 10, 12, 14, 16 })]
    [InlineData(11L, new long[] { 10 }, new long[] { 10, 12, 14, 16 })]
    [InlineData(12L, new long[0], new long[] { 14, 16 })]
    [InlineData(15L, new long[] { 14 }, new long[] { 14, 16 })]
    [InlineData(16L, new long[] { 16 }, new long[] { 16 })]
    [InlineData(99L, new long[] { 16 }, new long[] { 16 })]
    public void CompactKeepsWhatReadsAtOrAfterNeed(long at, long[] kept, long[] remaining)
    {
        var ki = Sample();
        var available = new HashSet<Revision>();
        ki.Compact(at, available);
        Assert.Equal(kept, available.Select(r => r.Main).Order().ToArray());
        Assert.Equal(remaining, Mains(ki));

        // keep() reports the same set without changing anything
        var fresh = Sample();
        var keep = new HashSet<Revision>();
        fresh.Keep(at, keep);
        Assert.Equal(kept, keep.Select(r => r.Main).Order().ToArray());
        Assert.Equal(8, Mains(fresh).Length);
    }

    [Fact]
    public void CompactingPastTheLastTombstoneEmptiesTheKey()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Put(2, 0);
        ki.Tombstone(3, 0);
        var available = new HashSet<Revision>();
        ki.Compact(3, available);
        Assert.True(ki.IsEmpty);
        Assert.Empty(available);
    }

    [Fact]
    public void CompactIsIdempotentAndGetsStillWork()
    {
        var ki = Sample();
        ki.Compact(9, []);
        ki.Compact(9, []);
        Assert.True(ki.TryGet(9, out var m, out _, out var v));
        Assert.Equal((8L, 1L), (m.Main, v));
        Assert.True(ki.TryGet(16, out m, out _, out v));
        Assert.Equal((16L, 2L), (m.Main, v));
    }

    [Fact]
    public void RestoreStartsAGenerationMidway()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Restore(new Revision(5, 0), new Revision(7, 0), 3);
        ki.Put(9, 0);
        Assert.True(ki.TryGet(8, out var m, out var c, out var v));
        Assert.Equal((7L, 5L, 3L), (m.Main, c.Main, v));
        Assert.True(ki.TryGet(9, out _, out _, out v));
        Assert.Equal(4, v);
        Assert.Throws<InvalidOperationException>(() => ki.Restore(new Revision(1, 0), new Revision(1, 0), 1));
    }

    [Theory]
    [InlineData(1L, new long[] { 2, 4, 6, 8, 10, 12, 14, 16 })]
    [InlineData(6L, new long[] { 6, 8, 10, 12, 14, 16 })]
    [InlineData(9L, new long[] { 10, 12, 14, 16 })]
    [InlineData(15L, new long[] { 16 })]
    [InlineData(17L, new long[0])]
    public void SinceListsRevisionsFrom(long since, long[] expected)
        => Assert.Equal(expected, Sample().Since(since).Select(r => r.Main).ToArray());

    [Fact]
    public void SinceKeepsTheLastSubRevisionOfEachMain()
    {
        var ki = new KeyIndex("k"u8.ToArray());
        ki.Put(5, 0);
        ki.Put(5, 1);
        ki.Put(6, 0);
        Assert.Equal(new[] { new Revision(5, 1), new Revision(6, 0) }, ki.Since(5));
    }
}

public sealed class TreeIndexTests
{
    private static byte[] K(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    [Fact]
    public void RangeSemanticsOfEnd()
    {
        var t = new TreeIndex();
        long rev = 2;
        foreach (var k in new[] { "a", "b", "c", "d" })
        {
            t.Put(K(k), new Revision(rev++, 0));
        }

        Assert.Single(t.Revisions(K("b"), null, 10));
        Assert.Empty(t.Revisions(K("bb"), null, 10));
        Assert.Equal(2, t.Revisions(K("b"), K("d"), 10).Count);
        Assert.Equal(3, t.Revisions(K("b"), [], 10).Count);
        Assert.Empty(t.Revisions(K("d"), K("b"), 10));
        Assert.Equal(2, t.Revisions(K("a"), K("z"), 3).Count);
        Assert.True(t.Tombstone(K("b"), new Revision(10, 0)));
        Assert.False(t.Tombstone(K("zz"), new Revision(11, 0)));
        Assert.Equal(3, t.RangeLive(K("a"), [], 10).Count);
        Assert.Equal(4, t.RangeLive(K("a"), [], 9).Count);
        t.Compact(10);
        Assert.Equal(3, t.Count);
    }
}

public sealed class RevisionTests
{
    [Fact]
    public void EncodingIsBigEndianWithSeparator()
    {
        var r = new Revision(0x0102030405060708, 9);
        Assert.Equal("0102030405060708" + "5F" + "0000000000000009", Convert.ToHexString(r.ToBytes()));
        Assert.Equal("0102030405060708" + "5F" + "0000000000000009" + "74", Convert.ToHexString(r.ToTombstoneBytes()));
        Assert.Equal(r, Revision.FromBytes(r.ToBytes()));
        Assert.Equal(r, Revision.FromBytes(r.ToTombstoneBytes()));
        Assert.False(Revision.IsTombstone(r.ToBytes()));
        Assert.True(Revision.IsTombstone(r.ToTombstoneBytes()));
        Assert.Throws<ArgumentException>(() => Revision.FromBytes(new byte[16]));
    }

    [Fact]
    public void OrderIsMainThenSubAndMatchesByteOrder()
    {
        var revs = new[] { new Revision(2, 1), new Revision(1, 5), new Revision(2, 0), new Revision(300, 0), new Revision(1, 0) };
        var sorted = revs.Order().ToArray();
        Assert.Equal(new[] { new Revision(1, 0), new Revision(1, 5), new Revision(2, 0), new Revision(2, 1), new Revision(300, 0) }, sorted);
        var byBytes = revs.OrderBy(r => r.ToBytes(), Comparer<byte[]>.Create((a, b) => a.AsSpan().SequenceCompareTo(b))).ToArray();
        Assert.Equal(sorted, byBytes);
        Assert.True(new Revision(2, 0).GreaterThan(new Revision(1, 9)));
        Assert.False(new Revision(1, 9).GreaterThan(new Revision(1, 9)));
        Assert.True(new Revision(1, 9) <= new Revision(1, 9));
    }
}
