using Etcd.Raft.Tests.Simulation;
using Xunit.Abstractions;

namespace Etcd.Raft.Tests;

/// <summary>
/// Randomized whole-cluster runs checking Raft's safety properties after every step. By default a few hundred
/// seeds run; set RAFT_SIM_SEEDS=2000 for the long run, or RAFT_SIM_SEED=n to replay one seed.
/// </summary>
public class SimulationTests(ITestOutputHelper output)
{
    private static int Env(string name, int dflt) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : dflt;

    [Fact]
    public void ManySeeds_KeepSafetyAndRecoverLiveness()
    {
        int single = Env("RAFT_SIM_SEED", -1);
        int seeds = Env("RAFT_SIM_SEEDS", 150);
        int steps = Env("RAFT_SIM_STEPS", 1000);
        var range = single >= 0 ? [single] : Enumerable.Range(1, seeds).ToArray();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long applied = 0, leaders = 0;
        foreach (var seed in range)
        {
            var sim = new ClusterSimulator(seed);
            sim.Run(steps);
            applied += (long)sim.MaxApplied;
            leaders += sim.LeaderChanges;
        }
        output.WriteLine($"{range.Length} seeds x {steps} steps in {sw.ElapsedMilliseconds} ms; applied {applied} entries, {leaders} leader changes");
        Assert.True(applied > range.Length * 5L, "simulation should make progress");
    }
}
