using System.Threading.Channels;

namespace Etcd.Storage.Mvcc.Watch;

/// <summary>
/// A set of watchers sharing one ordered output (etcd's <c>mvcc.WatchStream</c>; v3rpc opens one per gRPC Watch
/// stream). Messages come out of <see cref="ReadAsync"/> in the order the store produced them: a watcher's
/// <see cref="WatchMessageKind.Created"/> first, its events in revision order exactly once, its
/// <see cref="WatchMessageKind.Canceled"/> or <see cref="WatchMessageKind.Compacted"/> last.
/// </summary>
/// <remarks>
/// <para>Bounding: events, per-watcher progress and compaction notices count against
/// <see cref="WatchableStoreOptions.StreamBufferLength"/>. When the buffer is full the store never waits: the
/// watcher that did not fit becomes a victim and catches up from history once the reader drains the stream.
/// Created, Canceled, ProgressAll and Control messages are not counted: the caller bounds them (etcd's v3rpc
/// allows 16 outstanding control responses per stream and stops reading requests beyond that).</para>
/// <para>Concurrency: <see cref="Watch"/>, <see cref="Cancel"/>, the progress requests and
/// <see cref="EnqueueControl"/> are thread-safe; <see cref="ReadAsync"/> has one reader at a time.</para>
/// </remarks>
public sealed class WatchStream : IDisposable
{
    private readonly WatchableStore _store;
    private readonly Channel<WatchStreamMessage> _out = Channel.CreateUnbounded<WatchStreamMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly int _capacity;
    private int _buffered;
    private int _overflowed;

    // guarded by the store's lock
    internal readonly Dictionary<long, Watcher> Watchers = [];
    internal long NextId;
    internal bool Closed;
    internal int ProgressPending;

    internal WatchStream(WatchableStore store, int capacity)
    {
        _store = store;
        _capacity = capacity;
    }

    /// <summary>The store's current (last notified) revision.</summary>
    public long Revision => _store.Revision;

    /// <summary>Messages buffered and counted against the bound (for tests and metrics).</summary>
    public int Buffered => Volatile.Read(ref _buffered);

    /// <summary>
    /// Adds a watcher over a key, a range or every key from <paramref name="key"/> on (etcd's
    /// <c>watchStream.Watch</c>) and queues its <see cref="WatchMessageKind.Created"/> message.
    /// </summary>
    /// <param name="id">The client's id, or 0 for the lowest free id counting up from 0 on this stream (etcd's <c>AutoWatchID</c>).</param>
    /// <param name="key">The key (or first key of the range).</param>
    /// <param name="rangeEnd">null = the single key; empty = every key ≥ <paramref name="key"/> (etcd's "\0" end); else the exclusive end.</param>
    /// <param name="startRevision">First revision wanted; 0 or a future revision = from the next write on; a past
    /// revision replays history first (a compacted one yields a <see cref="WatchMessageKind.Compacted"/> message).</param>
    /// <param name="filter">Events not to send.</param>
    /// <returns>The id, or -1 with etcd's error string (<see cref="WatchErrors.EmptyWatcherRange"/>,
    /// <see cref="WatchErrors.DuplicateId"/>); nothing is queued on error.</returns>
    public (long Id, string? Error) Watch(long id, byte[] key, byte[]? rangeEnd, long startRevision, WatchFilter filter = WatchFilter.None)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (rangeEnd is { Length: > 0 } && key.AsSpan().SequenceCompareTo(rangeEnd) >= 0)
        {
            return (-1, WatchErrors.EmptyWatcherRange);
        }

        return _store.AddWatcher(this, id, key, rangeEnd, startRevision, filter);
    }

    /// <summary>
    /// Removes watcher <paramref name="id"/>; its <see cref="WatchMessageKind.Canceled"/> message is queued after
    /// everything queued for it so far, and nothing of it follows (also for a watcher already ended by
    /// compaction, as etcd answers). False when the id is unknown (etcd's <see cref="WatchErrors.WatcherNotExist"/>;
    /// no message is queued).
    /// </summary>
    public bool Cancel(long id) => _store.CancelWatcher(this, id);

    /// <summary>
    /// Queues a per-watcher progress notification at the store's revision when watcher <paramref name="id"/> is
    /// synced and the buffer has room; otherwise does nothing (etcd's <c>RequestProgress</c>).
    /// </summary>
    public void RequestProgress(long id) => _store.RequestProgress(this, id);

    /// <summary>
    /// Queues a <see cref="WatchMessageKind.ProgressAll"/> message. Its revision is never lower than any event
    /// already queued on the stream, and every event up to it has been queued: when some watcher is still
    /// catching up, the notification waits until all are synced.
    /// </summary>
    public void RequestProgressAll() => _store.RequestProgressAll(this);

    /// <summary>Queues a message of the caller's own (not counted against the bound), ordered with the store's messages.</summary>
    public void EnqueueControl(WatchStreamMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        _store.EnqueueControl(this, message);
    }

    /// <summary>
    /// The next message, waiting for one; null once the stream is disposed and drained.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<WatchStreamMessage?> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (TryRead(out var m))
            {
                return m;
            }

            if (!await _out.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }
        }
    }

    /// <summary>Takes the next message if one is queued.</summary>
    public bool TryRead(out WatchStreamMessage message)
    {
        if (!_out.Reader.TryRead(out message!))
        {
            return false;
        }

        if (message.IsBuffered)
        {
            Interlocked.Decrement(ref _buffered);
            if (Interlocked.Exchange(ref _overflowed, 0) == 1)
            {
                _store.Wake();
            }
        }

        return true;
    }

    /// <summary>Removes every watcher and ends the output (<see cref="ReadAsync"/> returns null after the queued messages).</summary>
    public void Dispose() => _store.CloseStream(this);

    /// <summary>Called under the store's lock: queues a counted message unless the buffer is full.</summary>
    internal bool TryEnqueueBuffered(WatchStreamMessage m)
    {
        if (Closed)
        {
            return true;
        }

        if (Interlocked.Increment(ref _buffered) > _capacity)
        {
            Interlocked.Decrement(ref _buffered);
            Volatile.Write(ref _overflowed, 1);
            if (Volatile.Read(ref _buffered) < _capacity)
            {
                // the reader drained between the two steps: do not wait for the idle interval
                _store.Wake();
            }

            return false;
        }

        _out.Writer.TryWrite(m);
        if (m.Events.Count > 0)
        {
            _store.CountDelivered(m.Events.Count);
        }

        return true;
    }

    /// <summary>Called under the store's lock: queues an uncounted message.</summary>
    internal void EnqueueUnbuffered(WatchStreamMessage m)
    {
        if (!Closed)
        {
            _out.Writer.TryWrite(m);
        }
    }

    internal void Complete() => _out.Writer.TryComplete();
}
