using Mvccpb;

namespace Etcd.Storage.Mvcc.Watch;

/// <summary>
/// Event filters of a watcher (etcd's <c>WatchCreateRequest.filters</c>, applied as <c>mvcc/watcher.go</c>'s
/// <c>FilterFunc</c>s): a filtered event is never sent; a batch whose every event is filtered is not sent at all.
/// </summary>
[Flags]
public enum WatchFilter
{
    /// <summary>Every event is sent.</summary>
    None = 0,

    /// <summary>PUT events are dropped (etcd's <c>NOPUT</c>).</summary>
    NoPut = 1,

    /// <summary>DELETE events are dropped (etcd's <c>NODELETE</c>).</summary>
    NoDelete = 2,
}

/// <summary>What a <see cref="WatchStreamMessage"/> carries.</summary>
public enum WatchMessageKind
{
    /// <summary>A watcher was created (first message of its watch id); <see cref="WatchStreamMessage.Revision"/> = store revision then.</summary>
    Created,

    /// <summary>Events of one watcher, all with revisions ≤ <see cref="WatchStreamMessage.Revision"/>, in revision order.</summary>
    Events,

    /// <summary>
    /// A per-watcher progress notification (no events): every event of that watcher up to
    /// <see cref="WatchStreamMessage.Revision"/> has been queued before it.
    /// </summary>
    Progress,

    /// <summary>
    /// A stream-wide progress notification (watch id -1, no events): every event of every watcher of the stream
    /// up to <see cref="WatchStreamMessage.Revision"/> has been queued before it.
    /// </summary>
    ProgressAll,

    /// <summary>The watcher's start revision was compacted (<see cref="WatchStreamMessage.CompactRevision"/>); the watcher is gone.</summary>
    Compacted,

    /// <summary>The watcher was canceled on request; nothing of it follows.</summary>
    Canceled,

    /// <summary>A message the owner of the stream queued itself (<see cref="WatchStream.EnqueueControl"/>); see <see cref="WatchStreamMessage.Tag"/>.</summary>
    Control,
}

/// <summary>
/// One item of a <see cref="WatchStream"/>'s ordered output (etcd's <c>mvcc.WatchResponse</c> plus the control
/// responses v3rpc interleaves). Immutable once queued; <see cref="Events"/> and the <see cref="Event"/>s in it
/// may be shared between watchers and must not be modified (clone an event before setting <c>PrevKv</c>).
/// </summary>
public sealed class WatchStreamMessage
{
    internal WatchStreamMessage(WatchMessageKind kind, long watchId, long revision, IReadOnlyList<Event>? events = null, long compactRevision = 0, object? tag = null)
    {
        Kind = kind;
        WatchId = watchId;
        Revision = revision;
        Events = events ?? [];
        CompactRevision = compactRevision;
        Tag = tag;
    }

    /// <summary>Creates a <see cref="WatchMessageKind.Control"/> message carrying <paramref name="tag"/>.</summary>
    public static WatchStreamMessage Control(long watchId, long revision, object? tag) => new(WatchMessageKind.Control, watchId, revision, null, 0, tag);

    /// <summary>The kind of message.</summary>
    public WatchMessageKind Kind { get; }

    /// <summary>The watch id (-1 for <see cref="WatchMessageKind.ProgressAll"/>).</summary>
    public long WatchId { get; }

    /// <summary>The store revision the message is current to (etcd puts it in the response header).</summary>
    public long Revision { get; }

    /// <summary>Events (only for <see cref="WatchMessageKind.Events"/>), in revision order, already filtered.</summary>
    public IReadOnlyList<Event> Events { get; }

    /// <summary>The compacted revision (only for <see cref="WatchMessageKind.Compacted"/>).</summary>
    public long CompactRevision { get; }

    /// <summary>The owner's payload of a <see cref="WatchMessageKind.Control"/> message.</summary>
    public object? Tag { get; }

    /// <summary>Whether the message counts against the stream's bounded event buffer (events, per-watcher progress, compaction).</summary>
    internal bool IsBuffered => Kind is WatchMessageKind.Events or WatchMessageKind.Progress or WatchMessageKind.Compacted;
}

/// <summary>Tunables of a <see cref="WatchableStore"/>; defaults match etcd 3.4's <c>mvcc/watchable_store.go</c>.</summary>
public sealed record WatchableStoreOptions
{
    /// <summary>
    /// Buffered messages (events, per-watcher progress, compaction notices) per <see cref="WatchStream"/>
    /// before its watchers become victims (etcd's <c>chanBufLen</c>, 128).
    /// </summary>
    public int StreamBufferLength { get; init; } = 128;

    /// <summary>Distinct revisions read from history per catch-up round (etcd's <c>watchBatchMaxRevs</c>, 1000).</summary>
    public int SyncBatchRevisions { get; init; } = 1000;

    /// <summary>Unsynced watchers served per catch-up round (etcd's <c>maxWatchersPerSync</c>, 512).</summary>
    public int MaxWatchersPerSync { get; init; } = 512;

    /// <summary>
    /// Longest wait of the background loop between rounds when nothing wakes it (etcd retries victims every
    /// 10 ms and syncs every 100 ms; here draining a stream or adding a watcher wakes the loop at once).
    /// </summary>
    public TimeSpan IdleInterval { get; init; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>etcd's watch error strings (<c>mvcc/watcher.go</c>).</summary>
public static class WatchErrors
{
    /// <summary>Cancel of an unknown id.</summary>
    public const string WatcherNotExist = "mvcc: watcher does not exist";

    /// <summary>A range whose end is not after its key (also returned on a closed stream, as etcd does).</summary>
    public const string EmptyWatcherRange = "mvcc: watcher range is empty";

    /// <summary>A client-chosen id already used on the stream.</summary>
    public const string DuplicateId = "mvcc: duplicate watch ID provided on the WatchStream";
}
