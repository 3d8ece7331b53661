using Etcd.Cluster.Tests.Harness;
using Etcd.Cluster.Tests.Linearizability;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests;

/// <summary>
/// Fault scenarios on 3- and 5-member clusters of the executable under test, each under concurrent client load
/// (<see cref="Workload"/>) and each ending with <see cref="ClusterChecks.VerifyAsync"/>: acknowledged puts on every
/// member, HashKV agreement at one revision, linearizable history. Phases are measured in client progress
/// (operations acknowledged), never in sleeps; every wait is bounded.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class ClusterFaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ProgressTimeout = TimeSpan.FromSeconds(ClusterEnvironment.Soak ? 600 : 30);
    private static readonly TimeSpan LeaderTimeout = TimeSpan.FromSeconds(20);

    private static long Ops => ClusterEnvironment.Soak ? 5000 : 200;

    [Fact]
    public Task ThreeMembers_FollowerSigkillAndRestart() => RunAsync(3, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var follower = cluster.Followers(leader)[0];
        follower.Kill();
        await Progress(load, cluster, "follower down");
        await follower.StartAsync(cluster.Options.ReadyTimeout);
    });

    [Fact]
    public Task ThreeMembers_LeaderSigkillAndRestart() => RunAsync(3, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        leader.Kill();
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout);
        output.WriteLine($"leader {leader.Name} killed; new leader {next.Name}");
        await Progress(load, cluster, "old leader down");
        await leader.StartAsync(cluster.Options.ReadyTimeout);
    });

    [Fact]
    public Task ThreeMembers_LeaderSigstopSigcont_StaleLeaderServesNoStaleReads() => RunAsync(3, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);

        // Clients pinned to the old leader keep reading and writing through it before, during and after the pause:
        // right after SIGCONT it still believes it leads, and must not answer a linearizable read from its own state.
        var pinned = load.AddPinned(leader, 4);
        await Progress(load, cluster, "pinned clients running");
        await RecordedPutAsync(load, leader, "probe", "before-pause");
        leader.Pause();
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout, notThis: leader);
        output.WriteLine($"leader {leader.Name} stopped; new leader {next.Name}");
        await RecordedPutAsync(load, next, "probe", "during-pause");
        await Progress(load, cluster, "old leader paused");
        var resumed = HistoryRecorder.Now();
        leader.Resume();

        // A burst of linearizable reads at the old leader the moment it wakes, still believing it leads: each must
        // see the value written during the pause, or fail. (They are also part of the checked history.)
        var probes = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => RecordedGetAsync(load, leader, "probe")));
        var stale = probes.Count(v => v == "before-pause");
        output.WriteLine($"probe reads at the resumed old leader: {probes.Count(v => v == "during-pause")} fresh, {stale} stale, {probes.Count(v => v is null)} failed");
        Assert.True(stale == 0, $"the resumed old leader served {stale} stale linearizable reads\n{leader.LogTail()}");
        await Progress(load, cluster, "old leader resumed");
        var after = load.AcknowledgedWithin(pinned, resumed, long.MaxValue - 1);
        output.WriteLine($"{after.Count} operations acknowledged by the resumed old leader so far (all part of the checked history)");
    });

    [Fact]
    public Task ThreeMembers_LeaderPartitioned_MinoritySideServesNothing() => RunAsync(3, (cluster, load) => PartitionLeaderAsync(cluster, load, 4));

    [Fact]
    public Task FiveMembers_LeaderAndFollowerSigkillAndRestart() => RunAsync(5, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var follower = cluster.Followers(leader)[1];
        leader.Kill();
        follower.Kill();
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout);
        output.WriteLine($"leader {leader.Name} and follower {follower.Name} killed; new leader {next.Name}");
        await Progress(load, cluster, "two of five down");
        await Task.WhenAll(leader.StartAsync(cluster.Options.ReadyTimeout), follower.StartAsync(cluster.Options.ReadyTimeout));
    });

    [Fact]
    public Task FiveMembers_LeaderPartitioned() => RunAsync(5, (cluster, load) => PartitionLeaderAsync(cluster, load, 3));

    [Fact]
    public async Task ThreeMembers_FollowerLaggingPastTheLog_CatchesUpBySnapshot()
    {
        // --snapshot-count 100: the leader snapshots every 100 entries and keeps 5000 (SnapshotCatchUpEntries, not a
        // flag) behind it, so a follower more than ~5100 entries behind can only catch up from a snapshot.
        const ulong catchUpEntries = 5000;
        var bulk = new System.Collections.Concurrent.ConcurrentBag<AckedPut>();
        await RunAsync(3, async (cluster, load) =>
        {
            var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
            var follower = cluster.Followers(leader)[0];
            var stoppedAt = (await ProcessCluster.TryStatusAsync(follower))?.RaftIndex ?? throw new InvalidOperationException("no status");
            follower.Kill();
            var target = stoppedAt + catchUpEntries + 300;
            var written = await BulkWriteUntilAsync(cluster, leader, target, bulk, TimeSpan.FromSeconds(90));
            output.WriteLine($"follower {follower.Name} stopped at raft index {stoppedAt}; wrote {written} bulk puts; leader index now past {target}");
            await follower.StartAsync(cluster.Options.ReadyTimeout);
            // Our server logs etcd's zap message "applied snapshot"; etcd's capnslog prints "finished applying incoming snapshot".
            Assert.True(await follower.WaitForLogAsync(TimeSpan.FromSeconds(60), "applied snapshot", "finished applying incoming snapshot"),
                $"{follower.Name} did not apply a snapshot from the leader\n{cluster.LogTails()}");
        }, new ClusterOptions { SnapshotCount = 100 }, verifyBulk: bulk);
    }

    [Fact]
    public Task ThreeMembers_LearnerAddPromoteAndMemberRemove_UnderLoad() => RunAsync(3, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var learner = await cluster.AddLearnerAsync();
        output.WriteLine($"learner {learner} added");
        await Progress(load, cluster, "learner running");
        await cluster.PromoteAsync(learner, TimeSpan.FromSeconds(30));
        output.WriteLine($"learner {learner.Name} promoted");
        await Progress(load, cluster, "four voting members");
        var victim = cluster.Followers(leader).First(m => m != learner);
        var exited = await cluster.RemoveAsync(victim);
        output.WriteLine($"member {victim.Name} removed; exited by itself: {exited} (code {victim.ExitCode})");
        Assert.True(exited, $"removed member {victim.Name} kept running\n{victim.LogTail()}");
        output.WriteLine(victim.LogTail(12));
        await cluster.WaitForLeaderAsync(LeaderTimeout);
    });

    [Fact]
    public Task ThreeMembers_LeaderRemovedUnderLoad() => RunAsync(3, async (cluster, load) =>
    {
        // Removing the leader itself: it commits its own removal, steps down and stops; the other two elect a leader.
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var exited = await cluster.RemoveAsync(leader);
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout);
        output.WriteLine($"leader {leader.Name} removed (exited by itself: {exited}, code {leader.ExitCode}); new leader {next.Name}");
        Assert.True(exited, $"removed leader {leader.Name} kept running\n{leader.LogTail()}");
    });

    [Fact]
    public async Task PositiveControl_SerializableReadsFromAnIsolatedFollower_AreCaughtAsStale()
    {
        // Serializable reads are local by design: an isolated follower answers them from its frozen state while the
        // majority moves on. The whole pipeline (proxies, history, checker) must flag that history as not
        // linearizable, or the other scenarios' passes would mean nothing.
        await using var cluster = await ProcessCluster.StartAsync(3);
        await using var load = new Workload(cluster);
        load.Start();
        await Progress(load, cluster, "warm-up");
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var follower = cluster.Followers(leader)[0];
        cluster.Network.Isolate(follower.MemberId);
        var isolated = HistoryRecorder.Now();
        var readers = load.AddPinned(follower, 4, serializableReadsOnly: true);

        // Enough overwrites on the majority side (about 8 per key), then more reads at the follower after them.
        Assert.True(await load.WaitForAckedPutsAsync(64, ProgressTimeout), $"no puts acknowledged by the majority; {load.Summary()}");
        await Progress(load, cluster, "follower isolated");
        var staleCandidates = load.AcknowledgedWithin(readers, isolated, long.MaxValue - 1).Count;
        cluster.Network.Heal();
        await load.StopAsync();
        var result = LinearizabilityChecker.Check(load.History.Operations, ClusterChecks.CheckerBudget);
        output.WriteLine($"{staleCandidates} serializable reads answered by the isolated follower; {result.Describe()}");
        Assert.True(staleCandidates > 0, "the isolated follower answered no serializable read");
        Assert.Equal(CheckOutcome.Illegal, result.Outcome);
    }

    [Fact]
    public async Task ThreeMembers_RemovedMemberExitsWithCodeZero_AsEtcd()
    {
        await using var cluster = await ProcessCluster.StartAsync(3);
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var victim = cluster.Followers(leader)[0];
        Assert.True(await cluster.RemoveAsync(victim), $"removed member {victim.Name} kept running\n{victim.LogTail()}");
        Assert.True(victim.ExitCode == 0, $"removed member {victim.Name} exited with code {victim.ExitCode}\n{victim.LogTail(15)}");
    }

    private const int ProbeClient = 10_000;

    private static async Task RecordedPutAsync(Workload load, ClusterMember via, string key, string value)
    {
        var t0 = HistoryRecorder.Now();
        await ProcessCluster.RetryAsync(() => via.Client.Kv.PutAsync(key, value, new Etcd.Client.Grpc.CallOptions { Timeout = TimeSpan.FromSeconds(5) }), TimeSpan.FromSeconds(20));
        load.History.Add(Operation.Put(ProbeClient, key, value, t0, HistoryRecorder.Now()));
    }

    /// <summary>One linearizable get through <paramref name="via"/>, recorded if answered; null if it failed.</summary>
    private static async Task<string?> RecordedGetAsync(Workload load, ClusterMember via, string key)
    {
        var t0 = HistoryRecorder.Now();
        try
        {
            var resp = await via.Client.Kv.GetAsync(key, new Etcd.Client.Grpc.CallOptions { Timeout = TimeSpan.FromSeconds(5) });
            var value = resp.Kvs.Count == 0 ? "<absent>" : resp.Kvs[0].Value.ToStringUtf8();
            load.History.Add(Operation.Get(ProbeClient + 1, key, resp.Kvs.Count == 0 ? null : value, t0, HistoryRecorder.Now()));
            return value;
        }
        catch (Exception e) when (e is Etcd.Api.Grpc.RpcException or OperationCanceledException or HttpRequestException)
        {
            return null;
        }
    }

    private static async Task<int> BulkWriteUntilAsync(ProcessCluster cluster, ClusterMember leader, ulong raftIndex, System.Collections.Concurrent.ConcurrentBag<AckedPut> acked, TimeSpan timeout)
    {
        using var stop = new CancellationTokenSource(timeout);
        var next = 0;
        var reached = false;
        var writers = Enumerable.Range(0, 64).Select(async w =>
        {
            while (!stop.IsCancellationRequested && !Volatile.Read(ref reached))
            {
                var i = Interlocked.Increment(ref next);
                var key = $"bulk/{i:D6}";
                try
                {
                    var resp = await leader.Client.Kv.PutAsync(key, "v" + i, new Etcd.Client.Grpc.CallOptions { Timeout = TimeSpan.FromSeconds(5) });
                    acked.Add(new AckedPut(key, "v" + i, resp.Header.Revision));
                    if (i % 500 == 0 && (await ProcessCluster.TryStatusAsync(leader))?.RaftIndex >= raftIndex)
                    {
                        Volatile.Write(ref reached, true);
                    }
                }
                catch (Exception e) when (e is Etcd.Api.Grpc.RpcException or OperationCanceledException or HttpRequestException)
                {
                    // Unknown outcome: not counted as acknowledged; bulk keys are never read by the history.
                }
            }
        });
        await Task.WhenAll(writers);
        Assert.True(reached, $"leader did not reach raft index {raftIndex} within {timeout.TotalSeconds:0} s ({acked.Count} bulk puts acknowledged)");
        return acked.Count;
    }

    /// <summary>
    /// Blackholes every peer link of the leader while clients pinned to it keep asking: nothing they invoke during the
    /// partition may be acknowledged (an isolated member can neither commit a put nor confirm a linearizable read).
    /// </summary>
    private async Task PartitionLeaderAsync(ProcessCluster cluster, Workload load, int pinnedClients)
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var pinned = load.AddPinned(leader, pinnedClients);
        await Progress(load, cluster, "pinned clients running");
        var isolated = HistoryRecorder.Now();
        cluster.Network.Isolate(leader.MemberId);
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout, notThis: leader);
        output.WriteLine($"leader {leader.Name} isolated; new leader {next.Name}");
        await Progress(load, cluster, "old leader isolated");
        Assert.True(cluster.Network.DroppedBytes > 0, "the partition dropped no bytes");
        var healed = HistoryRecorder.Now();
        var served = load.AcknowledgedWithin(pinned, isolated, healed);
        Assert.True(served.Count == 0, $"the isolated old leader acknowledged {served.Count} operations:\n{string.Join('\n', served.Take(10))}\n{leader.LogTail()}");
        cluster.Network.Heal();
        await Progress(load, cluster, "healed");
        output.WriteLine($"{load.AcknowledgedWithin(pinned, healed, long.MaxValue - 1).Count} operations acknowledged by the old leader after the heal");
    }

    private async Task Progress(Workload load, ProcessCluster cluster, string phase)
    {
        Assert.True(await load.WaitForProgressAsync(Ops, ProgressTimeout),
            $"no progress of {Ops} operations within {ProgressTimeout.TotalSeconds:0} s ({phase}); {load.Summary()}\n{cluster.LogTails()}");
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {phase}: {load.Summary()}");
    }

    private async Task RunAsync(int size, Func<ProcessCluster, Workload, Task> scenario, ClusterOptions? options = null, WorkloadOptions? workload = null, IEnumerable<AckedPut>? verifyBulk = null)
    {
        await using var cluster = await ProcessCluster.StartAsync(size, options);
        await using var load = new Workload(cluster, workload);
        load.Start();
        await Progress(load, cluster, "warm-up");
        await scenario(cluster, load);
        await Progress(load, cluster, "recovered");
        await load.StopAsync();
        await ClusterChecks.VerifyAsync(cluster, load, output, verifyBulk?.ToList());
    }
}
