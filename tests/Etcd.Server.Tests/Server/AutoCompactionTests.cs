using Etcd.Api;
using Etcd.Server.Maintenance;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Etcd.Server.Tests.Server;

/// <summary>A fake clock that signals each timer created on it, so a test advances time only once a loop waits on it.</summary>
internal sealed class SignallingFakeTime : FakeTimeProvider
{
    private readonly SemaphoreSlim _timers = new(0);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = base.CreateTimer(callback, state, dueTime, period);
        _timers.Release();
        return t;
    }

    /// <summary>Waits (bounded) until the loop waits on a new timer (it has done everything before that wait).</summary>
    public async Task WaitTimerAsync() => Assert.True(await _timers.WaitAsync(TimeSpan.FromSeconds(20)), "the loop did not wait on the clock");

    /// <summary>Waits until the loop waits on a timer, then moves the clock by <paramref name="by"/>.</summary>
    public async Task StepAsync(TimeSpan by)
    {
        await WaitTimerAsync();
        Advance(by);
    }

    /// <summary>Waits until the loop has finished what the last step set off (it waits on a timer again), leaving that timer to the next step.</summary>
    public async Task SettleAsync()
    {
        await WaitTimerAsync();
        _timers.Release();
    }
}

/// <summary>
/// Auto-compaction as etcd 3.4.23's <c>etcdserver/api/v3compactor</c>: the compactors alone on a fake clock (cadence,
/// window, retries, pause), then a member that compacts through raft, only while it leads.
/// </summary>
public sealed class AutoCompactionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly SignallingFakeTime _time = new();
    private readonly List<(TimeSpan At, long Revision)> _compactions = [];
    private readonly DateTimeOffset _start;
    private long _revision = 1;
    private Exception? _failNext;

    public AutoCompactionTests() => _start = _time.GetUtcNow();

    public void Dispose() => _dir.Dispose();

    private TimeSpan Now => _time.GetUtcNow() - _start;

    private Task Compact(CompactionRequest r, CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _failNext, null) is { } e)
        {
            return Task.FromException(e);
        }

        lock (_compactions)
        {
            _compactions.Add((Now, r.Revision));
        }

        return Task.CompletedTask;
    }

    private PeriodicCompactor Periodic(string retention) => (PeriodicCompactor)Compactor.Create(
        "periodic", retention, _time, () => Interlocked.Read(ref _revision), Compact, NullLoggerFactory.Instance, zapMessages: false)!;

    [Theory]
    [InlineData("periodic", "0", 0)]
    [InlineData("periodic", "1", 36_000_000_000)]
    [InlineData("periodic", "24", 864_000_000_000)]
    [InlineData("periodic", "30m", 18_000_000_000)]
    [InlineData("periodic", "2s", 20_000_000)]
    [InlineData("revision", "100", 100)]
    [InlineData("revision", "0", 0)]
    [InlineData("", "5", 0)]
    public void RetentionParsesAsEtcd(string mode, string retention, long ticks)
        => Assert.Equal(TimeSpan.FromTicks(ticks), Compactor.ParseRetention(mode, retention));

    [Fact]
    public void BadModeOrRetentionIsRefused()
    {
        // Go's time.ParseDuration errors, as etcd 3.4.23 prints them.
        Assert.Equal("error parsing CompactionRetention: time: unknown unit \"x\" in duration \"1x\"", Assert.Throws<ArgumentException>(() => Compactor.ParseRetention("periodic", "1x")).Message);
        Assert.Equal("error parsing CompactionRetention: time: missing unit in duration \"-1\"", Assert.Throws<ArgumentException>(() => Compactor.ParseRetention("periodic", "-1")).Message);
        Assert.Equal("error parsing CompactionRetention: time: invalid duration \"h\"", Assert.Throws<ArgumentException>(() => Compactor.ParseRetention("periodic", "h")).Message);
        Assert.Equal("unsupported compaction mode ", Assert.Throws<ArgumentException>(
            () => Compactor.Create("", "30m", _time, () => 1, Compact, NullLoggerFactory.Instance, false)).Message);
        Assert.Null(Compactor.Create("periodic", "0", _time, () => 1, Compact, NullLoggerFactory.Instance, false));
        var e = Assert.Throws<EtcdStartException>(() => EtcdServer.Start(
            TestMember.Options("bad", _dir.Path) with { AutoCompactionRetention = "1x" }, NullLoggerFactory.Instance));
        Assert.Contains("error parsing CompactionRetention", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PeriodicCadenceIsATenthOfTheWindowCappedAtSixMinutes()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(200), Periodic("2s").RetryInterval);
        Assert.Equal(TimeSpan.FromSeconds(2), Periodic("2s").CompactInterval);
        Assert.Equal(11, Periodic("2s").Retentions);
        Assert.Equal(TimeSpan.FromMinutes(6), Periodic("1").RetryInterval);
        Assert.Equal(TimeSpan.FromMinutes(6), Periodic("24").RetryInterval);
        Assert.Equal(TimeSpan.FromHours(1), Periodic("24").CompactInterval);
        Assert.Equal(241, Periodic("24").Retentions);
        Assert.Equal(TimeSpan.FromMinutes(3), Periodic("30m").RetryInterval);
    }

    /// <summary>
    /// etcd's periodic.go: a revision sample every retry interval into a window of period/retry + 1 samples; the first
    /// compaction once a whole period has passed, at the first sample (t = 0); then one every compact interval, at the
    /// oldest sample in the window: the one taken period + one retry interval earlier.
    /// </summary>
    [Theory]
    [InlineData("10s", 10, 10)]
    [InlineData("24", 24 * 60, 60)]
    public async Task PeriodicCompactsAtTheRevisionOfOneWindowAgo(string retention, int periodMinutesOrSeconds, int compactEvery)
    {
        await using var c = Periodic(retention);
        var retry = c.RetryInterval;
        var unit = retention.EndsWith('s') ? TimeSpan.FromSeconds(1) : TimeSpan.FromMinutes(1);
        Assert.Equal(TimeSpan.FromTicks(unit.Ticks * periodMinutesOrSeconds), c.Period);
        Assert.Equal(TimeSpan.FromTicks(unit.Ticks * compactEvery), c.CompactInterval);
        var samplesAt = new Dictionary<TimeSpan, long>();
        c.Run();
        var steps = (int)((c.Period + (3 * c.CompactInterval)) / retry);
        for (var i = 0; i < steps; i++)
        {
            // The loop sampled the revision right before it waits; it moves by 7 per retry interval.
            await _time.WaitTimerAsync();
            samplesAt[Now] = Interlocked.Read(ref _revision);
            Interlocked.Exchange(ref _revision, 1 + (7 * (i + 1)));
            _time.Advance(retry);
        }

        await _time.SettleAsync();
        Assert.Equal(4, _compactions.Count);
        Assert.Equal((c.Period, 1L), _compactions[0]);
        for (var k = 1; k < 4; k++)
        {
            var at = c.Period + (k * c.CompactInterval);
            Assert.Equal((at, samplesAt[at - c.Period - retry]), _compactions[k]);
        }
    }

    [Fact]
    public async Task PeriodicRetriesAfterAFailureAndDoesNothingWhilePaused()
    {
        await using var c = Periodic("10s");
        c.Pause();
        c.Run();
        for (var i = 0; i < 30; i++)
        {
            Interlocked.Increment(ref _revision);
            await _time.StepAsync(c.RetryInterval);
        }

        Assert.Empty(_compactions);

        // Resumed: the window was kept up while paused, so it compacts at the next check, at the revision of 11 s ago.
        _failNext = EtcdErrors.Timeout.ToException();
        c.Resume();
        await _time.StepAsync(c.RetryInterval);
        await _time.SettleAsync();
        Assert.Empty(_compactions);

        // The failure is retried one retry interval later.
        await _time.StepAsync(c.RetryInterval);
        await _time.SettleAsync();
        Assert.Single(_compactions);
        Assert.Equal(TimeSpan.FromSeconds(32), _compactions[0].At);
    }

    /// <summary>
    /// etcd's revision.go: every 5 minutes (revInterval) compact at current − retention, unless that is ≤ 0 or the
    /// revision compacted last time; an ErrCompacted answer counts as done; a failure is retried at the next check.
    /// Too slow for a process test against real etcd (5 min), so checked here on the fake clock.
    /// </summary>
    [Fact]
    public async Task RevisionModeKeepsTheLastNRevisionsEveryFiveMinutes()
    {
        await using var c = (RevisionCompactor)Compactor.Create("revision", "100", _time, () => Interlocked.Read(ref _revision), Compact, NullLoggerFactory.Instance, false)!;
        Assert.Equal(TimeSpan.FromMinutes(5), RevisionCompactor.CheckInterval);
        c.Run();

        async Task Check(long revision)
        {
            await _time.WaitTimerAsync();
            Interlocked.Exchange(ref _revision, revision);
            _time.Advance(RevisionCompactor.CheckInterval);
        }

        await Check(60);        // 60 - 100 ≤ 0: nothing
        await Check(250);       // compacts at 150
        await Check(250);       // same target as last time: nothing
        _failNext = EtcdErrors.Timeout.ToException();
        await Check(400);       // 300 fails
        await Check(420);       // retried at the new target 320
        _failNext = EtcdErrors.Compacted.ToException();
        await Check(500);       // 400 already compacted: counts as done
        await Check(500);       // same target: nothing
        c.Pause();
        await Check(900);       // paused: nothing
        c.Resume();
        await Check(901);
        await _time.SettleAsync();
        var m5 = TimeSpan.FromMinutes(5);
        Assert.Equal([(2 * m5, 150L), (5 * m5, 320L), (9 * m5, 801L)], _compactions);
    }

    [Fact]
    public async Task MemberCompactsThroughRaftOnItsClock()
    {
        var o = TestMember.Options("ac", _dir.Path) with { AutoCompactionMode = "revision", AutoCompactionRetention = "10" };
        await using var s = EtcdServer.Start(o, NullLoggerFactory.Instance, startLoop: false);
        s.MaintenanceTime = _time;
        s.StartLoop();
        await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 25; i++)
        {
            await s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"k{i}"), Value = ByteString.CopyFromUtf8("v") }, CancellationToken.None);
        }

        Assert.False(s.AutoCompactor!.Paused);
        var target = s.Kv.CurrentRevision - 10;
        await _time.StepAsync(RevisionCompactor.CheckInterval);

        // The compaction goes through raft: wait (bounded) for the apply.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (s.Kv.CompactRevision != target && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(target, s.Kv.CompactRevision);
        var e = await Assert.ThrowsAsync<EtcdException>(() => s.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("k0"), Revision = target - 1 }, CancellationToken.None));
        Assert.Same(EtcdErrors.Compacted, e.Error);
    }

    [Fact]
    public async Task OnlyTheLeaderCompacts()
    {
        await using var cluster = await Cluster.InProcessCluster.StartAsync(
            3,
            o => o with { AutoCompactionMode = "periodic", AutoCompactionRetention = "1" },
            s => s.MaintenanceTime = new FakeTimeProvider());
        var leader = await cluster.WaitLeaderAsync();
        foreach (var m in cluster.Members)
        {
            Assert.NotNull(m!.AutoCompactor);
            Assert.Equal(!ReferenceEquals(m, leader), m.AutoCompactor!.Paused);
        }
    }
}
