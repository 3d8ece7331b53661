using System.Diagnostics;
using Etcd.Cluster.Tests.Harness;
using Etcd.Cluster.Tests.Linearizability;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests;

/// <summary>
/// The way a team moves a live cluster from etcd 3.4.23 to us and back, as it would upgrade etcd: under client load,
/// one member at a time is stopped cleanly (SIGTERM) and started again on the same data dir by the other
/// implementation, etcd → ours for each member, then ours → etcd, and for comparison etcd's own rolling restart
/// (etcd → etcd). No acknowledged write is lost, HashKV agrees and the history is linearizable; the longest write
/// stall of each swap (the longest time without an acknowledged put, from the stop until the load has made progress
/// again) goes to the test output beside etcd's own.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class RollingMigrationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ProgressTimeout = TimeSpan.FromSeconds(30);

    /// <summary>A swap that stalls writes longer than this is an outage, not a member restart (etcd: well under 2 s).</summary>
    private static readonly TimeSpan StallBound = TimeSpan.FromSeconds(10);

    private const long Ops = 200;

    [RealEtcdFact]
    public async Task EtcdToOursAndBack_OneMemberAtATime_UnderLoad()
    {
        var ours = ClusterEnvironment.RequireUnderTest();
        const string etcd = RealEtcdTheoryAttribute.EtcdPath;
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { Binaries = [etcd, etcd, etcd] });
        await using var load = new Workload(cluster);
        load.Start();
        await Progress(load, cluster, "warm-up on etcd");

        var rows = new List<(string Swap, TimeSpan Stall)>();
        foreach (var (from, to, label) in new[] { (etcd, etcd, "etcd -> etcd (etcd's rolling restart)"), (etcd, ours, "etcd -> ours"), (ours, etcd, "ours -> etcd") })
        {
            foreach (var member in cluster.Members)
            {
                Assert.Equal(from, member.Binary);
                var leader = await cluster.WaitForLeaderAsync(ProgressTimeout);
                var stall = await SwapAsync(cluster, load, member, to);
                rows.Add(($"{label}, {member.Name}{(leader == member ? " (leader)" : "")}", stall));
                output.WriteLine($"{label}: {member.Name} swapped, longest write stall {stall.TotalMilliseconds:0} ms; {load.Summary()}");
            }
        }

        await load.StopAsync();
        await ClusterChecks.VerifyAsync(cluster, load, output);

        output.WriteLine("longest write stall per swap:");
        foreach (var (swap, stall) in rows)
        {
            output.WriteLine($"  {swap,-50} {stall.TotalMilliseconds,7:0} ms");
        }

        Assert.All(rows, r => Assert.True(r.Stall < StallBound, $"{r.Swap}: writes stalled {r.Stall.TotalMilliseconds:0} ms\n{cluster.LogTails(30)}"));
    }

    /// <summary>
    /// Stops <paramref name="member"/> cleanly, restarts it with <paramref name="binary"/> on its data dir, waits for the
    /// load to progress, and returns the longest gap between acknowledged puts from the stop to that point.
    /// </summary>
    private async Task<TimeSpan> SwapAsync(ProcessCluster cluster, Workload load, ClusterMember member, string binary)
    {
        var start = HistoryRecorder.Now();
        await member.TerminateAsync();
        member.Binary = binary;
        await member.StartAsync(cluster.Options.ReadyTimeout);
        await Progress(load, cluster, $"{member.Name} running {(binary == RealEtcdTheoryAttribute.EtcdPath ? "etcd" : "ours")}");
        var end = HistoryRecorder.Now();

        var acks = load.History.Operations
            .Where(o => o.Kind == OpKind.Put && !o.Unknown && o.Return >= start && o.Return <= end)
            .Select(o => o.Return)
            .Order()
            .Prepend(start)
            .Append(end)
            .ToList();
        var longest = acks.Zip(acks.Skip(1), (a, b) => b - a).Max();
        return TimeSpan.FromSeconds(longest / (double)Stopwatch.Frequency);
    }

    private async Task Progress(Workload load, ProcessCluster cluster, string phase)
    {
        Assert.True(await load.WaitForProgressAsync(Ops, ProgressTimeout),
            $"no progress of {Ops} operations within {ProgressTimeout.TotalSeconds:0} s ({phase}); {load.Summary()}\n{cluster.LogTails()}");
    }
}
