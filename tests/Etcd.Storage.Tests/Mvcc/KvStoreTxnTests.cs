using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using static Etcd.Storage.Tests.Mvcc.M;
using Result = Etcdserverpb.Compare.Types.CompareResult;
using Target = Etcdserverpb.Compare.Types.CompareTarget;

namespace Etcd.Storage.Tests.Mvcc;

public sealed class KvStoreTxnTests : IDisposable
{
    private readonly FakeLessor _lessor = new();
    private readonly KvStore _s;

    public KvStoreTxnTests()
    {
        _lessor.Granted.Add(9);
        _s = new KvStore(new InMemoryBackend(), _lessor);
        _s.Put("a", "1");          // 2: a create 2 mod 2 ver 1
        _s.Put("b", "2", lease: 9); // 3
        _s.Put("a", "3");          // 4: a create 2 mod 4 ver 2
        _s.Put("c", "3");          // 5
    }

    public void Dispose() => _s.Dispose();

    private static Compare Cmp(string key, Target target, Result result, long n = 0, string? value = null, string? end = null)
    {
        var c = new Compare { Key = B(key), Target = target, Result = result };
        if (end is not null)
        {
            c.RangeEnd = end == "\0" ? AllFrom : B(end);
        }

        switch (target)
        {
            case Target.Version: c.Version = n; break;
            case Target.Create: c.CreateRevision = n; break;
            case Target.Mod: c.ModRevision = n; break;
            case Target.Lease: c.Lease = n; break;
            case Target.Value: c.Value = B(value ?? ""); break;
        }

        return c;
    }

    private bool Eval(params Compare[] cmps)
    {
        var t = new TxnRequest();
        t.Compare.AddRange(cmps);
        return _s.Txn(t).Succeeded;
    }

    [Theory]
    [InlineData(Target.Version, Result.Equal, 2L, true)]
    [InlineData(Target.Version, Result.Equal, 1L, false)]
    [InlineData(Target.Version, Result.Greater, 1L, true)]
    [InlineData(Target.Version, Result.Less, 3L, true)]
    [InlineData(Target.Version, Result.NotEqual, 2L, false)]
    [InlineData(Target.Create, Result.Equal, 2L, true)]
    [InlineData(Target.Create, Result.Greater, 2L, false)]
    [InlineData(Target.Create, Result.Less, 3L, true)]
    [InlineData(Target.Create, Result.NotEqual, 0L, true)]
    [InlineData(Target.Mod, Result.Equal, 4L, true)]
    [InlineData(Target.Mod, Result.Greater, 3L, true)]
    [InlineData(Target.Mod, Result.Less, 4L, false)]
    [InlineData(Target.Mod, Result.NotEqual, 4L, false)]
    [InlineData(Target.Lease, Result.Equal, 0L, true)]
    [InlineData(Target.Lease, Result.Greater, 0L, false)]
    [InlineData(Target.Lease, Result.NotEqual, 9L, true)]
    public void CompareOnExistingKey(Target target, Result result, long n, bool expected)
        => Assert.Equal(expected, Eval(Cmp("a", target, result, n)));

    [Theory]
    [InlineData(Result.Equal, "3", true)]
    [InlineData(Result.Equal, "1", false)]
    [InlineData(Result.Greater, "2", true)]
    [InlineData(Result.Greater, "3", false)]
    [InlineData(Result.Less, "30", true)]
    [InlineData(Result.NotEqual, "3", false)]
    [InlineData(Result.NotEqual, "", true)]
    public void CompareValue(Result result, string value, bool expected)
        => Assert.Equal(expected, Eval(Cmp("a", Target.Value, result, value: value)));

    [Fact]
    public void CompareLeaseOfLeasedKey()
    {
        Assert.True(Eval(Cmp("b", Target.Lease, Result.Equal, 9)));
        Assert.True(Eval(Cmp("b", Target.Lease, Result.Greater, 8)));
    }

    [Fact]
    public void MissingKeyComparesAsZeroExceptValue()
    {
        Assert.True(Eval(Cmp("zz", Target.Version, Result.Equal, 0)));
        Assert.True(Eval(Cmp("zz", Target.Create, Result.Equal, 0)));
        Assert.True(Eval(Cmp("zz", Target.Mod, Result.Less, 1)));
        Assert.True(Eval(Cmp("zz", Target.Lease, Result.Equal, 0)));
        Assert.False(Eval(Cmp("zz", Target.Value, Result.Equal, value: "")));
        Assert.False(Eval(Cmp("zz", Target.Value, Result.NotEqual, value: "x")));
    }

    [Fact]
    public void CompareTargetUnionMismatchComparesWithZero()
    {
        // target MOD but the union carries a version: etcd compares against 0
        var c = new Compare { Key = B("a"), Target = Target.Mod, Result = Result.Greater, Version = 100 };
        Assert.True(Eval(c));
    }

    [Fact]
    public void UnknownCompareResultIsTrue()
    {
        var c = new Compare { Key = B("a"), Target = Target.Mod, Result = (Result)9, ModRevision = 1 };
        Assert.True(Eval(c));
    }

