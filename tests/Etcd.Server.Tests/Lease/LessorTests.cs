using Etcd.Api;
using Etcd.Server.Lease;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Tests.Lease;

/// <summary>A clock that moves only when told (monotonic timestamps in 100 ns ticks).</summary>
internal sealed class FakeTime : TimeProvider
{
    private long _ticks = TimeSpan.TicksPerDay;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>The lessor alone over a real MVCC store, on a fake clock.</summary>
public sealed class LessorTests : IDisposable
{
    private readonly FakeTime _time = new();
    private readonly InMemoryBackend _backend = new();
    private readonly List<long> _revokesProposed = [];
    private readonly List<LeaseCheckpointRequest> _checkpointsProposed = [];
    private Lessor _lessor;
    private KvStore _kv;

    public LessorTests()
    {
        (_lessor, _kv) = Build(new LessorConfig { TimeProvider = _time, MinLeaseTtlSeconds = 2 });
    }

    public void Dispose()
    {
        _lessor.Dispose();
        _kv.Dispose();
        _backend.Dispose();
    }

    private (Lessor, KvStore) Build(LessorConfig config)
    {
        var lessor = new Lessor(_backend, config);
        var kv = new KvStore(_backend, lessor);
        lessor.SetStore(kv);
        lessor.Start(
            id =>
            {
                lock (_revokesProposed)
                {
                    _revokesProposed.Add(id);
                }

                return Task.CompletedTask;
            },
            cp =>
            {
                lock (_checkpointsProposed)
                {
                    _checkpointsProposed.Add(cp);
                }

                return Task.CompletedTask;
            },
            startTimer: false);
        return (lessor, kv);
    }

    private void Rebuild(LessorConfig config)
    {
        _lessor.Dispose();
        _kv.Dispose();
        (_lessor, _kv) = Build(config);
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static void AssertError(EtcdError expected, Action call)
    {
        var e = Assert.Throws<EtcdException>(call);
        Assert.Equal(expected, e.Error);
    }

    [Fact]
    public void MinTtlIsCeilOfOneAndAHalfElectionTimeouts()
    {
        Assert.Equal(2, LessorConfig.MinTtlFor(1000, 100)); // 15 ticks × 100 ms = 1.5 s → 2
        Assert.Equal(1, LessorConfig.MinTtlFor(100, 10));
        Assert.Equal(8, LessorConfig.MinTtlFor(5000, 100));
        Assert.Equal(3, LessorConfig.MinTtlFor(1500, 100)); // 22 ticks × 100 ms = 2.2 s → 3
    }

    [Fact]
    public void GrantAppliesMinimumAndRejectsDuplicatesZeroAndHugeTtl()
    {
        Assert.Equal(2, _lessor.Grant(1, 1));
        Assert.Equal(30, _lessor.Grant(2, 30));
        AssertError(EtcdErrors.LeaseExist, () => _lessor.Grant(1, 5));
        AssertError(EtcdErrors.LeaseNotFound, () => _lessor.Grant(0, 5));
        AssertError(EtcdErrors.LeaseTtlTooLarge, () => _lessor.Grant(3, Lessor.MaxLeaseTtl + 1));
        Assert.Equal(Lessor.MaxLeaseTtl, _lessor.Grant(4, Lessor.MaxLeaseTtl));
        Assert.Equal([1L, 2L, 4L], _lessor.Leases().Order());

        // Persisted as leasepb.Lease under the 8-byte big-endian ID.
        using var rtx = _backend.ConcurrentReadTx();
        var raw = rtx.Get(Lessor.LeaseBucket, Lessor.IdKey(2));
        Assert.NotNull(raw);
        var pb = Leasepb.Lease.Parser.ParseFrom(raw);
        Assert.Equal(2, pb.ID);
        Assert.Equal(30, pb.TTL);
    }

    [Fact]
    public void RevokeDeletesAttachedKeysInOneRevisionAndTheLeaseInTheSameBatch()
    {
        _lessor.Grant(7, 10);
        _kv.Put(new PutRequest { Key = B("a"), Value = B("1"), Lease = 7 });
        _kv.Put(new PutRequest { Key = B("b"), Value = B("2"), Lease = 7 });
        _kv.Put(new PutRequest { Key = B("c"), Value = B("3") });
        _kv.Put(new PutRequest { Key = B("d"), Value = B("4"), Lease = 7 });
        _kv.Put(new PutRequest { Key = B("d"), Value = B("5") }); // overwritten without lease: detached
        Assert.Equal(["a", "b"], _lessor.Lookup(7)!.Keys.Select(k => System.Text.Encoding.UTF8.GetString(k)));
        var before = _kv.CurrentRevision;

        _lessor.Revoke(7);

        Assert.Equal(before + 1, _kv.CurrentRevision);
        var events = _kv.ReadEvents(before + 1, before + 2);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(Mvccpb.Event.Types.EventType.Delete, e.Type));
        Assert.Equal(1, _kv.Range(new RangeRequest { Key = B("c") }).Count);
        Assert.Equal(1, _kv.Range(new RangeRequest { Key = B("d") }).Count);
        Assert.Null(_lessor.Lookup(7));
        using (var rtx = _backend.ConcurrentReadTx())
        {
            Assert.Null(rtx.Get(Lessor.LeaseBucket, Lessor.IdKey(7)));
        }

        AssertError(EtcdErrors.LeaseNotFound, () => _lessor.Revoke(7));
        Assert.Throws<EtcdException>(() => _kv.Put(new PutRequest { Key = B("e"), Lease = 7 }));
    }

