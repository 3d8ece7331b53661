using Mvccpb;

namespace Etcd.Storage.Mvcc.Watch;

/// <summary>Where a watcher is (etcd's watcher groups of <c>mvcc/watchable_store.go</c>).</summary>
internal enum WatcherState
{
    Synced,
    Unsynced,
    Victim,
    Done,
}

/// <summary>
/// One watcher (etcd's <c>mvcc/watcher.go</c> <c>watcher</c>). All fields are guarded by the owning
/// <see cref="WatchableStore"/>'s lock.
/// </summary>
internal sealed class Watcher(WatchStream stream, long id, byte[] key, byte[]? end, long minRev, WatchFilter filter)
{
    public WatchStream Stream { get; } = stream;

    public long Id { get; } = id;

    public byte[] Key { get; } = key;

    /// <summary>null = the single key; empty = every key ≥ <see cref="Key"/>; else [Key, End).</summary>
    public byte[]? End { get; } = end;

    public WatchFilter Filter { get; } = filter;

    /// <summary>The lowest revision not yet queued for this watcher.</summary>
    public long MinRev { get; set; } = minRev;

    public WatcherState State { get; set; }

    /// <summary>A victim's message that did not fit into its stream's buffer.</summary>
    public WatchStreamMessage? Pending { get; set; }

    public bool IsRange => End is not null;

    public bool Matches(ReadOnlySpan<byte> k)
    {
        if (End is null)
        {
            return k.SequenceEqual(Key);
        }

        if (k.SequenceCompareTo(Key) < 0)
        {
            return false;
        }

        return End.Length == 0 || k.SequenceCompareTo(End) < 0;
    }

    public bool Passes(Event ev) => Filter == WatchFilter.None
        || (ev.Type == Event.Types.EventType.Put ? (Filter & WatchFilter.NoPut) == 0 : (Filter & WatchFilter.NoDelete) == 0);
}

/// <summary>Ordinal byte-array equality for the single-key index.</summary>
internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y));

    public int GetHashCode(byte[] obj)
    {
        var h = new HashCode();
        h.AddBytes(obj);
        return h.ToHashCode();
    }
}
