using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading.Channels;
using Etcd.Raft;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>
/// The network <see cref="IRaftTransport"/>: etcd 3.4's peer protocol (rafthttp) over HTTP/1.1 on the peer URLs, so our
/// members and etcd's form one cluster. Each member serves (<see cref="Serve(PeerListener)"/>) and dials, per peer:
/// <list type="bullet">
/// <item>two long-lived streams the receiver opens with <c>GET /raft/stream/msgapp/LOCAL</c> and
/// <c>GET /raft/stream/message/LOCAL</c> on the sender's peer URL; the sender answers 200 and writes messages to the
/// response body (msgappv2 for MsgApp, length-prefixed raftpb.Message for everything else, link heartbeats every
/// 5 s / 3 so the reader's 5 s read timeout does not fire), see <see cref="RaftStreamEncoder"/>;</item>
/// <item>the pipeline, <c>POST /raft</c> with one raftpb.Message per request, for messages sent while no stream is up;</item>
/// <item>snapshots, <c>POST /raft/snapshot</c>: the MsgSnap in the message encoding followed by the bbolt database
/// streamed from a pinned backend image (<see cref="OutgoingSnapshot"/>), saved by the receiver as
/// <c>member/snap/%016x.snap.db</c> before raft sees the message;</item>
/// <item>and the member handlers etcd serves beside them: <c>/raft/probing</c>, <c>/members</c>,
/// <c>/members/promote/ID</c>, <c>/members/hashkv</c>, <c>/leases</c>, <c>/leases/internal</c>, <c>/version</c>.</item>
/// </list>
/// Every request carries etcd's headers (<c>X-Server-From</c>, <c>X-Server-Version</c>, <c>X-Min-Cluster-Version</c>,
/// <c>X-Etcd-Cluster-ID</c>, <c>X-PeerURLs</c>, and <c>X-Raft-To</c> on streams) and is refused with etcd's status codes:
/// 412 <c>cluster ID mismatch</c>, 410 <c>removed member</c> on a stream (the removed sender stops), 403 on the pipeline,
/// 404 <c>error sender not found</c> for unknown senders. TLS follows the member's peer <see cref="EtcdTlsInfo"/> (etcd's
/// <c>--peer-*</c> flags): the listener demands a client certificate under <c>--peer-client-cert-auth</c> or a trusted CA
/// and checks it against the CA, the allowed CN or hostname and the CRL; the dialer checks the listener's certificate
/// against the CA and the same CN/hostname rule, and logs with etcd's words (<c>rejected connection</c>,
/// <c>remote error: tls: bad certificate</c>, <c>client certificate authentication failed</c>).
/// </summary>
/// <remarks>
/// Back-pressure as etcd's stream writer: each stream has a bounded queue of <see cref="QueueCapacity"/> messages; when
/// it is full the message is dropped and the peer reported unreachable; the pipeline queue holds 64. Stream readers redial
/// every 100 ms while a peer is down (etcd's rate limit). Thread-safe.
/// </remarks>
public sealed partial class TcpRaftTransport : IRaftTransport
{
    /// <summary>Messages queued per stream before new ones are dropped (etcd's streamBufSize).</summary>
    public const int QueueCapacity = 4096;

    /// <summary>etcd's ConnReadTimeout: a stream reader gives up on a stream silent this long.</summary>
    internal static readonly TimeSpan ConnReadTimeout = TimeSpan.FromSeconds(5);

    /// <summary>What etcd 3.4 reports as its minimum cluster version (<c>X-Min-Cluster-Version</c>).</summary>
    internal const string MinClusterVersion = "3.0.0";

    /// <summary>Response header of ours telling a dialer its client certificate was refused (where Go sends a TLS alert).</summary>
    internal const string TlsAlertHeader = "X-Etcd-Tls-Alert";

    /// <summary>What our dialer sends instead of a request after refusing the listener's certificate.</summary>
    internal static ReadOnlySpan<byte> CertificateRejectedMarker => "EPR1\u0006"u8;

