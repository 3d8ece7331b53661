using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.Mvcc.Watch;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Server.Watch;

/// <summary>
/// One Watch stream (etcd's <c>serverWatchStream</c>): a receive loop turning requests into watcher operations on
/// a <see cref="WatchStream"/>, and a send loop turning the stream's ordered messages into <see cref="WatchResponse"/>s
/// (prev_kv, fragmentation, headers). The two loops never wait for each other except through the bounded control
/// slots (<see cref="WatchServiceOptions.ControlBufferLength"/>).
/// </summary>
internal sealed class WatchSession : IDisposable
{
    private const int MaxNoLeaderChecks = 3;

    private readonly EtcdServer _server;
    private readonly WatchServiceOptions _options;
    private readonly IAsyncStreamReader<WatchRequest> _requests;
    private readonly IAsyncStreamWriter<WatchResponse> _responses;
    private readonly WatchStream _stream;
    private readonly SemaphoreSlim _controlSlots;
    private readonly int _maxResponseBytes;

    // options of each watcher, written by the receive loop under _gate together with the Watch call, read by the
    // send loop when it meets the watcher's Created message
    private readonly object _gate = new();
    private readonly Dictionary<long, WatchCreateRequest> _created = [];

    // progress_notify watchers: true = no events sent since the last tick (guarded by _gate)
    private readonly Dictionary<long, bool> _progress = [];

    public WatchSession(EtcdServer server, WatchServiceOptions options, IAsyncStreamReader<WatchRequest> requests, IAsyncStreamWriter<WatchResponse> responses)
    {
        _server = server;
        _options = options;
        _requests = requests;
        _responses = responses;
        _stream = server.Watchable.NewWatchStream();
        _controlSlots = new SemaphoreSlim(options.ControlBufferLength, options.ControlBufferLength);
        _maxResponseBytes = options.MaxResponseBytes ?? server.Options.MaxRequestBytes;
    }

    public void Dispose()
    {
        _stream.Dispose();
        _controlSlots.Dispose();
    }

    public async Task RunAsync(bool requireLeader, CancellationToken callToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(callToken);
        var ct = cts.Token;
        using var ticker = _server.Options.Time.CreateTimer(_ => ProgressTick(), null, _options.ProgressNotifyInterval, _options.ProgressNotifyInterval);
        var send = Task.Run(() => SendLoopAsync(ct), CancellationToken.None);
        var recv = Task.Run(() => RecvLoopAsync(ct), CancellationToken.None);
        var leader = requireLeader ? MonitorLeaderAsync(ct) : Task.Delay(Timeout.Infinite, ct);
        var first = await Task.WhenAny(send, recv, leader).ConfigureAwait(false);
        if (first == recv && recv.IsCompletedSuccessfully)
        {
            // half-close: etcd keeps sending until the client goes away
            first = await Task.WhenAny(send, leader).ConfigureAwait(false);
        }

        cts.Cancel();
        _stream.Dispose();
        await Task.WhenAll(Quiet(send), Quiet(recv), Quiet(leader)).ConfigureAwait(false);
        if (callToken.IsCancellationRequested)
        {
            return;
        }

        if (first.IsFaulted && first.Exception!.InnerException is RpcException e)
        {
            throw e;
        }
    }

    private static async Task Quiet(Task t)
    {
        try
        {
            await t.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // reported through the first task to finish, or the call is already gone
        }
    }

    /// <summary>etcd's <c>monitorLeader</c>: a stream that required a leader fails after three election timeouts without one.</summary>
    private async Task MonitorLeaderAsync(CancellationToken ct)
    {
        var interval = TimeSpan.FromMilliseconds(Math.Max(1, _server.Options.ElectionTimeoutMs));
        var misses = 0;
        while (true)
        {
            await Task.Delay(interval, _server.Options.Time, ct).ConfigureAwait(false);
            misses = _server.Leader == 0 ? misses + 1 : 0;
            if (misses >= MaxNoLeaderChecks)
            {
                throw EtcdErrors.NoLeader.ToException();
            }
        }
    }

    private async Task<bool> ReceiveAsync(CancellationToken ct)
    {
        try
        {
            return await _requests.MoveNext(ct).ConfigureAwait(false);
        }
        catch (RpcException e) when (Metrics.GrpcServerMetrics.IsStreamFailure(e))
        {
            _server.Metrics.Grpc.StreamFailed("receive", "watch");
            throw;
        }
    }

