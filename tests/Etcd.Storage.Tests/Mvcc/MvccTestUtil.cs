using System.Text;
using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Storage.Tests.Mvcc;

internal static class M
{
    public static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    public static string S(ByteString b) => b.ToStringUtf8();

    public static readonly ByteString AllFrom = ByteString.CopyFrom(0);

    public static PutResponse Put(this KvStore s, string key, string value, long lease = 0)
        => s.Put(new PutRequest { Key = B(key), Value = B(value), Lease = lease });

    public static DeleteRangeResponse Del(this KvStore s, string key, string? end = null)
        => s.DeleteRange(new DeleteRangeRequest { Key = B(key), RangeEnd = end is null ? ByteString.Empty : B(end) });

    public static RangeResponse Get(this KvStore s, string key, string? end = null, long rev = 0)
        => s.Range(new RangeRequest { Key = B(key), RangeEnd = end is null ? ByteString.Empty : B(end), Revision = rev });

    public static RangeResponse GetAll(this KvStore s, long rev = 0)
        => s.Range(new RangeRequest { Key = AllFrom, RangeEnd = AllFrom, Revision = rev });

    public static string[] Keys(this RangeResponse r) => r.Kvs.Select(kv => S(kv.Key)).ToArray();

    public static string[] Values(this RangeResponse r) => r.Kvs.Select(kv => S(kv.Value)).ToArray();

    public static RequestOp OpPut(string key, string value, long lease = 0)
        => new() { RequestPut = new PutRequest { Key = B(key), Value = B(value), Lease = lease } };

    public static RequestOp OpDel(string key, string? end = null)
        => new() { RequestDeleteRange = new DeleteRangeRequest { Key = B(key), RangeEnd = end is null ? ByteString.Empty : B(end) } };

    public static RequestOp OpGet(string key, string? end = null, long rev = 0)
        => new() { RequestRange = new RangeRequest { Key = B(key), RangeEnd = end is null ? ByteString.Empty : B(end), Revision = rev } };

    public static RequestOp OpTxn(TxnRequest t) => new() { RequestTxn = t };

    public static EtcdError Error(Action a)
    {
        var ex = Assert.Throws<EtcdException>(a);
        return ex.Error;
    }
}

/// <summary>A lessor stand-in that records attach/detach calls.</summary>
internal sealed class FakeLessor : ILeaseLookup
{
    public HashSet<long> Granted { get; } = [];

    public Dictionary<long, HashSet<string>> Attached { get; } = [];

    public List<string> Calls { get; } = [];

    public bool Exists(long leaseId) => Granted.Contains(leaseId);

    public void Attach(long leaseId, ReadOnlySpan<byte> key)
    {
        var k = Encoding.UTF8.GetString(key);
        Calls.Add($"attach {leaseId} {k}");
        if (!Attached.TryGetValue(leaseId, out var set))
        {
            Attached[leaseId] = set = [];
        }

        set.Add(k);
    }

    public void Detach(long leaseId, ReadOnlySpan<byte> key)
    {
        var k = Encoding.UTF8.GetString(key);
        Calls.Add($"detach {leaseId} {k}");
        Attached.GetValueOrDefault(leaseId)?.Remove(k);
    }
}

/// <summary>Records every committed batch of events.</summary>
internal sealed class RecordingObserver : IKvObserver
{
    public List<(long Rev, IReadOnlyList<Event> Events)> Batches { get; } = [];

    public void OnCommitted(long revision, IReadOnlyList<Event> events) => Batches.Add((revision, events));
}
