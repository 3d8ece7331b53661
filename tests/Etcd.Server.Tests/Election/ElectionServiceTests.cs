using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using V3Electionpb;
using V3Lockpb;

namespace Etcd.Server.Tests.Election;

/// <summary>The Election and Lock services through our gRPC client against an in-process member.</summary>
public sealed class ElectionServiceTests() : InProcessMemberTests("election")
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private async Task<long> Lease(long ttl = 30)
        => (await Client.UnaryAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = ttl })).ID;

    private Task<CampaignResponse> Campaign(string name, string value, long lease, CancellationToken ct = default)
        => Client.UnaryAsync(EtcdMethods.ElectionService.Campaign, new CampaignRequest { Name = B(name), Value = B(value), Lease = lease }, cancellationToken: ct);

    private Task<LeaderResponse> Leader(string name)
        => Client.UnaryAsync(EtcdMethods.ElectionService.Leader, new LeaderRequest { Name = B(name) });

    [Fact]
    public async Task CampaignLeaderProclaimResign()
    {
        var lease = await Lease();
        var c = await Campaign("elect", "v1", lease);
        Assert.Equal($"elect/{lease:x}", c.Leader.Key.ToStringUtf8());
        Assert.Equal(lease, c.Leader.Lease);
        Assert.Equal(c.Header.Revision, c.Leader.Rev);
        Assert.Equal("v1", (await Leader("elect")).Kv.Value.ToStringUtf8());

        await Client.UnaryAsync(EtcdMethods.ElectionService.Proclaim, new ProclaimRequest { Leader = c.Leader, Value = B("v2") });
        var l = await Leader("elect");
        Assert.Equal("v2", l.Kv.Value.ToStringUtf8());
        Assert.Equal(lease, l.Kv.Lease);

        var r = await Client.UnaryAsync(EtcdMethods.ElectionService.Resign, new ResignRequest { Leader = c.Leader });
        Assert.True(r.Header.Revision > c.Header.Revision);
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => Leader("elect"));
        Assert.Equal(StatusCode.Unknown, e.Status);
        Assert.Equal("election: no leader", e.Detail);

        // Proclaiming with a stale leader key fails with etcd's error.
        e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.UnaryAsync(EtcdMethods.ElectionService.Proclaim, new ProclaimRequest { Leader = c.Leader, Value = B("v3") }));
        Assert.Equal(StatusCode.Unknown, e.Status);
        Assert.Equal("election: not leader", e.Detail);
    }

    [Fact]
    public async Task MissingLeaderKeyIsRejected()
    {
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.UnaryAsync(EtcdMethods.ElectionService.Proclaim, new ProclaimRequest { Value = B("v") }));
        Assert.Equal(StatusCode.Unknown, e.Status);
        Assert.Equal("\"leader\" field must be provided", e.Detail);
        e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.UnaryAsync(EtcdMethods.ElectionService.Resign, new ResignRequest()));
        Assert.Equal("\"leader\" field must be provided", e.Detail);
    }

    [Fact]
    public async Task SecondCandidateWaitsUntilTheLeaderResigns()
    {
        var l1 = await Lease();
        var l2 = await Lease();
        var first = await Campaign("queue", "a", l1);
        var second = Campaign("queue", "b", l2);
        await Client.Kv.PutAsync("barrier", "y");
        Assert.False(second.IsCompleted);
        Assert.Equal("a", (await Leader("queue")).Kv.Value.ToStringUtf8());

        await Client.UnaryAsync(EtcdMethods.ElectionService.Resign, new ResignRequest { Leader = first.Leader });
        var won = await second.WaitAsync(Bound);
        Assert.Equal($"queue/{l2:x}", won.Leader.Key.ToStringUtf8());
        Assert.Equal("b", (await Leader("queue")).Kv.Value.ToStringUtf8());
    }

    [Fact]
    public async Task CandidateWinsWhenTheLeadersLeaseIsRevoked()
    {
        var l1 = await Lease();
        var l2 = await Lease();
        await Campaign("rev", "a", l1);
        var second = Campaign("rev", "b", l2);
        await Client.UnaryAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = l1 });
        var won = await second.WaitAsync(Bound);
        Assert.Equal(l2, won.Leader.Lease);
    }

    [Fact]
    public async Task CampaignWithoutLeaseGrantsASessionLease()
    {
        var c = await Campaign("nolease", "v", 0);
        Assert.NotEqual(0, c.Leader.Lease);
        var ttl = await Client.UnaryAsync(EtcdMethods.LeaseService.LeaseTimeToLive, new LeaseTimeToLiveRequest { ID = c.Leader.Lease });
        Assert.Equal(60, ttl.GrantedTTL);
    }

    [Fact]
    public async Task ObserveStreamsEachLeaderValue()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var call = Client.GetChannel().ServerStreaming(EtcdMethods.ElectionService.Observe, new LeaderRequest { Name = B("obs") }, cancellationToken: cts.Token);
        var lease = await Lease();
        var c = await Campaign("obs", "one", lease);
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        Assert.Equal("one", call.ResponseStream.Current.Kv.Value.ToStringUtf8());

        await Client.UnaryAsync(EtcdMethods.ElectionService.Proclaim, new ProclaimRequest { Leader = c.Leader, Value = B("two") });
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        Assert.Equal("two", call.ResponseStream.Current.Kv.Value.ToStringUtf8());

        // The leader resigns; the next candidate becomes leader and is observed.
        var lease2 = await Lease();
        var next = Campaign("obs", "three", lease2);
        await Client.UnaryAsync(EtcdMethods.ElectionService.Resign, new ResignRequest { Leader = c.Leader });
        await next.WaitAsync(Bound);
        Assert.True(await call.ResponseStream.MoveNext(cts.Token));
        Assert.Equal("three", call.ResponseStream.Current.Kv.Value.ToStringUtf8());
    }

    [Fact]
    public async Task LockIsMutuallyExclusive()
    {
        var l1 = await Lease();
        var l2 = await Lease();
        var a = await Client.UnaryAsync(EtcdMethods.LockService.Lock, new LockRequest { Name = B("mtx"), Lease = l1 });
        Assert.Equal($"mtx/{l1:x}", a.Key.ToStringUtf8());

        var b = Client.UnaryAsync(EtcdMethods.LockService.Lock, new LockRequest { Name = B("mtx"), Lease = l2 });
        await Client.Kv.PutAsync("barrier", "x");
        Assert.False(b.IsCompleted);

        // Re-locking with the same lease while holding it returns at once.
        var again = await Client.UnaryAsync(EtcdMethods.LockService.Lock, new LockRequest { Name = B("mtx"), Lease = l1 });
        Assert.Equal(a.Key, again.Key);

        var u = await Client.UnaryAsync(EtcdMethods.LockService.Unlock, new UnlockRequest { Key = a.Key });
        Assert.True(u.Header.Revision > a.Header.Revision);
        var got = await b.WaitAsync(Bound);
        Assert.Equal($"mtx/{l2:x}", got.Key.ToStringUtf8());
        Assert.True(got.Header.Revision >= u.Header.Revision);

        var e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.UnaryAsync(EtcdMethods.LockService.Lock, new LockRequest { Name = B("mtx"), Lease = 999 }));
        Assert.Equal(EtcdErrors.LeaseNotFound.Message, e.Detail);
    }
}