    private async Task SendAsync(WatchResponse response, CancellationToken ct)
    {
        try
        {
            await _responses.WriteAsync(response, ct).ConfigureAwait(false);
        }
        catch (RpcException e) when (Metrics.GrpcServerMetrics.IsStreamFailure(e))
        {
            _server.Metrics.Grpc.StreamFailed("send", "watch");
            throw;
        }
    }

    private async Task RecvLoopAsync(CancellationToken ct)
    {
        while (await ReceiveAsync(ct).ConfigureAwait(false))
        {
            var req = _requests.Current;
            switch (req.RequestUnionCase)
            {
                case WatchRequest.RequestUnionOneofCase.CreateRequest:
                    await _controlSlots.WaitAsync(ct).ConfigureAwait(false);
                    if (await _server.WatchDeniedReasonAsync(req.CreateRequest.Key, req.CreateRequest.RangeEnd, ct).ConfigureAwait(false) is { } denied)
                    {
                        var wr = new WatchResponse { Header = new ResponseHeader { Revision = _stream.Revision }, WatchId = -1, Created = true, Canceled = true, CancelReason = denied };
                        _stream.EnqueueControl(WatchStreamMessage.Control(-1, _stream.Revision, wr));
                        break;
                    }

                    Create(req.CreateRequest);
                    break;
                case WatchRequest.RequestUnionOneofCase.CancelRequest:
                    await _controlSlots.WaitAsync(ct).ConfigureAwait(false);
                    lock (_gate)
                    {
                        var id = req.CancelRequest.WatchId;
                        if (_stream.Cancel(id))
                        {
                            _progress.Remove(id);
                        }
                        else
                        {
                            // etcd answers nothing for an unknown id
                            _controlSlots.Release();
                        }
                    }

                    break;
                case WatchRequest.RequestUnionOneofCase.ProgressRequest:
                    await _controlSlots.WaitAsync(ct).ConfigureAwait(false);
                    _stream.RequestProgressAll();
                    break;
            }
        }
    }

    private void Create(WatchCreateRequest creq)
    {
        var key = creq.Key.Length == 0 ? [0] : creq.Key.ToByteArray();
        byte[]? end = creq.RangeEnd.Length switch
        {
            0 => null,
            1 when creq.RangeEnd[0] == 0 => [],
            _ => creq.RangeEnd.ToByteArray(),
        };
        var filter = WatchFilter.None;
        foreach (var f in creq.Filters)
        {
            filter |= f switch
            {
                WatchCreateRequest.Types.FilterType.Noput => WatchFilter.NoPut,
                WatchCreateRequest.Types.FilterType.Nodelete => WatchFilter.NoDelete,
                _ => WatchFilter.None,
            };
        }

        lock (_gate)
        {
            var (id, error) = _stream.Watch(creq.WatchId, key, end, creq.StartRevision, filter);
            if (error is not null)
            {
                var wr = new WatchResponse
                {
                    Header = new ResponseHeader { Revision = _stream.Revision },
                    WatchId = -1,
                    Created = true,
                    Canceled = true,
                    CancelReason = error,
                };
                _stream.EnqueueControl(WatchStreamMessage.Control(-1, _stream.Revision, wr));
                return;
            }

            _created[id] = creq;
            if (creq.ProgressNotify)
            {
                _progress[id] = true;
            }
        }
    }

    private void ProgressTick()
    {
        lock (_gate)
        {
            foreach (var id in _progress.Keys.ToList())
            {
                if (_progress[id])
                {
                    _stream.RequestProgress(id);
                }

                _progress[id] = true;
            }
        }
    }