    [Fact]
    public void RangeCompareMustHoldForEveryKey()
    {
        // a: mod 4, b: mod 3, c: mod 5
        Assert.True(Eval(Cmp("a", Target.Mod, Result.Greater, 2, end: "d")));
        Assert.False(Eval(Cmp("a", Target.Mod, Result.Greater, 3, end: "d")));
        Assert.True(Eval(Cmp("a", Target.Mod, Result.Greater, 3, end: "b")));
        Assert.True(Eval(Cmp("b", Target.Mod, Result.Greater, 2, end: "\0")));
        Assert.False(Eval(Cmp("a", Target.Value, Result.Equal, value: "3", end: "\0")));
        Assert.True(Eval(Cmp("c", Target.Value, Result.Equal, value: "3", end: "\0")));
        // an empty range compares like a missing key
        Assert.True(Eval(Cmp("x", Target.Version, Result.Equal, 0, end: "z")));
        Assert.False(Eval(Cmp("x", Target.Value, Result.Equal, value: "", end: "z")));
    }

    [Fact]
    public void AllComparesMustHold()
    {
        Assert.True(Eval(Cmp("a", Target.Version, Result.Equal, 2), Cmp("c", Target.Value, Result.Equal, value: "3")));
        Assert.False(Eval(Cmp("a", Target.Version, Result.Equal, 2), Cmp("c", Target.Value, Result.Equal, value: "4")));
        Assert.True(Eval());
    }

    [Fact]
    public void SuccessBranchWritesUnderOneRevision()
    {
        var t = new TxnRequest
        {
            Compare = { Cmp("a", Target.Value, Result.Equal, value: "3") },
            Success = { OpPut("x", "1"), OpGet("x"), OpPut("y", "2"), OpDel("c"), OpGet("a", "\u00ff") },
            Failure = { OpPut("never", "1") },
        };
        var r = _s.Txn(t);
        Assert.True(r.Succeeded);
        Assert.Equal(6, r.Header.Revision);
        Assert.Equal(6, _s.CurrentRevision);
        Assert.Equal(5, r.Responses.Count);
        Assert.Equal(6, r.Responses[0].ResponsePut.Header.Revision);
        // a read inside the txn sees the txn's earlier writes and reports the txn revision
        var get = r.Responses[1].ResponseRange;
        Assert.Equal("1", S(get.Kvs[0].Value));
        Assert.Equal(6, get.Header.Revision);
        Assert.Equal(1, r.Responses[3].ResponseDeleteRange.Deleted);
        Assert.Equal(new[] { "a", "b", "x", "y" }, r.Responses[4].ResponseRange.Keys());
        var x = _s.Get("x").Kvs[0];
        var y = _s.Get("y").Kvs[0];
        Assert.Equal((6L, 6L), (x.ModRevision, y.ModRevision));
        Assert.Empty(_s.Get("never").Kvs);
    }

    [Fact]
    public void FailureBranchRuns()
    {
        var t = new TxnRequest
        {
            Compare = { Cmp("a", Target.Value, Result.Equal, value: "nope") },
            Success = { OpPut("s", "1") },
            Failure = { OpPut("f", "1"), OpGet("a") },
        };
        var r = _s.Txn(t);
        Assert.False(r.Succeeded);
        Assert.Equal(2, r.Responses.Count);
        Assert.NotNull(r.Responses[0].ResponsePut);
        Assert.Equal("3", S(r.Responses[1].ResponseRange.Kvs[0].Value));
        Assert.Single(_s.Get("f").Kvs);
        Assert.Empty(_s.Get("s").Kvs);
    }

    [Fact]
    public void ReadOnlyTxnKeepsRevision()
    {
        var r = _s.Txn(new TxnRequest { Success = { OpGet("a"), OpGet("a", rev: 2) } });
        Assert.True(r.Succeeded);
        Assert.Equal(5, r.Header.Revision);
        Assert.Equal("1", S(r.Responses[1].ResponseRange.Kvs[0].Value));
        Assert.Equal(5, _s.CurrentRevision);
    }

    [Fact]
    public void WriteTxnThatChangesNothingKeepsRevision()
    {
        var r = _s.Txn(new TxnRequest { Success = { OpDel("nothing") } });
        Assert.Equal(5, r.Header.Revision);
        Assert.Equal(5, r.Responses[0].ResponseDeleteRange.Header.Revision);
        Assert.Equal(5, _s.CurrentRevision);
    }

    [Fact]
    public void DeleteAfterPutInTxnReportsTxnRevision()
    {
        var r = _s.Txn(new TxnRequest { Success = { OpPut("n", "1"), OpDel("nothing") } });
        Assert.Equal(6, r.Responses[1].ResponseDeleteRange.Header.Revision);
        Assert.Equal(0, r.Responses[1].ResponseDeleteRange.Deleted);
    }

