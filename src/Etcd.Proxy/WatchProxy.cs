using System.Threading.Channels;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Mvccpb;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's Watch service (etcd's <c>proxy/grpcproxy/watch.go</c>): each client watch becomes a
/// <see cref="ProxyWatcher"/>, and watchers of the same key range share one watch on the cluster
/// (<see cref="WatchBroadcast"/>), so N clients watching a key cost the cluster one watch. A watch is created only after
/// a serializable count-only range of its keys succeeds with the client's token (etcd's permission check); otherwise the
/// client gets a created-and-canceled response with the error as its cancel reason. Watch ids are numbered per stream
/// from 0; cancel requests answer with the watcher's last header; progress requests are not forwarded (as etcd 3.4's
/// proxy). Thread-safe; each client stream runs its receive and send loops on the thread pool.
/// </summary>
public sealed class WatchProxy : Etcdserverpb.Watch.WatchBase
{
    private readonly ProxyUpstream _upstream;
    private readonly KeyNamespace _ns;
    private readonly ProxyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Dictionary<(ByteString Key, ByteString End), WatchBroadcasts> _ranges = [];
    private readonly Lock _rangesLock = new();

    /// <summary>Creates the service.</summary>
    public WatchProxy(ProxyUpstream upstream, KeyNamespace ns, ProxyMetrics metrics, ILoggerFactory loggerFactory)
    {
        _upstream = upstream;
        _ns = ns;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("proxy/grpcproxy/watch");
    }

    /// <summary>Client watchers open now, over all ranges.</summary>
    public int Watchers
    {
        get
        {
            lock (_rangesLock)
            {
                return _ranges.Values.Sum(r => r.WatcherCount);
            }
        }
    }

    internal ProxyUpstream Upstream => _upstream;

    internal KeyNamespace Namespace => _ns;

    internal ProxyMetrics Metrics => _metrics;

    internal ILogger Logger => _logger;

    /// <inheritdoc/>
    public override async Task Watch(IAsyncStreamReader<WatchRequest> requestStream, IServerStreamWriter<WatchResponse> responseStream, ServerCallContext context)
    {
        using var stream = new WatchProxyStream(this, context);
        var send = stream.SendLoopAsync(responseStream);
        try
        {
            await stream.ReceiveLoopAsync(requestStream).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException or RpcException)
        {
            // the client went away
        }
        finally
        {
            stream.Close();
            await send.ConfigureAwait(false);
        }
    }

    internal void AddWatcher(ProxyWatcher w)
    {
        WatchBroadcasts? set;
        lock (_rangesLock)
        {
            var key = (w.Key, w.End);
            if (!_ranges.TryGetValue(key, out set))
            {
                set = new WatchBroadcasts(this);
                _ranges[key] = set;
            }

            set.Add(w);
        }
    }

    internal void CoalesceUnderRanges(WatchBroadcasts set, WatchBroadcast wb)
    {
        lock (_rangesLock)
        {
            set.Coalesce(wb);
        }
    }

    internal void DeleteWatcher(ProxyWatcher w)
    {
        lock (_rangesLock)
        {
            var key = (w.Key, w.End);
            if (_ranges.TryGetValue(key, out var set) && set.Delete(w) == 0)
            {
                _ranges.Remove(key);
            }
        }
    }
}

/// <summary>One client's watch stream on the proxy: its watchers by id and the bounded queue of responses to it.</summary>
internal sealed class WatchProxyStream : IDisposable
{
    /// <summary>etcd's <c>watchCh</c> capacity; a client that falls this far behind is disconnected.</summary>
    private const int QueueCapacity = 1024;

    private readonly WatchProxy _proxy;
    private readonly ServerCallContext _context;
    private readonly Channel<WatchResponse> _queue = Channel.CreateBounded<WatchResponse>(new BoundedChannelOptions(QueueCapacity) { SingleReader = true });
    private readonly CancellationTokenSource _cancel;
    private readonly Dictionary<long, ProxyWatcher> _watchers = [];
    private readonly Lock _lock = new();
    private long _nextId;
    private bool _closed;