    private async Task SendLoopAsync(CancellationToken ct)
    {
        // per-watcher options, owned by this loop from the watcher's Created message on
        var prevKv = new HashSet<long>();
        var fragment = new HashSet<long>();
        while (await _stream.ReadAsync(ct).ConfigureAwait(false) is { } m)
        {
            WatchResponse wr;
            switch (m.Kind)
            {
                case WatchMessageKind.Created:
                    lock (_gate)
                    {
                        if (_created.Remove(m.WatchId, out var creq))
                        {
                            if (creq.PrevKv)
                            {
                                prevKv.Add(m.WatchId);
                            }

                            if (creq.Fragment)
                            {
                                fragment.Add(m.WatchId);
                            }
                        }
                    }

                    wr = new WatchResponse { WatchId = m.WatchId, Created = true };
                    break;
                case WatchMessageKind.Events:
                    wr = new WatchResponse { WatchId = m.WatchId };
                    AddEvents(wr, m.Events, prevKv.Contains(m.WatchId));
                    if (m.Events.Count > 0)
                    {
                        lock (_gate)
                        {
                            if (_progress.ContainsKey(m.WatchId))
                            {
                                _progress[m.WatchId] = false;
                            }
                        }
                    }

                    break;
                case WatchMessageKind.Progress:
                    wr = new WatchResponse { WatchId = m.WatchId };
                    break;
                case WatchMessageKind.ProgressAll:
                    wr = new WatchResponse { WatchId = -1 };
                    break;
                case WatchMessageKind.Compacted:
                    wr = new WatchResponse { WatchId = m.WatchId, CompactRevision = m.CompactRevision, Canceled = true };
                    Forget(m.WatchId, prevKv, fragment);
                    break;
                case WatchMessageKind.Canceled:
                    wr = new WatchResponse { WatchId = m.WatchId, Canceled = true };
                    Forget(m.WatchId, prevKv, fragment);
                    break;
                default:
                    wr = (WatchResponse)m.Tag!;
                    break;
            }

            wr.Header ??= new ResponseHeader();
            if (m.Kind == WatchMessageKind.Compacted)
            {
                // etcd's compaction notice carries no revision: its header says 0
                _server.FillHeader(wr.Header, withRevision: false);
            }
            else
            {
                if (wr.Header.Revision == 0)
                {
                    wr.Header.Revision = m.Revision;
                }

                _server.FillHeader(wr.Header);
            }
            if (m.Kind == WatchMessageKind.Events && fragment.Contains(m.WatchId))
            {
                await SendFragmentsAsync(wr, ct).ConfigureAwait(false);
            }
            else
            {
                await SendAsync(wr, ct).ConfigureAwait(false);
            }

            if (m.Kind is WatchMessageKind.Created or WatchMessageKind.Canceled or WatchMessageKind.ProgressAll or WatchMessageKind.Control)
            {
                _controlSlots.Release();
            }
        }
    }

    private void Forget(long id, HashSet<long> prevKv, HashSet<long> fragment)
    {
        prevKv.Remove(id);
        fragment.Remove(id);
        lock (_gate)
        {
            _progress.Remove(id);
        }
    }

    private void AddEvents(WatchResponse wr, IReadOnlyList<Event> events, bool withPrevKv)
    {
        foreach (var ev in events)
        {
            if (!withPrevKv || (ev.Type == Event.Types.EventType.Put && ev.Kv.CreateRevision == ev.Kv.ModRevision))
            {
                wr.Events.Add(ev);
                continue;
            }

            // the value before the event, from history (etcd reads the key at ModRevision - 1); the shared
            // event is cloned, never modified
            var withPrev = ev.Clone();
            try
            {
                var r = _server.Kv.Range(new RangeRequest { Key = ev.Kv.Key, Revision = ev.Kv.ModRevision - 1 });
                if (r.Kvs.Count > 0)
                {
                    withPrev.PrevKv = r.Kvs[0];
                }
            }
            catch (EtcdException)
            {
                // compacted meanwhile: sent without prev_kv, as etcd does
            }

            wr.Events.Add(withPrev);
        }
    }

    /// <summary>etcd's <c>sendFragments</c>: splits events so that each response stays under the size limit; every part but the last has <c>fragment</c> set.</summary>
    private async Task SendFragmentsAsync(WatchResponse wr, CancellationToken ct)
    {
        if (wr.CalculateSize() < _maxResponseBytes || wr.Events.Count < 2)
        {
            await SendAsync(wr, ct).ConfigureAwait(false);
            return;
        }

        var idx = 0;
        while (idx < wr.Events.Count)
        {
            var part = new WatchResponse
            {
                Header = wr.Header,
                WatchId = wr.WatchId,
                CompactRevision = wr.CompactRevision,
                Fragment = true,
            };
            var size = part.CalculateSize();
            while (idx < wr.Events.Count)
            {
                var ev = wr.Events[idx];
                var evSize = CodedOutputStream.ComputeMessageSize(ev) + 1;
                if (part.Events.Count > 0 && size + evSize >= _maxResponseBytes)
                {
                    break;
                }

                part.Events.Add(ev);
                size += evSize;
                idx++;
            }

            part.Fragment = idx < wr.Events.Count;
            await SendAsync(part, ct).ConfigureAwait(false);
        }
    }
}
