using System.Diagnostics;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using Etcd.Raft;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>
/// The network <see cref="IRaftTransport"/>: one outgoing TCP connection per peer carrying length-prefixed
/// <c>raftpb.Message</c> frames (protocol in <c>PeerWire</c>), TLS when the peer URL is https, a separate
/// connection per MsgSnap, and the listening side for connections accepted on <c>--listen-peer-urls</c>
/// (<see cref="Serve"/>). Every connection starts with a hello carrying the cluster ID, checked by the listener.
/// TLS follows the member's peer <see cref="EtcdTlsInfo"/> (etcd's <c>--peer-*</c> flags): the listener demands a
/// client certificate under <c>--peer-client-cert-auth</c> or a trusted CA and checks it against the CA, the allowed
/// CN or hostname and the CRL; the dialer checks the listener's certificate against the CA and the same CN/hostname
/// rule. Either side's refusal is told to the other over the handshaken connection (see <c>PeerWire</c>) and logged
/// with etcd's words (<c>rejected connection</c>, <c>remote error: tls: bad certificate</c>,
/// <c>client certificate authentication failed</c>).
/// </summary>
/// <remarks>
/// Back-pressure as etcd's stream writer: each peer has a bounded queue of <see cref="QueueCapacity"/> messages;
/// when it is full the message is dropped and the peer reported unreachable. While a peer cannot be dialled its
/// queued messages are dropped (raft re-sends), and dialling is retried with back-off from 50 ms to 1 s.
/// Thread-safe.
/// </remarks>
public sealed class TcpRaftTransport : IRaftTransport
{
    /// <summary>Messages queued per peer before new ones are dropped (etcd's streamBufSize).</summary>
    public const int QueueCapacity = 4096;

    private readonly ConcurrentDictionary<ulong, PeerSender> _peers = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _log;
    private readonly EtcdTlsInfo? _peerTls;
    private readonly List<TcpListener> _listeners = [];
    private IRaftTransportHandler? _handler;

    /// <summary>Creates the transport.</summary>
    /// <param name="logger">Where peer connection events are logged (etcd's rafthttp messages).</param>
    /// <param name="peerTls">The peer TLS setup (<see cref="TlsConfig.ForPeers"/>), used to dial https peer URLs and to
    /// serve listeners started with TLS; null = dial https peers accepting any certificate and presenting none.</param>
    public TcpRaftTransport(ILogger logger, EtcdTlsInfo? peerTls = null)
    {
        _log = logger;
        _peerTls = peerTls;
    }

    /// <summary>How often the same dial failure of one peer is logged again.</summary>
    private static readonly TimeSpan DialErrorLogInterval = TimeSpan.FromSeconds(5);

    /// <inheritdoc/>
    public void Start(IRaftTransportHandler handler) => _handler = handler;

    /// <summary>Where peer traffic is counted (etcd's rafthttp metrics); set by the member before it starts. Null = not counted.</summary>
    public Etcd.Server.Metrics.PeerMetrics? Metrics { get; set; }

    private Etcd.Server.Metrics.PeerMetrics.Peer? PeerStats(ulong remote)
        => Metrics is { } m && _handler is { } h ? m.For(h.MemberId, remote) : null;

