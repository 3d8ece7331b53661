using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using V3Electionpb;
using V3Lockpb;

namespace Etcd.Server.Election;

/// <summary>
/// The <c>v3electionpb.Election</c> and <c>v3lockpb.Lock</c> services, served inside the member over KV and
/// leases with the algorithms of etcd's <c>clientv3/concurrency</c> (<c>election.go</c>, <c>mutex.go</c>) as used by
/// <c>etcdserver/api/v3election</c> and <c>v3lock</c>: a candidate's key is <c>&lt;name&gt;/&lt;lease ID in hex&gt;</c>;
/// the key with the lowest create revision under <c>&lt;name&gt;/</c> leads (holds the lock); a candidate waits
/// until every key created before its own is deleted. A request without a lease gets a new 60 s lease
/// (the session default). Errors: etcd's strings with gRPC code Unknown — <see cref="ErrMissingLeaderKey"/>,
/// <see cref="ErrElectionNotLeader"/>, <see cref="ErrElectionNoLeader"/> — or the KV/lease error of the step that failed.
/// </summary>
public static class ElectionServices
{
    /// <summary>Session lease TTL in seconds when a request names no lease (concurrency's defaultSessionTTL).</summary>
    public const long DefaultSessionTtl = 60;

    /// <summary>Proclaim/Resign without a leader key: <c>"leader" field must be provided</c>.</summary>
    public static readonly EtcdError ErrMissingLeaderKey = new(StatusCode.Unknown, "\"leader\" field must be provided");

    /// <summary>The caller no longer holds the leader key: <c>election: not leader</c>.</summary>
    public static readonly EtcdError ErrElectionNotLeader = new(StatusCode.Unknown, "election: not leader");

    /// <summary>No key under the election prefix: <c>election: no leader</c>.</summary>
    public static readonly EtcdError ErrElectionNoLeader = new(StatusCode.Unknown, "election: no leader");

    /// <summary>
    /// etcd serves these services through its own client (<c>v3client</c>), which turns a KV, lease or auth error into
    /// clientv3's error value; the service returns that as is, so the caller sees the same text with code Unknown
    /// (e.g. <c>etcdserver: permission denied</c>, code 2; HTTP 500 on the gateway).
    /// </summary>
    internal static async Task<T> AsClientErrors<T>(Task<T> call)
    {
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (EtcdException e) when (e.Error.Code != StatusCode.Unknown)
        {
            throw new RpcException(StatusCode.Unknown, e.Error.Message, e);
        }
    }
}

