using System.Diagnostics;
using Etcd.Api;
using Etcd.Server.Tests.Cluster;
using Etcd.Server.Tests.Watch;
using Etcd.Storage.Mvcc.Watch;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;
using Xunit.Abstractions;
using static Etcd.Server.Tests.Cluster.InProcessCluster;

namespace Etcd.Server.Tests.Lease;

/// <summary>
/// Leases and watches on a three-member in-process cluster (heartbeat 20 ms, election timeout 200 ms, so the minimum
/// TTL is 1 s): leader changes neither expire leases early nor lose their keys (etcd#9888), checkpoints carry the
/// remaining TTL to the next leader, keep-alives and TimeToLive sent to a follower reach the leader, and watches
/// served by followers see every event.
/// </summary>
public sealed class LeaseClusterTests(ITestOutputHelper output)
{
    private static CancellationToken Soon(int ms = 10_000) => new CancellationTokenSource(ms).Token;

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    /// <summary>Records, on <paramref name="member"/>, when each delete event under <paramref name="prefix"/> arrives (Stopwatch ticks by key).</summary>
    private static (WatchStream Stream, Task<Dictionary<string, long>> Deletes) RecordDeletes(EtcdServer member, string prefix, int count)
    {
        var stream = member.Watchable.NewWatchStream();
        var (_, error) = stream.Watch(0, B(prefix).ToByteArray(), B(prefix[..^1] + (char)(prefix[^1] + 1)).ToByteArray(), 0, WatchFilter.NoPut);
        Assert.Null(error);
        var deletes = Task.Run(async () =>
        {
            var at = new Dictionary<string, long>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (at.Count < count && await stream.ReadAsync(cts.Token) is { } m)
            {
                foreach (var e in m.Kind == WatchMessageKind.Events ? m.Events : [])
                {
                    at[e.Kv.Key.ToStringUtf8()] = Stopwatch.GetTimestamp();
                }
            }

            return at;
        });
        return (stream, deletes);
    }

    private static async Task<long> GrantWithKeyAsync(EtcdServer via, long ttl, string key)
    {
        var g = await via.LeaseGrantAsync(new LeaseGrantRequest { TTL = ttl }, Soon());
        await via.PutAsync(new PutRequest { Key = B(key), Value = B("v"), Lease = g.ID }, Soon());
        return g.ID;
    }

    private static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;

    [Fact]
    public async Task LeasesKeepTheirKeysAcrossALeaderChangeAndTheNewLeaderExtendsTheirTtl()
    {
        await using var c = await StartAsync(3);
        var leader = await c.WaitLeaderAsync();
        const int leases = 20;
        const long ttl = 3;
        var ids = new List<long>();
        for (var i = 0; i < leases; i++)
        {
            ids.Add(await GrantWithKeyAsync(leader, ttl, $"lk/{i}"));
        }

        var granted = Stopwatch.GetTimestamp();
        var observer = c.Live.First(m => m != leader);
        var (stream, deletes) = RecordDeletes(observer, "lk/", leases);
        using var _ = stream;

        // Let two thirds of the TTL pass under the first leader, then hand leadership over: the old deadlines
        // (granted + 3 s) must not be kept by the new leader, which restarts every TTL (etcd's Promote).
        await Task.Delay(TimeSpan.FromSeconds(2));
        var target = c.Live.First(m => m != leader && m != observer);
        var moveStart = Stopwatch.GetTimestamp();
        await leader.MoveLeaderAsync(target.MemberId, Soon());
        var next = await c.WaitLeaderAsync();
        Assert.Equal(target.MemberId, next.MemberId);
        await c.EventuallyAsync(() => next.Lessor.IsPrimary && !leader.Lessor.IsPrimary, "new leader's lessor promoted, old one demoted");

        foreach (var id in ids)
        {
            var l = next.Lessor.Lookup(id);
            Assert.NotNull(l);
            Assert.Single(l.Keys);

            // 3 s TTL + 200 ms extension counted from the promotion, truncated: 2 or 3, never less.
            Assert.InRange(l.RemainingTtl, ttl - 1, ttl);
        }

        var kept = await next.RangeAsync(Prefix("lk/"), Soon());
        Assert.Equal(leases, kept.Kvs.Count);

        var at = await deletes.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(leases, at.Count);
        var earliest = at.Values.Min(t => Seconds(moveStart, t));
        var latest = at.Values.Max(t => Seconds(moveStart, t));
        output.WriteLine($"leader moved {Seconds(granted, moveStart):F2} s after the grants; keys deleted {earliest:F2} .. {latest:F2} s after the move (TTL {ttl} s)");
        Assert.True(earliest >= ttl, $"a lease expired {earliest:F2} s after the leader change, before its {ttl} s TTL");
        Assert.True(latest < ttl + 2.5, $"leases outlived their extended TTL: {latest:F2} s");

        // The observer saw the deletes once it applied the revokes; the other members apply them at their own pace.
        await c.EventuallyAsync(() => c.Live.All(m => m.Lessor.Count == 0), "every member applied the revokes");
    }

