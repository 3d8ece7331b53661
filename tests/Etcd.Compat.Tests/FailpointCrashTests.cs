using Etcd.Compat.Tests.Harness;
using Xunit.Abstractions;

namespace Etcd.Compat.Tests;

/// <summary>
/// The member killed at its crash-critical points (<c>GOFAIL_FAILPOINTS</c>, see the server's <c>Failpoints</c>) and at
/// random moments, under concurrent write load: after each crash it restarts on the same data dir and the whole MVCC
/// history must hold every acknowledged put at its revision, nothing never written, no put twice (an entry applied
/// twice), and the store must take writes again (<see cref="WriteHistory"/>). Rounds are bounded in count and time;
/// <c>CRASH_SOAK=N</c> multiplies them for a longer run.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class FailpointCrashTests(ITestOutputHelper output)
{
    private static readonly TimeSpan LoadLimit = TimeSpan.FromSeconds(20);

    /// <summary>The data-path failpoints and the range of their kill pass (how often this load passes the point decides it).</summary>
    private static readonly (string Point, int MinPass, int MaxPass)[] DataPoints =
    [
        ("raftBeforeSave", 10, 120),
        ("raftAfterSave", 10, 120),
        ("raftAfterApply", 10, 120),
        ("beforeCommit", 2, 12),
        ("boltBeforeMetaWrite", 2, 12),
        ("afterCommit", 2, 12),
    ];

    /// <summary>
    /// One member killed in turn at every data-path failpoint (WAL save, apply, backend batch commit, bolt meta write),
    /// twice each (<c>CRASH_SOAK</c> multiplies), on the same data dir: the history is checked after every restart.
    /// </summary>
    [Fact]
    public async Task KilledAtEachDataPathFailpoint_LosesNoAcknowledgedWrite_AppliesNoEntryTwice()
    {
        await RunCycleAsync(DataPoints, 2 * DataPoints.Length * CrashRounds.Soak, []);
    }

    /// <summary>
    /// Small <c>--snapshot-count</c>: raft snapshots happen several times per round, so the kill points fall before
    /// and after them. Once the member writes snap files (<c>member/snap/*.snap</c>, etcd's triggerSnapshot), the cycle
    /// also kills it before the snap file, after the snap file and its WAL record, and after the WAL release.
    /// </summary>
    [Fact]
    public async Task KilledAtFailpoints_WithFrequentRaftSnapshots()
    {
        (string, int, int)[] points = [("raftAfterSave", 40, 250), ("beforeCommit", 3, 15), ("raftAfterApply", 40, 250)];
        (string, int, int)[] snapPoints = [("raftBeforeSaveSnap", 1, 6), ("raftAfterSaveSnap", 1, 6), ("raftAfterWALRelease", 1, 6)];
        await RunCycleAsync(points, points.Length * CrashRounds.Soak, ["--snapshot-count", "100"], crash =>
        {
            var snapFiles = Directory.EnumerateFiles(Path.Combine(crash.Member.DataDir, "member", "snap"), "*.snap").Any();
            output.WriteLine(snapFiles ? "snap files present: snapshot points join the cycle" : "no snap files written: snapshot points left out");
            return snapFiles ? snapPoints : [];
        });
    }

    /// <summary>
    /// Killed just before / after applying a conf change while learners are added and removed under write load: the
    /// membership neither loses an acknowledged change nor holds a member twice. A fresh member per round, since a
    /// restart replays every conf change of the WAL (each a pass) and would fire the point during start-up.
    /// </summary>
    [Theory]
    [InlineData("beforeApplyOneConfChange")]
    [InlineData("afterApplyOneConfChange")]
    public async Task KilledAroundConfChangeApply_KeepsMembershipAndWrites(string point)
    {
        CompatEnvironment.RequireEtcdctl();
        var binary = CompatEnvironment.RequireUnderTest();
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var rng = new Random(seed);
        var underLoad = 0;
        for (var round = 0; round < CrashRounds.Soak; round++)
        {
            await using var crash = await CrashRounds.StartAsync(binary, point, [], output, seed + round);
            underLoad += await crash.FailpointRoundAsync(round, point, rng.Next(2, 9), confChurn: true, LoadLimit) > 0 ? 1 : 0;
        }

        Assert.True(underLoad > 0, $"{point}: the failpoint never fired under load");
    }

    /// <summary>SIGKILL from outside at random moments, 6 rounds (<c>CRASH_SOAK</c> multiplies), learner churn in every other round.</summary>
    [Fact]
    public async Task SigkilledAtRandomMoments_LosesNoAcknowledgedWrite_AppliesNoEntryTwice()
    {
        CompatEnvironment.RequireEtcdctl();
        var binary = CompatEnvironment.RequireUnderTest();
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var rng = new Random(seed);
        await using var crash = await CrashRounds.StartAsync(binary, "sigkill", [], output, seed);
        var totalRounds = 6 * CrashRounds.Soak;
        var budget = System.Diagnostics.Stopwatch.StartNew();
        for (var round = 0; round < totalRounds && budget.Elapsed < TimeSpan.FromSeconds(60 * CrashRounds.Soak); round++)
        {
            await crash.SigkillRoundAsync(round, TimeSpan.FromMilliseconds(rng.Next(100, 1500)), confChurn: round % 2 == 1, LoadLimit);
        }

        Assert.True(crash.AckedCount > 0, "no put was ever acknowledged");
    }

    /// <summary>
    /// Rounds cycling through <paramref name="points"/> on one member; after the first round <paramref name="morePoints"/>
    /// may add points (each then gets as many rounds as the others).
    /// </summary>
    private async Task RunCycleAsync(
        (string Point, int MinPass, int MaxPass)[] points, int rounds, IReadOnlyList<string> args,
        Func<CrashRounds, (string Point, int MinPass, int MaxPass)[]>? morePoints = null)
    {
        CompatEnvironment.RequireEtcdctl();
        var binary = CompatEnvironment.RequireUnderTest();
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var rng = new Random(seed);
        await using var crash = await CrashRounds.StartAsync(binary, "failpoints", args, output, seed);
        var budget = System.Diagnostics.Stopwatch.StartNew();
        var firedUnderLoad = new HashSet<string>();
        for (var round = 0; round < rounds && budget.Elapsed < TimeSpan.FromSeconds(90 * CrashRounds.Soak); round++)
        {
            var (point, min, max) = points[round % points.Length];
            if (await crash.FailpointRoundAsync(round, point, rng.Next(min, max + 1), confChurn: false, LoadLimit) > 0)
            {
                firedUnderLoad.Add(point);
            }

            if (round == 0 && morePoints?.Invoke(crash) is { Length: > 0 } extra)
            {
                rounds = rounds / points.Length * (points.Length + extra.Length);
                points = [.. points, .. extra];
            }
        }

        var never = points.Select(p => p.Point).Where(p => !firedUnderLoad.Contains(p)).ToList();
        Assert.True(never.Count == 0, $"failpoints that never fired under load (only during start-up): {string.Join(", ", never)}; raise their pass range");
    }
}
