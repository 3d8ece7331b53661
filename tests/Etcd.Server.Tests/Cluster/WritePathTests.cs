using Etcd.Api;
using Etcdserverpb;
using Raftpb;
using static Etcd.Server.Tests.Cluster.InProcessCluster;

namespace Etcd.Server.Tests.Cluster;

/// <summary>
/// The write path split in two threads: the raft node goes on ticking, heartbeating and committing while the
/// applier lags behind; entries committed and persisted but not applied when a member stops are applied exactly
/// once after it restarts.
/// </summary>
public sealed class WritePathTests
{
    /// <summary>Per-entry delay of the slow applier; 12 of them outlast several election timeouts.</summary>
    private static readonly TimeSpan SlowApply = TimeSpan.FromMilliseconds(300);

    private static CancellationToken Soon(int ms = 30_000) => new CancellationTokenSource(ms).Token;

    /// <summary>Whether <paramref name="e"/> is a put of a key starting with <paramref name="prefix"/>.</summary>
    private static bool IsPutOf(Entry e, string prefix)
    {
        if (e.Type != EntryType.EntryNormal || e.Data.IsEmpty)
        {
            return false;
        }

        var req = InternalRaftRequest.Parser.ParseFrom(e.Data);
        return req.Put is { } p && p.Key.ToStringUtf8().StartsWith(prefix, StringComparison.Ordinal);
    }

    /// <summary>
    /// Every member's applier takes 300 ms per entry for 12 puts (3.6 s, over three election timeouts of 1 s): commit
    /// runs ahead of apply on the leader, yet no member campaigns — the term and the leader stay — and every put is
    /// answered once applied, in order.
    /// </summary>
    [Fact]
    public async Task ApplyLaggingFarBehindCommitKeepsLeaderAndTerm()
    {
        var slow = 0;
        await using var c = await StartAsync(
            3,
            o => o with { HeartbeatIntervalMs = 50, ElectionTimeoutMs = 1000 },
            s => s.BeforeApplyEntryForTests = e =>
            {
                if (Volatile.Read(ref slow) == 1 && IsPutOf(e, "slow/"))
                {
                    Thread.Sleep(SlowApply);
                }
            });
        var leader = await c.WaitLeaderAsync();
        await leader.PutAsync(Put("warm", "1"), Soon());
        var term = leader.Term;
        var lead = leader.MemberId;
        var changes = c.Live.ToDictionary(m => m.MemberId, m => m.Metrics.Server.LeaderChanges.Value);

        Volatile.Write(ref slow, 1);
        var puts = Enumerable.Range(0, 12).Select(i => leader.PutAsync(Put($"slow/{i:D2}", "v"), Soon())).ToList();

        // Everything is committed long before it is applied.
        await c.EventuallyAsync(() => leader.CommittedIndex >= leader.AppliedIndex + 8, "commit running ahead of apply");
        var responses = await Task.WhenAll(puts);

        Assert.Equal(responses.Select(r => r.Header.Revision).Order(), responses.Select(r => r.Header.Revision).Distinct().Order());
        Assert.All(c.Live, m =>
        {
            Assert.Equal(term, m.Term);
            Assert.Equal(lead, m.Leader);
            Assert.Equal(changes[m.MemberId], m.Metrics.Server.LeaderChanges.Value);
        });

        // Followers catch up with the same store.
        var revision = responses.Max(r => r.Header.Revision);
        await c.EventuallyAsync(() => c.Live.All(m => m.Kv.CurrentRevision == revision), "every member applied the puts");
        foreach (var m in c.Live)
        {
            var got = await m.RangeAsync(Prefix("slow/", serializable: true), Soon());
            Assert.Equal(12, got.Kvs.Count);
        }
    }