    private readonly ConcurrentDictionary<ulong, PeerState> _peers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _log;
    private readonly EtcdTlsInfo? _peerTls;
    private readonly List<PeerListener> _listeners = [];
    private readonly Timer _heartbeats;
    private IRaftTransportHandler? _handler;
    private string? _localUrls;

    /// <summary>Creates the transport.</summary>
    /// <param name="logger">Where peer connection events are logged (etcd's rafthttp messages).</param>
    /// <param name="peerTls">The peer TLS setup (<see cref="TlsConfig.ForPeers"/>), used to dial https peer URLs and to
    /// serve listeners started with TLS; null = dial https peers accepting any certificate and presenting none.</param>
    public TcpRaftTransport(ILogger logger, EtcdTlsInfo? peerTls = null)
    {
        _log = logger;
        _peerTls = peerTls;
        _heartbeats = new Timer(_ => SendLinkHeartbeats(), null, ConnReadTimeout / 3, ConnReadTimeout / 3);
    }

    /// <summary>How often the same dial failure of one peer is logged again.</summary>
    private static readonly TimeSpan DialErrorLogInterval = TimeSpan.FromSeconds(5);

    /// <inheritdoc/>
    public void Start(IRaftTransportHandler handler) => _handler = handler;

    /// <summary>Where peer traffic is counted (etcd's rafthttp metrics); set by the member before it starts. Null = not counted.</summary>
    public Etcd.Server.Metrics.PeerMetrics? Metrics { get; set; }

    /// <inheritdoc/>
    public bool SendsSnapshotDb => true;

    private Etcd.Server.Metrics.PeerMetrics.Peer? PeerStats(ulong remote)
        => Metrics is { } m && _handler is { } h ? m.For(h.MemberId, remote) : null;

    /// <summary>This member's advertised peer URLs, comma-separated (<c>X-PeerURLs</c>); empty until known.</summary>
    private string LocalPeerUrls()
    {
        if (_localUrls is { } u)
        {
            return u;
        }

        var h = _handler;
        var self = h?.DescribeCluster().Members.FirstOrDefault(m => m.Id == h.MemberId);
        if (self is null || self.PeerUrls.Count == 0)
        {
            return "";
        }

        return _localUrls = string.Join(",", self.PeerUrls);
    }

    /// <summary>The headers every request to a peer carries (etcd's createPostRequest / stream dial).</summary>
    private List<KeyValuePair<string, string>> PeerHeaders(string? contentType = null)
    {
        var h = _handler;
        var list = new List<KeyValuePair<string, string>>(7);
        if (contentType is not null)
        {
            list.Add(new("Content-Type", contentType));
        }

        list.Add(new("X-Server-From", Hex(h?.MemberId ?? 0)));
        list.Add(new("X-Server-Version", EtcdServer.Version));
        list.Add(new("X-Min-Cluster-Version", MinClusterVersion));
        list.Add(new("X-Etcd-Cluster-ID", Hex(h?.ClusterId ?? 0)));
        var urls = LocalPeerUrls();
        if (urls.Length > 0)
        {
            list.Add(new("X-PeerURLs", urls));
        }

        return list;
    }

    /// <inheritdoc/>
    public void Send(IReadOnlyList<Message> messages)
    {
        foreach (var m in messages)
        {
            if (!_peers.TryGetValue(m.To, out var p))
            {
                continue;
            }

            if (m.Type == MessageType.MsgSnap)
            {
                // A snapshot without a database (tests, or a peer that carries the state in the message).
                _ = SendSnapshotAsync(p, new OutgoingSnapshot(m, 0, static _ => 0, null));
                continue;
            }

            var writer = m.Type == MessageType.MsgApp && p.MsgApp.Working ? p.MsgApp : p.Messages.Working ? p.Messages : null;
            if (writer is not null)
            {
                if (!writer.Queue.Writer.TryWrite(m))
                {
                    (p.Stats ??= PeerStats(p.Id))?.SentFailures.Inc();
                    _handler?.ReportUnreachable(m.To);
                }

                continue;
            }

            if (!p.Pipeline.Writer.TryWrite(m))
            {
                (p.Stats ??= PeerStats(p.Id))?.SentFailures.Inc();
                _handler?.ReportUnreachable(m.To);
            }
        }
    }

