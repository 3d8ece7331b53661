using Raftpb;

namespace Etcd.Raft;

/// <summary>
/// Entries (and possibly a snapshot) not yet persisted by the application (log_unstable.go).
/// Entries live at indexes [Offset, Offset+Count).
/// </summary>
internal sealed class Unstable
{
    public Snapshot? Snapshot;
    public readonly List<Entry> Entries = new();
    public ulong Offset;
    public IRaftLogger? Logger;

    public bool TryFirstIndex(out ulong index)
    {
        if (Snapshot is not null) { index = Snapshot.Metadata.Index + 1; return true; }
        index = 0;
        return false;
    }

    public bool TryLastIndex(out ulong index)
    {
        if (Entries.Count != 0) { index = Offset + (ulong)Entries.Count - 1; return true; }
        if (Snapshot is not null) { index = Snapshot.Metadata.Index; return true; }
        index = 0;
        return false;
    }

    public bool TryTerm(ulong i, out ulong term)
    {
        term = 0;
        if (i < Offset)
        {
            if (Snapshot is not null && Snapshot.Metadata.Index == i) { term = Snapshot.Metadata.Term; return true; }
            return false;
        }
        if (!TryLastIndex(out ulong last) || i > last) return false;
        term = Entries[(int)(i - Offset)].Term;
        return true;
    }

    /// <summary>The application persisted entries up to (i, t): drop them unless they were since replaced.</summary>
    public void StableTo(ulong i, ulong t)
    {
        if (!TryTerm(i, out ulong gt)) return;
        // Only entries from the unstable array (not the snapshot) with a matching term are considered stable.
        if (gt == t && i >= Offset)
        {
            Entries.RemoveRange(0, (int)(i + 1 - Offset));
            Offset = i + 1;
            if (Entries.Count == 0 && Entries.Capacity > 1024) Entries.Capacity = 16;
        }
    }

    public void StableSnapTo(ulong i)
    {
        if (Snapshot is not null && Snapshot.Metadata.Index == i) Snapshot = null;
    }

    public void Restore(Snapshot s)
    {
        Offset = s.Metadata.Index + 1;
        Entries.Clear();
        Snapshot = s;
    }

    public void TruncateAndAppend(IReadOnlyList<Entry> ents, int start)
    {
        ulong after = ents[start].Index;
        if (after == Offset + (ulong)Entries.Count)
        {
            // Directly after the current entries.
        }
        else if (after <= Offset)
        {
            Logger?.Info($"replace the unstable entries from index {after}");
            Offset = after;
            Entries.Clear();
        }
        else
        {
            Logger?.Info($"truncate the unstable entries before index {after}");
            Entries.RemoveRange((int)(after - Offset), Entries.Count - (int)(after - Offset));
        }
        for (int k = start; k < ents.Count; k++) Entries.Add(ents[k]);
    }

    public void CopyTo(ulong lo, ulong hi, List<Entry> dst)
    {
        CheckBounds(lo, hi);
        for (ulong i = lo; i < hi; i++) dst.Add(Entries[(int)(i - Offset)]);
    }

    private void CheckBounds(ulong lo, ulong hi)
    {
        if (lo > hi) throw new InvalidOperationException($"invalid unstable.slice {lo} > {hi}");
        ulong upper = Offset + (ulong)Entries.Count;
        if (lo < Offset || hi > upper) throw new InvalidOperationException($"unstable.slice[{lo},{hi}) out of bound [{Offset},{upper}]");
    }
}

/// <summary>
/// The Raft log: stable storage plus the unstable tail, with the commit and applied cursors (log.go).
/// Invariant: applied ≤ committed ≤ lastIndex.
/// </summary>
internal sealed class RaftLog
{
    public readonly IRaftStorage Storage;
    public readonly Unstable Unstable = new();
    public ulong Committed;
    public ulong Applied;
    private readonly IRaftLogger? _logger;
    private readonly ulong _maxNextEntsSize;

    public RaftLog(IRaftStorage storage, IRaftLogger? logger, ulong maxNextEntsSize)
    {
        Storage = storage ?? throw new ArgumentNullException(nameof(storage));
        _logger = logger;
        _maxNextEntsSize = maxNextEntsSize;
        ulong first = storage.FirstIndex();
        ulong last = storage.LastIndex();
        Unstable.Offset = last + 1;
        Unstable.Logger = logger;
        Committed = first - 1;
        Applied = first - 1;
    }