    public WatchProxyStream(WatchProxy proxy, ServerCallContext context)
    {
        _proxy = proxy;
        _context = context;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
    }

    public ServerCallContext Context => _context;

    /// <summary>Queues a response; a full queue ends the stream (etcd waits 50 ms, then cancels it).</summary>
    public bool Post(WatchResponse response)
    {
        if (_queue.Writer.TryWrite(response))
        {
            return true;
        }

        Cancel();
        return false;
    }

    /// <summary>Ends the stream. The cancellation runs on the thread pool: callers may hold a broadcast's lock, and the
    /// stream's end takes the ranges lock.</summary>
    public void Cancel() => ThreadPool.UnsafeQueueUserWorkItem(static s =>
    {
        try
        {
            s.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }, _cancel, preferLocal: false);

    public async Task ReceiveLoopAsync(IAsyncStreamReader<WatchRequest> requests)
    {
        while (await requests.MoveNext(_cancel.Token).ConfigureAwait(false))
        {
            var req = requests.Current;
            switch (req.RequestUnionCase)
            {
                case WatchRequest.RequestUnionOneofCase.CreateRequest:
                    await CreateAsync(req.CreateRequest).ConfigureAwait(false);
                    break;
                case WatchRequest.RequestUnionOneofCase.CancelRequest:
                    CancelWatcher(req.CancelRequest.WatchId);
                    break;
            }
        }
    }

    public async Task SendLoopAsync(IServerStreamWriter<WatchResponse> responses)
    {
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_cancel.Token).ConfigureAwait(false))
            {
                while (_queue.Reader.TryRead(out var r))
                {
                    await responses.WriteAsync(r).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException or RpcException)
        {
            Cancel();
        }
    }

    private async Task CreateAsync(WatchCreateRequest cr)
    {
        var key = cr.Key;
        var end = cr.RangeEnd;
        try
        {
            var check = new RangeRequest
            {
                Serializable = true,
                Key = key.IsEmpty ? ByteString.CopyFrom(0) : key,
                RangeEnd = key.IsEmpty ? ByteString.CopyFrom(0) : end,
                CountOnly = true,
                Limit = 1,
            };
            var options = ProxyUpstream.Forward(_context).WithCancellationToken(_cancel.Token);
            await _proxy.Upstream.Kv.RangeAsync(_proxy.Namespace.Up(check), options).ConfigureAwait(false);
        }
        catch (RpcException e) when (!_cancel.IsCancellationRequested)
        {
            Post(new WatchResponse { Header = new ResponseHeader(), WatchId = -1, Created = true, Canceled = true, CancelReason = e.Status.Detail });
            return;
        }

        if (!ValidRange(key, end))
        {
            Post(new WatchResponse { WatchId = -1, Created = true, Canceled = true });
            return;
        }

        ProxyWatcher w;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            w = new ProxyWatcher(this, _nextId++, cr);
            _watchers[w.Id] = w;
        }

        _proxy.AddWatcher(w);
    }

    private void CancelWatcher(long id)
    {
        ProxyWatcher? w;
        lock (_lock)
        {
            if (!_watchers.Remove(id, out w))
            {
                return;
            }
        }

        _proxy.DeleteWatcher(w);
        Post(new WatchResponse { Header = w.LastHeader ?? new ResponseHeader(), WatchId = id, Canceled = true });
    }

    /// <summary>etcd's <c>watchRange.valid</c>: no end, an end after the key, or <c>"\0"</c>.</summary>
    internal static bool ValidRange(ByteString key, ByteString end) =>
        end.IsEmpty || end.Span.SequenceCompareTo(key.Span) > 0 || (end.Length == 1 && end[0] == 0);

    /// <summary>Removes every watcher from its broadcast and ends the send loop.</summary>
    public void Close()
    {
        List<ProxyWatcher> all;
        lock (_lock)
        {
            _closed = true;
            all = [.. _watchers.Values];
            _watchers.Clear();
        }

        foreach (var w in all)
        {
            _proxy.DeleteWatcher(w);
        }

        Cancel();
        _queue.Writer.TryComplete();
    }

    public void Dispose() => _cancel.Dispose();
}