    [Fact]
    public void RevokeWithoutKeysWritesNoRevision()
    {
        _lessor.Grant(8, 10);
        var before = _kv.CurrentRevision;
        _lessor.Revoke(8);
        Assert.Equal(before, _kv.CurrentRevision);
        Assert.Equal(0, _lessor.Count);
    }

    [Fact]
    public void OnlyThePrimaryExpiresLeases()
    {
        _lessor.Grant(1, 5);
        _time.Advance(TimeSpan.FromSeconds(100));
        Assert.Empty(_lessor.RunChecks());
        Assert.Equal(Lessor.ForeverSeconds, _lessor.Lookup(1)!.RemainingTtl);

        _lessor.Promote(TimeSpan.Zero);
        _lessor.Grant(2, 5);
        _time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.Empty(_lessor.RunChecks());
        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal([1L, 2L], _lessor.RunChecks().Order());
        Assert.Equal([1L, 2L], _revokesProposed.Order());

        // Handed out once; again only after the retry interval if still not revoked.
        Assert.Empty(_lessor.RunChecks());
        _lessor.Revoke(1);
        _time.Advance(TimeSpan.FromSeconds(3.1));
        Assert.Equal([2L], _lessor.RunChecks());

        _lessor.Demote();
        _time.Advance(TimeSpan.FromSeconds(100));
        Assert.Empty(_lessor.RunChecks());
    }

    [Fact]
    public void PromoteExtendsRemainingTtlByTheElectionTimeout()
    {
        _lessor.Grant(1, 10);
        _time.Advance(TimeSpan.FromSeconds(8)); // a follower's clock does not count
        _lessor.Promote(TimeSpan.FromSeconds(1));
        Assert.Equal(11, _lessor.Lookup(1)!.RemainingTtl);
        _time.Advance(TimeSpan.FromSeconds(10.9));
        Assert.Empty(_lessor.FindExpired(10));
        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal([1L], _lessor.FindExpired(10));
    }

    [Fact]
    public async Task RenewOnlyOnPrimaryAndResetsExpiry()
    {
        _lessor.Grant(1, 10);
        await Assert.ThrowsAsync<LessorNotPrimaryException>(() => _lessor.RenewAsync(1, default));
        _lessor.Promote(TimeSpan.Zero);
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(10, await _lessor.RenewAsync(1, default));
        Assert.Equal(10, _lessor.Lookup(1)!.RemainingTtl);
        _time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Empty(_lessor.FindExpired(10));
        var e = await Assert.ThrowsAsync<EtcdException>(() => _lessor.RenewAsync(99, default));
        Assert.Equal(EtcdErrors.LeaseNotFound, e.Error);
    }