    public override string ToString() =>
        $"committed={Committed}, applied={Applied}, unstable.offset={Unstable.Offset}, len(unstable.Entries)={Unstable.Entries.Count}";

    /// <summary>Appends the entries of an append message if (index, logTerm) matches; returns the last new index.</summary>
    public bool MaybeAppend(ulong index, ulong logTerm, ulong committed, IReadOnlyList<Entry> ents, out ulong lastNewIndex)
    {
        lastNewIndex = 0;
        if (!MatchTerm(index, logTerm)) return false;
        lastNewIndex = index + (ulong)ents.Count;
        ulong ci = FindConflict(ents);
        if (ci != 0)
        {
            if (ci <= Committed)
                throw new InvalidOperationException($"entry {ci} conflict with committed entry [committed({Committed})]");
            Append(ents, (int)(ci - (index + 1)));
        }
        CommitTo(Math.Min(committed, lastNewIndex));
        return true;
    }

    public ulong Append(IReadOnlyList<Entry> ents, int start = 0)
    {
        if (start >= ents.Count) return LastIndex();
        ulong after = ents[start].Index - 1;
        if (after < Committed)
            throw new InvalidOperationException($"after({after}) is out of range [committed({Committed})]");
        Unstable.TruncateAndAppend(ents, start);
        return LastIndex();
    }

    /// <summary>Index of the first entry whose term differs from ours (or that we do not have); 0 when none.</summary>
    public ulong FindConflict(IReadOnlyList<Entry> ents)
    {
        for (int k = 0; k < ents.Count; k++)
        {
            var ne = ents[k];
            if (!MatchTerm(ne.Index, ne.Term))
            {
                if (ne.Index <= LastIndex())
                    _logger?.Info($"found conflict at index {ne.Index} [existing term: {ZeroTermOnErrCompacted(ne.Index)}, conflicting term: {ne.Term}]");
                return ne.Index;
            }
        }
        return 0;
    }

    public IReadOnlyList<Entry> UnstableEntries() =>
        Unstable.Entries.Count == 0 ? Ready.NoEntries : Unstable.Entries.ToArray();

    /// <summary>Committed entries not yet applied, limited to the per-Ready size.</summary>
    public IReadOnlyList<Entry> NextEnts()
    {
        ulong off = Math.Max(Applied + 1, FirstIndex());
        if (Committed + 1 > off)
        {
            var r = Slice(off, Committed + 1, _maxNextEntsSize, out bool compacted);
            if (compacted) throw new InvalidOperationException("unexpected error when getting unapplied entries (compacted)");
            return r;
        }
        return Ready.NoEntries;
    }

    public bool HasNextEnts() => Committed + 1 > Math.Max(Applied + 1, FirstIndex());

    public Snapshot Snapshot() => Unstable.Snapshot ?? Storage.Snapshot();

    public ulong FirstIndex() => Unstable.TryFirstIndex(out ulong i) ? i : Storage.FirstIndex();

    public ulong LastIndex() => Unstable.TryLastIndex(out ulong i) ? i : Storage.LastIndex();

    public void CommitTo(ulong toCommit)
    {
        if (Committed < toCommit)
        {
            if (LastIndex() < toCommit)
                throw new InvalidOperationException($"tocommit({toCommit}) is out of range [lastIndex({LastIndex()})]. Was the raft log corrupted, truncated, or lost?");
            Committed = toCommit;
        }
    }

    public void AppliedTo(ulong i)
    {
        if (i == 0) return;
        if (Committed < i || i < Applied)
            throw new InvalidOperationException($"applied({i}) is out of range [prevApplied({Applied}), committed({Committed})]");
        Applied = i;
    }

    public void StableTo(ulong i, ulong t) => Unstable.StableTo(i, t);

    public void StableSnapTo(ulong i) => Unstable.StableSnapTo(i);

    public ulong LastTerm()
    {
        if (!TryTerm(LastIndex(), out ulong t))
            throw new InvalidOperationException("unexpected error when getting the last term");
        return t;
    }

    /// <summary>Term of entry i: false when compacted or unavailable; 0 (true) when out of [first-1, last].</summary>
    public bool TryTerm(ulong i, out ulong term)
    {
        term = 0;
        ulong dummy = FirstIndex() - 1;
        if (i < dummy || i > LastIndex()) return true;
        if (Unstable.TryTerm(i, out term)) return true;
        try
        {
            term = Storage.Term(i);
            return true;
        }
        catch (RaftException e) when (e.Kind is RaftErrorKind.Compacted or RaftErrorKind.Unavailable)
        {
            term = 0;
            return false;
        }
    }

