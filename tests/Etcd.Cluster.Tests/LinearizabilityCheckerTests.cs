using Etcd.Cluster.Tests.Linearizability;

namespace Etcd.Cluster.Tests;

/// <summary>The checker itself, on small hand-made histories that are and are not linearizable.</summary>
public sealed class LinearizabilityCheckerTests
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(10);

    private static CheckResult Check(params Operation[] ops) => LinearizabilityChecker.Check(ops, Budget);

    private static Operation P(int client, string value, long call, long ret, string key = "k") => Operation.Put(client, key, value, call, ret);

    private static Operation G(int client, string? value, long call, long ret, string key = "k") => Operation.Get(client, key, value, call, ret);

    [Fact]
    public void SequentialPutThenGet_IsLinearizable()
    {
        var r = Check(G(1, null, 0, 1), P(1, "a", 2, 3), G(2, "a", 4, 5), P(2, "b", 6, 7), G(1, "b", 8, 9));
        Assert.Equal(CheckOutcome.Linearizable, r.Outcome);
        Assert.True(r.IsLinearizable);
    }

    [Fact]
    public void StaleReadAfterCompletedPut_IsIllegal()
    {
        var r = Check(P(1, "a", 0, 1), P(1, "b", 2, 3), G(2, "a", 4, 5));
        Assert.Equal(CheckOutcome.Illegal, r.Outcome);
        Assert.Contains("key k", r.Describe());
    }

    [Fact]
    public void ReadOfAbsentKeyAfterCompletedPut_IsIllegal()
    {
        Assert.Equal(CheckOutcome.Illegal, Check(P(1, "a", 0, 1), G(2, null, 2, 3)).Outcome);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("a")]
    public void ReadConcurrentWithPut_MaySeeOldOrNew(string? seen)
    {
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 10), G(2, seen, 2, 5)).Outcome);
    }

    [Fact]
    public void ReadOfValueNeverWritten_IsIllegal()
    {
        Assert.Equal(CheckOutcome.Illegal, Check(P(1, "a", 0, 10), G(2, "z", 2, 5)).Outcome);
    }

    [Fact]
    public void ConcurrentPuts_EitherOrderButNoFlipBack()
    {
        // Two overlapping puts; later reads may see either winner, but must then keep seeing it.
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 10), P(2, "b", 1, 9), G(3, "a", 11, 12), G(3, "a", 13, 14)).Outcome);
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 10), P(2, "b", 1, 9), G(3, "b", 11, 12), G(3, "b", 13, 14)).Outcome);
        Assert.Equal(CheckOutcome.Illegal, Check(P(1, "a", 0, 10), P(2, "b", 1, 9), G(3, "b", 11, 12), G(3, "a", 13, 14)).Outcome);
    }

    [Fact]
    public void ReadsOverlappingOnePut_CannotSeeNewThenOld()
    {
        // r1 returns before r2 starts: once r1 saw the new value, r2 may not see the old one.
        Assert.Equal(CheckOutcome.Illegal, Check(P(1, "a", 0, 1), P(1, "b", 2, 20), G(2, "b", 3, 4), G(3, "a", 5, 6)).Outcome);
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 1), P(1, "b", 2, 20), G(2, "a", 3, 4), G(3, "b", 5, 6)).Outcome);
    }

    [Fact]
    public void UnknownPut_ObservedLater_IsLinearizable()
    {
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 1), Operation.UnknownPut(2, "k", "b", 2), G(3, "b", 100, 101)).Outcome);
    }

    [Fact]
    public void UnknownPut_NeverObserved_IsDroppedAndLinearizable()
    {
        Assert.Equal(CheckOutcome.Linearizable, Check(P(1, "a", 0, 1), Operation.UnknownPut(2, "k", "b", 2), G(3, "a", 100, 101), G(3, "a", 102, 103)).Outcome);
    }

    [Fact]
    public void UnknownPut_CannotBeObservedBeforeItsCall()
    {
        Assert.Equal(CheckOutcome.Illegal, Check(G(3, "b", 0, 1), Operation.UnknownPut(2, "k", "b", 2)).Outcome);
    }

    [Fact]
    public void UnknownPut_ObservedThenOlderValueAgain_IsIllegal()
    {
        Assert.Equal(CheckOutcome.Illegal, Check(P(1, "a", 0, 1), Operation.UnknownPut(2, "k", "b", 2), G(3, "b", 10, 11), G(3, "a", 12, 13)).Outcome);
    }

    [Fact]
    public void PartitionedByKey_OneBadKeyFailsTheWhole_AndIsNamed()
    {
        var r = Check(P(1, "a", 0, 1, "x"), G(2, "a", 2, 3, "x"), P(1, "c", 0, 1, "y"), P(1, "d", 2, 3, "y"), G(2, "c", 4, 5, "y"));
        Assert.Equal(CheckOutcome.Illegal, r.Outcome);
        Assert.Equal(CheckOutcome.Linearizable, r.Keys.Single(k => k.Key == "x").Outcome);
        Assert.Equal(CheckOutcome.Illegal, r.Keys.Single(k => k.Key == "y").Outcome);
        Assert.Contains("key y", r.Describe());
        Assert.DoesNotContain("key x", r.Describe());
    }

    [Fact]
    public void InitialValue_IsHonoured()
    {
        var initial = new Dictionary<string, string?> { ["k"] = "z" };
        Assert.Equal(CheckOutcome.Linearizable, LinearizabilityChecker.Check([G(1, "z", 0, 1)], Budget, initial).Outcome);
        Assert.Equal(CheckOutcome.Illegal, LinearizabilityChecker.Check([G(1, null, 0, 1)], Budget, initial).Outcome);
    }

    [Fact]
    public void DuplicatePutValues_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => Check(P(1, "a", 0, 1), P(2, "a", 2, 3)));
    }

    [Fact]
    public void ExhaustedBudget_IsTimeout_NotAPass()
    {
        // 24 fully overlapping puts, then a read of a value nobody wrote: only an exhaustive search can refute it.
        var ops = Enumerable.Range(0, 24).Select(i => P(i, "v" + i, i, 1000 + i)).Append(G(99, "nobody", 2000, 2001)).ToArray();
        var r = LinearizabilityChecker.Check(ops, TimeSpan.Zero);
        Assert.Equal(CheckOutcome.Timeout, r.Outcome);
        Assert.False(r.IsLinearizable);
        Assert.Contains("budget", r.Describe());
    }

    [Fact]
    public void RandomConcurrentRegisterHistories_AreLinearizable_AndOneCorruptedReadIsCaught()
    {
        // A simulated atomic register: each operation takes effect at a random instant inside its interval.
        var corrupted = 0;
        for (var seed = 0; seed < 40; seed++)
        {
            var rnd = new Random(seed);
            var history = new List<(Operation Op, long At)>();
            var clientFree = new long[6];
            var n = 0;
            for (var step = 0; step < 120; step++)
            {
                var c = rnd.Next(clientFree.Length);
                var call = clientFree[c] + rnd.Next(0, 5);
                var ret = call + 1 + rnd.Next(0, 40);
                clientFree[c] = ret + 1;
                var at = call + rnd.NextInt64(0, ret - call + 1);
                var key = "k" + rnd.Next(3);
                var op = rnd.Next(2) == 0 ? P(c, $"v{n++}", call, ret, key) : G(c, null, call, ret, key);
                history.Add((op, at));
            }

            // Apply in linearization-point order to fill in what each read saw.
            var values = new Dictionary<string, string?>();
            var ordered = history.Select((h, i) => (h.Op, h.At, i)).OrderBy(h => h.At).ThenBy(h => h.i).ToList();
            var final = new Operation[history.Count];
            foreach (var (op, _, i) in ordered)
            {
                if (op.Kind == OpKind.Put)
                {
                    values[op.Key] = op.Value;
                    final[i] = op;
                }
                else
                {
                    final[i] = op with { Value = values.GetValueOrDefault(op.Key) };
                }
            }

            // Some puts lose their answer: unknown outcome.
            for (var i = 0; i < final.Length; i++)
            {
                if (final[i].Kind == OpKind.Put && rnd.Next(10) == 0)
                {
                    final[i] = final[i] with { Unknown = true, Return = long.MaxValue };
                }
            }

            var ok = LinearizabilityChecker.Check(final, Budget);
            Assert.True(ok.IsLinearizable, $"seed {seed}: {ok.Describe()}");

            // Corrupt one read to the value of an acknowledged put S that a later acknowledged put X overwrote
            // before the read began (S ends before X starts, X ends before the read starts): always illegal.
            foreach (var ri in Enumerable.Range(0, final.Length).Where(i => final[i].Kind == OpKind.Get))
            {
                var read = final[ri];
                var acked = final.Where(o => o.Kind == OpKind.Put && !o.Unknown && o.Key == read.Key).ToList();
                var stale = acked.FirstOrDefault(s => s.Value != read.Value && acked.Any(x => s.Return < x.Call && x.Return < read.Call));
                if (stale is null)
                {
                    continue;
                }

                var bad = (Operation[])final.Clone();
                bad[ri] = read with { Value = stale.Value };
                var r = LinearizabilityChecker.Check(bad, Budget);
                Assert.True(r.Outcome == CheckOutcome.Illegal, $"seed {seed}: corrupted read {bad[ri]} not caught");
                corrupted++;
                break;
            }
        }

        Assert.True(corrupted >= 30, $"only {corrupted} of 40 histories had a read to corrupt");
    }
}
