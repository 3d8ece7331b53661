using System.Diagnostics;
using System.Text;

namespace Etcd.Cluster.Tests.Linearizability;

/// <summary>Verdict of a linearizability check.</summary>
public enum CheckOutcome
{
    /// <summary>A linearization was found for every key.</summary>
    Linearizable,

    /// <summary>Some key's history has no linearization: the recorded behaviour is impossible for a register.</summary>
    Illegal,

    /// <summary>The search ran out of its time budget before deciding: NOT a pass.</summary>
    Timeout,
}

/// <summary>The verdict for one key.</summary>
public sealed record KeyVerdict(string Key, CheckOutcome Outcome, int Operations, long SearchSteps, string Detail);

/// <summary>The verdict for a whole history: the worst key verdict wins (Illegal over Timeout over Linearizable).</summary>
public sealed record CheckResult(CheckOutcome Outcome, IReadOnlyList<KeyVerdict> Keys, TimeSpan Elapsed)
{
    /// <summary>True only when every key was shown linearizable.</summary>
    public bool IsLinearizable => Outcome == CheckOutcome.Linearizable;

    /// <summary>A summary for assertion messages, with the detail of every key that is not linearizable.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append($"linearizability: {Outcome} ({Keys.Count} keys, {Keys.Sum(k => k.Operations)} ops, {Keys.Sum(k => k.SearchSteps)} steps, {Elapsed.TotalMilliseconds:F0} ms)");
        foreach (var k in Keys.Where(k => k.Outcome != CheckOutcome.Linearizable))
        {
            sb.Append('\n').Append($"key {k.Key}: {k.Outcome} after {k.SearchSteps} steps over {k.Operations} ops\n{k.Detail}");
        }

        return sb.ToString();
    }
}

/// <summary>
/// Decides whether a recorded client history of puts and reads is linearizable with respect to a single-value
/// register per key. The history is partitioned by key (registers on different keys are independent, so the whole
/// history is linearizable iff every key's sub-history is) and each key is searched with the Wing &amp; Gong
/// algorithm as refined by Lowe (and used by Porcupine): walk the time-ordered call/return events, linearize a
/// pending call when the register model accepts it, backtrack at a return whose call is not linearized yet, and
/// memoise (set of linearized operations, register value) pairs already explored.
/// <para>
/// Operations with unknown outcome are given an infinitely late return: an unknown put may take effect at any time
/// after its call, or never (linearized after everything, it is unobservable). Unknown reads are not recorded. An
/// unknown put whose (unique) value no read observed is dropped up front, which is equivalent and keeps the search
/// small. Values written by puts must be unique within a key's history.
/// </para>
/// <para>The search is bounded by a wall-clock budget shared by all keys; running out gives
/// <see cref="CheckOutcome.Timeout"/>, which callers must treat as failure. Stateless and thread-safe.</para>
/// </summary>
public static class LinearizabilityChecker
{
    /// <summary>Checks a history; every key starts absent (null) unless <paramref name="initial"/> gives a value.</summary>
    public static CheckResult Check(IEnumerable<Operation> history, TimeSpan budget, IReadOnlyDictionary<string, string?>? initial = null)
    {
        var sw = Stopwatch.StartNew();
        var deadline = Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * Stopwatch.Frequency);
        var verdicts = new List<KeyVerdict>();
        foreach (var group in history.GroupBy(o => o.Key, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            string? start = null;
            initial?.TryGetValue(group.Key, out start);
            verdicts.Add(CheckKey(group.Key, group.ToList(), start, deadline));
        }

        var outcome = verdicts.Any(v => v.Outcome == CheckOutcome.Illegal) ? CheckOutcome.Illegal
            : verdicts.Any(v => v.Outcome == CheckOutcome.Timeout) ? CheckOutcome.Timeout
            : CheckOutcome.Linearizable;
        return new CheckResult(outcome, verdicts, sw.Elapsed);
    }