    /// <inheritdoc/>
    public void SendSnapshot(OutgoingSnapshot snapshot)
    {
        if (!_peers.TryGetValue(snapshot.Message.To, out var p))
        {
            snapshot.Dispose();
            return;
        }

        _ = SendSnapshotAsync(p, snapshot);
    }

    /// <summary>Every 5 s / 3, a link heartbeat on each working stream (etcd's stream writer ticker).</summary>
    private void SendLinkHeartbeats()
    {
        foreach (var (_, p) in _peers)
        {
            foreach (var w in new[] { p.MsgApp, p.Messages })
            {
                if (w.Working)
                {
                    w.Queue.Writer.TryWrite(LinkHeartbeat);
                }
            }
        }
    }

    private static readonly Message LinkHeartbeat = new() { Type = MessageType.MsgHeartbeat };

    /// <inheritdoc/>
    public void AddPeer(ulong id, IReadOnlyList<string> peerUrls)
    {
        if (_handler is null || id == _handler.MemberId)
        {
            return;
        }

        var p = new PeerState(id, [.. peerUrls]);
        if (_peers.TryAdd(id, p))
        {
            p.Runs.Add(Task.Run(() => RunStreamReaderAsync(p, RaftStreamType.MsgAppV2)));
            p.Runs.Add(Task.Run(() => RunStreamReaderAsync(p, RaftStreamType.Message)));
            for (var i = 0; i < PipelineConnections; i++)
            {
                p.Runs.Add(Task.Run(() => RunPipelineAsync(p)));
            }

            _log.LogInformation("added remote peer {local-member-id} {remote-peer-id} {remote-peer-urls}", Hex(_handler.MemberId), Hex(id), string.Join(",", peerUrls));
        }
    }

    /// <inheritdoc/>
    public void RemovePeer(ulong id)
    {
        if (_peers.TryRemove(id, out var p))
        {
            p.Stop.Cancel();
            p.Pipeline.Writer.TryComplete();
            p.MsgApp.Detach();
            p.Messages.Detach();
            _log.LogInformation("removed remote peer {local-member-id} {removed-remote-peer-id}", Hex(_handler?.MemberId ?? 0), Hex(id));
        }
    }

    /// <inheritdoc/>
    public void UpdatePeer(ulong id, IReadOnlyList<string> peerUrls)
    {
        if (_peers.ContainsKey(id))
        {
            RemovePeer(id);
            AddPeer(id, peerUrls);
        }
    }

    /// <summary>Whether the peer has dialled our stream of that type, so messages to it go there (tests).</summary>
    internal bool IsStreaming(ulong id, bool msgApp) => _peers.TryGetValue(id, out var p) && (msgApp ? p.MsgApp : p.Messages).Working;

    /// <inheritdoc/>
    public DateTimeOffset? ActiveSince(ulong id) => _peers.TryGetValue(id, out var p) ? p.ActiveSince : null;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _heartbeats.DisposeAsync().ConfigureAwait(false);
        lock (_listeners)
        {
            foreach (var l in _listeners)
            {
                l.Stop();
            }
        }

        var runs = new List<Task>();
        foreach (var (_, p) in _peers)
        {
            p.Stop.Cancel();
            p.Pipeline.Writer.TryComplete();
            p.MsgApp.Detach();
            p.Messages.Detach();
            runs.AddRange(p.Runs);
        }

