using Raftpb;

namespace Etcd.Raft;

/// <summary>
/// The stable log the core reads from (storage.go Storage). Implementations throw <see cref="RaftException"/> with
/// Kind <see cref="RaftErrorKind.Compacted"/> for indexes before the first available one,
/// <see cref="RaftErrorKind.Unavailable"/> for indexes past the end, and
/// <see cref="RaftErrorKind.SnapshotTemporarilyUnavailable"/> when a snapshot is being produced. Other exceptions
/// are treated as fatal. Called only on the thread driving the <see cref="RawNode"/>, but the application may
/// mutate the storage concurrently if the implementation is thread-safe (as <see cref="MemoryStorage"/> is).
/// </summary>
public interface IRaftStorage
{
    /// <summary>The persisted hard state and the membership (ConfState) of the latest snapshot.</summary>
    (HardState hardState, ConfState confState) InitialState();
    /// <summary>Entries in [lo, hi), trimmed to maxSize bytes (EntrySize) but at least one entry.</summary>
    IReadOnlyList<Entry> Entries(ulong lo, ulong hi, ulong maxSize);
    /// <summary>Term of entry <paramref name="index"/>, which must be in [FirstIndex-1, LastIndex]
    /// (the term at FirstIndex-1 is the snapshot's term).</summary>
    ulong Term(ulong index);
    /// <summary>Index of the last entry (the snapshot index if the log is empty).</summary>
    ulong LastIndex();
    /// <summary>Index of the first entry available (snapshot index + 1).</summary>
    ulong FirstIndex();
    /// <summary>The most recent snapshot.</summary>
    Snapshot Snapshot();
}