    /// <summary>
    /// A member stops while 20 committed, persisted puts wait behind a blocked applier (the first being applied, 19
    /// queued behind it and dropped by the stop): after the restart each put is in the store exactly once (version 1,
    /// one revision each, no revision beyond them).
    /// </summary>
    [Fact]
    public async Task CommittedButUnappliedEntriesApplyExactlyOnceAfterRestart()
    {
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocking = 0;
        await using var c = await StartAsync(1, beforeLoop: s => s.BeforeApplyEntryForTests = e =>
        {
            if (Volatile.Read(ref blocking) == 1 && IsPutOf(e, "once/"))
            {
                entered.TrySetResult();
                gate.Wait(TimeSpan.FromSeconds(30));
            }
        });
        var member = c.Members[0]!;
        await member.PutAsync(Put("before", "1"), Soon());
        var startRevision = member.Kv.CurrentRevision;

        Volatile.Write(ref blocking, 1);
        var puts = new List<Task<PutResponse>> { member.PutAsync(Put("once/00", "v"), Soon()) };
        await entered.Task.WaitAsync(Patience);
        puts.AddRange(Enumerable.Range(1, 19).Select(i => member.PutAsync(Put($"once/{i:D2}", "v"), Soon())));
        await c.EventuallyAsync(() => member.CommittedIndex >= member.AppliedIndex + 20, "20 puts committed behind the blocked applier");

        var stopping = member.DisposeAsync().AsTask();
        await member.ApplierStopRequestedForTests.WaitAsync(Patience);
        Volatile.Write(ref blocking, 0);
        gate.Set();
        await stopping.WaitAsync(Patience);
        Assert.True(member.CommittedIndex >= member.AppliedIndex + 19, $"applied {member.AppliedIndex} of {member.CommittedIndex} before the stop: nothing left to replay");
        foreach (var p in puts)
        {
            try
            {
                await p;
            }
            catch (EtcdException e) when (e.Error == EtcdErrors.Stopped)
            {
                // The stop answers pending proposers; their entries are in the WAL.
            }
        }

        c.Members[0] = null;
        var restarted = await c.RestartAsync(0);
        await restarted.ReadyToServe.WaitAsync(Patience);
        await c.WaitLeaderAsync();

        var got = await restarted.RangeAsync(Prefix("once/"), Soon());
        Assert.Equal(20, got.Kvs.Count);
        Assert.All(got.Kvs, kv => Assert.Equal(1, kv.Version));
        Assert.Equal(20, got.Kvs.Select(kv => kv.ModRevision).Distinct().Count());
        Assert.Equal(startRevision + 20, restarted.Kv.CurrentRevision);
        Assert.Equal(startRevision + 20, got.Kvs.Max(kv => kv.ModRevision));
    }

    /// <summary>
    /// A compaction of 100,000 revisions and a defragment of every member, while a writer keeps putting, run in a
    /// 3-member cluster with etcd's default timing (heartbeat 100 ms, election 1 s): the old revisions are gone from
    /// every backend afterwards, and no member campaigns meanwhile (the term, the leader and each member's leader-change
    /// count stay), because neither holds the raft thread.
    /// </summary>
    [Fact]
    public async Task CompactionOf100kRevisionsAndDefragmentKeepLeaderAndTerm()
    {
        await using var c = await StartAsync(3, o => o with { HeartbeatIntervalMs = 100, ElectionTimeoutMs = 1000, MaxTxnOps = 1000 });
        var leader = await c.WaitLeaderAsync();

        // 100 txns of 1,000 puts: 100,000 key revisions (100 keys, 1,000 versions each) below the compaction point.
        for (var t = 0; t < 100; t++)
        {
            var txn = new TxnRequest();
            for (var i = 0; i < 1000; i++)
            {
                txn.Success.Add(new RequestOp { RequestPut = Put($"hist/{i % 100:D3}", $"{t}-{i}") });
            }

            await leader.TxnAsync(txn, Soon());
        }

        var compactAt = leader.Kv.CurrentRevision;
        await c.EventuallyAsync(() => c.Live.All(m => m.Kv.CurrentRevision == compactAt), "every member applied the history");
        var term = leader.Term;
        var lead = leader.MemberId;
        var changes = c.Live.ToDictionary(m => m.MemberId, m => m.Metrics.Server.LeaderChanges.Value);
        var sizesBefore = c.Live.ToDictionary(m => m.MemberId, m => m.Backend.Size);

        // A writer runs through the compaction and the defragments, bounded in count and time.
        using var stopWriter = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var writes = 0;
        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 10_000 && !stopWriter.IsCancellationRequested; i++)
            {
                await leader.PutAsync(Put("during", i.ToString()), Soon());
                writes++;
            }
        });

        await leader.CompactAsync(new CompactionRequest { Revision = compactAt, Physical = true }, Soon(60_000));
        foreach (var m in c.Live)
        {
            await m.DefragmentAsync(Soon(60_000));
        }

        await stopWriter.CancelAsync();
        await writer;

        Assert.True(writes > 0, "the writer made progress during the compaction and the defragments");
        Assert.All(c.Live, m =>
        {
            Assert.Equal(term, m.Term);
            Assert.Equal(lead, m.Leader);
            Assert.Equal(changes[m.MemberId], m.Metrics.Server.LeaderChanges.Value);
        });

        // The history is gone everywhere: a read below the compaction point fails, and the defragmented files shrank.
        foreach (var m in c.Live)
        {
            var e = await Assert.ThrowsAsync<EtcdException>(() => m.RangeAsync(new RangeRequest { Key = Put("hist/000", "").Key, Revision = compactAt - 1, Serializable = true }, Soon()));
            Assert.Equal(EtcdErrors.Compacted, e.Error);
            Assert.True(m.Backend.Size < sizesBefore[m.MemberId], $"member {m.MemberId:x}: {m.Backend.Size} bytes after defragment, {sizesBefore[m.MemberId]} before");
        }
    }
}