/// <summary>The election and lock algorithms over one member (see <see cref="ElectionServices"/>).</summary>
internal sealed class ElectionCore(EtcdServer server, IKeyDeletionWaiter waiter)
{
    public async Task<CampaignResponse> CampaignAsync(CampaignRequest req, CancellationToken ct)
    {
        var lease = await SessionLeaseAsync(req.Lease, ct).ConfigureAwait(false);
        var prefix = Prefix(req.Name);
        var key = KeyFor(prefix, lease);
        var txn = new TxnRequest();
        txn.Compare.Add(CreateRevisionIs(key, 0));
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = req.Value, Lease = lease } });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = key } });
        var resp = await server.TxnAsync(txn, ct).ConfigureAwait(false);
        var rev = resp.Header.Revision;
        if (!resp.Succeeded)
        {
            var kv = resp.Responses[0].ResponseRange.Kvs[0];
            rev = kv.CreateRevision;
            if (kv.Value != req.Value)
            {
                try
                {
                    await ProclaimAsync(key, rev, lease, req.Value, ct).ConfigureAwait(false);
                }
                catch (RpcException)
                {
                    await ResignAsync(key, rev, CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
            }
        }

        try
        {
            await WaitDeletesAsync(prefix, rev - 1, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // A cancelled campaign withdraws its key, as concurrency's Campaign does.
            await ResignAsync(key, rev, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return new CampaignResponse
        {
            Header = resp.Header,
            Leader = new LeaderKey { Name = req.Name, Key = key, Rev = rev, Lease = lease },
        };
    }

    public async Task<ProclaimResponse> ProclaimAsync(ProclaimRequest req, CancellationToken ct)
    {
        var leader = req.Leader ?? throw ElectionServices.ErrMissingLeaderKey.ToException();
        var lease = await SessionLeaseAsync(leader.Lease, ct).ConfigureAwait(false);
        var header = await ProclaimAsync(leader.Key, leader.Rev, lease, req.Value, ct).ConfigureAwait(false);
        return new ProclaimResponse { Header = header };
    }

    public async Task<ResignResponse> ResignAsync(ResignRequest req, CancellationToken ct)
    {
        var leader = req.Leader ?? throw ElectionServices.ErrMissingLeaderKey.ToException();
        await SessionLeaseAsync(leader.Lease, ct).ConfigureAwait(false);
        var header = await ResignAsync(leader.Key, leader.Rev, ct).ConfigureAwait(false);
        return new ResignResponse { Header = header };
    }

    public async Task<LeaderResponse> LeaderAsync(LeaderRequest req, CancellationToken ct)
    {
        var resp = await server.RangeAsync(FirstCreate(Prefix(req.Name)), ct).ConfigureAwait(false);
        if (resp.Kvs.Count == 0)
        {
            throw ElectionServices.ErrElectionNoLeader.ToException();
        }

        return new LeaderResponse { Header = resp.Header, Kv = resp.Kvs[0] };
    }

    /// <summary>
    /// Streams the leader: the current one (or the first put under the prefix when there is none), then every
    /// put on the leader's key until it is deleted, then the next leader, until the caller cancels.
    /// </summary>
    public async Task ObserveAsync(LeaderRequest req, IAsyncStreamWriter<LeaderResponse> responses, CancellationToken ct)
    {
        var prefix = Prefix(req.Name);
        var prefixEnd = PrefixEnd(prefix);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var resp = await server.RangeAsync(FirstCreate(prefix), ct).ConfigureAwait(false);
                KeyValue kv;
                ResponseHeader hdr;
                if (resp.Kvs.Count == 0)
                {
                    var from = resp.Header.Revision;
                    KeyValue? put = null;
                    while (put is null)
                    {
                        var (events, seen) = await waiter.NextEventsAsync(prefix.ToByteArray(), prefixEnd, from, ct).ConfigureAwait(false);
                        put = events.FirstOrDefault(e => e.Type == Event.Types.EventType.Put)?.Kv;
                        from = seen + 1;
                    }

                    kv = put;
                    hdr = NewHeader(kv.ModRevision);
                }
                else
                {
                    kv = resp.Kvs[0];
                    hdr = resp.Header;
                }

                await responses.WriteAsync(new LeaderResponse { Header = hdr, Kv = kv }, ct).ConfigureAwait(false);

                var next = hdr.Revision + 1;
                var deleted = false;
                while (!deleted)
                {
                    var (events, seen) = await waiter.NextEventsAsync(kv.Key.ToByteArray(), null, next, ct).ConfigureAwait(false);
                    next = seen + 1;
                    foreach (var e in events)
                    {
                        if (e.Type == Event.Types.EventType.Delete)
                        {
                            deleted = true;
                            break;
                        }

                        await responses.WriteAsync(new LeaderResponse { Header = NewHeader(seen), Kv = e.Kv }, ct).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The observer went away.
        }
    }

    public async Task<LockResponse> LockAsync(LockRequest req, CancellationToken ct)
    {
        var lease = await SessionLeaseAsync(req.Lease, ct).ConfigureAwait(false);
        var prefix = Prefix(req.Name);
        var key = KeyFor(prefix, lease);
        var txn = new TxnRequest();
        txn.Compare.Add(CreateRevisionIs(key, 0));
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Lease = lease } });
        txn.Success.Add(new RequestOp { RequestRange = FirstCreate(prefix) });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = key } });
        txn.Failure.Add(new RequestOp { RequestRange = FirstCreate(prefix) });
        var resp = await server.TxnAsync(txn, ct).ConfigureAwait(false);
        var myRev = resp.Header.Revision;
        if (!resp.Succeeded)
        {
            myRev = resp.Responses[0].ResponseRange.Kvs[0].CreateRevision;
        }

        var owner = resp.Responses[1].ResponseRange.Kvs;
        if (owner.Count == 0 || owner[0].CreateRevision == myRev)
        {
            return new LockResponse { Header = resp.Header, Key = key };
        }

        try
        {
            var hdr = await WaitDeletesAsync(prefix, myRev - 1, ct).ConfigureAwait(false);
            return new LockResponse { Header = hdr, Key = key };
        }
        catch (Exception e) when (e is OperationCanceledException or RpcException)
        {
            // Give up our place in the queue, as concurrency's Mutex.Lock does on a failed wait.
            await DeleteQuietlyAsync(key).ConfigureAwait(false);
            throw;
        }
    }

    public async Task<UnlockResponse> UnlockAsync(UnlockRequest req, CancellationToken ct)
    {
        var resp = await server.DeleteRangeAsync(new DeleteRangeRequest { Key = req.Key }, ct).ConfigureAwait(false);
        return new UnlockResponse { Header = resp.Header };
    }

    private static ByteString Prefix(ByteString name) => ByteString.CopyFrom([.. name.Span, (byte)'/']);

    private static ByteString KeyFor(ByteString prefix, long lease)
        => ByteString.CopyFrom([.. prefix.Span, .. System.Text.Encoding.ASCII.GetBytes(lease.ToString("x", System.Globalization.CultureInfo.InvariantCulture))]);

    private static byte[] PrefixEnd(ByteString prefix)
    {
        var end = prefix.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }

        return [0];
    }

    private static Compare CreateRevisionIs(ByteString key, long rev) => new()
    {
        Key = key,
        Target = Compare.Types.CompareTarget.Create,
        Result = Compare.Types.CompareResult.Equal,
        CreateRevision = rev,
    };

    private static RangeRequest FirstCreate(ByteString prefix) => new()
    {
        Key = prefix,
        RangeEnd = ByteString.CopyFrom(PrefixEnd(prefix)),
        SortTarget = RangeRequest.Types.SortTarget.Create,
        SortOrder = RangeRequest.Types.SortOrder.Ascend,
        Limit = 1,
    };

    private ResponseHeader NewHeader(long revision)
    {
        var h = new ResponseHeader { Revision = revision };
        server.FillHeader(h);
        return h;
    }

    /// <summary>The session's lease: the given one, or a new lease of the default session TTL for 0.</summary>
    private async Task<long> SessionLeaseAsync(long lease, CancellationToken ct)
    {
        if (lease != 0)
        {
            return lease;
        }

        var g = await server.LeaseGrantAsync(new LeaseGrantRequest { TTL = ElectionServices.DefaultSessionTtl }, ct).ConfigureAwait(false);
        return g.ID;
    }

    private async Task<ResponseHeader> ProclaimAsync(ByteString key, long rev, long lease, ByteString value, CancellationToken ct)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(CreateRevisionIs(key, rev));
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = value, Lease = lease } });
        var resp = await server.TxnAsync(txn, ct).ConfigureAwait(false);
        if (!resp.Succeeded)
        {
            throw ElectionServices.ErrElectionNotLeader.ToException();
        }

        return resp.Header;
    }

    private async Task<ResponseHeader> ResignAsync(ByteString key, long rev, CancellationToken ct)
    {
        var txn = new TxnRequest();
        txn.Compare.Add(CreateRevisionIs(key, rev));
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = key } });
        var resp = await server.TxnAsync(txn, ct).ConfigureAwait(false);
        return resp.Header;
    }

    private async Task DeleteQuietlyAsync(ByteString key)
    {
        try
        {
            await server.DeleteRangeAsync(new DeleteRangeRequest { Key = key }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (RpcException)
        {
            // The lease expiry removes it anyway.
        }
    }

    /// <summary>Waits until no key under <paramref name="prefix"/> has create revision ≤ <paramref name="maxCreateRev"/>
    /// (concurrency's waitDeletes): repeatedly waits for the deletion of the newest such key.</summary>
    private async Task<ResponseHeader> WaitDeletesAsync(ByteString prefix, long maxCreateRev, CancellationToken ct)
    {
        while (true)
        {
            var get = FirstCreate(prefix);
            get.SortOrder = RangeRequest.Types.SortOrder.Descend;
            get.MaxCreateRevision = maxCreateRev;
            var resp = await server.RangeAsync(get, ct).ConfigureAwait(false);
            if (resp.Kvs.Count == 0)
            {
                return resp.Header;
            }

            await waiter.WaitDeleteAsync(resp.Kvs[0].Key.ToByteArray(), resp.Header.Revision, ct).ConfigureAwait(false);
        }
    }
}