    /// <summary>Checks the operations of one key against a register starting at <paramref name="initial"/>.</summary>
    /// <param name="deadline">Stopwatch timestamp after which the search gives up with <see cref="CheckOutcome.Timeout"/>.</param>
    public static KeyVerdict CheckKey(string key, IReadOnlyList<Operation> operations, string? initial, long deadline)
    {
        var observed = new HashSet<string>(operations.Where(o => o.Kind == OpKind.Get && o.Value is not null).Select(o => o.Value!), StringComparer.Ordinal);
        var ops = operations.Where(o => o.Key == key && !(o.Unknown && (o.Kind == OpKind.Get || !observed.Contains(o.Value!)))).ToArray();
        var dupes = ops.Where(o => o.Kind == OpKind.Put).GroupBy(o => o.Value, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dupes is not null)
        {
            throw new ArgumentException($"key {key}: value '{dupes.Key}' is written by more than one put; put values must be unique", nameof(operations));
        }

        if (ops.Length == 0)
        {
            return new KeyVerdict(key, CheckOutcome.Linearizable, 0, 0, "");
        }

        // Events in time order; at equal times calls come first (the operations overlap: the permissive reading).
        var nodes = new List<Node>(ops.Length * 2);
        for (var i = 0; i < ops.Length; i++)
        {
            var call = new Node(i, isCall: true, ops[i].Call);
            var ret = new Node(i, isCall: false, ops[i].Unknown ? long.MaxValue : ops[i].Return);
            call.Match = ret;
            nodes.Add(call);
            nodes.Add(ret);
        }

        nodes.Sort(static (a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.IsCall == b.IsCall ? a.Op.CompareTo(b.Op) : a.IsCall ? -1 : 1);
        var head = new Node(-1, isCall: false, long.MinValue);
        var tail = new Node(-1, isCall: false, long.MaxValue);
        var prev = head;
        foreach (var n in nodes)
        {
            prev.Next = n;
            n.Prev = prev;
            prev = n;
        }

        prev.Next = tail;
        tail.Prev = prev;

        var linearized = new Bits(ops.Length);
        var cache = new HashSet<CacheKey>();
        var stack = new Stack<(Node Call, string? StateBefore)>();
        var state = initial;
        var entry = head.Next!;
        long steps = 0;
        var best = Array.Empty<int>();
        while (head.Next != tail)
        {
            if ((++steps & 0xFFF) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                return new KeyVerdict(key, CheckOutcome.Timeout, ops.Length, steps,
                    $"search budget exhausted with {stack.Count} of {ops.Length} operations linearized");
            }

            if (entry.IsCall)
            {
                var op = ops[entry.Op];
                if (TryStep(state, op, out var next))
                {
                    linearized.Set(entry.Op);
                    if (cache.Add(new CacheKey(linearized.Copy(), next)))
                    {
                        stack.Push((entry, state));
                        state = next;
                        Lift(entry);
                        if (stack.Count > best.Length)
                        {
                            best = stack.Select(s => s.Call.Op).Reverse().ToArray();
                        }

                        entry = head.Next!;
                        continue;
                    }

                    linearized.Clear(entry.Op);
                }

                entry = entry.Next!;
            }
            else
            {
                // A return whose call is not linearized: undo the latest choice.
                if (stack.Count == 0)
                {
                    return new KeyVerdict(key, CheckOutcome.Illegal, ops.Length, steps, Explain(ops, best, initial));
                }

                var (top, before) = stack.Pop();
                state = before;
                linearized.Clear(top.Op);
                Unlift(top);
                entry = top.Next!;
            }
        }

        return new KeyVerdict(key, CheckOutcome.Linearizable, ops.Length, steps, "");
    }

    private static bool TryStep(string? state, Operation op, out string? next)
    {
        if (op.Kind == OpKind.Put)
        {
            next = op.Value;
            return true;
        }

        next = state;
        return string.Equals(state, op.Value, StringComparison.Ordinal);
    }

    private static void Lift(Node call)
    {
        call.Prev!.Next = call.Next;
        call.Next!.Prev = call.Prev;
        var ret = call.Match!;
        ret.Prev!.Next = ret.Next;
        ret.Next!.Prev = ret.Prev;
    }

    private static void Unlift(Node call)
    {
        var ret = call.Match!;
        ret.Prev!.Next = ret;
        ret.Next!.Prev = ret;
        call.Prev!.Next = call;
        call.Next!.Prev = call;
    }

    private static string Explain(Operation[] ops, int[] best, string? initial)
    {
        // The deepest linearization found, then the earliest-returning operations it could not extend with.
        var origin = ops.Min(o => o.Call);
        string Fmt(Operation o) =>
            $"  c{o.ClientId} {o.Kind} {(o.Kind == OpKind.Put ? "=" : "-> ")}{o.Value ?? "<absent>"} " +
            $"[{Ms(o.Call - origin)}, {(o.Unknown ? "?" : Ms(o.Return - origin))}] ms";
        var done = new HashSet<int>(best);
        var sb = new StringBuilder();
        sb.Append($"initial value {initial ?? "<absent>"}; deepest linearization ({best.Length} ops), last 8:\n");
        foreach (var i in best.Skip(Math.Max(0, best.Length - 8)))
        {
            sb.Append(Fmt(ops[i])).Append('\n');
        }

        sb.Append("not linearizable after it (earliest returns first, up to 8):\n");
        foreach (var o in Enumerable.Range(0, ops.Length).Where(i => !done.Contains(i)).Select(i => ops[i]).OrderBy(o => o.Return).Take(8))
        {
            sb.Append(Fmt(o)).Append('\n');
        }

        return sb.ToString();
    }

    private static string Ms(long ticks) => (ticks * 1000.0 / Stopwatch.Frequency).ToString("F1");

    private sealed class Node(int op, bool isCall, long time)
    {
        public int Op { get; } = op;

        public bool IsCall { get; } = isCall;

        public long Time { get; } = time;

        public Node? Match { get; set; }

        public Node? Prev { get; set; }

        public Node? Next { get; set; }
    }

    private sealed class Bits(int count)
    {
        private readonly ulong[] _words = new ulong[(count + 63) / 64];

        private Bits(ulong[] words) : this(0) => _words = words;

        public ulong[] Words => _words;

        public void Set(int i) => _words[i >> 6] |= 1UL << (i & 63);

        public void Clear(int i) => _words[i >> 6] &= ~(1UL << (i & 63));

        public Bits Copy() => new((ulong[])_words.Clone());
    }

    private sealed class CacheKey : IEquatable<CacheKey>
    {
        private readonly ulong[] _bits;
        private readonly string? _state;
        private readonly int _hash;

        public CacheKey(Bits bits, string? state)
        {
            _bits = bits.Words;
            _state = state;
            var h = new HashCode();
            foreach (var w in _bits)
            {
                h.Add(w);
            }

            h.Add(state, StringComparer.Ordinal);
            _hash = h.ToHashCode();
        }

        public bool Equals(CacheKey? other) =>
            other is not null && _hash == other._hash && string.Equals(_state, other._state, StringComparison.Ordinal) && _bits.AsSpan().SequenceEqual(other._bits);

        public override bool Equals(object? obj) => Equals(obj as CacheKey);

        public override int GetHashCode() => _hash;
    }
}
