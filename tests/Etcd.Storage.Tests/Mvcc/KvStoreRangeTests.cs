using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using static Etcd.Storage.Tests.Mvcc.M;
using SortOrder = Etcdserverpb.RangeRequest.Types.SortOrder;
using SortTarget = Etcdserverpb.RangeRequest.Types.SortTarget;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class KvStoreRangeTests : IDisposable
{
    private readonly InMemoryBackend _backend = new();
    private readonly KvStore _s;

    public KvStoreRangeTests()
    {
        _s = new KvStore(_backend);
        _s.Put("a", "5"); // 2
        _s.Put("b", "3"); // 3
        _s.Put("c", "4"); // 4
        _s.Put("b", "1"); // 5
        _s.Put("d", "2"); // 6
        _s.Put("a", "9"); // 7
        _s.Put("a", "0"); // 8
        _s.Put("e", "7"); // 9
    }

    public void Dispose()
    {
        _s.Dispose();
        _backend.Dispose();
    }

    [Fact]
    public void EmptyStoreStartsAtRevisionOne()
    {
        using var s = new KvStore(new InMemoryBackend());
        Assert.Equal(1, s.CurrentRevision);
        Assert.Equal(-1, s.CompactRevision);
        var r = s.GetAll();
        Assert.Empty(r.Kvs);
        Assert.Equal(0, r.Count);
        Assert.Equal(1, r.Header.Revision);
    }

    [Fact]
    public void SingleKeyReturnsAllFields()
    {
        var r = _s.Get("a");
        Assert.Equal(9, r.Header.Revision);
        var kv = Assert.Single(r.Kvs);
        Assert.Equal("a", S(kv.Key));
        Assert.Equal("0", S(kv.Value));
        Assert.Equal(2, kv.CreateRevision);
        Assert.Equal(8, kv.ModRevision);
        Assert.Equal(3, kv.Version);
        Assert.Equal(0, kv.Lease);
        Assert.Equal(1, r.Count);
        Assert.False(r.More);
    }

    [Theory]
    [InlineData("b", "d", new[] { "b", "c" })]
    [InlineData("b", null, new[] { "b" })]
    [InlineData("bb", null, new string[0])]
    [InlineData("bb", "cc", new[] { "c" })]
    [InlineData("a", "a", new string[0])]
    [InlineData("d", "b", new string[0])]
    [InlineData("a", "z", new[] { "a", "b", "c", "d", "e" })]
    public void RangeEndSelectsHalfOpenInterval(string key, string? end, string[] expected)
    {
        var r = _s.Get(key, end);
        Assert.Equal(expected, r.Keys());
        Assert.Equal(expected.Length, r.Count);
    }

    [Fact]
    public void RangeEndZeroByteMeansEveryKeyFromKey()
    {
        var r = _s.Range(new RangeRequest { Key = B("b"), RangeEnd = AllFrom });
        Assert.Equal(new[] { "b", "c", "d", "e" }, r.Keys());
        Assert.Equal(new[] { "a", "b", "c", "d", "e" }, _s.GetAll().Keys());
    }

    [Fact]
    public void RevisionReadsHistory()
    {
        var r = _s.GetAll(4);
        Assert.Equal(new[] { "a", "b", "c" }, r.Keys());
        Assert.Equal(new[] { "5", "3", "4" }, r.Values());
        Assert.Equal(9, r.Header.Revision);
        Assert.Equal(3, r.Count);

        r = _s.GetAll(6);
        Assert.Equal(new[] { "5", "1", "4", "2" }, r.Values());
        var b = r.Kvs[1];
        Assert.Equal((3L, 5L, 2L), (b.CreateRevision, b.ModRevision, b.Version));

        r = _s.GetAll(1);
        Assert.Empty(r.Kvs);
        Assert.Equal(0, r.Count);
    }

    [Fact]
    public void FutureRevisionIsRejected()
    {
        Assert.Same(EtcdErrors.FutureRev, Error(() => _s.GetAll(10)));
        Assert.Equal(9, _s.GetAll(9).Header.Revision);
    }

    [Fact]
    public void DeletedKeyDisappearsButHistoryRemains()
    {
        _s.Del("c"); // 10
        Assert.Empty(_s.Get("c").Kvs);
        Assert.Equal(new[] { "a", "b", "d", "e" }, _s.GetAll().Keys());
        Assert.Equal("4", S(Assert.Single(_s.Get("c", rev: 9).Kvs).Value));
        _s.Put("c", "new"); // 11
        var kv = Assert.Single(_s.Get("c").Kvs);
        Assert.Equal((11L, 11L, 1L), (kv.CreateRevision, kv.ModRevision, kv.Version));
        Assert.Empty(_s.Get("c", rev: 10).Kvs);
    }

    [Fact]
    public void LimitSetsMoreAndCountIsTotal()
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = 2 });
        Assert.Equal(new[] { "a", "b" }, r.Keys());
        Assert.True(r.More);
        Assert.Equal(5, r.Count);

        r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = 5 });
        Assert.Equal(5, r.Kvs.Count);
        Assert.False(r.More);

        r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = 50 });
        Assert.Equal(5, r.Kvs.Count);
        Assert.False(r.More);

        r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = -3 });
        Assert.Equal(5, r.Kvs.Count);
        Assert.False(r.More);
    }

    [Fact]
    public void LimitWithSortFetchesEverythingFirst()
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = 2, SortOrder = SortOrder.Descend, SortTarget = SortTarget.Mod });
        Assert.Equal(new[] { "e", "a" }, r.Keys());
        Assert.True(r.More);
        Assert.Equal(5, r.Count);
    }

    [Fact]
    public void LimitWithTargetButNoOrderSortsOnlyTheFirstLimitPlusOneKeys()
    {
        // etcd's quirk: only sort_order disables the early limit, so a, b, c are fetched and
        // sorted by version (c=1, b=2, a=3) before the cut.
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Limit = 2, SortTarget = SortTarget.Version });
        Assert.Equal(new[] { "c", "b" }, r.Keys());
        Assert.True(r.More);
        Assert.Equal(5, r.Count);
    }

    [Theory]
    [InlineData(SortOrder.None, SortTarget.Key, "abcde")]
    [InlineData(SortOrder.Ascend, SortTarget.Key, "abcde")]
    [InlineData(SortOrder.Descend, SortTarget.Key, "edcba")]
    [InlineData(SortOrder.None, SortTarget.Version, "cdeba")]
    [InlineData(SortOrder.Ascend, SortTarget.Version, "cdeba")]
    [InlineData(SortOrder.Descend, SortTarget.Version, "abcde")]
    [InlineData(SortOrder.Ascend, SortTarget.Create, "abcde")]
    [InlineData(SortOrder.Descend, SortTarget.Create, "edcba")]
    [InlineData(SortOrder.None, SortTarget.Mod, "cbdae")]
    [InlineData(SortOrder.Ascend, SortTarget.Mod, "cbdae")]
    [InlineData(SortOrder.Descend, SortTarget.Mod, "eadbc")]
    [InlineData(SortOrder.Ascend, SortTarget.Value, "abdce")]
    [InlineData(SortOrder.Descend, SortTarget.Value, "ecdba")]
    [InlineData(SortOrder.None, SortTarget.Value, "abdce")]
    public void SortOrderAndTarget(SortOrder order, SortTarget target, string expected)
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, SortOrder = order, SortTarget = target });
        Assert.Equal(expected, string.Concat(r.Keys()));
        Assert.Equal(5, r.Count);
        Assert.False(r.More);
    }

    [Fact]
    public void UnknownSortOptionsAreRejected()
    {
        Assert.Same(EtcdErrors.InvalidSortOption, Error(() => _s.Range(new RangeRequest { Key = B("a"), SortOrder = (SortOrder)3 })));
        Assert.Same(EtcdErrors.InvalidSortOption, Error(() => _s.Range(new RangeRequest { Key = B("a"), SortTarget = (SortTarget)5 })));
        Assert.Same(EtcdErrors.InvalidSortOption, Error(() => KvStore.ValidateRange(new RangeRequest { Key = B("a"), SortOrder = (SortOrder)(-1) })));
    }

    [Fact]
    public void KeysOnlyDropsValues()
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, KeysOnly = true });
        Assert.Equal(new[] { "a", "b", "c", "d", "e" }, r.Keys());
        Assert.All(r.Kvs, kv => Assert.True(kv.Value.IsEmpty));
        Assert.Equal(3, r.Kvs[0].Version);
        Assert.Equal(8, r.Kvs[0].ModRevision);
        // the stored values are intact
        Assert.Equal("0", S(_s.Get("a").Kvs[0].Value));
    }

    [Fact]
    public void CountOnlyReturnsCountWithoutPairs()
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, CountOnly = true, Limit = 1 });
        Assert.Empty(r.Kvs);
        Assert.Equal(5, r.Count);
        Assert.False(r.More);
        Assert.Equal(9, r.Header.Revision);

        r = _s.Range(new RangeRequest { Key = B("b"), RangeEnd = B("d"), CountOnly = true, Revision = 3 });
        Assert.Equal(1, r.Count);
    }

    [Theory]
    [InlineData(6L, 0L, 0L, 0L, "ade")]
    [InlineData(0L, 5L, 0L, 0L, "bc")]
    [InlineData(0L, 0L, 4L, 0L, "cde")]
    [InlineData(0L, 0L, 0L, 3L, "ab")]
    [InlineData(5L, 8L, 3L, 6L, "bd")]
    [InlineData(100L, 0L, 0L, 0L, "")]
    public void ModAndCreateRevisionFiltersKeepCountUnfiltered(long minMod, long maxMod, long minCreate, long maxCreate, string expected)
    {
        var r = _s.Range(new RangeRequest
        {
            Key = AllFrom,
            RangeEnd = AllFrom,
            MinModRevision = minMod,
            MaxModRevision = maxMod,
            MinCreateRevision = minCreate,
            MaxCreateRevision = maxCreate,
        });
        Assert.Equal(expected, string.Concat(r.Keys()));
        Assert.Equal(5, r.Count);
    }

    [Fact]
    public void FiltersThenLimit()
    {
        var r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, MinModRevision = 5, Limit = 2 });
        Assert.Equal(new[] { "a", "b" }, r.Keys());
        Assert.True(r.More);
        Assert.Equal(5, r.Count);

        r = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, MinModRevision = 8, Limit = 2 });
        Assert.Equal(new[] { "a", "e" }, r.Keys());
        Assert.False(r.More);
    }

    [Fact]
    public void SerializableFlagChangesNothing()
    {
        var a = _s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Serializable = true });
        Assert.Equal(_s.GetAll(), a);
    }

    [Fact]
    public void BinaryKeysOrderAsUnsignedBytes()
    {
        using var s = new KvStore(new InMemoryBackend());
        var keys = new byte[][] { [0x01], [0x7f], [0x80], [0xff], [0xff, 0x00], [0x00, 0x01] };
        foreach (var k in keys)
        {
            s.Put(new PutRequest { Key = Google.Protobuf.ByteString.CopyFrom(k), Value = B("v") });
        }

        var r = s.GetAll();
        Assert.Equal(
            new[] { "0001", "01", "7F", "80", "FF", "FF00" },
            r.Kvs.Select(kv => Convert.ToHexString(kv.Key.ToByteArray())).ToArray());
        var from80 = s.Range(new RangeRequest { Key = Google.Protobuf.ByteString.CopyFrom(0x80), RangeEnd = AllFrom });
        Assert.Equal(3, from80.Count);
    }
}
