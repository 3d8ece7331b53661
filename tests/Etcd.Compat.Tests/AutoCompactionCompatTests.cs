using System.Diagnostics;
using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;
using Xunit.Abstractions;

namespace Etcd.Compat.Tests;

/// <summary>
/// <c>--auto-compaction-retention=2s</c> (periodic mode) on real etcd 3.4.23 and on the server under test, side by side
/// under the same steady write load. Timing differs run to run, so the test asserts etcd's rule on each side rather
/// than exact revisions: compactions every ~2 s, each at a revision that was the newest one about 2 s (the window plus
/// one sampling step) before, logged with etcd's capnslog lines; and both sides compact about as often.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class AutoCompactionCompatTests(ITestOutputHelper output)
{
    private static readonly TimeSpan WriteFor = TimeSpan.FromSeconds(7.5);

    [GeneratedRegex(@"Finished auto-compaction at revision (\d+)")]
    private static partial Regex Finished();

    [GeneratedRegex(@"Starting auto-compaction at revision (\d+) \(retention: 2s\)")]
    private static partial Regex Starting();

    [GeneratedRegex("\"revision\":(\\d+)")]
    private static partial Regex HeaderRevision();

    private sealed class Side(EtcdProcess member, Stopwatch clock)
    {
        public EtcdProcess Member { get; } = member;

        /// <summary>Completion time of the put that returned each revision.</summary>
        public Dictionary<long, TimeSpan> Written { get; } = [];

        /// <summary>Compactions as their "Starting" line arrived (the compactor's own schedule; "Finished" waits for raft).</summary>
        public List<(TimeSpan At, long Revision)> Compactions { get; } = [];

        public void OnLine(string line)
        {
            if (Starting().Match(line) is { Success: true } m)
            {
                lock (Compactions)
                {
                    Compactions.Add((clock.Elapsed, long.Parse(m.Groups[1].Value)));
                }
            }
        }

        public async Task WriteAsync(TimeSpan until)
        {
            for (var i = 0; clock.Elapsed < until && i < 400; i++)
            {
                var r = await Etcdctl.RunAsync(Member.Endpoint, "put", "auto", $"value-{i}", "-w", "json");
                Assert.True(r.ExitCode == 0, r.ToString());
                var rev = long.Parse(HeaderRevision().Match(r.Stdout).Groups[1].Value);
                Written[rev] = clock.Elapsed;
            }
        }
    }

    [Fact]
    public async Task PeriodicTwoSecondsCompactsLikeRealEtcd()
    {
        CompatEnvironment.RequireAll();
        var clock = Stopwatch.StartNew();
        string[] flags = ["--auto-compaction-retention=2s"];
        await using var reference = await EtcdProcess.StartAsync(CompatEnvironment.ReferenceEtcdPath, "ref", flags);
        await using var underTest = await EtcdProcess.StartAsync(CompatEnvironment.UnderTestPath, "test", flags);
        var sides = new[] { new Side(reference, clock), new Side(underTest, clock) };
        foreach (var s in sides)
        {
            s.Member.LineReceived += s.OnLine;
        }

        var from = clock.Elapsed;
        var until = from + WriteFor;
        await Task.WhenAll(sides.Select(s => s.WriteAsync(until)));
        foreach (var s in sides)
        {
            s.Member.LineReceived -= s.OnLine;
        }

        foreach (var s in sides)
        {
            var name = s.Member.BinaryPath;
            List<(TimeSpan At, long Revision)> compactions;
            lock (s.Compactions)
            {
                compactions = [.. s.Compactions];
            }

            output.WriteLine($"{name}: {s.Written.Count} puts up to revision {s.Written.Keys.Max()}; compactions: " +
                string.Join(", ", compactions.Select(c => $"rev {c.Revision} at {c.At.TotalSeconds:0.00}s")));
            Assert.True(compactions.Count >= 2, $"{name} compacted {compactions.Count} times in {WriteFor.TotalSeconds} s\n{s.Member.LogTail()}");
            Assert.Contains(s.Member.Logs.Split('\n'), l => Finished().IsMatch(l));

            for (var k = 0; k < compactions.Count; k++)
            {
                var (at, rev) = compactions[k];

                // The compacted revision was written at least ~2 s before (never the newest, never a 1 s window).
                var writtenAt = s.Written.TryGetValue(rev, out var w) ? w : TimeSpan.Zero;
                Assert.True(writtenAt <= at - TimeSpan.FromSeconds(1.5), $"{name}: revision {rev} written at {writtenAt.TotalSeconds:0.00}s was compacted at {at.TotalSeconds:0.00}s");
                if (k == 0)
                {
                    continue;
                }

                // ...and was still the newest revision about 2.2 s before (not an older one): the next one came later.
                // Never backwards; the same revision again when nothing was written for a window (etcd then gets
                // ErrCompacted, which it counts as done and logs as finished).
                Assert.True(compactions[k - 1].Revision <= rev, $"{name}: compactions out of order");
                var gap = at - compactions[k - 1].At;
                // A window apart; the bounds leave room for a loaded machine's late timers and log delivery, and still
                // tell a 2 s window from a 0.2 s sampling step or a missed window.
                Assert.True(gap > TimeSpan.FromSeconds(1.2) && gap < TimeSpan.FromSeconds(4), $"{name}: {gap.TotalSeconds:0.00}s between compactions");
                if (s.Written.TryGetValue(rev + 1, out var next))
                {
                    Assert.True(next >= at - TimeSpan.FromSeconds(3.7), $"{name}: revision {rev} had been superseded at {next.TotalSeconds:0.00}s, long before its compaction at {at.TotalSeconds:0.00}s");
                }
            }

            // The history before the last compaction is gone, as etcdctl sees it.
            var last = compactions[^1].Revision;
            var old = await Etcdctl.RunAsync(s.Member.Endpoint, "get", "auto", "--rev", (last - 1).ToString());
            Assert.Equal(1, old.ExitCode);
            Assert.Contains("required revision has been compacted", old.Stderr, StringComparison.Ordinal);
        }

        // Over the same window (both compactors running), both sides compact about as often.
        int During(Side s) => s.Compactions.Count(c => c.At >= from && c.At <= until);
        Assert.InRange(Math.Abs(During(sides[0]) - During(sides[1])), 0, 1);
    }
}