/// <summary>
/// One client watch behind the proxy (etcd's <c>watcher</c>): its range, filters, progress and prev-kv wishes and the
/// next revision it wants; <see cref="Send"/> turns a shared upstream response into this watcher's response.
/// Called under its broadcast's lock only.
/// </summary>
internal sealed class ProxyWatcher
{
    private readonly WatchProxyStream _stream;
    private readonly bool _noPut;
    private readonly bool _noDelete;

    public ProxyWatcher(WatchProxyStream stream, long id, WatchCreateRequest cr)
    {
        _stream = stream;
        Id = id;
        Key = cr.Key;
        End = cr.RangeEnd;
        NextRevision = cr.StartRevision;
        Progress = cr.ProgressNotify;
        PrevKv = cr.PrevKv;
        _noPut = cr.Filters.Contains(WatchCreateRequest.Types.FilterType.Noput);
        _noDelete = cr.Filters.Contains(WatchCreateRequest.Types.FilterType.Nodelete);
    }

    public long Id { get; }

    public ByteString Key { get; }

    public ByteString End { get; }

    public long NextRevision { get; set; }

    public bool Progress { get; }

    public bool PrevKv { get; }

    public ResponseHeader? LastHeader { get; private set; }

    public WatchProxyStream Stream => _stream;

    public bool Post(WatchResponse r) => _stream.Post(r);

    /// <summary>Delivers what this watcher wants of an upstream response (keys already out of the namespace).</summary>
    public void Send(WatchResponse wr)
    {
        bool progressNotify = IsProgressNotify(wr);
        if (progressNotify && !Progress)
        {
            return;
        }

        long rev = wr.Header?.Revision ?? 0;
        if (NextRevision > rev && wr.Events.Count > 0)
        {
            return;
        }

        if (NextRevision == 0)
        {
            NextRevision = rev + 1;
        }

        var events = new List<Event>(wr.Events.Count);
        long lastRev = 0;
        foreach (var ev in wr.Events)
        {
            if (ev.Kv.ModRevision < NextRevision)
            {
                continue;
            }

            lastRev = ev.Kv.ModRevision;
            if ((_noPut && ev.Type == Event.Types.EventType.Put) || (_noDelete && ev.Type == Event.Types.EventType.Delete))
            {
                continue;
            }

            if (!PrevKv && ev.PrevKv is not null)
            {
                events.Add(new Event { Type = ev.Type, Kv = ev.Kv });
            }
            else
            {
                events.Add(ev);
            }
        }

        if (lastRev >= NextRevision)
        {
            NextRevision = lastRev + 1;
        }

        if (!progressNotify && !wr.Created && events.Count == 0 && wr.CompactRevision == 0)
        {
            return;
        }

        LastHeader = wr.Header;
        var response = new WatchResponse
        {
            Header = wr.Header,
            Created = wr.Created,
            CompactRevision = wr.CompactRevision,
            Canceled = wr.Canceled,
            WatchId = Id,
        };
        response.Events.AddRange(events);
        Post(response);
    }

    /// <summary>clientv3's <c>IsProgressNotify</c>: no events, not created, canceled or compacted, a header with a revision.</summary>
    internal static bool IsProgressNotify(WatchResponse wr) =>
        wr.Events.Count == 0 && !wr.Canceled && !wr.Created && wr.CompactRevision == 0 && (wr.Header?.Revision ?? 0) != 0;
}

/// <summary>
/// The broadcasts of one key range (etcd's <c>watchBroadcasts</c>): a new watcher joins the first broadcast that can take
/// it, else starts one; after each upstream response a broadcast with fewer than 5 receivers merges into another that is
/// no further ahead and has answered already, and its upstream watch ends. Guarded by the proxy's ranges lock.
/// </summary>
internal sealed class WatchBroadcasts
{
    private const int MaxCoalesceReceivers = 5;