        try
        {
            await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private static string Hex(ulong id) => Membership.Member.IdString(id);

    /// <summary>etcd's pipeline keeps 4 connections per peer.</summary>
    private const int PipelineConnections = 4;

    /// <summary>A peer: its URLs, its two outgoing stream writers (attached when the peer dials us), its pipeline queue.</summary>
    private sealed class PeerState
    {
        public PeerState(ulong id, string[] urls)
        {
            Id = id;
            Urls = urls;
            MsgApp = new StreamWriterSlot(this, RaftStreamType.MsgAppV2);
            Messages = new StreamWriterSlot(this, RaftStreamType.Message);
        }

        public ulong Id { get; }

        public volatile string[] Urls;

        public int NextUrl;

        public readonly StreamWriterSlot MsgApp;

        public readonly StreamWriterSlot Messages;

        /// <summary>etcd's pipelineBufSize.</summary>
        public readonly Channel<Message> Pipeline = Channel.CreateBounded<Message>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.Wait });

        public readonly CancellationTokenSource Stop = new();

        public Etcd.Server.Metrics.PeerMetrics.Peer? Stats;

        public readonly ConcurrentBag<Task> Runs = [];

        private readonly object _lock = new();
        private int _activeParts;
        private DateTimeOffset? _activeSince;
        private string? _lastDialError;
        private DateTimeOffset _lastDialErrorLogged;

        public DateTimeOffset? ActiveSince
        {
            get { lock (_lock) { return _activeSince; } }
        }

        /// <summary>A stream (either direction) came up; returns true when the peer became active.</summary>
        public bool PartUp()
        {
            lock (_lock)
            {
                if (_activeParts++ == 0)
                {
                    _activeSince = DateTimeOffset.UtcNow;
                    return true;
                }

                return false;
            }
        }

        /// <summary>A stream went down; returns true when the peer became inactive.</summary>
        public bool PartDown()
        {
            lock (_lock)
            {
                if (_activeParts > 0 && --_activeParts == 0)
                {
                    _activeSince = null;
                    return true;
                }

                return false;
            }
        }

        /// <summary>Whether a dial failure is worth a log line: a new error, or the same one after <paramref name="interval"/>.</summary>
        public bool ShouldLogDialError(string error, TimeSpan interval)
        {
            lock (_lock)
            {
                var now = DateTimeOffset.UtcNow;
                if (error == _lastDialError && now - _lastDialErrorLogged < interval)
                {
                    return false;
                }

                _lastDialError = error;
                _lastDialErrorLogged = now;
                return true;
            }
        }
    }

    /// <summary>
    /// One outgoing stream to a peer (etcd's streamWriter): a queue, and at most one attached connection (the response
    /// to the peer's stream GET) that drains it. A new connection replaces the old one.
    /// </summary>
    private sealed class StreamWriterSlot(PeerState peer, RaftStreamType type)
    {
        public PeerState Peer { get; } = peer;

        public RaftStreamType Type { get; } = type;

        public readonly Channel<Message> Queue = Channel.CreateBounded<Message>(new BoundedChannelOptions(QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

        public readonly SemaphoreSlim Serving = new(1, 1);

        private CancellationTokenSource? _current;
        private volatile bool _working;

        public bool Working => _working;

        /// <summary>Claims the slot for a new connection, cancelling the one attached before.</summary>
        public CancellationTokenSource Attach(CancellationToken stop)
        {
            var cts = CancellationTokenSource.CreateLinkedTokenSource(stop, Peer.Stop.Token);
            var old = Interlocked.Exchange(ref _current, cts);
            try
            {
                old?.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }

            return cts;
        }

        public void SetWorking(bool working) => _working = working;

        /// <summary>Closes the attached connection, if any.</summary>
        public void Detach()
        {
            _working = false;
            try
            {
                Volatile.Read(ref _current)?.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        /// <summary>Drops what is queued (etcd's writer drops its buffer with the connection); returns how many.</summary>
        public int DropQueued()
        {
            var n = 0;
            while (Queue.Reader.TryRead(out var m))
            {
                if (!RaftStreamTypes.IsLinkHeartbeat(m))
                {
                    n++;
                }
            }

            return n;
        }
    }
}