/// <summary>
/// In-memory <see cref="IRaftStorage"/> (storage.go MemoryStorage). Thread-safe: every method takes one lock.
/// Entry objects are stored by reference and must not be mutated after being appended.
/// </summary>
public sealed class MemoryStorage : IRaftStorage
{
    private readonly object _mu = new();
    private HardState _hardState = new();
    private Snapshot _snapshot = NewEmptySnapshot();
    // _ents[0] is a dummy carrying the index and term of the last compacted entry (or the snapshot).
    private List<Entry> _ents = [RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, null)];

    private static Snapshot NewEmptySnapshot() =>
        new() { Metadata = new SnapshotMetadata { ConfState = new ConfState(), Index = 0, Term = 0 } };

    /// <inheritdoc/>
    public (HardState hardState, ConfState confState) InitialState()
    {
        lock (_mu) return (_hardState.Clone(), _snapshot.Metadata.ConfState?.Clone() ?? new ConfState());
    }

    /// <summary>Records the hard state (term, vote, commit).</summary>
    public void SetHardState(HardState hardState)
    {
        lock (_mu) _hardState = hardState.Clone();
    }

    /// <inheritdoc/>
    public IReadOnlyList<Entry> Entries(ulong lo, ulong hi, ulong maxSize)
    {
        lock (_mu)
        {
            ulong offset = _ents[0].Index;
            if (lo <= offset) throw new RaftException(RaftErrorKind.Compacted);
            if (hi > LastIndexLocked() + 1)
                throw new InvalidOperationException($"entries' hi({hi}) is out of bound lastindex({LastIndexLocked()})");
            if (_ents.Count == 1) throw new RaftException(RaftErrorKind.Unavailable);
            int start = (int)(lo - offset), count = (int)(hi - lo);
            if (count == 0) return Ready.NoEntries;
            ulong size = RaftUtil.EntrySize(_ents[start]);
            int n = 1;
            if (maxSize != ulong.MaxValue)
            {
                for (; n < count; n++)
                {
                    size += RaftUtil.EntrySize(_ents[start + n]);
                    if (size > maxSize) break;
                }
            }
            else n = count;
            var result = new Entry[n];
            _ents.CopyTo(start, result, 0, n);
            return result;
        }
    }

    /// <inheritdoc/>
    public ulong Term(ulong index)
    {
        lock (_mu)
        {
            ulong offset = _ents[0].Index;
            if (index < offset) throw new RaftException(RaftErrorKind.Compacted);
            if (index - offset >= (ulong)_ents.Count) throw new RaftException(RaftErrorKind.Unavailable);
            return _ents[(int)(index - offset)].Term;
        }
    }

    /// <inheritdoc/>
    public ulong LastIndex()
    {
        lock (_mu) return LastIndexLocked();
    }

    private ulong LastIndexLocked() => _ents[0].Index + (ulong)_ents.Count - 1;

    /// <inheritdoc/>
    public ulong FirstIndex()
    {
        lock (_mu) return _ents[0].Index + 1;
    }

    /// <inheritdoc/>
    public Snapshot Snapshot()
    {
        lock (_mu) return _snapshot;
    }

    /// <summary>Replaces the contents with <paramref name="snapshot"/> (log emptied to its index).
    /// Throws RaftException SnapOutOfDate when it is not newer than the current snapshot.</summary>
    public void ApplySnapshot(Snapshot snapshot)
    {
        lock (_mu)
        {
            if (_snapshot.Metadata.Index >= snapshot.Metadata.Index) throw new RaftException(RaftErrorKind.SnapOutOfDate);
            _snapshot = snapshot;
            _ents = [RaftUtil.NewEntry(snapshot.Metadata.Term, snapshot.Metadata.Index, EntryType.EntryNormal, null)];
        }
    }

    /// <summary>Makes a snapshot at <paramref name="index"/> (≤ LastIndex) with the given membership (null keeps
    /// the previous one) and state-machine data, and returns it; the log is not compacted (call
    /// <see cref="Compact"/>). Throws RaftException SnapOutOfDate when index ≤ current snapshot index.</summary>
    public Snapshot CreateSnapshot(ulong index, ConfState? cs, byte[] data)
    {
        lock (_mu)
        {
            if (index <= _snapshot.Metadata.Index) throw new RaftException(RaftErrorKind.SnapOutOfDate);
            ulong offset = _ents[0].Index;
            if (index > LastIndexLocked())
                throw new InvalidOperationException($"snapshot {index} is out of bound lastindex({LastIndexLocked()})");
            var md = new SnapshotMetadata
            {
                Index = index,
                Term = _ents[(int)(index - offset)].Term,
                ConfState = cs?.Clone() ?? _snapshot.Metadata.ConfState?.Clone() ?? new ConfState(),
            };
            _snapshot = new Snapshot { Metadata = md, Data = Google.Protobuf.ByteString.CopyFrom(data ?? []) };
            return _snapshot;
        }
    }

    /// <summary>Discards entries before <paramref name="compactIndex"/> (it becomes the dummy entry). The caller must
    /// not compact past the applied index. Throws RaftException Compacted when already compacted that far.</summary>
    public void Compact(ulong compactIndex)
    {
        lock (_mu)
        {
            ulong offset = _ents[0].Index;
            if (compactIndex <= offset) throw new RaftException(RaftErrorKind.Compacted);
            if (compactIndex > LastIndexLocked())
                throw new InvalidOperationException($"compact {compactIndex} is out of bound lastindex({LastIndexLocked()})");
            int i = (int)(compactIndex - offset);
            var ents = new List<Entry>(_ents.Count - i) { RaftUtil.NewEntry(_ents[i].Term, _ents[i].Index, EntryType.EntryNormal, null) };
            for (int k = i + 1; k < _ents.Count; k++) ents.Add(_ents[k]);
            _ents = ents;
        }
    }

    /// <summary>Appends entries (contiguous, ascending), truncating any existing suffix they overwrite; entries
    /// already compacted are ignored. Throws InvalidOperationException when they would leave a gap.</summary>
    public void Append(IReadOnlyList<Entry> entries)
    {
        if (entries.Count == 0) return;
        lock (_mu)
        {
            ulong first = _ents[0].Index + 1;
            ulong last = entries[0].Index + (ulong)entries.Count - 1;
            if (last < first) return;
            int skip = first > entries[0].Index ? (int)(first - entries[0].Index) : 0;
            ulong offset = entries[skip].Index - _ents[0].Index;
            if ((ulong)_ents.Count > offset)
                _ents.RemoveRange((int)offset, _ents.Count - (int)offset);
            else if ((ulong)_ents.Count < offset)
                throw new InvalidOperationException($"missing log entry [last: {LastIndexLocked()}, append at: {entries[skip].Index}]");
            for (int k = skip; k < entries.Count; k++) _ents.Add(entries[k]);
        }
    }
}
