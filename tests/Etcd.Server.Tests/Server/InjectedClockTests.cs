using Etcd.Api;
using Etcd.Server.Tests.Cluster;
using Etcdserverpb;
using Microsoft.Extensions.Time.Testing;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// Members on a fake clock (<see cref="EtcdOptions.Time"/>): raft ticks, heartbeats, the election and lease expiry
/// happen when the test advances the clock, with no sleeping in the test.
/// </summary>
public sealed class InjectedClockTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private const int ElectionTicks = 10;

    private readonly FakeTimeProvider _time = new();

    private EtcdOptions OnFakeClock(EtcdOptions o) => o with
    {
        HeartbeatIntervalMs = (int)Tick.TotalMilliseconds,
        ElectionTimeoutMs = (int)Tick.TotalMilliseconds * ElectionTicks,
        Time = _time,
    };

    /// <summary>Starts <paramref name="size"/> members on the fake clock without waiting for a leader.</summary>
    private InProcessCluster Start(int size)
    {
        var c = new InProcessCluster { Tweak = OnFakeClock };
        var initial = string.Join(",", Enumerable.Range(0, size).Select(i => $"m{i}={InProcessCluster.PeerUrl(i)}"));
        for (var i = 0; i < size; i++)
        {
            c.Members.Add(c.StartMember(c.OptionsFor(i, initial)));
        }

        return c;
    }

    /// <summary>Advances the clock one heartbeat and waits until every member's raft thread has stepped the tick.</summary>
    private async Task TickAsync(InProcessCluster c)
    {
        _time.Advance(Tick);
        await Task.WhenAll(c.Live.Select(m => m.RaftInputsDrainedForTests())).WaitAsync(Patience);
    }

    /// <summary>
    /// Three members start with no leader and elect none while their clock stands still; once it runs, one campaigns
    /// within two randomized election timeouts of fake time (the initial tick advance polls on the same clock), and
    /// 100 more heartbeats of fake time keep the same leader and term: heartbeats run on the injected clock too.
    /// </summary>
    [Fact]
    public async Task ElectionAndHeartbeatsFollowTheInjectedClock()
    {
        await using var c = Start(3);
        await Task.WhenAll(c.Live.Select(m => m.RaftInputsDrainedForTests())).WaitAsync(Patience);
        Assert.All(c.Live, m => Assert.Equal(0UL, m.Leader));

        var ticks = 0;
        while (!c.Live.Any(m => m.IsLeader))
        {
            Assert.True(++ticks <= 3 * ElectionTicks, $"no leader after {ticks - 1} ticks of the fake clock");
            await TickAsync(c);
        }

        var leader = c.Live.Single(m => m.IsLeader);
        var term = leader.Term;
        for (var i = 0; i < 100; i++)
        {
            await TickAsync(c);
        }

        Assert.All(c.Live, m =>
        {
            Assert.Equal(term, m.Term);
            Assert.Equal(leader.MemberId, m.Leader);
        });
    }

    /// <summary>
    /// A 10 s lease lives as long as the member's clock says: after 9 s of fake time it has 1 s left, and once the clock
    /// passes its expiry the lessor revokes it through raft and TimeToLive answers etcd's "requested lease not found".
    /// </summary>
    [Fact]
    public async Task LeaseExpiresOnTheMembersClock()
    {
        await using var c = Start(1);
        var member = c.Members[0]!;
        while (!member.IsLeader)
        {
            await TickAsync(c);
        }

        await member.ReadyToServe.WaitAsync(Patience);
        var id = (await member.LeaseGrantAsync(new LeaseGrantRequest { TTL = 10 }, CancellationToken.None)).ID;

        for (var i = 0; i < 90; i++)
        {
            await TickAsync(c);
        }

        var live = await member.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = id }, CancellationToken.None);
        Assert.Equal(1, live.TTL);
        Assert.Equal(10, live.GrantedTTL);

        for (var i = 0; i < 20; i++)
        {
            await TickAsync(c);
        }

        // The lessor's expiry loop proposes the revoke on its own thread: wait (bounded) for it to be applied.
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                await member.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = id }, CancellationToken.None);
            }
            catch (EtcdException e) when (e.Error == EtcdErrors.LeaseNotFound)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "the expired lease was not revoked");
            using var applied = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await member.WaitAppliedAsync(member.AppliedIndex + 1, applied.Token).ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }
}