    public ulong ZeroTermOnErrCompacted(ulong i) => TryTerm(i, out ulong t) ? t : 0;

    /// <summary>Entries from i to the end, at most maxSize bytes; compacted=true when i is below the first index.</summary>
    public IReadOnlyList<Entry> EntriesFrom(ulong i, ulong maxSize, out bool compacted)
    {
        compacted = false;
        if (i > LastIndex()) return Ready.NoEntries;
        return Slice(i, LastIndex() + 1, maxSize, out compacted);
    }

    public IReadOnlyList<Entry> AllEntries()
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var r = EntriesFrom(FirstIndex(), ulong.MaxValue, out bool compacted);
            if (!compacted) return r;
        }
        throw new InvalidOperationException("log keeps being compacted");
    }

    public bool IsUpToDate(ulong lasti, ulong term)
    {
        ulong lt = LastTerm();
        return term > lt || (term == lt && lasti >= LastIndex());
    }

    public bool MatchTerm(ulong i, ulong term) => TryTerm(i, out ulong t) && t == term;

    public bool MaybeCommit(ulong maxIndex, ulong term)
    {
        if (maxIndex > Committed && ZeroTermOnErrCompacted(maxIndex) == term)
        {
            CommitTo(maxIndex);
            return true;
        }
        return false;
    }

    public void Restore(Snapshot s)
    {
        _logger?.Info($"log [{this}] starts to restore snapshot [index: {s.Metadata.Index}, term: {s.Metadata.Term}]");
        Committed = s.Metadata.Index;
        Unstable.Restore(s);
    }

    /// <summary>Adds the entries in [lo, hi), limited to maxSize bytes (at least one), to <paramref name="dst"/>;
    /// compacted=true (and nothing added) when lo is below the first index.</summary>
    public void SliceInto(Google.Protobuf.Collections.RepeatedField<Entry> dst, ulong lo, ulong hi, ulong maxSize, out bool compacted)
    {
        ulong uoff = Unstable.Offset;
        compacted = false;
        if (lo >= uoff && lo < hi && hi <= uoff + (ulong)Unstable.Entries.Count)
        {
            // Fast path: all in the unstable tail.
            var ue = Unstable.Entries;
            int start = (int)(lo - uoff), end = (int)(hi - uoff);
            ulong size = 0;
            for (int i = start; i < end; i++)
            {
                if (maxSize != ulong.MaxValue)
                {
                    size += RaftUtil.EntrySize(ue[i]);
                    if (size > maxSize && i > start) break;
                }
                dst.Add(ue[i]);
            }
            return;
        }
        var ents = Slice(lo, hi, maxSize, out compacted);
        for (int i = 0; i < ents.Count; i++) dst.Add(ents[i]);
    }

    /// <summary>Entries in [lo, hi) limited to maxSize bytes (at least one).</summary>
    public IReadOnlyList<Entry> Slice(ulong lo, ulong hi, ulong maxSize, out bool compacted)
    {
        compacted = false;
        if (lo > hi) throw new InvalidOperationException($"invalid slice {lo} > {hi}");
        ulong fi = FirstIndex();
        if (lo < fi) { compacted = true; return Ready.NoEntries; }
        ulong li = LastIndex();
        if (hi > li + 1) throw new InvalidOperationException($"slice[{lo},{hi}) out of bound [{fi},{li}]");
        if (lo == hi) return Ready.NoEntries;

        IReadOnlyList<Entry>? stored = null;
        ulong uoff = Unstable.Offset;
        if (lo < uoff)
        {
            ulong shi = Math.Min(hi, uoff);
            try
            {
                stored = Storage.Entries(lo, shi, maxSize);
            }
            catch (RaftException e) when (e.Kind == RaftErrorKind.Compacted)
            {
                compacted = true;
                return Ready.NoEntries;
            }
            catch (RaftException e) when (e.Kind == RaftErrorKind.Unavailable)
            {
                throw new InvalidOperationException($"entries[{lo}:{shi}) is unavailable from storage");
            }
            // Storage already trimmed to maxSize: stop here.
            if ((ulong)stored.Count < shi - lo) return stored;
            if (hi <= uoff) return stored;
        }
        var list = new List<Entry>((int)Math.Min(hi - lo, 1024));
        if (stored is not null) for (int k = 0; k < stored.Count; k++) list.Add(stored[k]);
        Unstable.CopyTo(Math.Max(lo, uoff), hi, list);
        return RaftUtil.LimitSize(list, maxSize);
    }
}
