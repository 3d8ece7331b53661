namespace Etcd.Compat.Tests.Harness;

/// <summary>One revision of the keyspace as the MVCC history shows it (a put; the load never deletes).</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value written.</param>
/// <param name="ModRevision">The revision this put created.</param>
/// <param name="CreateRevision">The revision that created the key (its first put).</param>
/// <param name="Version">The key's version after this put (1 for the first).</param>
public sealed record HistoryEvent(string Key, string Value, long ModRevision, long CreateRevision, long Version);

/// <summary>A put the client saw acknowledged, with the revision the response header carried.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value.</param>
/// <param name="Revision">The response's header revision: the revision of this put.</param>
public sealed record AckedPut(string Key, string Value, long Revision);

/// <summary>
/// The durability checks of the crash tests over a keyspace that only ever receives puts whose values are unique
/// per attempt (writer, sequence and round in the value, never retried with the same value):
/// <list type="bullet">
/// <item>every acknowledged put is in the history at its acknowledged revision, with its value (no lost write);</item>
/// <item>every put in the history was attempted by the test (nothing invented);</item>
/// <item>no (key, value) pair appears at two revisions (an entry applied twice writes its put again at a new
/// revision: this is the check that catches double apply);</item>
/// <item>revisions run 2..current without gap or repeat, each key's versions run 1, 2, 3, ... with its create
/// revision fixed at its first put;</item>
/// <item>the current state is the last put of every key, and holds nothing else.</item>
/// </list>
/// Pure: no I/O. Used by the process crash tests and by a server unit test that feeds a replayed entry to the apply
/// path to show the double-apply check fails when it should.
/// </summary>
public static class WriteHistory
{
    /// <summary>
    /// Returns one line per violation (empty when the history is sound). <paramref name="history"/> is every put in
    /// revision order from revision 1 on; <paramref name="current"/> the current value of every key;
    /// <paramref name="currentRevision"/> the store's revision; <paramref name="attempted"/> every (key, value) the test
    /// ever sent; <paramref name="acked"/> the acknowledged ones.
    /// </summary>
    public static List<string> Check(
        IReadOnlyList<HistoryEvent> history,
        IReadOnlyList<HistoryEvent> current,
        long currentRevision,
        IReadOnlySet<(string Key, string Value)> attempted,
        IReadOnlyCollection<AckedPut> acked)
    {
        var problems = new List<string>();
        var byRevision = new Dictionary<long, HistoryEvent>();
        var seen = new Dictionary<(string, string), long>();
        var lastOfKey = new Dictionary<string, HistoryEvent>(StringComparer.Ordinal);
        var expectRevision = 2L;
        foreach (var e in history)
        {
            if (e.ModRevision != expectRevision)
            {
                problems.Add(e.ModRevision < expectRevision
                    ? $"revision {e.ModRevision} repeats or goes back in the history (expected {expectRevision}): {e}"
                    : $"revisions {expectRevision}..{e.ModRevision - 1} missing from the history before {e}");
            }

            expectRevision = Math.Max(expectRevision, e.ModRevision + 1);
            byRevision.TryAdd(e.ModRevision, e);
            if (!attempted.Contains((e.Key, e.Value)))
            {
                problems.Add($"never written: {e}");
            }

            if (seen.TryGetValue((e.Key, e.Value), out var firstRev))
            {
                problems.Add($"applied twice: {e.Key}={e.Value} at revisions {firstRev} and {e.ModRevision}");
            }
            else
            {
                seen[(e.Key, e.Value)] = e.ModRevision;
            }

            if (lastOfKey.TryGetValue(e.Key, out var prev))
            {
                if (e.Version != prev.Version + 1 || e.CreateRevision != prev.CreateRevision)
                {
                    problems.Add($"version/create revision break on {e.Key}: {prev} then {e}");
                }
            }
            else if (e.Version != 1 || e.CreateRevision != e.ModRevision)
            {
                problems.Add($"first put of {e.Key} is not version 1 created at its own revision: {e}");
            }

            lastOfKey[e.Key] = e;
        }

        if (expectRevision - 1 != currentRevision && history.Count > 0)
        {
            problems.Add($"history ends at revision {expectRevision - 1} but the store is at revision {currentRevision}");
        }

        foreach (var a in acked)
        {
            if (!byRevision.TryGetValue(a.Revision, out var e) || e.Key != a.Key || e.Value != a.Value)
            {
                problems.Add($"acknowledged write lost: {a.Key}={a.Value} at revision {a.Revision} (history there: {(e is null ? "<nothing>" : e.ToString())})");
            }
        }

        var currentKeys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kv in current)
        {
            currentKeys.Add(kv.Key);
            if (!lastOfKey.TryGetValue(kv.Key, out var last))
            {
                problems.Add($"current key without history: {kv}");
            }
            else if (last != kv)
            {
                problems.Add($"current state of {kv.Key} is {kv}, its last put in the history is {last}");
            }
        }

        foreach (var key in lastOfKey.Keys.Where(k => !currentKeys.Contains(k)))
        {
            problems.Add($"key {key} is in the history but not in the current state");
        }

        return problems;
    }
}
