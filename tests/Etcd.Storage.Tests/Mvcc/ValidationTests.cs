using Etcd.Api;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class ValidationTests
{
    private static EtcdError? TxnError(TxnRequest t, int maxOps = KvStore.DefaultMaxTxnOps)
    {
        try
        {
            KvStore.ValidateTxn(t, maxOps);
            return null;
        }
        catch (EtcdException e)
        {
            return e.Error;
        }
    }

    private static TxnRequest Success(params RequestOp[] ops)
    {
        var t = new TxnRequest();
        t.Success.AddRange(ops);
        return t;
    }

    [Fact]
    public void EmptyKeys()
    {
        Assert.Same(EtcdErrors.EmptyKey, Error(() => KvStore.ValidateRange(new RangeRequest())));
        Assert.Same(EtcdErrors.EmptyKey, Error(() => KvStore.ValidatePut(new PutRequest { Value = B("v") })));
        Assert.Same(EtcdErrors.EmptyKey, Error(() => KvStore.ValidateDeleteRange(new DeleteRangeRequest { RangeEnd = B("z") })));
        Assert.Same(EtcdErrors.EmptyKey, TxnError(new TxnRequest { Compare = { new Compare() } }));
        Assert.Same(EtcdErrors.EmptyKey, TxnError(Success(new RequestOp { RequestRange = new RangeRequest() })));
        KvStore.ValidateRange(new RangeRequest { Key = B("k") });
        KvStore.ValidateDeleteRange(new DeleteRangeRequest { Key = B("k") });
    }

    [Fact]
    public void PutIgnoreFlags()
    {
        Assert.Same(EtcdErrors.ValueProvided, Error(() => KvStore.ValidatePut(new PutRequest { Key = B("k"), Value = B("v"), IgnoreValue = true })));
        Assert.Same(EtcdErrors.LeaseProvided, Error(() => KvStore.ValidatePut(new PutRequest { Key = B("k"), Lease = 1, IgnoreLease = true })));
        KvStore.ValidatePut(new PutRequest { Key = B("k"), IgnoreValue = true, IgnoreLease = true });
        Assert.Same(EtcdErrors.ValueProvided, TxnError(Success(new RequestOp { RequestPut = new PutRequest { Key = B("k"), Value = B("v"), IgnoreValue = true } })));
    }

    [Fact]
    public void EmptyRequestOpIsKeyNotFound()
        => Assert.Same(EtcdErrors.KeyNotFound, TxnError(Success(new RequestOp())));

    [Fact]
    public void TooManyOps()
    {
        var ops = Enumerable.Range(0, 4).Select(i => OpPut($"k{i}", "v")).ToArray();
        Assert.Null(TxnError(Success(ops), 4));
        Assert.Same(EtcdErrors.TooManyOps, TxnError(Success(ops), 3));
        var cmps = new TxnRequest();
        cmps.Compare.AddRange(Enumerable.Range(0, 4).Select(i => new Compare { Key = B($"k{i}") }));
        Assert.Same(EtcdErrors.TooManyOps, TxnError(cmps, 3));
        var failure = new TxnRequest();
        failure.Failure.AddRange(ops);
        Assert.Same(EtcdErrors.TooManyOps, TxnError(failure, 3));
    }

    [Fact]
    public void NestedTxnGetsWhatIsLeft()
    {
        // outer uses 2 slots of 4, so the nested txn may use 2
        var inner2 = Success(OpPut("x", "1"), OpPut("y", "1"));
        var inner3 = Success(OpPut("x", "1"), OpPut("y", "1"), OpPut("z", "1"));
        Assert.Null(TxnError(Success(OpTxn(inner2), OpPut("a", "1")), 4));
        Assert.Same(EtcdErrors.TooManyOps, TxnError(Success(OpTxn(inner3), OpPut("a", "1")), 4));
    }

    [Fact]
    public void InvalidSortOptionInTxn()
        => Assert.Same(EtcdErrors.InvalidSortOption, TxnError(Success(new RequestOp
        {
            RequestRange = new RangeRequest { Key = B("a"), SortTarget = (RangeRequest.Types.SortTarget)42 },
        })));

    [Fact]
    public void PutTwiceIsDuplicate()
    {
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpPut("a", "1"), OpPut("a", "2"))));
        Assert.Null(TxnError(Success(OpPut("a", "1"), OpPut("b", "2"))));
    }

    [Fact]
    public void SameKeyInSuccessAndFailureIsFine()
    {
        var t = Success(OpPut("a", "1"));
        t.Failure.Add(OpPut("a", "2"));
        Assert.Null(TxnError(t));
    }

    [Fact]
    public void PutAndDeleteOverlapping()
    {
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpPut("a", "1"), OpDel("a"))));
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpDel("a"), OpPut("a", "1"))));
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpDel("a", "c"), OpPut("b", "1"))));
        Assert.Null(TxnError(Success(OpDel("a", "c"), OpPut("c", "1"))));
        Assert.Null(TxnError(Success(OpDel("b"), OpPut("ba", "1"))));
        // etcd 3.4 takes a "\0" range end literally: [b, "\0") is empty, so no conflict
        Assert.Null(TxnError(Success(
            new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B("b"), RangeEnd = AllFrom } },
            OpPut("c", "1"))));
        // deletes may overlap each other
        Assert.Null(TxnError(Success(OpDel("a", "z"), OpDel("b"))));
        // reads never conflict
        Assert.Null(TxnError(Success(OpPut("a", "1"), OpGet("a"))));
    }

    [Fact]
    public void NestedDuplicates()
    {
        // a put in a nested txn and a put at the outer level
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpTxn(Success(OpPut("a", "1"))), OpPut("a", "2"))));
        // nested put under an outer delete
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpDel("a", "c"), OpTxn(Success(OpPut("b", "1"))))));
        // nested delete and outer put
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpTxn(Success(OpDel("a"))), OpPut("a", "1"))));
        // two sibling nested txns putting the same key
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpTxn(Success(OpPut("a", "1"))), OpTxn(Success(OpPut("a", "2"))))));
        // then and else of one nested txn may put the same key
        var inner = Success(OpPut("a", "1"));
        inner.Failure.Add(OpPut("a", "2"));
        Assert.Null(TxnError(Success(OpTxn(inner))));
        // a nested else put clashing with an earlier sibling's put
        var inner2 = Success(OpPut("x", "1"));
        inner2.Failure.Add(OpPut("a", "2"));
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpTxn(Success(OpPut("a", "1"))), OpTxn(inner2))));
        // nested delete plus nested put in a sibling
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(Success(OpTxn(Success(OpDel("a", "b"))), OpTxn(Success(OpPut("a", "1"))))));
    }

    [Fact]
    public void DuplicatesAreCheckedPerBranch()
    {
        var t = new TxnRequest { Failure = { OpPut("a", "1"), OpPut("a", "2") } };
        Assert.Same(EtcdErrors.DuplicateKey, TxnError(t));
    }
}
