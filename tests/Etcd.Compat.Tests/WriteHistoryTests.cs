using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>The crash tests' history checks on hand-made histories: each kind of damage is reported, a sound history is not.</summary>
public sealed class WriteHistoryTests
{
    private static readonly HashSet<(string, string)> Attempted = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1")];

    // a=a1 @2, b=b1 @3, a=a2 @4
    private static List<HistoryEvent> Sound() =>
    [
        new("a", "a1", 2, 2, 1),
        new("b", "b1", 3, 3, 1),
        new("a", "a2", 4, 2, 2),
    ];

    private static List<HistoryEvent> CurrentOf(List<HistoryEvent> h) => h.GroupBy(e => e.Key).Select(g => g.Last()).ToList();

    [Fact]
    public void SoundHistory_HasNoProblems()
    {
        var h = Sound();
        Assert.Empty(WriteHistory.Check(h, CurrentOf(h), 4, Attempted, [new AckedPut("a", "a2", 4), new AckedPut("b", "b1", 3)]));
    }

    [Fact]
    public void EntryAppliedTwice_IsReported()
    {
        // The put of b=b1 replayed at revision 5 (the key's version moves on as a second apply would make it).
        var h = Sound();
        h.Add(new HistoryEvent("b", "b1", 5, 3, 2));
        var problems = WriteHistory.Check(h, CurrentOf(h), 5, Attempted, [new AckedPut("b", "b1", 3)]);
        Assert.Contains(problems, p => p.StartsWith("applied twice: b=b1 at revisions 3 and 5", StringComparison.Ordinal));
    }

    [Fact]
    public void AcknowledgedPutMissing_IsReported()
    {
        var h = Sound();
        var problems = WriteHistory.Check(h, CurrentOf(h), 4, Attempted, [new AckedPut("c", "c1", 5)]);
        Assert.Contains(problems, p => p.StartsWith("acknowledged write lost: c=c1 at revision 5", StringComparison.Ordinal));
    }

    [Fact]
    public void AcknowledgedAtOtherRevision_IsReported()
    {
        var h = Sound();
        var problems = WriteHistory.Check(h, CurrentOf(h), 4, Attempted, [new AckedPut("a", "a2", 3)]);
        Assert.Contains(problems, p => p.StartsWith("acknowledged write lost: a=a2 at revision 3", StringComparison.Ordinal));
    }

    [Fact]
    public void ValueNeverWritten_IsReported()
    {
        var h = Sound();
        h.Add(new HistoryEvent("c", "bogus", 5, 5, 1));
        var problems = WriteHistory.Check(h, CurrentOf(h), 5, Attempted, []);
        Assert.Contains(problems, p => p.StartsWith("never written:", StringComparison.Ordinal));
    }

    [Fact]
    public void RevisionGapAndStaleCurrentState_AreReported()
    {
        var h = Sound();
        h.RemoveAt(1);
        var current = CurrentOf(Sound());
        var problems = WriteHistory.Check(h, current, 4, Attempted, []);
        Assert.Contains(problems, p => p.StartsWith("revisions 3..3 missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("current key without history", StringComparison.Ordinal));
    }

    [Fact]
    public void VersionBreakAndEndMismatch_AreReported()
    {
        var h = Sound();
        h[2] = h[2] with { Version = 3 };
        var problems = WriteHistory.Check(h, CurrentOf(h), 6, Attempted, []);
        Assert.Contains(problems, p => p.StartsWith("version/create revision break on a", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("history ends at revision 4 but the store is at revision 6", StringComparison.Ordinal));
    }
}
