using System.Diagnostics;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Server.Election;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Etcd.Server.Tests.Lease;

/// <summary>The Lease service through our gRPC client against an in-process member.</summary>
public sealed class LeaseServiceTests(ITestOutputHelper output) : InProcessMemberTests("lease")
{
    private Task<LeaseGrantResponse> Grant(long ttl, long id = 0)
        => Client.UnaryAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { ID = id, TTL = ttl });

    private Task<LeaseTimeToLiveResponse> Ttl(long id, bool keys = false)
        => Client.UnaryAsync(EtcdMethods.LeaseService.LeaseTimeToLive, new LeaseTimeToLiveRequest { ID = id, Keys = keys });

    private async Task WaitPromotedAsync()
    {
        // The lessor is promoted when the leader applies its term's empty entry; a linearizable read gets us past it.
        await Host.Server.LinearizableReadNotifyAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(Host.Server.Lessor.IsPrimary);
    }

    [Fact]
    public async Task GrantTimeToLiveLeasesRevoke()
    {
        var g = await Grant(60);
        Assert.True(g.ID > 0);
        Assert.Equal(60, g.TTL);
        Assert.Equal(Host.Server.MemberId, g.Header.MemberId);

        var own = await Grant(1, id: 0x1234);
        Assert.Equal(0x1234, own.ID);
        Assert.Equal(1, own.TTL); // min TTL for a 100 ms election timeout is 1 s

        await Client.Kv.PutAsync(new PutRequest { Key = B("lk1"), Value = B("v"), Lease = g.ID });
        await Client.Kv.PutAsync(new PutRequest { Key = B("lk2"), Value = B("v"), Lease = g.ID });
        var ttl = await Ttl(g.ID, keys: true);
        Assert.Equal(60, ttl.GrantedTTL);
        Assert.InRange(ttl.TTL, 58, 60);
        Assert.Equal(["lk1", "lk2"], ttl.Keys.Select(k => k.ToStringUtf8()));

        var leases = await Client.UnaryAsync(EtcdMethods.LeaseService.LeaseLeases, new LeaseLeasesRequest());
        Assert.Contains(leases.Leases, l => l.ID == g.ID);
        Assert.Contains(leases.Leases, l => l.ID == 0x1234);

        var rev = await Client.UnaryAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = g.ID });
        Assert.Equal(0, (await Client.Kv.RangeAsync(new RangeRequest { Key = B("lk"), RangeEnd = B("ll") })).Count);
        Assert.True(rev.Header.Revision > 0);

        var gone = await Ttl(g.ID);
        Assert.Equal(-1, gone.TTL);
        Assert.Equal(g.ID, gone.ID);

        var e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.UnaryAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = g.ID }));
        Assert.Equal(EtcdErrors.LeaseNotFound.Code, e.Status);
        Assert.Equal(EtcdErrors.LeaseNotFound.Message, e.Detail);

        e = await Assert.ThrowsAnyAsync<RpcException>(() => Grant(10, id: 0x1234));
        Assert.Equal(EtcdErrors.LeaseExist.Message, e.Detail);
        e = await Assert.ThrowsAnyAsync<RpcException>(() => Grant(9_000_000_001));
        Assert.Equal(EtcdErrors.LeaseTtlTooLarge.Code, e.Status);
        Assert.Equal(EtcdErrors.LeaseTtlTooLarge.Message, e.Detail);
        e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.Kv.PutAsync(new PutRequest { Key = B("x"), Lease = g.ID }));
        Assert.Equal(EtcdErrors.LeaseNotFound.Message, e.Detail);
    }

    [Fact]
    public async Task KeepAliveStreamRenewsAndAnswersZeroForUnknownLeases()
    {
        await WaitPromotedAsync();
        var g = await Grant(5);
        using var call = Client.GetChannel().DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive);
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = g.ID });
        Assert.True(await call.ResponseStream.MoveNext());
        var r = call.ResponseStream.Current;
        Assert.Equal(g.ID, r.ID);
        Assert.Equal(5, r.TTL);
        Assert.Equal(Host.Server.MemberId, r.Header.MemberId);
        Assert.True(r.Header.Revision > 0);

        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = 424242 });
        Assert.True(await call.ResponseStream.MoveNext());
        Assert.Equal(424242, call.ResponseStream.Current.ID);
        Assert.Equal(0, call.ResponseStream.Current.TTL);

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());
    }

    [Fact]
    public async Task KeysOfAnExpiredLeaseVanishInOneRevision()
    {
        await WaitPromotedAsync();
        // 3 s leaves room for the six puts below on a loaded machine before the lease expires
        var g = await Grant(3);
        for (var i = 0; i < 5; i++)
        {
            await Client.Kv.PutAsync(new PutRequest { Key = B($"exp/{i}"), Value = B("v"), Lease = g.ID });
        }

        var from = (await Client.Kv.PutAsync("other", "v")).Header.Revision;
        var sw = Stopwatch.StartNew();
        var waiter = new AppliedKeyEventWaiter(Host.Server);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await waiter.WaitDeleteAsync(B("exp/0").ToByteArray(), from, cts.Token);
        output.WriteLine($"3 s lease revoked after {sw.ElapsedMilliseconds} ms");

        var events = Host.Server.Kv.ReadEvents(from + 1, Host.Server.Kv.CurrentRevision + 1);
        var deletes = events.Where(e => e.Type == Mvccpb.Event.Types.EventType.Delete).ToList();
        Assert.Equal(5, deletes.Count);
        Assert.Single(deletes.Select(e => e.Kv.ModRevision).Distinct());
        Assert.Equal(0, (await Client.Kv.RangeAsync(new RangeRequest { Key = B("exp/"), RangeEnd = B("exp0") })).Count);
        Assert.Equal(-1, (await Ttl(g.ID)).TTL);
        Assert.Equal(1, (await Client.Kv.RangeAsync(new RangeRequest { Key = B("other") })).Count);
    }

    [Fact]
    public async Task KeepAlivesKeepALeaseAliveAndMeasureRate()
    {
        await WaitPromotedAsync();
        var g = await Grant(1);
        using var call = Client.GetChannel().DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive);

        // Ping-pong for 1.5 s: longer than the TTL, so the lease only survives through the renewals.
        var sw = Stopwatch.StartNew();
        var n = 0;
        while (sw.ElapsedMilliseconds < 1500 && n < 1_000_000)
        {
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = g.ID });
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal(1, call.ResponseStream.Current.TTL);
            n++;
        }

        output.WriteLine($"sequential keep-alives: {n / sw.Elapsed.TotalSeconds:F0}/s");

        // Pipelined: many requests in flight on one stream.
        const int pipelined = 20_000;
        sw.Restart();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < pipelined; i++)
            {
                await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = g.ID });
            }
        });
        for (var i = 0; i < pipelined; i++)
        {
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal(1, call.ResponseStream.Current.TTL);
        }

        await writer;
        output.WriteLine($"pipelined keep-alives: {pipelined / sw.Elapsed.TotalSeconds:F0}/s");
        Assert.InRange((await Ttl(g.ID)).TTL, 0, 1);
        await call.RequestStream.CompleteAsync();
    }
}
