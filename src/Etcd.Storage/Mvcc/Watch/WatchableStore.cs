using Mvccpb;

namespace Etcd.Storage.Mvcc.Watch;

/// <summary>
/// etcd's watchable store (<c>mvcc/watchable_store.go</c>, <c>watcher_group.go</c>): watchers over a key, a
/// range or a prefix, fed from the <see cref="KvStore"/>'s commits (it is the store's <see cref="IKvObserver"/>)
/// and, for watchers starting in the past, from history (<see cref="KvStore.ReadEvents"/>).
/// </summary>
/// <remarks>
/// <para>Groups: a <em>synced</em> watcher has had every event up to <see cref="Revision"/> queued and gets new
/// commits directly in <see cref="OnCommitted"/>; an <em>unsynced</em> watcher catches up from history on the
/// background loop in rounds of <see cref="WatchableStoreOptions.SyncBatchRevisions"/> revisions and becomes synced
/// when it reaches <see cref="Revision"/>; a <em>victim</em> holds one message its stream had no room for, is
/// retried when the stream drains, then continues as unsynced (or synced when nothing was missed).</para>
/// <para>Cost on the write path: <see cref="OnCommitted"/> runs on the apply thread; it matches the events against
/// the synced watchers (a hash lookup per event for single-key watchers, a scan of range watchers) and queues
/// without ever waiting; reading history happens on the background loop outside the lock.</para>
/// <para>Concurrency: all members are thread-safe; one lock guards the groups.</para>
/// </remarks>
public sealed class WatchableStore : IKvObserver, IDisposable
{
    private readonly KvStore _kv;
    private readonly WatchableStoreOptions _options;
    private readonly object _mu = new();
    private readonly Dictionary<byte[], HashSet<Watcher>> _syncedKeys = new(ByteArrayComparer.Instance);
    private readonly HashSet<Watcher> _syncedRanges = [];
    private readonly HashSet<Watcher> _unsynced = [];
    private readonly HashSet<Watcher> _victims = [];
    private long _openStreams;
    private long _eventsDelivered;
    private readonly HashSet<WatchStream> _progressPending = [];
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _rev;
    private int _syncedCount;

