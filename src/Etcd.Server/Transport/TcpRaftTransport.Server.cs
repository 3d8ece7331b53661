using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>The listening side of the peer transport: TLS set-up and etcd's peer HTTP handlers.</summary>
public sealed partial class TcpRaftTransport
{
    /// <summary>
    /// Accepts peer connections on <paramref name="listener"/> (already started) until disposal, wrapping each in
    /// TLS (the peer <see cref="EtcdTlsInfo"/>) when <paramref name="tls"/>. Connections accepted before
    /// <see cref="Start"/> wait for it only as long as their first request takes; earlier ones are refused.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="tls"/> without a peer TLS setup with a key pair.</exception>
    public void Serve(TcpListener listener, bool tls) => Serve(PeerListener.From(listener, tls));

    /// <summary>Accepts peer connections on <paramref name="listener"/> (TCP or Unix socket) until disposal; TLS when it says so.</summary>
    /// <exception cref="InvalidOperationException">A TLS listener without a peer TLS setup with a key pair.</exception>
    public void Serve(PeerListener listener)
    {
        var tls = listener.Tls;
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
        if (socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }

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

            await ServeHttpAsync(stream, _stop.Token, remote).ConfigureAwait(false);
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
    /// Refuses a dialer whose client certificate failed our checks, over the handshaken connection (.NET sends no TLS
    /// alert): its first request is answered 403 with <see cref="TlsAlertHeader"/>, which our dialer reports as Go's
    /// <c>remote error: tls: bad certificate</c>. When the dialer had refused our certificate first (it sends
    /// <see cref="CertificateRejectedMarker"/> instead of a request, as Go's TLS 1.3 client judges the server before
    /// showing its own certificate), that is what is logged.
    /// </summary>
    private async Task RefuseCertificateAsync(Stream stream, string remote, string rejection)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(TimeSpan.FromSeconds(5));
        var reader = new PeerConnectionReader(stream);
        try
        {
            if (await reader.FillAsync(cts.Token).ConfigureAwait(false) && reader.Buffered.StartsWith(CertificateRejectedMarker))
            {
                LogRejected(remote, "remote error: tls: bad certificate");
                return;
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            LogRejected(remote, rejection);
            throw;
        }

        LogRejected(remote, rejection);
        await stream.WriteAsync(PeerHttp.ResponseHead(403, [new(TlsAlertHeader, "bad certificate")], 0, close: true), cts.Token).ConfigureAwait(false);
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

    /// <summary>
    /// Serves HTTP/1.1 requests on one accepted peer connection (after TLS) until it ends: keep-alive requests one
    /// after another; a stream request keeps the connection for its response. Internal for tests over other streams.
    /// </summary>
    internal async Task ServeHttpAsync(Stream stream, CancellationToken ct, string remote = "")
    {
        var reader = new PeerConnectionReader(stream);
        while (!ct.IsCancellationRequested)
        {
            HttpHead? head;
            using (var idle = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                // Go's peer server closes idle keep-alive connections; a slow head is a dead dialer.
                idle.CancelAfter(TimeSpan.FromMinutes(2));
                if (!await reader.FillAsync(idle.Token).ConfigureAwait(false))
                {
                    return;
                }

                if (reader.Buffered.StartsWith(CertificateRejectedMarker))
                {
                    LogRejected(remote, "remote error: tls: bad certificate");
                    return;
                }

                head = await PeerHttp.ReadHeadAsync(reader, idle.Token).ConfigureAwait(false);
            }

            if (head is null)
            {
                return;
            }

            var body = PeerHttp.Body(head, reader, untilClose: false);
            var keep = await DispatchAsync(head, body, stream, remote, ct).ConfigureAwait(false);
            if (!keep || head.WantsClose)
            {
                return;
            }

            // Whatever the handler left of the body goes before the next request.
            await body.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Routes one request as etcd's peer mux does; returns whether the connection may serve another request.</summary>
    private async Task<bool> DispatchAsync(HttpHead req, Stream body, Stream conn, string remote, CancellationToken ct)
    {
        var h = _handler;
        var path = req.Path;
        if (h is null)
        {
            return await ErrorAsync(conn, 503, "etcdserver: not started", ct, close: true).ConfigureAwait(false);
        }

        if (path.StartsWith("/raft/stream/", StringComparison.Ordinal))
        {
            await ServeStreamAsync(h, req, conn, ct).ConfigureAwait(false);
            return false;
        }

        switch (path)
        {
            case "/raft":
                return await ServePipelineAsync(h, req, body, conn, ct).ConfigureAwait(false);
            case "/raft/snapshot":
                return await ServeSnapshotAsync(h, req, body, conn, ct).ConfigureAwait(false);
            case "/raft/probing":
                return await RespondAsync(conn, 200, [new("Content-Type", "application/json")],
                    System.Text.Encoding.UTF8.GetBytes($"{{\"OK\":true,\"Now\":\"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffffffZ}\"}}\n"), ct).ConfigureAwait(false);
            case "/members":
                return await ServeMembersAsync(h, req, conn, ct).ConfigureAwait(false);
            case "/members/hashkv":
                return await ServeHashKvAsync(h, req, body, conn, ct).ConfigureAwait(false);
            case "/leases" or "/leases/internal":
                return await ServeLeaseAsync(h, req, body, conn, ct).ConfigureAwait(false);
            case "/version":
            {
                var cv = h.ClusterVersion is { } v ? string.Join('.', v.Split('.').Take(2)) + ".0" : "not_decided";
                return await RespondAsync(conn, 200, [new("Content-Type", "application/json")],
                    System.Text.Encoding.UTF8.GetBytes($"{{\"etcdserver\":\"{EtcdServer.Version}\",\"etcdcluster\":\"{cv}\"}}"), ct).ConfigureAwait(false);
            }
        }

        if (path.StartsWith("/members/promote/", StringComparison.Ordinal))
        {
            return await ServePromoteAsync(h, req, path["/members/promote/".Length..], conn, ct).ConfigureAwait(false);
        }

        return await ErrorAsync(conn, 404, "404 page not found", ct).ConfigureAwait(false);
    }

    /// <summary>etcd's checkClusterCompatibilityFromHeader: the request's cluster ID must be ours.</summary>
    private bool ClusterMatches(IRaftTransportHandler h, HttpHead req)
    {
        var gcid = req.Header("X-Etcd-Cluster-ID");
        if (gcid == Hex(h.ClusterId))
        {
            return true;
        }

        _log.LogFields(LogLevel.Warning, "request cluster ID mismatch", ("local-member-id", Hex(h.MemberId)), ("local-member-cluster-id", Hex(h.ClusterId)),
            ("local-member-server-version", EtcdServer.Version), ("local-member-server-minimum-cluster-version", MinClusterVersion),
            ("remote-peer-server-name", req.Header("X-Server-From")), ("remote-peer-server-version", req.Header("X-Server-Version")),
            ("remote-peer-server-minimum-cluster-version", req.Header("X-Min-Cluster-Version")), ("remote-peer-cluster-id", gcid));
        return false;
    }

    private async Task ServeStreamAsync(IRaftTransportHandler h, HttpHead req, Stream conn, CancellationToken ct)
    {
        List<KeyValuePair<string, string>> headers = [new("X-Server-Version", EtcdServer.Version), new("X-Etcd-Cluster-ID", Hex(h.ClusterId))];
        if (req.Method != "GET")
        {
            await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "GET"), .. headers]).ConfigureAwait(false);
            return;
        }

        if (!ClusterMatches(h, req))
        {
            await ErrorAsync(conn, 412, "cluster ID mismatch", ct, headers).ConfigureAwait(false);
            return;
        }

        var path = req.Path;
        var slash = path.LastIndexOf('/');
        var dir = path[..slash];
        RaftStreamType type;
        if (dir == RaftStreamType.MsgAppV2.Endpoint())
        {
            type = RaftStreamType.MsgAppV2;
        }
        else if (dir == RaftStreamType.Message.Endpoint())
        {
            type = RaftStreamType.Message;
        }
        else
        {
            await ErrorAsync(conn, 404, "invalid path", ct, headers).ConfigureAwait(false);
            return;
        }

        if (!ulong.TryParse(path[(slash + 1)..], System.Globalization.NumberStyles.AllowHexSpecifier, null, out var from))
        {
            await ErrorAsync(conn, 404, "invalid from", ct, headers).ConfigureAwait(false);
            return;
        }

        if (h.IsRemoved(from))
        {
            _log.LogFields(LogLevel.Warning, "rejected stream from remote peer because it was removed", ("local-member-id", Hex(h.MemberId)),
                ("remote-peer-id-stream-handler", Hex(h.MemberId)), ("remote-peer-id-from", Hex(from)));
            await ErrorAsync(conn, 410, "removed member", ct, headers).ConfigureAwait(false);
            return;
        }

        if (!_peers.TryGetValue(from, out var p))
        {
            _log.LogFields(LogLevel.Warning, "failed to find remote peer in cluster", ("local-member-id", Hex(h.MemberId)),
                ("remote-peer-id-stream-handler", Hex(h.MemberId)), ("remote-peer-id-from", Hex(from)), ("cluster-id", Hex(h.ClusterId)));
            await ErrorAsync(conn, 404, "error sender not found", ct, headers).ConfigureAwait(false);
            return;
        }

        if (req.Header("X-Raft-To") != Hex(h.MemberId))
        {
            _log.LogFields(LogLevel.Warning, "ignored streaming request; ID mismatch", ("local-member-id", Hex(h.MemberId)),
                ("remote-peer-id-header", req.Header("X-Raft-To")), ("remote-peer-id-from", Hex(from)), ("cluster-id", Hex(h.ClusterId)));
            await ErrorAsync(conn, 412, "to field mismatch", ct, headers).ConfigureAwait(false);
            return;
        }

        var slot = type == RaftStreamType.MsgAppV2 ? p.MsgApp : p.Messages;
        using var cts = slot.Attach(ct);
        await slot.Serving.WaitAsync(cts.Token).ConfigureAwait(false);
        var stats = p.Stats ??= PeerStats(p.Id);
        var up = false;
        try
        {
            await conn.WriteAsync(PeerHttp.ResponseHead(200, headers, null, close: false), cts.Token).ConfigureAwait(false);
            await conn.FlushAsync(cts.Token).ConfigureAwait(false);
            slot.DropQueued();
            slot.SetWorking(true);
            up = true;
            if (p.PartUp())
            {
                stats?.Activated();
                _log.LogFields(LogLevel.Information, "peer became active", ("peer-id", Hex(p.Id)));
            }

            _log.LogFields(LogLevel.Information, "established TCP streaming connection with remote peer", ("stream-writer-type", type.Name()),
                ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)));
            var chunked = new ChunkedWriteStream(conn);
            var enc = new RaftStreamEncoder(type, chunked);
            var reader = slot.Queue.Reader;
            long unflushed = 0;
            while (await reader.WaitToReadAsync(cts.Token).ConfigureAwait(false))
            {
                var batched = 0;
                while (batched < QueueCapacity / 2 && reader.TryRead(out var m))
                {
                    var start = System.Diagnostics.Stopwatch.GetTimestamp();
                    unflushed += enc.Encode(m);
                    batched++;
                    if (m.Type == MessageType.MsgApp)
                    {
                        // etcd's msgappv2 encoder times each append's encoding for /v2/stats/leader.
                        h.ReportAppendSent(p.Id, System.Diagnostics.Stopwatch.GetElapsedTime(start), succeeded: true);
                    }
                }

                await chunked.FlushAsync(cts.Token).ConfigureAwait(false);
                stats?.SentBytes.Inc(unflushed);
                unflushed = 0;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (up && !cts.IsCancellationRequested)
            {
                _log.LogFields(LogLevel.Warning, "lost TCP streaming connection with remote peer", ("stream-writer-type", type.Name()),
                    ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)));
                stats?.SentFailures.Inc();
            }
        }
        finally
        {
            if (up)
            {
                slot.SetWorking(false);
                if (slot.DropQueued() > 0)
                {
                    h.ReportUnreachable(p.Id);
                }

                if (p.PartDown())
                {
                    stats?.Deactivated();
                    _log.LogFields(LogLevel.Warning, "peer became inactive (message send to peer failed)", ("peer-id", Hex(p.Id)));
                }
            }

            slot.Serving.Release();
        }
    }

    private async Task<bool> ServePipelineAsync(IRaftTransportHandler h, HttpHead req, Stream body, Stream conn, CancellationToken ct)
    {
        List<KeyValuePair<string, string>> headers = [new("X-Etcd-Cluster-ID", Hex(h.ClusterId))];
        if (req.Method != "POST")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "POST"), .. headers]).ConfigureAwait(false);
        }

        if (!ClusterMatches(h, req))
        {
            return await ErrorAsync(conn, 412, "cluster ID mismatch", ct, headers).ConfigureAwait(false);
        }

        Message m;
        byte[] bytes;
        try
        {
            using var ms = new MemoryStream();
            await body.CopyToAsync(ms, ct).ConfigureAwait(false);
            bytes = ms.ToArray();
            m = Message.Parser.ParseFrom(bytes);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            _log.LogFields(LogLevel.Warning, "failed to unmarshal Raft message", ("local-member-id", Hex(h.MemberId)), ("error", e.Message));
            return await ErrorAsync(conn, 400, "error unmarshalling raft message", ct, headers).ConfigureAwait(false);
        }

        PeerStats(m.From)?.ReceivedBytes.Inc(bytes.Length);
        if (h.IsRemoved(m.From))
        {
            return await ErrorAsync(conn, 403, "cannot process message from removed member", ct, headers).ConfigureAwait(false);
        }

        if (!h.Process(m))
        {
            return await ErrorAsync(conn, 500, "error processing raft message", ct, headers, close: true).ConfigureAwait(false);
        }

        return await RespondAsync(conn, 204, headers, null, ct).ConfigureAwait(false);
    }

    private async Task<bool> ServeSnapshotAsync(IRaftTransportHandler h, HttpHead req, Stream body, Stream conn, CancellationToken ct)
    {
        List<KeyValuePair<string, string>> headers = [new("X-Etcd-Cluster-ID", Hex(h.ClusterId))];
        if (req.Method != "POST")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "POST"), .. headers]).ConfigureAwait(false);
        }

        if (!ClusterMatches(h, req))
        {
            return await ErrorAsync(conn, 412, "cluster ID mismatch", ct, headers).ConfigureAwait(false);
        }

        Message m;
        try
        {
            m = await new RaftStreamDecoder(RaftStreamType.Message, body, h.MemberId, 0).DecodeAsync(ct).ConfigureAwait(false)
                ?? throw new EndOfStreamException("EOF");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or Google.Protobuf.InvalidProtocolBufferException)
        {
            _log.LogFields(LogLevel.Warning, "failed to decode Raft message", ("local-member-id", Hex(h.MemberId)), ("error", e.Message));
            return await ErrorAsync(conn, 400, $"failed to decode raft message ({e.Message})", ct, headers, close: true).ConfigureAwait(false);
        }

        if (m.Type != MessageType.MsgSnap)
        {
            _log.LogFields(LogLevel.Warning, "unexpected Raft message type", ("local-member-id", Hex(h.MemberId)), ("remote-snapshot-sender-id", Hex(m.From)), ("message-type", m.Type.ToString()));
            return await ErrorAsync(conn, 400, "wrong raft message type", ct, headers, close: true).ConfigureAwait(false);
        }

        var stats = PeerStats(m.From);
        var started = stats?.SnapshotReceiveStarted() ?? 0;
        var ok = false;
        try
        {
            var index = m.Snapshot?.Metadata?.Index ?? 0;
            _log.LogFields(LogLevel.Information, "receiving database snapshot", ("local-member-id", Hex(h.MemberId)), ("remote-snapshot-sender-id", Hex(m.From)),
                ("incoming-snapshot-index", index), ("incoming-snapshot-message-size-bytes", m.CalculateSize()));
            stats?.ReceivedBytes.Inc(m.CalculateSize());

            // The database follows the message; a snapshot of ours without one (a test) carries everything in the message.
            var first = new byte[64 * 1024];
            var n = await body.ReadAsync(first, ct).ConfigureAwait(false);
            if (n > 0)
            {
                long saved;
                try
                {
                    saved = await h.SaveSnapshotDbAsync(new PrefixedStream(first.AsMemory(0, n), body), index, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
                {
                    _log.LogFields(LogLevel.Warning, "failed to save incoming database snapshot", ("local-member-id", Hex(h.MemberId)),
                        ("remote-snapshot-sender-id", Hex(m.From)), ("incoming-snapshot-index", index), ("error", e.Message));
                    return await ErrorAsync(conn, 500, $"failed to save KV snapshot ({e.Message})", ct, headers, close: true).ConfigureAwait(false);
                }

                stats?.ReceivedBytes.Inc(saved);
                _log.LogFields(LogLevel.Information, "received and saved database snapshot", ("local-member-id", Hex(h.MemberId)),
                    ("remote-snapshot-sender-id", Hex(m.From)), ("incoming-snapshot-index", index), ("incoming-snapshot-size-bytes", saved));
            }

            if (!h.Process(m))
            {
                return await ErrorAsync(conn, 500, "failed to process raft message (etcdserver: server stopped)", ct, headers, close: true).ConfigureAwait(false);
            }

            ok = true;
            return await RespondAsync(conn, 204, headers, null, ct).ConfigureAwait(false);
        }
        finally
        {
            stats?.SnapshotReceiveEnded(started, ok);
        }
    }

    private async Task<bool> ServeMembersAsync(IRaftTransportHandler h, HttpHead req, Stream conn, CancellationToken ct)
    {
        if (req.Method != "GET")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "GET")]).ConfigureAwait(false);
        }

        var c = h.DescribeCluster();
        var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(c.Members.ToList());
        return await RespondAsync(conn, 200, [new("Content-Type", "application/json"), new("X-Etcd-Cluster-ID", Hex(c.ClusterId))], [.. json, (byte)'\n'], ct).ConfigureAwait(false);
    }

    private async Task<bool> ServePromoteAsync(IRaftTransportHandler h, HttpHead req, string idText, Stream conn, CancellationToken ct)
    {
        List<KeyValuePair<string, string>> headers = [new("X-Etcd-Cluster-ID", Hex(h.ClusterId))];
        if (req.Method != "POST")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "POST")]).ConfigureAwait(false);
        }

        if (!ulong.TryParse(idText, System.Globalization.NumberStyles.None, null, out var id))
        {
            return await ErrorAsync(conn, 404, $"member {idText} not found in cluster", ct, headers).ConfigureAwait(false);
        }

        var error = await h.PromoteAsLeaderAsync(id, ct).ConfigureAwait(false);
        if (error is null)
        {
            var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(h.DescribeCluster().Members.ToList());
            return await RespondAsync(conn, 200, [new("Content-Type", "application/json"), .. headers], [.. json, (byte)'\n'], ct).ConfigureAwait(false);
        }

        _log.LogFields(LogLevel.Warning, "failed to promote a member", ("member-id", Hex(id)), ("error", error.Message));
        var (status, text) = PromoteErrorText(error);
        return await ErrorAsync(conn, status, text, ct, headers).ConfigureAwait(false);
    }

    private async Task<bool> ServeHashKvAsync(IRaftTransportHandler h, HttpHead req, Stream body, Stream conn, CancellationToken ct)
    {
        if (req.Method != "GET")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct, [new("Allow", "GET")]).ConfigureAwait(false);
        }

        long revision;
        try
        {
            using var doc = await System.Text.Json.JsonDocument.ParseAsync(body, cancellationToken: ct).ConfigureAwait(false);
            revision = doc.RootElement.TryGetProperty("revision", out var r) ? r.GetInt64() : 0;
        }
        catch (System.Text.Json.JsonException)
        {
            return await ErrorAsync(conn, 400, "error unmarshalling request", ct).ConfigureAwait(false);
        }

        try
        {
            var resp = await h.ServeHashKvAsync(revision, ct).ConfigureAwait(false);
            var json = $"{{\"header\":{{\"revision\":{resp.Header?.Revision ?? 0}}},\"hash\":{resp.Hash},\"compact_revision\":{resp.CompactRevision}}}";
            return await RespondAsync(conn, 200, [new("X-Etcd-Cluster-ID", Hex(h.ClusterId)), new("Content-Type", "application/json")], System.Text.Encoding.UTF8.GetBytes(json), ct).ConfigureAwait(false);
        }
        catch (Etcd.Api.EtcdException e)
        {
            var text = e.Error == Etcd.Api.EtcdErrors.Compacted ? "mvcc: required revision has been compacted"
                : e.Error == Etcd.Api.EtcdErrors.FutureRev ? "mvcc: required revision is a future revision" : e.Error.Message;
            return await ErrorAsync(conn, 400, text, ct).ConfigureAwait(false);
        }
    }

    private async Task<bool> ServeLeaseAsync(IRaftTransportHandler h, HttpHead req, Stream body, Stream conn, CancellationToken ct)
    {
        if (req.Method != "POST")
        {
            return await ErrorAsync(conn, 405, "Method Not Allowed", ct).ConfigureAwait(false);
        }

        using var ms = new MemoryStream();
        await body.CopyToAsync(ms, ct).ConfigureAwait(false);
        var internalPath = req.Path == "/leases/internal";
        byte[] request;
        try
        {
            request = internalPath
                ? ForwardedLease.Request(ForwardedLease.TimeToLive, Leasepb.LeaseInternalRequest.Parser.ParseFrom(ms.ToArray()).LeaseTimeToLiveRequest ?? new Etcdserverpb.LeaseTimeToLiveRequest())
                : ForwardedLease.Request(ForwardedLease.Renew, Etcdserverpb.LeaseKeepAliveRequest.Parser.ParseFrom(ms.ToArray()));
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return await ErrorAsync(conn, 400, "error unmarshalling request", ct).ConfigureAwait(false);
        }

        var answer = await h.ServeLeaseAsync(request, ct).ConfigureAwait(false);
        try
        {
            byte[] payload = internalPath
                ? Google.Protobuf.MessageExtensions.ToByteArray(new Leasepb.LeaseInternalResponse { LeaseTimeToLiveResponse = ForwardedLease.Parse(answer, Etcdserverpb.LeaseTimeToLiveResponse.Parser) })
                : Google.Protobuf.MessageExtensions.ToByteArray(ForwardedLease.Parse(answer, Etcdserverpb.LeaseKeepAliveResponse.Parser));
            return await RespondAsync(conn, 200, [new("Content-Type", "application/protobuf")], payload, ct).ConfigureAwait(false);
        }
        catch (Etcd.Api.EtcdException e) when (e.Error == Etcd.Api.EtcdErrors.LeaseNotFound)
        {
            return await ErrorAsync(conn, 404, "lease not found", ct).ConfigureAwait(false);
        }
        catch (Etcd.Api.EtcdException e) when (e.Error == Etcd.Api.EtcdErrors.Timeout)
        {
            return await ErrorAsync(conn, 408, "waiting for node to catch up its applied index has timed out", ct).ConfigureAwait(false);
        }
        catch (Etcd.Api.EtcdException e)
        {
            return await ErrorAsync(conn, 400, e.Error.Message, ct).ConfigureAwait(false);
        }
        catch (Lease.LessorNotPrimaryException)
        {
            return await ErrorAsync(conn, 400, NotPrimaryText, ct).ConfigureAwait(false);
        }
    }

    /// <summary>etcd's lease.ErrNotPrimary text, answered by a member that is not the leader's lessor.</summary>
    private const string NotPrimaryText = "not a primary lessor";

    /// <summary>The HTTP status and text etcd's promote handler answers for an error (membership's own error strings).</summary>
    private static (int Status, string Text) PromoteErrorText(Etcd.Api.EtcdError e)
        => e == Etcd.Api.EtcdErrors.MemberNotFound ? (404, "membership: ID not found")
        : e == Etcd.Api.EtcdErrors.MemberNotLearner ? (412, "membership: can only promote a learner member")
        : e == Etcd.Api.EtcdErrors.LearnerNotReady ? (412, e.Message)
        : (500, e.Message);

    /// <summary>Go's http.Error: text/plain, nosniff, the text and a newline. Returns whether the connection may go on.</summary>
    private static async Task<bool> ErrorAsync(Stream conn, int status, string text, CancellationToken ct, IEnumerable<KeyValuePair<string, string>>? headers = null, bool close = false)
    {
        List<KeyValuePair<string, string>> all = [.. headers ?? [], new("Content-Type", "text/plain; charset=utf-8"), new("X-Content-Type-Options", "nosniff")];
        var body = System.Text.Encoding.UTF8.GetBytes(text + "\n");
        await conn.WriteAsync(PeerHttp.ResponseHead(status, all, body.Length, close), ct).ConfigureAwait(false);
        await conn.WriteAsync(body, ct).ConfigureAwait(false);
        await conn.FlushAsync(ct).ConfigureAwait(false);
        return !close;
    }

    private static async Task<bool> RespondAsync(Stream conn, int status, IEnumerable<KeyValuePair<string, string>> headers, byte[]? body, CancellationToken ct)
    {
        await conn.WriteAsync(PeerHttp.ResponseHead(status, headers, body?.Length ?? 0, close: false), ct).ConfigureAwait(false);
        if (body is { Length: > 0 })
        {
            await conn.WriteAsync(body, ct).ConfigureAwait(false);
        }

        await conn.FlushAsync(ct).ConfigureAwait(false);
        return true;
    }
}
