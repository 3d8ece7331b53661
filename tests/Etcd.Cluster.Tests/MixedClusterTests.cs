using Etcd.Api;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Harness;
using Etcdserverpb;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests;

/// <summary>Skips a test when real etcd 3.4.23 (<c>/usr/bin/etcd</c>) is not installed (and fails under CI).</summary>
public sealed class RealEtcdTheoryAttribute : TheoryAttribute
{
    /// <summary>Real etcd's path.</summary>
    public const string EtcdPath = "/usr/bin/etcd";

    /// <summary>Checks for the binary.</summary>
    public RealEtcdTheoryAttribute()
    {
        if (!File.Exists(EtcdPath))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("real etcd 3.4.23 (/usr/bin/etcd) is not installed");
        }
    }
}

/// <summary>
/// Clusters whose members are part real etcd 3.4.23 and part ours, talking etcd's peer protocol (rafthttp), under the
/// same client load and checks as <see cref="ClusterFaultTests"/> (acknowledged puts on every member, HashKV agreement,
/// linearizable history): leadership moved to a member of each kind, a member of each kind killed and restarted, a
/// learner of each kind added, caught up and promoted, and (with a small <c>--snapshot-count</c>) learners of each kind
/// caught up by a snapshot sent by a leader of the other kind.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class MixedClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ProgressTimeout = TimeSpan.FromSeconds(ClusterEnvironment.Soak ? 600 : 30);
    private static readonly TimeSpan LeaderTimeout = TimeSpan.FromSeconds(20);

    private static long Ops => ClusterEnvironment.Soak ? 5000 : 200;

    private static string Ours => ClusterEnvironment.RequireUnderTest();

    private static IReadOnlyList<string> Binaries(string kinds) => kinds.Split(',').Select(k => k == "ours" ? Ours : RealEtcdTheoryAttribute.EtcdPath).ToList();

    private static bool IsOurs(ClusterMember m) => m.Binary != RealEtcdTheoryAttribute.EtcdPath;

    [RealEtcdTheory]
    [InlineData("ours,etcd,etcd")]
    [InlineData("ours,ours,etcd")]
    public async Task MixedCluster_MoveLeaderBothWays_RestartEachKind_LearnerOfEachKindPromoted(string kinds)
    {
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { Binaries = Binaries(kinds) });
        await using var load = new Workload(cluster);
        load.Start();
        await Progress(load, cluster, "warm-up");

        // Leadership to a member of each kind and back.
        foreach (var ours in new[] { true, false, true })
        {
            var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
            var target = cluster.Members.FirstOrDefault(m => m != leader && IsOurs(m) == ours) ?? leader;
            if (target != leader)
            {
                await ProcessCluster.RetryAsync(
                    () => leader.Client.UnaryAsync(EtcdMethods.MaintenanceService.MoveLeader, new MoveLeaderRequest { TargetID = target.MemberId }, new CallOptions { Timeout = TimeSpan.FromSeconds(10) }),
                    TimeSpan.FromSeconds(30));
            }

            var now = await cluster.WaitForLeaderAsync(LeaderTimeout);
            Assert.True(now == target, $"leader is {now.Name}, expected {target.Name}\n{cluster.LogTails(20)}");
            output.WriteLine($"leader moved from {leader.Name} to {target.Name} ({(ours ? "ours" : "etcd")})");
            await Progress(load, cluster, $"led by {target.Name}");
        }

        // A member of each kind killed and restarted on its data dir.
        foreach (var ours in new[] { true, false })
        {
            var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
            // A follower of that kind, or the leader when it is the only one of its kind.
            var victim = cluster.Followers(leader).FirstOrDefault(m => IsOurs(m) == ours) ?? cluster.Members.First(m => IsOurs(m) == ours);
            victim.Kill();
            await Progress(load, cluster, $"{victim.Name} ({(IsOurs(victim) ? "ours" : "etcd")}) down");
            await victim.StartAsync(cluster.Options.ReadyTimeout);
            await Progress(load, cluster, $"{victim.Name} restarted");
        }

        // A learner of each kind: added, running, promoted.
        foreach (var binary in new[] { Ours, RealEtcdTheoryAttribute.EtcdPath })
        {
            var learner = await cluster.AddLearnerAsync(binary);
            output.WriteLine($"learner {learner} added ({(IsOurs(learner) ? "ours" : "etcd")})");
            await Progress(load, cluster, "learner running");
            await cluster.PromoteAsync(learner, TimeSpan.FromSeconds(30));
            output.WriteLine($"learner {learner.Name} promoted");
            await Progress(load, cluster, "promoted");
        }

        await load.StopAsync();
        await ClusterChecks.VerifyAsync(cluster, load, output);
    }

    [RealEtcdTheory]
    [InlineData("ours,etcd,etcd", "ours")]
    [InlineData("ours,ours,etcd", "etcd")]
    public async Task MixedCluster_LearnerCatchesUpBySnapshotFromALeaderOfTheOtherKind(string kinds, string learnerKind)
    {
        // --snapshot-count 100: leaders (both kinds) keep 5000 entries behind their last snapshot, so a learner added
        // after more than ~5100 entries can only start from a snapshot (raft MsgSnap over POST /raft/snapshot).
        const ulong catchUpEntries = 5000;
        var bulk = new System.Collections.Concurrent.ConcurrentBag<AckedPut>();
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { Binaries = Binaries(kinds), SnapshotCount = 100 });
        var learnerOurs = learnerKind == "ours";
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        var wanted = cluster.Members.FirstOrDefault(m => IsOurs(m) != learnerOurs) ?? leader;
        if (wanted != leader)
        {
            await ProcessCluster.RetryAsync(
                () => leader.Client.UnaryAsync(EtcdMethods.MaintenanceService.MoveLeader, new MoveLeaderRequest { TargetID = wanted.MemberId }, new CallOptions { Timeout = TimeSpan.FromSeconds(10) }),
                TimeSpan.FromSeconds(30));
            leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        }

        Assert.True(IsOurs(leader) != learnerOurs, $"leader {leader.Name} is of the learner's kind");
        var index = (await ProcessCluster.TryStatusAsync(leader))?.RaftIndex ?? throw new InvalidOperationException("no status");
        var written = await BulkWriteUntilAsync(leader, index + catchUpEntries + 300, bulk, TimeSpan.FromSeconds(120));
        output.WriteLine($"leader {leader.Name} ({(IsOurs(leader) ? "ours" : "etcd")}) past raft index {index + catchUpEntries + 300} after {written} puts");
        var learner = await cluster.AddLearnerAsync(learnerOurs ? Ours : RealEtcdTheoryAttribute.EtcdPath);

        // Our server logs etcd's zap message "applied snapshot"; etcd's capnslog prints "finished applying incoming snapshot".
        Assert.True(await learner.WaitForLogAsync(TimeSpan.FromSeconds(60), "applied snapshot", "finished applying incoming snapshot"),
            $"{learner.Name} did not apply a snapshot from the leader\n{cluster.LogTails()}");
        await cluster.PromoteAsync(learner, TimeSpan.FromSeconds(60));
        await using var load = new Workload(cluster);
        load.Start();
        await Progress(load, cluster, "learner promoted");
        await load.StopAsync();
        await ClusterChecks.VerifyAsync(cluster, load, output, bulk.ToList());
    }

    private static async Task<int> BulkWriteUntilAsync(ClusterMember leader, ulong raftIndex, System.Collections.Concurrent.ConcurrentBag<AckedPut> acked, TimeSpan timeout)
    {
        using var stop = new CancellationTokenSource(timeout);
        var next = 0;
        var reached = false;
        var writers = Enumerable.Range(0, 64).Select(async _ =>
        {
            while (!stop.IsCancellationRequested && !Volatile.Read(ref reached))
            {
                var i = Interlocked.Increment(ref next);
                var key = $"bulk/{i:D6}";
                try
                {
                    var resp = await leader.Client.Kv.PutAsync(key, "v" + i, new CallOptions { Timeout = TimeSpan.FromSeconds(5) });
                    acked.Add(new AckedPut(key, "v" + i, resp.Header.Revision));
                    if (i % 500 == 0 && (await ProcessCluster.TryStatusAsync(leader))?.RaftIndex >= raftIndex)
                    {
                        Volatile.Write(ref reached, true);
                    }
                }
                catch (Exception e) when (e is Etcd.Api.Grpc.RpcException or OperationCanceledException or HttpRequestException)
                {
                    // Unknown outcome: not counted as acknowledged.
                }
            }
        });
        await Task.WhenAll(writers);
        Assert.True(reached, $"leader did not reach raft index {raftIndex} within {timeout.TotalSeconds:0} s ({acked.Count} puts acknowledged)");
        return acked.Count;
    }

    private async Task Progress(Workload load, ProcessCluster cluster, string phase)
    {
        Assert.True(await load.WaitForProgressAsync(Ops, ProgressTimeout),
            $"no progress of {Ops} operations within {ProgressTimeout.TotalSeconds:0} s ({phase}); {load.Summary()}\n{cluster.LogTails()}");
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {phase}: {load.Summary()}");
    }
}