    /// <summary>
    /// Creates the watchable store over <paramref name="kv"/> starting at its current revision. Register it with
    /// <c>kv.SetObserver(store)</c> before the first write after construction.
    /// </summary>
    public WatchableStore(KvStore kv, WatchableStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kv);
        _kv = kv;
        _options = options ?? new WatchableStoreOptions();
        if (_options.StreamBufferLength <= 0 || _options.SyncBatchRevisions <= 0 || _options.MaxWatchersPerSync <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "watch buffer lengths must be positive");
        }

        _rev = kv.CurrentRevision;
        _loop = Task.Factory.StartNew(RunAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>The last revision notified through <see cref="OnCommitted"/> (the store's revision at construction before any).</summary>
    public long Revision
    {
        get
        {
            lock (_mu)
            {
                return _rev;
            }
        }
    }

    /// <summary>The store the watchers read history from.</summary>
    public KvStore Kv => _kv;

    /// <summary>Counts of watchers per group (synced, unsynced, victims), for tests and metrics.</summary>
    public (int Synced, int Unsynced, int Victims) GroupSizes
    {
        get
        {
            lock (_mu)
            {
                return (_syncedCount, _unsynced.Count, _victims.Count);
            }
        }
    }

    /// <summary>Opens a stream of watchers with a bounded buffer of <see cref="WatchableStoreOptions.StreamBufferLength"/> messages.</summary>
    public WatchStream NewWatchStream()
    {
        Interlocked.Increment(ref _openStreams);
        return new(this, _options.StreamBufferLength);
    }

    /// <summary>Streams opened and not yet closed (etcd's <c>etcd_debugging_mvcc_watch_stream_total</c>).</summary>
    public long OpenStreams => Interlocked.Read(ref _openStreams);

    /// <summary>Events handed to watch streams since the store started (etcd's <c>etcd_debugging_mvcc_pending_events_total</c>, which counts each delivered batch).</summary>
    public long EventsDelivered => Interlocked.Read(ref _eventsDelivered);

    internal void CountDelivered(int events) => Interlocked.Add(ref _eventsDelivered, events);

    /// <inheritdoc/>
    public void OnCommitted(long revision, IReadOnlyList<Event> events)
    {
        lock (_mu)
        {
            _rev = revision;
            if (_syncedCount == 0)
            {
                return;
            }

            Dictionary<Watcher, List<Event>>? batches = null;
            foreach (var ev in events)
            {
                var key = ev.Kv.Key.Span;
                if (_syncedKeys.Count > 0 && _syncedKeys.TryGetValue(ev.Kv.Key.ToByteArray(), out var ws))
                {
                    foreach (var w in ws)
                    {
                        AddTo(ref batches, w, ev, revision);
                    }
                }

                foreach (var w in _syncedRanges)
                {
                    if (w.Matches(key))
                    {
                        AddTo(ref batches, w, ev, revision);
                    }
                }
            }

            if (batches is null)
            {
                return;
            }

            foreach (var (w, evs) in batches)
            {
                var m = new WatchStreamMessage(WatchMessageKind.Events, w.Id, revision, evs);
                if (!w.Stream.TryEnqueueBuffered(m))
                {
                    RemoveSynced(w);
                    w.State = WatcherState.Victim;
                    w.Pending = m;
                    w.MinRev = revision + 1;
                    _victims.Add(w);
                }
                else
                {
                    w.MinRev = revision + 1;
                }
            }
        }
    }

    /// <summary>
    /// Call after <see cref="KvStore.Restore(Backend.IBackend)"/> (a raft snapshot was applied), as etcd's
    /// <c>watchableStore.Restore</c> does: the revision is taken from the store again and every synced watcher
    /// becomes unsynced, catching up from the new backend's history from the revision it had reached.
    /// </summary>
    public void OnRestored()
    {
        lock (_mu)
        {
            _rev = _kv.CurrentRevision;
            var all = _syncedRanges.Concat(_syncedKeys.Values.SelectMany(set => set)).ToList();
            _syncedRanges.Clear();
            _syncedKeys.Clear();
            _syncedCount = 0;
            foreach (var w in all)
            {
                w.State = WatcherState.Unsynced;
                _unsynced.Add(w);
            }
        }

        Wake();
    }

    private static void AddTo(ref Dictionary<Watcher, List<Event>>? batches, Watcher w, Event ev, long revision)
    {
        if (w.MinRev > revision || !w.Passes(ev))
        {
            return;
        }

        batches ??= [];
        if (!batches.TryGetValue(w, out var list))
        {
            batches[w] = list = new List<Event>(1);
        }

        list.Add(ev);
    }

    /// <summary>Stops the background loop. Streams still open stop receiving events.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _stop.Cancel();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
    }

    internal void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (SemaphoreFullException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    // ---- stream operations (called by WatchStream) ----

    internal (long Id, string? Error) AddWatcher(WatchStream s, long id, byte[] key, byte[]? end, long startRev, WatchFilter filter)
    {
        lock (_mu)
        {
            if (s.Closed)
            {
                return (-1, WatchErrors.EmptyWatcherRange);
            }

            if (id == 0)
            {
                while (s.Watchers.ContainsKey(s.NextId))
                {
                    s.NextId++;
                }

                id = s.NextId++;
            }
            else if (s.Watchers.ContainsKey(id))
            {
                return (-1, WatchErrors.DuplicateId);
            }

            var synced = startRev == 0 || startRev > _rev;
            var w = new Watcher(s, id, key, end, synced ? Math.Max(_rev + 1, startRev) : startRev, filter);
            s.Watchers[id] = w;
            s.EnqueueUnbuffered(new WatchStreamMessage(WatchMessageKind.Created, id, _rev));
            if (synced)
            {
                AddSynced(w);
            }
            else
            {
                w.State = WatcherState.Unsynced;
                _unsynced.Add(w);
                Wake();
            }

            return (id, null);
        }
    }

    internal bool CancelWatcher(WatchStream s, long id)
    {
        lock (_mu)
        {
            if (!s.Watchers.Remove(id, out var w))
            {
                return false;
            }

            // a watcher already ended by compaction still answers its cancel, as etcd's does
            Detach(w);
            s.EnqueueUnbuffered(new WatchStreamMessage(WatchMessageKind.Canceled, id, _rev));
            return true;
        }
    }

    internal void RequestProgress(WatchStream s, long id)
    {
        lock (_mu)
        {
            if (s.Watchers.TryGetValue(id, out var w) && w.State == WatcherState.Synced)
            {
                s.TryEnqueueBuffered(new WatchStreamMessage(WatchMessageKind.Progress, id, _rev));
            }
        }
    }

    internal void RequestProgressAll(WatchStream s)
    {
        lock (_mu)
        {
            s.ProgressPending++;
            if (!TryProgressAll(s))
            {
                _progressPending.Add(s);
            }
        }
    }

    internal void EnqueueControl(WatchStream s, WatchStreamMessage m)
    {
        lock (_mu)
        {
            s.EnqueueUnbuffered(m);
        }
    }

    internal void CloseStream(WatchStream s)
    {
        lock (_mu)
        {
            if (s.Closed)
            {
                return;
            }

            foreach (var w in s.Watchers.Values)
            {
                Detach(w);
            }

            s.Watchers.Clear();
            s.Closed = true;
            Interlocked.Decrement(ref _openStreams);
            _progressPending.Remove(s);
            s.Complete();
        }
    }

    // ---- groups (under _mu) ----

    private bool TryProgressAll(WatchStream s)
    {
        foreach (var w in s.Watchers.Values)
        {
            if (w.State is WatcherState.Unsynced or WatcherState.Victim)
            {
                return false;
            }
        }

        // one notification per request, as etcd answers each progress request
        for (; s.ProgressPending > 0; s.ProgressPending--)
        {
            s.EnqueueUnbuffered(new WatchStreamMessage(WatchMessageKind.ProgressAll, -1, _rev));
        }

        return true;
    }

    private void AddSynced(Watcher w)
    {
        w.State = WatcherState.Synced;
        _syncedCount++;
        if (w.IsRange)
        {
            _syncedRanges.Add(w);
            return;
        }

        if (!_syncedKeys.TryGetValue(w.Key, out var set))
        {
            _syncedKeys[w.Key] = set = [];
        }

        set.Add(w);
    }

    private void RemoveSynced(Watcher w)
    {
        _syncedCount--;
        if (w.IsRange)
        {
            _syncedRanges.Remove(w);
        }
        else if (_syncedKeys.TryGetValue(w.Key, out var set))
        {
            set.Remove(w);
            if (set.Count == 0)
            {
                _syncedKeys.Remove(w.Key);
            }
        }
    }

    private void Detach(Watcher w)
    {
        switch (w.State)
        {
            case WatcherState.Synced:
                RemoveSynced(w);
                break;
            case WatcherState.Unsynced:
                _unsynced.Remove(w);
                break;
            case WatcherState.Victim:
                _victims.Remove(w);
                w.Pending = null;
                break;
        }

        w.State = WatcherState.Done;
    }

    /// <summary>Puts a watcher that has everything before <see cref="Watcher.MinRev"/> queued into the right group.</summary>
    private void Resume(Watcher w)
    {
        if (w.MinRev > _rev)
        {
            AddSynced(w);
        }
        else
        {
            w.State = WatcherState.Unsynced;
            _unsynced.Add(w);
        }
    }

    // ---- background loop: victims, catch-up, deferred progress ----

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_options.IdleInterval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var more = true;
            for (var round = 0; more && round < 64 && !ct.IsCancellationRequested; round++)
            {
                RetryVictims();
                more = SyncUnsynced();
                FlushProgress();
            }

            if (more)
            {
                Wake();
            }
        }
    }

    private void RetryVictims()
    {
        lock (_mu)
        {
            if (_victims.Count == 0)
            {
                return;
            }

            List<Watcher>? done = null;
            foreach (var w in _victims)
            {
                if (w.Stream.TryEnqueueBuffered(w.Pending!))
                {
                    (done ??= []).Add(w);
                }
            }

            if (done is null)
            {
                return;
            }

            foreach (var w in done)
            {
                _victims.Remove(w);
                w.Pending = null;
                Resume(w);
            }
        }
    }

    private void FlushProgress()
    {
        lock (_mu)
        {
            if (_progressPending.Count == 0)
            {
                return;
            }

            _progressPending.RemoveWhere(TryProgressAll);
        }
    }

    /// <summary>One catch-up round; true when unsynced watchers remain.</summary>
    private bool SyncUnsynced()
    {
        List<Watcher> chosen;
        long curRev, minRev = long.MaxValue;
        lock (_mu)
        {
            if (_unsynced.Count == 0)
            {
                return false;
            }

            curRev = _rev;
            var compactRev = _kv.CompactRevision;
            chosen = new List<Watcher>(Math.Min(_unsynced.Count, _options.MaxWatchersPerSync));
            List<Watcher>? finished = null;
            foreach (var w in _unsynced)
            {
                if (chosen.Count >= _options.MaxWatchersPerSync)
                {
                    break;
                }

                if (w.MinRev > curRev)
                {
                    (finished ??= []).Add(w);
                    continue;
                }

                if (w.MinRev < compactRev)
                {
                    if (w.Stream.TryEnqueueBuffered(new WatchStreamMessage(WatchMessageKind.Compacted, w.Id, curRev, null, compactRev)))
                    {
                        (finished ??= []).Add(w);
                        w.State = WatcherState.Done;
                    }

                    continue;
                }

                chosen.Add(w);
                minRev = Math.Min(minRev, w.MinRev);
            }

            if (finished is not null)
            {
                foreach (var w in finished)
                {
                    _unsynced.Remove(w);
                    if (w.State != WatcherState.Done)
                    {
                        AddSynced(w);
                    }
                }
            }

            if (chosen.Count == 0)
            {
                // nothing to read (what is left waits for room in its stream)
                return false;
            }
        }

        var toRev = Math.Min(curRev + 1, minRev + _options.SyncBatchRevisions);
        var events = _kv.ReadEvents(minRev, toRev);
        if (_kv.CompactRevision > minRev)
        {
            // compaction ran while reading: history may have holes; the next round sends compaction notices
            return true;
        }

        lock (_mu)
        {
            foreach (var w in chosen)
            {
                if (w.State != WatcherState.Unsynced)
                {
                    continue;
                }

                List<Event>? evs = null;
                foreach (var ev in events)
                {
                    if (ev.Kv.ModRevision >= w.MinRev && w.Matches(ev.Kv.Key.Span) && w.Passes(ev))
                    {
                        (evs ??= []).Add(ev);
                    }
                }

                w.MinRev = Math.Max(w.MinRev, toRev);
                if (evs is not null)
                {
                    var m = new WatchStreamMessage(WatchMessageKind.Events, w.Id, curRev, evs);
                    if (!w.Stream.TryEnqueueBuffered(m))
                    {
                        _unsynced.Remove(w);
                        w.State = WatcherState.Victim;
                        w.Pending = m;
                        _victims.Add(w);
                        continue;
                    }
                }

                if (w.MinRev > _rev)
                {
                    _unsynced.Remove(w);
                    AddSynced(w);
                }
            }

            return _unsynced.Count > 0;
        }
    }
}