    private readonly WatchProxy _proxy;
    private readonly HashSet<WatchBroadcast> _broadcasts = [];
    private readonly Dictionary<ProxyWatcher, WatchBroadcast> _watchers = [];

    public WatchBroadcasts(WatchProxy proxy) => _proxy = proxy;

    public int WatcherCount => _watchers.Count;

    public void Add(ProxyWatcher w)
    {
        foreach (var b in _broadcasts)
        {
            if (b.TryAdd(w))
            {
                _watchers[w] = b;
                return;
            }
        }

        var wb = new WatchBroadcast(_proxy, w, Update);
        _watchers[w] = wb;
        _broadcasts.Add(wb);
        wb.Start();
    }

    /// <summary>Removes the watcher; returns how many broadcasts are left.</summary>
    public int Delete(ProxyWatcher w)
    {
        if (!_watchers.Remove(w, out var wb))
        {
            return _broadcasts.Count;
        }

        wb.Delete(w);
        if (wb.IsEmpty)
        {
            _broadcasts.Remove(wb);
            wb.Stop();
        }

        return _broadcasts.Count;
    }

    private void Update(WatchBroadcast wb)
    {
        // Called from the broadcast's read loop: take the ranges lock as every other change does.
        _proxy.CoalesceUnderRanges(this, wb);
    }

    internal void Coalesce(WatchBroadcast wb)
    {
        if (wb.Size >= MaxCoalesceReceivers || !_broadcasts.Contains(wb))
        {
            return;
        }

        foreach (var other in _broadcasts)
        {
            if (other == wb)
            {
                continue;
            }

            var moved = wb.MoveReceiversTo(other);
            foreach (var w in moved)
            {
                _watchers[w] = other;
            }

            if (wb.IsEmpty)
            {
                _broadcasts.Remove(wb);
                wb.Stop();
                break;
            }
        }
    }
}

/// <summary>
/// One watch on the cluster shared by several client watchers of the same range (etcd's <c>watchBroadcast</c>): created
/// with progress notifications, prev-kv and the first watcher's start revision and token; every response is handed to
/// each receiver, which takes what it asked for. A watcher joins when the broadcast is no further ahead than the watcher
/// wants; joining one that has answered already gets a created response at once. Thread-safe (its own lock).
/// </summary>
internal sealed class WatchBroadcast
{
    private readonly WatchProxy _proxy;
    private readonly Action<WatchBroadcast> _update;
    private readonly Lock _lock = new();
    private readonly HashSet<ProxyWatcher> _receivers = [];
    private readonly CancellationTokenSource _cancel = new();
    private readonly ByteString _key;
    private readonly ByteString _end;
    private readonly ServerCallContext _firstContext;
    private long _nextRevision;
    private int _responses;

    public WatchBroadcast(WatchProxy proxy, ProxyWatcher first, Action<WatchBroadcast> update)
    {
        _proxy = proxy;
        _update = update;
        _key = first.Key;
        _end = first.End;
        _nextRevision = first.NextRevision;
        _firstContext = first.Stream.Context;
        _receivers.Add(first);
    }

    public int Size
    {
        get
        {
            lock (_lock)
            {
                return _receivers.Count;
            }
        }
    }

    public bool IsEmpty => Size == 0;

    public void Start() => _ = RunAsync();