    [Fact]
    public async Task CheckpointsCarryTheRemainingTtlAcrossALeaderChange()
    {
        await using var c = await StartAsync(3, o => o with
        {
            ExperimentalEnableLeaseCheckpoint = true,
            LeaseCheckpointInterval = TimeSpan.FromMilliseconds(300),
        });
        var leader = await c.WaitLeaderAsync();
        const long ttl = 6;
        var id = await GrantWithKeyAsync(leader, ttl, "cp/a");
        var granted = Stopwatch.GetTimestamp();
        var target = c.Live.First(m => m != leader);
        var (stream, deletes) = RecordDeletes(target, "cp/", 1);
        using var _ = stream;

        // Checkpoints reach every member through raft: wait until the follower holds a remainder of at most 3 s.
        await c.EventuallyAsync(() => target.Lessor.Lookup(id) is { CheckpointedTtl: > 0 and <= 3 }, "a checkpoint of at most 3 s applied on the follower");
        var checkpointed = target.Lessor.Lookup(id)!.CheckpointedTtl;
        var moveStart = Stopwatch.GetTimestamp();
        await leader.MoveLeaderAsync(target.MemberId, Soon());
        Assert.Equal(target.MemberId, (await c.WaitLeaderAsync()).MemberId);
        await c.EventuallyAsync(() => target.Lessor.IsPrimary, "new leader's lessor promoted");

        // The new leader starts from the checkpoint (+200 ms), not from the full 6 s.
        var l = target.Lessor.Lookup(id)!;
        Assert.InRange(l.RemainingTtl, 0, checkpointed);
        Assert.Equal(ttl, l.GrantedTtl);

        var deleted = (await deletes.WaitAsync(TimeSpan.FromSeconds(20)))["cp/a"];
        output.WriteLine($"checkpointed {checkpointed} s; leader moved {Seconds(granted, moveStart):F2} s after the grant; key deleted {Seconds(granted, deleted):F2} s after the grant (TTL {ttl} s)");
        Assert.True(Seconds(granted, deleted) >= ttl, "expired before its TTL");
        Assert.True(Seconds(moveStart, deleted) < ttl - 1, "the new leader restarted the full TTL instead of the checkpointed remainder");
    }

