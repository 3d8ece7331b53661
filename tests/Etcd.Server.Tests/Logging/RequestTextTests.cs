using Etcd.Server.Logging;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Tests.Logging;

/// <summary>Requests in etcd's slow-request warnings; expected strings are real etcd 3.4.23's for the same requests.</summary>
public sealed class RequestTextTests
{
    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    [Fact]
    public void Put_IsRedactedToValueSize()
    {
        var r = new InternalRaftRequest { Header = new RequestHeader { ID = 11547407912938206469 }, Put = new PutRequest { Key = B("foo"), Value = B("bar") } };
        Assert.Equal("header:<ID:11547407912938206469 > put:<key:\"foo\" value_size:3 >", RequestText.InternalRaft(r));
    }

    [Fact]
    public void Txn_IsRedacted_AsEtcdsLoggableTxn()
    {
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Target = Compare.Types.CompareTarget.Value, Key = B("foo"), Value = B("bar") });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B("a"), Value = B("b") } });
        var r = new InternalRaftRequest { Header = new RequestHeader { ID = 11547407912938206471 }, Txn = txn };
        Assert.Equal(
            "header:<ID:11547407912938206471 > txn:<compare:<target:VALUE key:\"foo\" value_size:3 > success:<request_put:<key:\"a\" value_size:1 >> failure:<>>",
            RequestText.InternalRaft(r));
    }

    [Fact]
    public void Range_And_V2_AreGoCompactText()
    {
        Assert.Equal("key:\"foo\" ", RequestText.Compact(new RangeRequest { Key = B("foo") }));
        var v2 = new Request { ID = 11547407912938206468, Method = "PUT", Path = "/0/version", Val = "3.4.0" };
        Assert.Equal("ID:11547407912938206468 Method:\"PUT\" Path:\"/0/version\" Val:\"3.4.0\" ", RequestText.Compact(v2));
    }

    [Fact]
    public void Compact_EscapesBytesAsGo_AndWritesEnumsAndNestedMessages()
    {
        var r = new InternalRaftRequest
        {
            Header = new RequestHeader { ID = 7 },
            DeleteRange = new DeleteRangeRequest { Key = B("a\"b\\c\n"), RangeEnd = ByteString.CopyFrom(0x00, 0xff), PrevKv = true },
        };
        Assert.Equal("header:<ID:7 > delete_range:<key:\"a\\\"b\\\\c\\n\" range_end:\"\\000\\377\" prev_kv:true > ", RequestText.InternalRaft(r));
        Assert.Equal("sort_order:DESCEND sort_target:MOD ", RequestText.Compact(new RangeRequest { SortOrder = RangeRequest.Types.SortOrder.Descend, SortTarget = RangeRequest.Types.SortTarget.Mod }));
    }

    [Fact]
    public void Lease_IsEtcdsFormat()
    {
        var r = new InternalRaftRequest { Header = new RequestHeader { ID = 3 }, LeaseGrant = new LeaseGrantRequest { TTL = 5, ID = 0x694d7a8b3e1c2f00 } };
        Assert.Equal("header:<ID:3 > lease_grant:<ttl:5-second id:694d7a8b3e1c2f00>", RequestText.InternalRaft(r));
    }
}
