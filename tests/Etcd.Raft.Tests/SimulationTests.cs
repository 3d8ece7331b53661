using Etcd.Raft.Tests.Simulation;
using Xunit.Abstractions;

namespace Etcd.Raft.Tests;

/// <summary>
/// Randomized whole-cluster runs checking Raft's safety properties after every step. By default 2,000
/// seeds run; set RAFT_SIM_SEEDS for more or fewer (RAFT_SIM_FIRST_SEED and RAFT_SIM_STEPS move the window
/// and the length), or RAFT_SIM_SEED=n to replay one seed.
/// </summary>
public class SimulationTests(ITestOutputHelper output)
{
    private static int Env(string name, int dflt) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : dflt;

    [Fact]
    public void ManySeeds_KeepSafetyAndRecoverLiveness()
    {
        int single = Env("RAFT_SIM_SEED", -1);
        int seeds = Env("RAFT_SIM_SEEDS", 2000);
        int steps = Env("RAFT_SIM_STEPS", 1000);
        int first = Env("RAFT_SIM_FIRST_SEED", 1);
        var range = single >= 0 ? [single] : Enumerable.Range(first, seeds).ToArray();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long applied = 0, leaders = 0, snaps = 0, reads = 0, confs = 0, restarts = 0;
        foreach (var seed in range)
        {
            var sim = new ClusterSimulator(seed);
            sim.Run(steps);
            applied += (long)sim.MaxApplied;
            leaders += sim.LeaderChanges;
            snaps += sim.SnapshotsInstalled;
            reads += sim.ReadsAnswered;
            confs += sim.ConfChangesApplied;
            restarts += sim.Restarts;
        }
        output.WriteLine($"{range.Length} seeds x {steps} steps in {sw.ElapsedMilliseconds} ms; applied {applied} entries, " +
                         $"{leaders} leader changes, {snaps} snapshots installed, {reads} reads answered, {confs} conf changes applied, {restarts} restarts");
        Assert.True(applied > range.Length * 5L, "simulation should make progress");
        if (range.Length >= 50)
        {
            // The run must actually exercise the interesting paths.
            Assert.True(snaps > 0 && reads > 0 && confs > range.Length * 3L && restarts > 0, "simulation lost coverage");
        }
    }
}