    /// <summary>
    /// Accepts peer connections on <paramref name="listener"/> (already started) until disposal, wrapping each in
    /// TLS (the peer <see cref="EtcdTlsInfo"/>) when <paramref name="tls"/>. Connections accepted before
    /// <see cref="Start"/> wait for it only as long as their hello takes; earlier ones are refused.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="tls"/> without a peer TLS setup with a key pair.</exception>
    public void Serve(TcpListener listener, bool tls)
    {
        if (tls && _peerTls?.Certificate is null)
        {
            throw new InvalidOperationException($"cannot listen on TLS for {listener.LocalEndpoint}: KeyFile and CertFile are not presented");
        }

        lock (_listeners)
        {
            _listeners.Add(listener);
        }

        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket s;
                try
                {
                    s = await listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
                {
                    return;
                }

                _ = Task.Run(() => HandleConnectionAsync(s, tls));
            }
        });
    }

    private async Task HandleConnectionAsync(Socket socket, bool tls)
    {
        socket.NoDelay = true;
        var remote = RemoteAddress(socket);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            string? rejection = null;
            if (tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                var options = _peerTls!.ServerOptions(null, [SslApplicationProtocol.Http11, SslApplicationProtocol.Http2]);
                if (options.ClientCertificateRequired)
                {
                    // Judge the certificate here but finish the handshake, so the dialer can be told why (below).
                    options.RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                    {
                        rejection = _peerTls.VerifyClient(certificate, chain);
                        return true;
                    };
                }

                using var hs = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                hs.CancelAfter(TimeSpan.FromSeconds(10));
                try
                {
                    await ssl.AuthenticateAsServerAsync(options, hs.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException
                    || (e is OperationCanceledException && !_stop.IsCancellationRequested))
                {
                    LogRejected(remote, e is OperationCanceledException ? "tls: handshake timed out" : Innermost(e).Message);
                    return;
                }

                // etcd's peer listener checks the client certificate's SANs against the dialing address (checkSAN)
                // unless --experimental-peer-skip-client-san-verification, and drops the connection on a mismatch.
                if (rejection is null && !_peerTls.SkipClientSanVerify && ssl.RemoteCertificate is { } rc
                    && socket.RemoteEndPoint is IPEndPoint rep)
                {
                    using var cert = new System.Security.Cryptography.X509Certificates.X509Certificate2(rc);
                    var sanError = await EtcdTlsInfo.CheckClientSanAsync(cert, rep.Address.IsIPv4MappedToIPv6 ? rep.Address.MapToIPv4() : rep.Address, hs.Token).ConfigureAwait(false);
                    if (sanError is not null)
                    {
                        LogRejected(remote, sanError);
                        return;
                    }
                }
            }

            if (rejection is not null)
            {
                await RefuseCertificateAsync(stream, remote, rejection).ConfigureAwait(false);
                return;
            }

            await ServeStreamAsync(stream, _stop.Token, remote).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
            or System.Security.Authentication.AuthenticationException or InvalidDataException or Google.Protobuf.InvalidProtocolBufferException)
        {
            _log.LogDebug("peer connection closed {error}", e.Message);
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Refuses a dialer whose client certificate failed our checks: answers its hello with
    /// <see cref="PeerHelloStatus.BadCertificate"/> (Go's bad_certificate alert). When the dialer had refused our
    /// certificate first (its hello says so, as Go's TLS 1.3 client judges the server before showing its own
    /// certificate), that is what is logged.
    /// </summary>
    private async Task RefuseCertificateAsync(Stream stream, string remote, string rejection)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(TimeSpan.FromSeconds(5));
        var hello = new byte[PeerWire.HelloSize];
        try
        {
            await stream.ReadExactlyAsync(hello, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            LogRejected(remote, rejection);
            throw;
        }

        if (PeerWire.TryParseHello(hello, out var kind, out _, out _, out _) && kind == PeerStreamKind.CertificateRejected)
        {
            LogRejected(remote, "remote error: tls: bad certificate");
            return;
        }

        LogRejected(remote, rejection);
        stream.WriteByte((byte)PeerHelloStatus.BadCertificate);
        await stream.FlushAsync(cts.Token).ConfigureAwait(false);
    }

    private void LogRejected(string remote, string error) =>
        _log.LogFields(LogLevel.Warning, "rejected connection", ("remote-addr", remote), ("server-name", ""), ("error", error));

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    private static string RemoteAddress(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint is IPEndPoint ep ? (ep.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(ep.Address.MapToIPv4(), ep.Port) : ep).ToString() : "";
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return "";
        }
    }

    /// <summary>Serves one accepted peer connection (after TLS) until it ends. Used by <see cref="Serve"/>; public for tests over other streams.</summary>
    internal async Task ServeStreamAsync(Stream stream, CancellationToken ct, string remote = "")
    {
        var hello = new byte[PeerWire.HelloSize];
        using (var hs = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            hs.CancelAfter(TimeSpan.FromSeconds(10));
            await stream.ReadExactlyAsync(hello, hs.Token).ConfigureAwait(false);
        }

        var h = _handler;
        PeerHelloStatus status;
        if (!PeerWire.TryParseHello(hello, out var kind, out var clusterId, out var from, out var to) || h is null)
        {
            status = PeerHelloStatus.BadHello;
        }
        else if (kind == PeerStreamKind.CertificateRejected)
        {
            LogRejected(remote, "remote error: tls: bad certificate");
            return;
        }
        else if (kind == PeerStreamKind.ClusterQuery)
        {
            stream.WriteByte((byte)PeerHelloStatus.Ok);
            var c = h.DescribeCluster();
            var json = JsonSerializer.SerializeToUtf8Bytes(new ClusterDoc { ClusterId = c.ClusterId, Members = [.. c.Members] });
            await PeerWire.WriteFrameAsync(stream, json, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            return;
        }
        else if (clusterId != h.ClusterId)
        {
            _log.LogWarning(
                "request cluster ID mismatch {local-member-id} {local-member-cluster-id} {remote-peer-id} {remote-peer-cluster-id}",
                Hex(h.MemberId), Hex(h.ClusterId), Hex(from), Hex(clusterId));
            status = PeerHelloStatus.ClusterIdMismatch;
        }
        else if (h.IsRemoved(from))
        {
            _log.LogWarning("rejected stream from remote peer because it was removed {local-member-id} {remote-peer-id-stream-handler}", Hex(h.MemberId), Hex(from));
            status = PeerHelloStatus.SenderRemoved;
        }
        else if (to != h.MemberId)
        {
            status = PeerHelloStatus.WrongTarget;
        }
        else
        {
            status = PeerHelloStatus.Ok;
        }

        stream.WriteByte((byte)status);
        await stream.FlushAsync(ct).ConfigureAwait(false);
        if (status != PeerHelloStatus.Ok || h is null)
        {
            return;
        }

        if (kind == PeerStreamKind.Promote)
        {
            var req = await PeerWire.ReadFrameAsync(stream, 64, ct).ConfigureAwait(false);
            if (req is not { Length: 8 })
            {
                return;
            }

            var error = await h.PromoteAsLeaderAsync(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(req), ct).ConfigureAwait(false);
            byte[] answer = error is null ? [] : [(byte)error.Code, .. System.Text.Encoding.UTF8.GetBytes(error.Message)];
            await PeerWire.WriteFrameAsync(stream, answer, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            return;
        }

        if (kind == PeerStreamKind.Lease)
        {
            var req = await PeerWire.ReadFrameAsync(stream, PeerWire.MaxMessageFrameBytes, ct).ConfigureAwait(false);
            if (req is null)
            {
                return;
            }

            var answer = await h.ServeLeaseAsync(req, ct).ConfigureAwait(false);
            await PeerWire.WriteFrameAsync(stream, answer, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            return;
        }

        if (kind == PeerStreamKind.HashKv)
        {
            var req = await PeerWire.ReadFrameAsync(stream, 1024, ct).ConfigureAwait(false);
            if (req is null)
            {
                return;
            }

            byte[] answer;
            try
            {
                var resp = await h.ServeHashKvAsync(Etcdserverpb.HashKVRequest.Parser.ParseFrom(req).Revision, ct).ConfigureAwait(false);
                answer = [0, .. resp.ToByteArray()];
            }
            catch (Etcd.Api.EtcdException e)
            {
                answer = [1, .. System.Text.Encoding.UTF8.GetBytes(e.Error.Message)];
            }

            await PeerWire.WriteFrameAsync(stream, answer, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            return;
        }

        if (kind == PeerStreamKind.Snapshot)
        {
            var snapStats = PeerStats(from);
            var received = snapStats?.SnapshotReceiveStarted() ?? 0;
            var ok = false;
            try
            {
                var frame = await PeerWire.ReadFrameAsync(stream, PeerWire.MaxSnapshotFrameBytes, ct).ConfigureAwait(false)
                    ?? throw new EndOfStreamException("snapshot stream ended before the snapshot");
                snapStats?.ReceivedBytes.Inc(frame.Length + 4);
                var m = PeerWire.ParseMessage(frame);
                _log.LogInformation("received database snapshot {remote-snapshot-sender-id} {incoming-snapshot-index} {incoming-snapshot-message-size-bytes}",
                    Hex(from), m.Snapshot?.Metadata?.Index ?? 0, frame.Length);
                ok = h.Process(m);
            }
            finally
            {
                snapStats?.SnapshotReceiveEnded(received, ok);
            }

            stream.WriteByte(ok ? (byte)0 : (byte)1);
            await stream.FlushAsync(ct).ConfigureAwait(false);
            return;
        }

        _log.LogInformation("established TCP streaming connection with remote peer {stream-reader-type} {local-member-id} {remote-peer-id}", "stream Message", Hex(h.MemberId), Hex(from));
        var stats = PeerStats(from);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var frame = await PeerWire.ReadFrameAsync(stream, PeerWire.MaxMessageFrameBytes, ct).ConfigureAwait(false);
                if (frame is null)
                {
                    return;
                }

                stats?.ReceivedBytes.Inc(frame.Length + 4);
                if (!h.Process(PeerWire.ParseMessage(frame)))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or Google.Protobuf.InvalidProtocolBufferException && !ct.IsCancellationRequested)
        {
            stats?.ReceivedFailures.Inc();
            throw;
        }
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
                _ = SendSnapshotAsync(p, m);
                continue;
            }

            if (!p.Queue.Writer.TryWrite(m))
            {
                (p.Stats ??= PeerStats(p.Id))?.SentFailures.Inc();
                _handler?.ReportUnreachable(m.To);
            }
        }
    }

    private async Task SendSnapshotAsync(PeerSender p, Message m)
    {
        var h = _handler!;
        var ok = false;
        var stats = p.Stats ??= PeerStats(p.Id);
        var started = stats?.SnapshotSendStarted() ?? 0;
        try
        {
            _log.LogInformation("sending database snapshot {snapshot-receiver-id} {snapshot-index}", Hex(m.To), m.Snapshot.Metadata.Index);
            var (stream, _) = await DialAsync(p, PeerStreamKind.Snapshot, _stop.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var payload = Google.Protobuf.MessageExtensions.ToByteArray(m);
                await PeerWire.WriteFrameAsync(stream, payload, _stop.Token).ConfigureAwait(false);
                await stream.FlushAsync(_stop.Token).ConfigureAwait(false);
                stats?.SentBytes.Inc(payload.Length + 4);
                var ack = new byte[1];
                await stream.ReadExactlyAsync(ack, _stop.Token).ConfigureAwait(false);
                ok = ack[0] == 0;
            }

            _log.LogInformation("sent database snapshot {snapshot-receiver-id} {snapshot-index}", Hex(m.To), m.Snapshot.Metadata.Index);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or PeerRejectedException
            or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
        {
            _log.LogWarning("failed to send database snapshot {snapshot-receiver-id} {error}", Hex(m.To), e.Message);
        }

        stats?.SnapshotSendEnded(started, ok);
        h.ReportSnapshot(m.To, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        if (!ok)
        {
            h.ReportUnreachable(m.To);
        }
    }

    /// <inheritdoc/>
    public void AddPeer(ulong id, IReadOnlyList<string> peerUrls)
    {
        if (_handler is null || id == _handler.MemberId)
        {
            return;
        }

        var p = new PeerSender(id, [.. peerUrls]);
        if (_peers.TryAdd(id, p))
        {
            p.Run = Task.Run(() => RunPeerAsync(p));
            _log.LogInformation("added remote peer {local-member-id} {remote-peer-id} {remote-peer-urls}", Hex(_handler.MemberId), Hex(id), string.Join(",", peerUrls));
        }
    }

    /// <inheritdoc/>
    public void RemovePeer(ulong id)
    {
        if (_peers.TryRemove(id, out var p))
        {
            p.Stop.Cancel();
            p.Queue.Writer.TryComplete();
            _log.LogInformation("removed remote peer {local-member-id} {removed-remote-peer-id}", Hex(_handler?.MemberId ?? 0), Hex(id));
        }
    }

    /// <inheritdoc/>
    public void UpdatePeer(ulong id, IReadOnlyList<string> peerUrls)
    {
        if (_peers.TryGetValue(id, out var p))
        {
            p.Urls = [.. peerUrls];
            p.Stop.Cancel();
            RemovePeer(id);
            AddPeer(id, peerUrls);
        }
    }

    /// <inheritdoc/>
    public DateTimeOffset? ActiveSince(ulong id) => _peers.TryGetValue(id, out var p) ? p.ActiveSince : null;

    /// <inheritdoc/>
    public async Task<RemoteCluster?> FetchClusterAsync(IReadOnlyList<string> peerUrls, CancellationToken cancellationToken)
    {
        foreach (var url in peerUrls)
        {
            try
            {
                var probe = new PeerSender(0, [url]);
                var (stream, _) = await DialAsync(probe, PeerStreamKind.ClusterQuery, cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    var frame = await PeerWire.ReadFrameAsync(stream, PeerWire.MaxMessageFrameBytes, cancellationToken).ConfigureAwait(false);
                    if (frame is not null && JsonSerializer.Deserialize<ClusterDoc>(frame) is { } doc)
                    {
                        return new RemoteCluster(doc.ClusterId, doc.Members);
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or PeerRejectedException or JsonException
                or System.Security.Authentication.AuthenticationException or UriFormatException)
            {
                _log.LogWarning("failed to get cluster response {address} {error}", url, e.Message);
            }
        }

        return null;
    }

    /// <inheritdoc/>
    public async Task<Etcd.Api.EtcdError?> ForwardPromoteAsync(ulong leaderId, ulong learnerId, CancellationToken cancellationToken)
    {
        if (!_peers.TryGetValue(leaderId, out var p))
        {
            throw new IOException($"leader {Hex(leaderId)} is not a known peer");
        }

        try
        {
            var (stream, _) = await DialAsync(p, PeerStreamKind.Promote, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var id = new byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(id, learnerId);
                await PeerWire.WriteFrameAsync(stream, id, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                var answer = await PeerWire.ReadFrameAsync(stream, 64 * 1024, cancellationToken).ConfigureAwait(false)
                    ?? throw new IOException("leader closed the promote stream");
                return answer.Length == 0
                    ? null
                    : new Etcd.Api.EtcdError((Etcd.Api.Grpc.StatusCode)answer[0], System.Text.Encoding.UTF8.GetString(answer, 1, answer.Length - 1));
            }
        }
        catch (PeerRejectedException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    /// <inheritdoc/>
    public async Task<byte[]> ForwardLeaseAsync(ulong leaderId, byte[] request, CancellationToken cancellationToken)
    {
        if (!_peers.TryGetValue(leaderId, out var p))
        {
            throw new IOException($"leader {Hex(leaderId)} is not a known peer");
        }

        try
        {
            var (stream, _) = await DialAsync(p, PeerStreamKind.Lease, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                await PeerWire.WriteFrameAsync(stream, request, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                return await PeerWire.ReadFrameAsync(stream, PeerWire.MaxMessageFrameBytes, cancellationToken).ConfigureAwait(false)
                    ?? throw new IOException("leader closed the lease stream");
            }
        }
        catch (PeerRejectedException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    /// <inheritdoc/>
    public async Task<Etcdserverpb.HashKVResponse> FetchHashKvAsync(ulong peerId, long revision, CancellationToken cancellationToken)
    {
        if (!_peers.TryGetValue(peerId, out var p))
        {
            throw new IOException($"member {Hex(peerId)} is not a known peer");
        }

        try
        {
            var (stream, _) = await DialAsync(p, PeerStreamKind.HashKv, cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                await PeerWire.WriteFrameAsync(stream, new Etcdserverpb.HashKVRequest { Revision = revision }.ToByteArray(), cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                var answer = await PeerWire.ReadFrameAsync(stream, 64 * 1024, cancellationToken).ConfigureAwait(false);
                return answer switch
                {
                    [0, ..] => Etcdserverpb.HashKVResponse.Parser.ParseFrom(answer.AsSpan(1)),
                    [1, ..] => throw HashKvError(System.Text.Encoding.UTF8.GetString(answer, 1, answer.Length - 1)),
                    _ => throw new IOException("peer closed the hash stream"),
                };
            }
        }
        catch (PeerRejectedException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    /// <summary>The error a peer answered a HashKV with, as etcd's <c>getPeerHashKVHTTP</c> reads it from the body.</summary>
    private static Exception HashKvError(string text)
        => text.Contains("required revision has been compacted", StringComparison.Ordinal) ? Etcd.Api.EtcdErrors.Compacted.ToException()
        : text.Contains("required revision is a future revision", StringComparison.Ordinal) ? Etcd.Api.EtcdErrors.FutureRev.ToException()
        : new IOException($"unknown error: {text}");

    private async Task RunPeerAsync(PeerSender p)
    {
        var backoff = TimeSpan.FromMilliseconds(50);
        var reader = p.Queue.Reader;
        var batch = new List<Message>(64);
        while (!p.Stop.IsCancellationRequested && !_stop.IsCancellationRequested)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(p.Stop.Token, _stop.Token);
            Stream? stream = null;
            Task? closeWatch = null;
            try
            {
                // Dial at once and hold the stream open even when idle, as etcd keeps a stream to every peer: the
                // peer's ActiveSince (strict reconfiguration checks, member health) then says whether it is up,
                // including between followers, which never message each other.
                (stream, _) = await DialAsync(p, PeerStreamKind.Messages, linked.Token).ConfigureAwait(false);
                p.ActiveSince = DateTimeOffset.UtcNow;
                var stats = p.Stats ??= PeerStats(p.Id);
                stats?.Activated();
                backoff = TimeSpan.FromMilliseconds(50);
                _log.LogInformation("established TCP streaming connection with remote peer {stream-writer-type} {local-member-id} {remote-peer-id}", "stream Message", Hex(_handler!.MemberId), Hex(p.Id));
                using var connection = CancellationTokenSource.CreateLinkedTokenSource(linked.Token);
                closeWatch = WatchForCloseAsync(stream, connection);
                using var buffered = new BufferedStream(stream, 64 * 1024);
                while (await reader.WaitToReadAsync(connection.Token).ConfigureAwait(false))
                {
                    batch.Clear();
                    while (batch.Count < 512 && reader.TryRead(out var m))
                    {
                        batch.Add(m);
                    }

                    var bytes = 0L;
                    var h = _handler;
                    foreach (var m in batch)
                    {
                        var start = Stopwatch.GetTimestamp();
                        bytes += PeerWire.WriteFrame(buffered, m);
                        if (m.Type == MessageType.MsgApp)
                        {
                            h?.ReportAppendSent(p.Id, Stopwatch.GetElapsedTime(start), succeeded: true);
                        }
                    }

                    await buffered.FlushAsync(connection.Token).ConfigureAwait(false);
                    stats?.SentBytes.Inc(bytes);
                }

                return;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or PeerRejectedException
                or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
            {
                if (p.ActiveSince is not null)
                {
                    _log.LogWarning("lost TCP streaming connection with remote peer {stream-writer-type} {local-member-id} {remote-peer-id} {error}", "stream Message", Hex(_handler!.MemberId), Hex(p.Id), e.Message);
                }
                else if (e is not OperationCanceledException && p.ShouldLogDialError(e.Message, DialErrorLogInterval))
                {
                    _log.LogWarning("failed to dial remote peer {stream-writer-type} {local-member-id} {remote-peer-id} {error}", "stream Message", Hex(_handler?.MemberId ?? 0), Hex(p.Id), e.Message);
                }

                if (p.ActiveSince is not null)
                {
                    p.Stats?.Deactivated();
                }

                p.ActiveSince = null;
                if (e is PeerRejectedException { Status: PeerHelloStatus.SenderRemoved })
                {
                    _handler?.OnRemovedByPeer();
                }

                // Whatever was queued for a peer we cannot reach is stale by the time we can: drop and tell raft.
                var dropped = batch.Count;
                foreach (var m in batch.Where(m => m.Type == MessageType.MsgApp))
                {
                    _handler?.ReportAppendSent(p.Id, TimeSpan.Zero, succeeded: false);
                }

                batch.Clear();
                while (reader.TryRead(out var m))
                {
                    dropped++;
                    if (m.Type == MessageType.MsgApp)
                    {
                        _handler?.ReportAppendSent(p.Id, TimeSpan.Zero, succeeded: false);
                    }
                }

                if (dropped > 0)
                {
                    (p.Stats ??= PeerStats(p.Id))?.SentFailures.Inc(dropped);
                }

                if (dropped > 0)
                {
                    _handler?.ReportUnreachable(p.Id);
                }
            }
            finally
            {
                if (stream is not null)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }

                if (closeWatch is not null)
                {
                    await closeWatch.ConfigureAwait(false);
                }
            }

            try
            {
                await Task.Delay(backoff, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, backoff.Ticks * 2));
        }
    }

    /// <summary>
    /// The listener never writes on a message stream after its hello answer, so a read that ends (end of stream or
    /// an error) means the connection is gone: cancels <paramref name="connection"/> so the sender redials.
    /// </summary>
    private static async Task WatchForCloseAsync(Stream stream, CancellationTokenSource connection)
    {
        var one = new byte[1];
        try
        {
            while (await stream.ReadAsync(one, connection.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
            or System.Security.Authentication.AuthenticationException or InvalidOperationException)
        {
        }

        try
        {
            await connection.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task<(Stream Stream, string Url)> DialAsync(PeerSender p, PeerStreamKind kind, CancellationToken ct)
    {
        var urls = p.Urls;
        Exception? last = null;
        for (var i = 0; i < urls.Length; i++)
        {
            var url = urls[(p.NextUrl + i) % urls.Length];
            Stream? stream = null;
            try
            {
                var u = new Uri(url);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using (var dial = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    dial.CancelAfter(TimeSpan.FromSeconds(1));
                    try
                    {
                        var host = u.Host == "localhost" ? IPAddress.Loopback.ToString() : u.Host;
                        await socket.ConnectAsync(host, u.Port, dial.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                }

                stream = new NetworkStream(socket, ownsSocket: true);
                var h = _handler;
                if (u.Scheme == "https")
                {
                    var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                    stream = ssl;
                    string? refused = null;
                    SslClientAuthenticationOptions opts;
                    if (_peerTls is null)
                    {
                        opts = new SslClientAuthenticationOptions { TargetHost = u.Host, RemoteCertificateValidationCallback = (_, _, _, _) => true };
                    }
                    else
                    {
                        // Judge the listener's certificate but finish the handshake, so the listener can be told why.
                        opts = _peerTls.ClientOptions(u.Host, onRejected: reason => refused = reason);
                        var verify = opts.RemoteCertificateValidationCallback!;
                        opts.RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
                        {
                            if (!verify(sender, certificate, chain, errors))
                            {
                                refused ??= "x509: certificate rejected";
                            }

                            return true;
                        };
                    }

                    using var hs = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    hs.CancelAfter(TimeSpan.FromSeconds(5));
                    await ssl.AuthenticateAsClientAsync(opts, hs.Token).ConfigureAwait(false);
                    if (refused is not null)
                    {
                        try
                        {
                            await stream.WriteAsync(PeerWire.Hello(PeerStreamKind.CertificateRejected, h?.ClusterId ?? 0, h?.MemberId ?? 0, p.Id), hs.Token).ConfigureAwait(false);
                            await stream.FlushAsync(hs.Token).ConfigureAwait(false);
                        }
                        catch (IOException)
                        {
                            // The listener went away first; the refusal stands.
                        }

                        throw new System.Security.Authentication.AuthenticationException(refused);
                    }
                }

                var helloSent = System.Diagnostics.Stopwatch.GetTimestamp();
                await stream.WriteAsync(PeerWire.Hello(kind, h?.ClusterId ?? 0, h?.MemberId ?? 0, p.Id), ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
                var status = new byte[1];
                await stream.ReadExactlyAsync(status, ct).ConfigureAwait(false);

                // The hello and its one-byte answer are a round trip to the peer (etcd measures it with its prober).
                (p.Stats ??= PeerStats(p.Id))?.RoundTrip.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(helloSent).TotalSeconds);
                if (status[0] != (byte)PeerHelloStatus.Ok)
                {
                    throw new PeerRejectedException((PeerHelloStatus)status[0]);
                }

                p.NextUrl = (p.NextUrl + i) % urls.Length;
                return (stream, url);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or PeerRejectedException
                or System.Security.Authentication.AuthenticationException or UriFormatException)
            {
                if (stream is not null)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }

                if (e is OperationCanceledException && ct.IsCancellationRequested)
                {
                    throw;
                }

                if (e is PeerRejectedException { Status: PeerHelloStatus.ClusterIdMismatch or PeerHelloStatus.SenderRemoved })
                {
                    if (e is PeerRejectedException { Status: PeerHelloStatus.ClusterIdMismatch })
                    {
                        _log.LogWarning("peer rejected our stream: request cluster ID mismatch {remote-peer-id} {address}", Hex(p.Id), url);
                    }

                    throw;
                }

                last = e;
            }
        }

        throw last ?? new IOException("peer has no URLs");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
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
            p.Queue.Writer.TryComplete();
            if (p.Run is { } t)
            {
                runs.Add(t);
            }
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

    private sealed class PeerSender(ulong id, string[] urls)
    {
        public ulong Id { get; } = id;

        public volatile string[] Urls = urls;

        public int NextUrl;

        public readonly Channel<Message> Queue = Channel.CreateBounded<Message>(new BoundedChannelOptions(QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

        public readonly CancellationTokenSource Stop = new();

        public Etcd.Server.Metrics.PeerMetrics.Peer? Stats;

        public Task? Run;

        private DateTimeOffset? _activeSince;
        private readonly object _lock = new();

        private string? _lastDialError;
        private DateTimeOffset _lastDialErrorLogged;

        public DateTimeOffset? ActiveSince
        {
            get { lock (_lock) { return _activeSince; } }
            set { lock (_lock) { _activeSince = value; } }
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

    private sealed class ClusterDoc
    {
        [System.Text.Json.Serialization.JsonPropertyName("clusterID")]
        public ulong ClusterId { get; set; }

        [System.Text.Json.Serialization.JsonPropertyName("members")]
        public List<Membership.Member> Members { get; set; } = [];
    }

    private sealed class PeerRejectedException(PeerHelloStatus status) : Exception(status == PeerHelloStatus.BadCertificate
        ? "remote error: tls: bad certificate"
        : $"peer rejected the stream: {status}")
    {
        public PeerHelloStatus Status { get; } = status;
    }
}
