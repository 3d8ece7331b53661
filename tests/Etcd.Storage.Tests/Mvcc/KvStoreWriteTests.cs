using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class KvStoreWriteTests
{
    private readonly InMemoryBackend _backend = new();
    private readonly FakeLessor _lessor = new();

    private KvStore NewStore(bool withLessor = true) => new(_backend, withLessor ? _lessor : null);

    [Fact]
    public void PutAdvancesRevisionAndVersion()
    {
        using var s = NewStore();
        var r1 = s.Put("k", "v1");
        Assert.Equal(2, r1.Header.Revision);
        Assert.Null(r1.PrevKv);
        var r2 = s.Put("k", "v2");
        Assert.Equal(3, r2.Header.Revision);
        Assert.Equal(3, s.CurrentRevision);
        var kv = s.Get("k").Kvs[0];
        Assert.Equal((2L, 3L, 2L, "v2"), (kv.CreateRevision, kv.ModRevision, kv.Version, S(kv.Value)));
    }

    [Fact]
    public void PutPrevKvReturnsThePreviousPair()
    {
        using var s = NewStore();
        Assert.Null(s.Put(new PutRequest { Key = B("k"), Value = B("v1"), PrevKv = true }).PrevKv);
        var r = s.Put(new PutRequest { Key = B("k"), Value = B("v2"), PrevKv = true });
        Assert.NotNull(r.PrevKv);
        Assert.Equal("v1", S(r.PrevKv.Value));
        Assert.Equal(2, r.PrevKv.ModRevision);
        Assert.Equal(1, r.PrevKv.Version);
    }

    [Fact]
    public void PutEmptyValueIsAValue()
    {
        using var s = NewStore();
        s.Put(new PutRequest { Key = B("k") });
        var kv = Assert.Single(s.Get("k").Kvs);
        Assert.True(kv.Value.IsEmpty);
        Assert.Equal(1, kv.Version);
    }

    [Fact]
    public void IgnoreValueKeepsValueAndChangesLease()
    {
        _lessor.Granted.Add(7);
        using var s = NewStore();
        s.Put("k", "v1");
        var r = s.Put(new PutRequest { Key = B("k"), IgnoreValue = true, Lease = 7 });
        Assert.Equal(3, r.Header.Revision);
        var kv = s.Get("k").Kvs[0];
        Assert.Equal("v1", S(kv.Value));
        Assert.Equal(7, kv.Lease);
        Assert.Equal(2, kv.Version);
        Assert.Contains("k", _lessor.Attached[7]);
    }

    [Fact]
    public void IgnoreLeaseKeepsLeaseAndChangesValue()
    {
        _lessor.Granted.Add(7);
        using var s = NewStore();
        s.Put("k", "v1", lease: 7);
        s.Put(new PutRequest { Key = B("k"), Value = B("v2"), IgnoreLease = true });
        var kv = s.Get("k").Kvs[0];
        Assert.Equal(("v2", 7L), (S(kv.Value), kv.Lease));
        Assert.Equal(new[] { "attach 7 k", "detach 7 k", "attach 7 k" }, _lessor.Calls);
    }

    [Fact]
    public void IgnoreOnMissingKeyIsKeyNotFoundAndWritesNothing()
    {
        using var s = NewStore();
        Assert.Same(EtcdErrors.KeyNotFound, Error(() => s.Put(new PutRequest { Key = B("k"), IgnoreValue = true })));
        Assert.Same(EtcdErrors.KeyNotFound, Error(() => s.Put(new PutRequest { Key = B("k"), Value = B("v"), IgnoreLease = true })));
        Assert.Equal(1, s.CurrentRevision);
        s.Put("k", "v");
        s.Del("k");
        Assert.Same(EtcdErrors.KeyNotFound, Error(() => s.Put(new PutRequest { Key = B("k"), IgnoreValue = true })));
        Assert.Equal(3, s.CurrentRevision);
    }

    [Fact]
    public void UnknownLeaseIsLeaseNotFound()
    {
        using var s = NewStore();
        Assert.Same(EtcdErrors.LeaseNotFound, Error(() => s.Put("k", "v", lease: 5)));
        Assert.Equal(1, s.CurrentRevision);
        Assert.Empty(_lessor.Calls);
    }

    [Fact]
    public void WithoutLessorAnyLeaseIsLeaseNotFound()
    {
        using var s = NewStore(withLessor: false);
        Assert.Same(EtcdErrors.LeaseNotFound, Error(() => s.Put("k", "v", lease: 1)));
        Assert.Equal(2, s.Put("k", "v").Header.Revision);
    }

    [Fact]
    public void LeaseMovesBetweenLeasesAndDetachesOnDelete()
    {
        _lessor.Granted.UnionWith([1, 2]);
        using var s = NewStore();
        s.Put("k", "v", lease: 1);
        s.Put("k", "v", lease: 2);
        s.Put("k", "v");
        s.Put("k", "v", lease: 1);
        s.Del("k");
        Assert.Equal(
            new[] { "attach 1 k", "detach 1 k", "attach 2 k", "detach 2 k", "attach 1 k", "detach 1 k" },
            _lessor.Calls);
        Assert.Empty(_lessor.Attached[1]);
    }

    [Fact]
    public void DeleteRangeCountsAndReturnsPrevKvs()
    {
        using var s = NewStore();
        s.Put("a", "1");
        s.Put("b", "2");
        s.Put("c", "3");
        s.Put("d", "4");
        var r = s.DeleteRange(new DeleteRangeRequest { Key = B("b"), RangeEnd = B("d"), PrevKv = true });
        Assert.Equal(2, r.Deleted);
        Assert.Equal(6, r.Header.Revision);
        Assert.Equal(new[] { "b", "c" }, r.PrevKvs.Select(kv => S(kv.Key)));
        Assert.Equal(new[] { "2", "3" }, r.PrevKvs.Select(kv => S(kv.Value)));
        Assert.Equal(new[] { "a", "d" }, s.GetAll().Keys());
    }

    [Fact]
    public void DeleteWithoutPrevKvReturnsNone()
    {
        using var s = NewStore();
        s.Put("a", "1");
        var r = s.Del("a");
        Assert.Equal(1, r.Deleted);
        Assert.Empty(r.PrevKvs);
    }

    [Fact]
    public void DeleteOfNothingKeepsRevision()
    {
        using var s = NewStore();
        s.Put("a", "1");
        var r = s.Del("zz");
        Assert.Equal(0, r.Deleted);
        Assert.Equal(2, r.Header.Revision);
        Assert.Equal(2, s.CurrentRevision);
        r = s.Del("a");
        Assert.Equal(3, r.Header.Revision);
        r = s.Del("a");
        Assert.Equal(0, r.Deleted);
        Assert.Equal(3, r.Header.Revision);
    }

    [Fact]
    public void DeleteFromKeyWithZeroByteEnd()
    {
        using var s = NewStore();
        foreach (var k in new[] { "a", "b", "c" })
        {
            s.Put(k, k);
        }

        var r = s.DeleteRange(new DeleteRangeRequest { Key = B("b"), RangeEnd = AllFrom });
        Assert.Equal(2, r.Deleted);
        Assert.Equal(new[] { "a" }, s.GetAll().Keys());
    }

    [Fact]
    public void BackendHoldsEtcdsEncoding()
    {
        using var s = NewStore();
        s.Put("k", "v");
        s.Del("k");
        using var rtx = _backend.ConcurrentReadTx();
        var entries = new List<(byte[] K, byte[] V)>();
        rtx.ForEach(MvccSchema.KeyBucket, (k, v) =>
        {
            entries.Add((k.ToArray(), v.ToArray()));
            return true;
        });
        Assert.Equal(2, entries.Count);
        Assert.Equal("0000000000000002" + "5F" + "0000000000000000", Convert.ToHexString(entries[0].K));
        var kv = KeyValue.Parser.ParseFrom(entries[0].V);
        Assert.Equal(new KeyValue { Key = B("k"), Value = B("v"), CreateRevision = 2, ModRevision = 2, Version = 1 }, kv);
        Assert.Equal("0000000000000003" + "5F" + "0000000000000000" + "74", Convert.ToHexString(entries[1].K));
        // a tombstone stores only the key: field 1, length 1, 'k'
        Assert.Equal("0A016B", Convert.ToHexString(entries[1].V));
    }

    [Fact]
    public void ObserverGetsEventsInOrderAfterVisibility()
    {
        using var s = NewStore();
        var seen = new List<string>();
        s.SetObserver(new CallbackObserver((rev, evs) =>
        {
            // the write is visible when the observer runs
            Assert.Equal(rev, s.CurrentRevision);
            Assert.Equal(rev, s.GetAll().Header.Revision);
            seen.Add($"{rev}:" + string.Join(",", evs.Select(e => $"{e.Type}/{S(e.Kv.Key)}/{e.Kv.ModRevision}")));
        }));
        s.Put("a", "1");
        s.Put("b", "2");
        s.Del("zz"); // nothing changed: no call
        s.Txn(new TxnRequest { Success = { OpPut("c", "3"), OpDel("a"), OpPut("d", "4") } });
        s.DeleteRange(new DeleteRangeRequest { Key = AllFrom, RangeEnd = AllFrom });
        Assert.Equal(
            new[]
            {
                "2:Put/a/2",
                "3:Put/b/3",
                "4:Put/c/4,Delete/a/4,Put/d/4",
                "5:Delete/b/5,Delete/c/5,Delete/d/5",
            },
            seen);
        Assert.Throws<InvalidOperationException>(() => s.SetObserver(new RecordingObserver()));
    }

    [Fact]
    public void ReadEventsReturnsHistory()
    {
        using var s = NewStore();
        s.Put("a", "1");
        s.Put("b", "2");
        s.Del("a");
        var evs = s.ReadEvents(2, 5);
        Assert.Equal(3, evs.Count);
        Assert.Equal(Event.Types.EventType.Put, evs[0].Type);
        Assert.Equal("1", S(evs[0].Kv.Value));
        Assert.Equal(Event.Types.EventType.Delete, evs[2].Type);
        Assert.Equal(4, evs[2].Kv.ModRevision);
        Assert.Equal("a", S(evs[2].Kv.Key));
        Assert.Single(s.ReadEvents(3, 4));
        Assert.Empty(s.ReadEvents(5, 9));
    }

    [Fact]
    public void DeleteKeysUsesOneRevision()
    {
        using var s = NewStore();
        s.Put("a", "1");
        s.Put("b", "2");
        s.Put("c", "3");
        var (rev, n) = s.DeleteKeys([B("a").ToByteArray(), B("c").ToByteArray(), B("zz").ToByteArray()]);
        Assert.Equal((5L, 2L), (rev, n));
        Assert.Equal(new[] { "b" }, s.GetAll().Keys());
        Assert.Equal((5L, 0L), s.DeleteKeys([B("zz").ToByteArray()]));
    }

    [Fact]
    public void DeleteKeysDetachesAndRunsExtraWorkInTheSameBatch()
    {
        _lessor.Granted.Add(3);
        using var s = NewStore();
        s.Put("a", "1", lease: 3);
        s.Put("b", "1", lease: 3);
        var tx = _backend.BatchTx;
        tx.Lock();
        tx.CreateBucket("lease");
        tx.Put("lease", [3], [1]);
        tx.Unlock();
        var (rev, n) = s.DeleteKeys([B("a").ToByteArray(), B("b").ToByteArray()], batch => batch.Delete("lease", [3]));
        Assert.Equal((4L, 2L), (rev, n));
        Assert.Empty(_lessor.Attached[3]);
        using var rtx = _backend.ConcurrentReadTx();
        Assert.Null(rtx.Get("lease", [3]));
    }

    [Fact]
    public void ConsistentIndexIsSavedWithWrites()
    {
        ulong index = 41;
        using var s = new KvStore(_backend, null, new KvStoreOptions { ConsistentIndexGetter = () => index });
        Assert.Equal(0UL, s.ConsistentIndex);
        s.Put("a", "1");
        Assert.Equal(41UL, s.ConsistentIndex);
        index = 42;
        s.Del("none"); // no change, not saved (as etcd 3.4)
        Assert.Equal(41UL, s.ConsistentIndex);
        s.Commit();
        Assert.Equal(42UL, s.ConsistentIndex);
    }

    private sealed class CallbackObserver(Action<long, IReadOnlyList<Event>> f) : IKvObserver
    {
        public void OnCommitted(long revision, IReadOnlyList<Event> events) => f(revision, events);
    }
}