    [Fact]
    public async Task RenewOfAnExpiredLeaseWaitsForItsRevocation()
    {
        _lessor.Promote(TimeSpan.Zero);
        _lessor.Grant(1, 2);
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal([1L], _lessor.RunChecks());
        var renew = _lessor.RenewAsync(1, default);
        Assert.False(renew.IsCompleted);
        _lessor.Revoke(1);
        var e = await Assert.ThrowsAsync<EtcdException>(() => renew.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(EtcdErrors.LeaseNotFound, e.Error);

        // Demotion releases a waiting renewal with "not primary" (the server then asks the new leader).
        _lessor.Grant(2, 2);
        _time.Advance(TimeSpan.FromSeconds(3));
        var renew2 = _lessor.RenewAsync(2, default);
        _lessor.Demote();
        await Assert.ThrowsAsync<LessorNotPrimaryException>(() => renew2.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void RevocationsPerCheckAreBoundedByTheRevokeRate()
    {
        _lessor.Promote(TimeSpan.Zero);
        for (var i = 1; i <= 1200; i++)
        {
            _lessor.Grant(i, 2);
        }

        _time.Advance(TimeSpan.FromSeconds(3));
        for (var check = 0; check < 12; check++)
        {
            Assert.Equal(100, _lessor.RunChecks().Count); // 1000/s × 0.1 s
        }

        Assert.Empty(_lessor.RunChecks());
        Assert.Equal(1200, _revokesProposed.Distinct().Count());
    }

    [Fact]
    public void PromoteSpreadsPiledUpExpiriesBelowTheRevokeRate()
    {
        // 5000 leases that would all expire in the same instant after a leader change.
        for (var i = 1; i <= 5000; i++)
        {
            _lessor.Grant(i, 10);
        }

        _lessor.Promote(TimeSpan.FromSeconds(1));
        var perSecond = new Dictionary<long, int>();
        foreach (var id in _lessor.Leases())
        {
            var info = _lessor.Lookup(id)!;
            Assert.True(info.RemainingTtl >= 10, $"lease {id} expires in {info.RemainingTtl}s");
            perSecond[info.RemainingTtl] = perSecond.GetValueOrDefault(info.RemainingTtl) + 1;
        }

        // Without spreading all 5000 would expire at 11 s; now no second holds more than etcd's 3/4 of 1000/s.
        Assert.All(perSecond.Values, n => Assert.True(n <= 750 + 1, $"{n} leases expire in one second"));
        Assert.True(perSecond.Keys.Max() >= 16, "expiries spread over several seconds");

        // Small numbers of leases are not spread.
        Rebuild(new LessorConfig { TimeProvider = _time, MinLeaseTtlSeconds = 2 });
        foreach (var id in _lessor.Leases())
        {
            _lessor.Revoke(id);
        }

        for (var i = 1; i <= 10; i++)
        {
            _lessor.Grant(i, 10);
        }

        _lessor.Promote(TimeSpan.FromSeconds(1));
        Assert.All(_lessor.Leases(), id => Assert.Equal(11, _lessor.Lookup(id)!.RemainingTtl));
    }

    [Fact]
    public async Task CheckpointsCarryTheRemainingTtlToTheNextLeader()
    {
        Rebuild(new LessorConfig { TimeProvider = _time, MinLeaseTtlSeconds = 2, CheckpointingEnabled = true, PersistCheckpoints = true, CheckpointInterval = TimeSpan.FromSeconds(5) });
        _lessor.Promote(TimeSpan.Zero);
        _lessor.Grant(1, 100);
        _lessor.Grant(2, 3); // shorter than the interval: never checkpointed
        _time.Advance(TimeSpan.FromSeconds(30));
        _lessor.RunChecks();
        var cp = Assert.Single(_checkpointsProposed);
        var c = Assert.Single(cp.Checkpoints);
        Assert.Equal(1, c.ID);
        Assert.Equal(70, c.RemainingTTL);

        // Applying it persists the remainder; a new leader starts from it instead of the full TTL.
        _lessor.Checkpoint(cp);
        using (var rtx = _backend.ConcurrentReadTx())
        {
            Assert.Equal(70, Leasepb.Lease.Parser.ParseFrom(rtx.Get(Lessor.LeaseBucket, Lessor.IdKey(1))).RemainingTTL);
        }

        _lessor.Demote();
        _lessor.Promote(TimeSpan.FromSeconds(1));
        Assert.Equal(71, _lessor.Lookup(1)!.RemainingTtl);
        Assert.Equal(100, _lessor.Lookup(1)!.GrantedTtl);

        // A renewal clears the checkpoint through raft.
        _checkpointsProposed.Clear();
        Assert.Equal(100, await _lessor.RenewAsync(1, default));
        var clear = Assert.Single(_checkpointsProposed);
        Assert.Equal(0, clear.Checkpoints[0].RemainingTTL);
    }

    [Fact]
    public void WithoutCheckpointingANewLeaderRestartsTheFullTtl()
    {
        _lessor.Promote(TimeSpan.Zero);
        _lessor.Grant(1, 100);
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(_lessor.RunChecks());
        Assert.Empty(_checkpointsProposed);
        _lessor.Demote();
        _lessor.Promote(TimeSpan.FromSeconds(1));
        Assert.Equal(101, _lessor.Lookup(1)!.RemainingTtl);
    }

    [Fact]
    public void RecoversLeasesAndAttachmentsFromTheBackend()
    {
        Rebuild(new LessorConfig { TimeProvider = _time, MinLeaseTtlSeconds = 2, PersistCheckpoints = true });
        _lessor.Grant(5, 40);
        _kv.Put(new PutRequest { Key = B("k"), Value = B("v"), Lease = 5 });
        _lessor.Checkpoint(new LeaseCheckpointRequest { Checkpoints = { new LeaseCheckpoint { ID = 5, RemainingTTL = 12 } } });

        // A new lessor and store over the same backend (as on restart): the lease, its key and its remainder come back.
        var lessor = new Lessor(_backend, new LessorConfig { TimeProvider = _time, MinLeaseTtlSeconds = 2 });
        using var kv = new KvStore(_backend, lessor);
        lessor.SetStore(kv);
        var info = lessor.Lookup(5)!;
        Assert.Equal(40, info.GrantedTtl);
        Assert.Equal("k", System.Text.Encoding.UTF8.GetString(Assert.Single(info.Keys)));
        lessor.Promote(TimeSpan.Zero);
        Assert.Equal(12, lessor.Lookup(5)!.RemainingTtl);
        lessor.Dispose();
    }
}