    public void Stop()
    {
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public bool TryAdd(ProxyWatcher w)
    {
        lock (_lock)
        {
            if (_nextRevision > w.NextRevision || (_nextRevision == 0 && w.NextRevision != 0))
            {
                return false;
            }

            if (_responses == 0)
            {
                AddReceiver(w);
                return true;
            }

            if (!w.Post(new WatchResponse { Header = new ResponseHeader { Revision = w.NextRevision }, WatchId = w.Id, Created = true }))
            {
                return false;
            }

            AddReceiver(w);
            return true;
        }
    }

    public void Delete(ProxyWatcher w)
    {
        lock (_lock)
        {
            if (_receivers.Remove(w) && _receivers.Count > 0)
            {
                _proxy.Metrics.WatchersCoalescing.Dec();
            }
        }
    }

    /// <summary>Moves every receiver into <paramref name="other"/> when this broadcast is not behind it and it has answered.</summary>
    public List<ProxyWatcher> MoveReceiversTo(WatchBroadcast other)
    {
        var first = this.GetHashCode() < other.GetHashCode() ? this : other;
        var second = first == this ? other : this;
        lock (first._lock)
        {
            lock (second._lock)
            {
                if (_nextRevision < other._nextRevision || other._responses == 0)
                {
                    return [];
                }

                var moved = _receivers.ToList();
                foreach (var w in moved)
                {
                    other.AddReceiver(w);
                }

                // they were counted here as one broadcast's receivers
                if (moved.Count > 1)
                {
                    _proxy.Metrics.WatchersCoalescing.Dec(moved.Count - 1);
                }

                _receivers.Clear();
                return moved;
            }
        }
    }

    private void AddReceiver(ProxyWatcher w)
    {
        if (_receivers.Add(w) && _receivers.Count > 1)
        {
            _proxy.Metrics.WatchersCoalescing.Inc();
        }
    }

    private async Task RunAsync()
    {
        Interlocked.Increment(ref _proxy.Metrics._upstreamWatches);
        try
        {
            // As clientv3 does, a watch the cluster drops (a member went away, a connection broke) is made again from
            // the next revision the receivers need, until the broadcast stops or the cluster cancels it.
            while (!_cancel.IsCancellationRequested)
            {
                try
                {
                    if (await WatchOnceAsync().ConfigureAwait(false))
                    {
                        return;
                    }
                }
                catch (Exception e) when (e is RpcException or IOException or InvalidOperationException && !_cancel.IsCancellationRequested)
                {
                    _proxy.Logger.LogWarning("upstream watch failed, retrying: {Error}", e.Message);
                }

                await Task.Delay(RetryDelay, _cancel.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _proxy.Metrics._upstreamWatches);
            _cancel.Dispose();
        }
    }

    /// <summary>Time between a failed upstream watch and the next try.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>One upstream watch stream; true when the cluster canceled the watch (the broadcast ends).</summary>
    private async Task<bool> WatchOnceAsync()
    {
        long start;
        lock (_lock)
        {
            start = _nextRevision;
        }

        var create = new WatchCreateRequest
        {
            Key = _key,
            RangeEnd = _end,
            ProgressNotify = true,
            StartRevision = start,
            PrevKv = true,
        };
        var options = ProxyUpstream.Forward(_firstContext);
        options = new CallOptions(options.Headers, null, _cancel.Token);
        using var call = _proxy.Upstream.Watch.Watch(options);
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = _proxy.Namespace.Up(create) }).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(_cancel.Token).ConfigureAwait(false))
        {
            var wr = call.ResponseStream.Current;
            foreach (var ev in wr.Events)
            {
                _proxy.Namespace.Down(ev);
            }

            if (!Broadcast(wr))
            {
                continue;
            }

            _update(this);
            if (wr.Canceled)
            {
                return true;
            }
        }

        throw new RpcException(new Status(StatusCode.Unavailable, "upstream watch stream closed"));
    }

    /// <summary>Hands a response to every receiver; false for the created response of a watch made again (already
    /// announced to them).</summary>
    private bool Broadcast(WatchResponse wr)
    {
        lock (_lock)
        {
            if (wr.Created && !wr.Canceled && _responses > 0)
            {
                return false;
            }

            if (_responses > 0 || _nextRevision == 0)
            {
                _nextRevision = (wr.Header?.Revision ?? 0) + 1;
            }

            _responses++;
            foreach (var w in _receivers)
            {
                w.Send(wr);
            }

            if (_receivers.Count > 0)
            {
                _proxy.Metrics.EventsCoalescing.Inc(_receivers.Count - 1);
            }

            return true;
        }
    }
}