    [Fact]
    public async Task KeepAlivesAndTimeToLiveSentToAFollowerReachTheLeaderAcrossALeaderChange()
    {
        await using var c = await StartAsync(3);
        var leader = await c.WaitLeaderAsync();
        const long ttl = 2;
        var id = await GrantWithKeyAsync(leader, ttl, "ka/k");
        var follower = c.Live.First(m => m != leader);
        var other = c.Live.First(m => m != leader && m != follower);
        var renewals = 0;
        var start = Stopwatch.GetTimestamp();

        async Task RenewThroughFollowerAsync(EtcdServer currentLeader, int times)
        {
            for (var i = 0; i < times; i++)
            {
                Assert.Equal(ttl, await follower.LeaseRenewAsync(id, Soon()));
                renewals++;

                // The renewal happened on the leader: its clock restarted there (2 s, truncated to 1).
                Assert.Equal(ttl - 1, currentLeader.Lessor.Lookup(id)!.RemainingTtl);
                await Task.Delay(400); // keep-alive pacing: well inside the 2 s TTL
            }
        }

        await RenewThroughFollowerAsync(leader, 6);

        // Leadership moves to the other follower; the follower's keep-alives now go to the new leader.
        await leader.MoveLeaderAsync(other.MemberId, Soon());
        var next = await c.WaitLeaderAsync();
        Assert.Equal(other.MemberId, next.MemberId);
        await RenewThroughFollowerAsync(next, 6);
        var elapsed = Seconds(start, Stopwatch.GetTimestamp());
        Assert.True(elapsed > 2 * ttl, $"the test must outlast the TTL ({elapsed:F1} s)");

        // TimeToLive through the follower is the leader's answer (the follower itself never expires leases).
        var t = await follower.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = id, Keys = true }, Soon());
        Assert.Equal(ttl, t.GrantedTTL);
        Assert.InRange(t.TTL, 0, ttl);
        Assert.Equal(["ka/k"], t.Keys.Select(k => k.ToStringUtf8()));
        Assert.Equal(global::Etcd.Server.Lease.Lessor.ForeverSeconds, follower.Lessor.Lookup(id)!.RemainingTtl);

        var got = await follower.RangeAsync(Get("ka/k"), Soon());
        Assert.Equal(id, Assert.Single(got.Kvs).Lease);
        Assert.Equal(12, renewals);

        // An unknown lease is reported as the leader reports it.
        var e = await Assert.ThrowsAsync<EtcdException>(() => follower.LeaseRenewAsync(id + 1, Soon()));
        Assert.Equal(EtcdErrors.LeaseNotFound, e.Error);
        e = await Assert.ThrowsAsync<EtcdException>(() => follower.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = id + 1 }, Soon()));
        Assert.Equal(EtcdErrors.LeaseNotFound, e.Error);
    }

    [Fact]
    public async Task WatchesServedByFollowersSeeEveryEventAcrossALeaderChange()
    {
        await using var c = await StartAsync(3);
        var leader = await c.WaitLeaderAsync();
        var follower = c.Live.First(m => m != leader);
        var other = c.Live.First(m => m != leader && m != follower);
        var first = await leader.PutAsync(Put("fw/0", "before"), Soon());

        // A watch from "now" starts at the member's own applied revision: let the follower apply the first put
        // (a linearizable read waits for it) so that "now" is after it.
        await follower.RangeAsync(Get("fw/0"), Soon());

        await using var live = DirectWatch.Start(follower);
        await using var replay = DirectWatch.Start(follower);
        live.Send(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("fw/"), RangeEnd = B("fw0"), PrevKv = true } });
        replay.Send(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("fw/"), RangeEnd = B("fw0"), StartRevision = first.Header.Revision } });
        Assert.True((await live.NextAsync()).Created);
        Assert.True((await replay.NextAsync()).Created);

        // Writes through the leader, the other follower and the watching follower itself; then the leader changes
        // and writes go on.
        var written = new List<long>();
        var via = new[] { leader, other, follower };
        for (var i = 1; i <= 30; i++)
        {
            written.Add((await via[i % 3].PutAsync(Put($"fw/{i % 5}", $"v{i}"), Soon())).Header.Revision);
        }

        await leader.MoveLeaderAsync(other.MemberId, Soon());
        Assert.Equal(other.MemberId, (await c.WaitLeaderAsync()).MemberId);
        for (var i = 31; i <= 60; i++)
        {
            // A member that has not heard of the new leader yet drops the proposal (raft's ErrProposalDropped, as
            // etcd does during a transfer): never appended, so sending it again cannot write it twice.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    written.Add((await via[i % 3].PutAsync(Put($"fw/{i % 5}", $"v{i}"), Soon())).Header.Revision);
                    break;
                }
                catch (Etcd.Api.Grpc.RpcException e) when (e.Detail == "raft proposal dropped" && attempt < 50)
                {
                    await Task.Delay(20); // retry back-off (bounded: 50 attempts)
                }
            }
        }

        async Task<List<Event>> EventsAsync(DirectWatch w, int count)
        {
            var evs = new List<Event>();
            while (evs.Count < count)
            {
                var r = await w.NextAsync();
                Assert.False(r.Canceled);
                Assert.Equal(follower.MemberId, r.Header.MemberId);
                evs.AddRange(r.Events);
            }

            return evs;
        }

        var liveEvents = await EventsAsync(live, written.Count);
        Assert.Equal(written, liveEvents.Select(e => e.Kv.ModRevision));
        Assert.Equal(Enumerable.Range(1, 60).Select(i => $"v{i}"), liveEvents.Select(e => e.Kv.Value.ToStringUtf8()));
        Assert.All(liveEvents.Where(e => e.Kv.Version > 1), e => Assert.NotNull(e.PrevKv));

        var replayed = await EventsAsync(replay, written.Count + 1);
        Assert.Equal(written.Prepend(first.Header.Revision), replayed.Select(e => e.Kv.ModRevision));
    }
}
