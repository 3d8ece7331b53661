using Etcd.Cluster.Tests.Harness;
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
    private static readonly TimeSpan ProgressTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan LeaderTimeout = TimeSpan.FromSeconds(20);

    private static long Ops => ClusterEnvironment.Soak ? 5000 : 300;

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

        // Clients pinned to the old leader keep reading and writing through it before, during and after the pause.
        load.AddPinned(leader, 4);
        await Progress(load, cluster, "pinned clients running");
        leader.Pause();
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout, notThis: leader);
        output.WriteLine($"leader {leader.Name} stopped; new leader {next.Name}");
        await Progress(load, cluster, "old leader paused");
        leader.Resume();
    });

    [Fact]
    public Task ThreeMembers_LeaderPartitioned_MinoritySideServesNothing() => RunAsync(3, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        load.AddPinned(leader, 4);
        await Progress(load, cluster, "pinned clients running");
        cluster.Network.Isolate(leader.MemberId);
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout, notThis: leader);
        output.WriteLine($"leader {leader.Name} isolated; new leader {next.Name}");
        await Progress(load, cluster, "old leader isolated");
        Assert.True(cluster.Network.DroppedBytes > 0, "the partition dropped no bytes");
        cluster.Network.Heal();
    });

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
    public Task FiveMembers_LeaderPartitioned() => RunAsync(5, async (cluster, load) =>
    {
        var leader = await cluster.WaitForLeaderAsync(LeaderTimeout);
        load.AddPinned(leader, 3);
        cluster.Network.Isolate(leader.MemberId);
        var next = await cluster.WaitForLeaderAsync(LeaderTimeout, notThis: leader);
        output.WriteLine($"leader {leader.Name} isolated; new leader {next.Name}");
        await Progress(load, cluster, "old leader isolated");
        cluster.Network.Heal();
    });

    private async Task Progress(Workload load, ProcessCluster cluster, string phase)
    {
        Assert.True(await load.WaitForProgressAsync(Ops, ProgressTimeout),
            $"no progress of {Ops} operations within {ProgressTimeout.TotalSeconds:0} s ({phase}); {load.Summary()}\n{cluster.LogTails()}");
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {phase}: {load.Summary()}");
    }

    private async Task RunAsync(int size, Func<ProcessCluster, Workload, Task> scenario, ClusterOptions? options = null, WorkloadOptions? workload = null)
    {
        await using var cluster = await ProcessCluster.StartAsync(size, options);
        await using var load = new Workload(cluster, workload);
        load.Start();
        await Progress(load, cluster, "warm-up");
        await scenario(cluster, load);
        await Progress(load, cluster, "recovered");
        await load.StopAsync();
        await ClusterChecks.VerifyAsync(cluster, load, output);
    }
}