    [Fact]
    public void NestedTxnComparesSeeTheStateBeforeTheTxn()
    {
        // the outer success puts a=new, then a nested txn compares a's value: etcd evaluates all
        // compares up front, so the nested compare sees a=3 and takes its success branch.
        var inner = new TxnRequest
        {
            Compare = { Cmp("a", Target.Value, Result.Equal, value: "3") },
            Success = { OpPut("inner", "then"), OpGet("a") },
            Failure = { OpPut("inner", "else") },
        };
        var t = new TxnRequest { Success = { OpPut("a", "new"), OpTxn(inner), OpPut("after", "1") } };
        var r = _s.Txn(t);
        Assert.True(r.Succeeded);
        Assert.Equal(6, r.Header.Revision);
        var innerResp = r.Responses[1].ResponseTxn;
        Assert.True(innerResp.Succeeded);
        Assert.Equal(0, innerResp.Header.Revision);
        Assert.Equal("new", S(innerResp.Responses[1].ResponseRange.Kvs[0].Value));
        Assert.Equal("then", S(_s.Get("inner").Kvs[0].Value));
        Assert.Single(_s.Get("after").Kvs);
        // every write in the txn shares revision 6 with increasing sub revisions
        Assert.Equal(6, _s.Get("inner").Kvs[0].ModRevision);
        Assert.Equal(6, _s.Get("after").Kvs[0].ModRevision);
    }

    [Fact]
    public void DeeplyNestedFailurePaths()
    {
        var level2 = new TxnRequest
        {
            Compare = { Cmp("c", Target.Version, Result.Equal, 5) },
            Success = { OpPut("l2", "then") },
            Failure = { OpPut("l2", "else") },
        };
        var level1 = new TxnRequest
        {
            Compare = { Cmp("b", Target.Lease, Result.Equal, 9) },
            Success = { OpTxn(level2), OpPut("l1", "then") },
            Failure = { OpPut("l1", "else") },
        };
        var top = new TxnRequest
        {
            Compare = { Cmp("a", Target.Version, Result.Equal, 99) },
            Success = { OpPut("top", "then") },
            Failure = { OpTxn(level1), OpTxn(new TxnRequest { Success = { OpPut("sib", "x") } }) },
        };
        var r = _s.Txn(top);
        Assert.False(r.Succeeded);
        Assert.True(r.Responses[0].ResponseTxn.Succeeded);
        Assert.False(r.Responses[0].ResponseTxn.Responses[0].ResponseTxn.Succeeded);
        Assert.True(r.Responses[1].ResponseTxn.Succeeded);
        Assert.Equal("else", S(_s.Get("l2").Kvs[0].Value));
        Assert.Equal("then", S(_s.Get("l1").Kvs[0].Value));
        Assert.Single(_s.Get("sib").Kvs);
        Assert.Empty(_s.Get("top").Kvs);
    }

    [Fact]
    public void TxnPutChecksRunBeforeAnyWrite()
    {
        Assert.Same(EtcdErrors.KeyNotFound, Error(() => _s.Txn(new TxnRequest
        {
            Success = { OpPut("x", "1"), new RequestOp { RequestPut = new PutRequest { Key = B("missing"), IgnoreValue = true } } },
        })));
        Assert.Same(EtcdErrors.LeaseNotFound, Error(() => _s.Txn(new TxnRequest { Success = { OpPut("x", "1"), OpPut("y", "1", lease: 1234) } })));
        Assert.Equal(5, _s.CurrentRevision);
        Assert.Empty(_s.Get("x").Kvs);
        // a failing check on the branch not taken does not matter
        var r = _s.Txn(new TxnRequest
        {
            Compare = { Cmp("a", Target.Version, Result.Equal, 2) },
            Success = { OpPut("x", "1") },
            Failure = { OpPut("y", "1", lease: 1234) },
        });
        Assert.True(r.Succeeded);
    }

    [Fact]
    public void TxnRangeRevisionChecks()
    {
        Assert.Same(EtcdErrors.FutureRev, Error(() => _s.Txn(new TxnRequest { Success = { OpPut("x", "1"), OpGet("a", rev: 6) } })));
        Assert.Same(EtcdErrors.FutureRev, Error(() => _s.Txn(new TxnRequest { Success = { OpGet("a", rev: 6) } })));
        _s.Compact(new CompactionRequest { Revision = 4 });
        Assert.Same(EtcdErrors.Compacted, Error(() => _s.Txn(new TxnRequest { Success = { OpPut("x", "1"), OpGet("a", rev: 3) } })));
        Assert.Equal(5, _s.CurrentRevision);
        var r = _s.Txn(new TxnRequest { Success = { OpGet("a", rev: 4) } });
        Assert.Equal("3", S(r.Responses[0].ResponseRange.Kvs[0].Value));
    }

    [Fact]
    public void TxnPutWithLeaseAttaches()
    {
        _s.Txn(new TxnRequest { Success = { OpPut("l", "1", lease: 9) } });
        Assert.Contains("l", _lessor.Attached[9]);
        Assert.Equal(9, _s.Get("l").Kvs[0].Lease);
    }
}
