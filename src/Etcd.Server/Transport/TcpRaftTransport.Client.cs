using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.Json;
using Etcd.Raft;
using Etcd.Server.Logging;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>The dialling side of the peer transport: stream readers, the pipeline, the snapshot sender and member requests.</summary>
public sealed partial class TcpRaftTransport
{
    /// <summary>etcd's stream reader redials at most every 100 ms.</summary>
    private static readonly TimeSpan RedialInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Largest answer body read from a member request.</summary>
    private const int MaxAnswerBytes = 64 * 1024 * 1024;

    /// <summary>
    /// etcd's streamReader: dials <c>GET /raft/stream/{msgapp|message}/LOCAL</c> on the peer and hands every message
    /// it writes back to raft (link heartbeats dropped) until the stream ends or stays silent for
    /// <see cref="ConnReadTimeout"/>; then redials. A 410 answer means this member was removed: it stops.
    /// </summary>
    private async Task RunStreamReaderAsync(PeerState p, RaftStreamType type)
    {
        using var run = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, p.Stop.Token);
        var ct = run.Token;
        while (!ct.IsCancellationRequested)
        {
            var h = _handler!;
            Stream? stream = null;
            var up = false;
            var stats = p.Stats ??= PeerStats(p.Id);
            try
            {
                string url;
                (stream, url) = await DialAsync(p, p.Urls, ct).ConfigureAwait(false);
                var headers = PeerHeaders();
                headers.Add(new("X-Raft-To", Hex(p.Id)));
                var sent = System.Diagnostics.Stopwatch.GetTimestamp();
                await stream.WriteAsync(PeerHttp.RequestHead("GET", new Uri(url).Authority, $"{type.Endpoint()}/{Hex(h.MemberId)}", headers, null, chunked: false), ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
                var reader = new PeerConnectionReader(stream);
                HttpHead head;
                using (var answer = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    answer.CancelAfter(ConnReadTimeout);
                    head = await PeerHttp.ReadHeadAsync(reader, answer.Token).ConfigureAwait(false)
                        ?? throw new IOException("peer closed the stream before answering");
                }

                stats?.RoundTrip.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(sent).TotalSeconds);
                CheckTlsAlert(head);
                switch (head.Status)
                {
                    case 200:
                        break;
                    case 410:
                        h.OnRemovedByPeer();
                        throw new IOException("the member has been permanently removed from the cluster");
                    case 404:
                        throw new IOException($"peer {Hex(p.Id)} failed to find local node {Hex(h.MemberId)}");
                    case 412:
                    {
                        var text = await ReadTextAsync(head, reader, ct).ConfigureAwait(false);
                        if (text == "cluster ID mismatch")
                        {
                            _log.LogFields(LogLevel.Warning, "request sent was ignored by remote peer due to cluster ID mismatch", ("remote-peer-id", Hex(p.Id)),
                                ("remote-peer-cluster-id", head.Header("X-Etcd-Cluster-ID")), ("local-member-id", Hex(h.MemberId)), ("local-member-cluster-id", Hex(h.ClusterId)));
                        }

                        throw new IOException(text.Length > 0 ? text : "precondition failed");
                    }

                    default:
                        throw new IOException($"unhandled http status {head.Status} on a stream");
                }

                var dec = new RaftStreamDecoder(type, PeerHttp.Body(head, reader, untilClose: true), h.MemberId, p.Id);
                up = true;
                if (p.PartUp())
                {
                    stats?.Activated();
                    _log.LogFields(LogLevel.Information, "peer became active", ("peer-id", Hex(p.Id)));
                }

                _log.LogFields(LogLevel.Information, "established TCP streaming connection with remote peer", ("stream-reader-type", type.Name()),
                    ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)));
                using var silence = CancellationTokenSource.CreateLinkedTokenSource(ct);
                while (true)
                {
                    silence.CancelAfter(ConnReadTimeout);
                    var before = dec.BytesRead;
                    var m = await dec.DecodeAsync(silence.Token).ConfigureAwait(false);
                    if (m is null)
                    {
                        throw new EndOfStreamException("EOF");
                    }

                    if (RaftStreamTypes.IsLinkHeartbeat(m))
                    {
                        continue;
                    }

                    stats?.ReceivedBytes.Inc(dec.BytesRead - before);
                    if (!h.Process(m))
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException or ObjectDisposedException
                or System.Security.Authentication.AuthenticationException or InvalidProtocolBufferException or UriFormatException)
            {
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                if (up)
                {
                    stats?.ReceivedFailures.Inc();
                    _log.LogFields(LogLevel.Warning, "lost TCP streaming connection with remote peer", ("stream-reader-type", type.Name()),
                        ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)), ("error", e is OperationCanceledException ? "read timeout" : e.Message));
                }
                else if (p.ShouldLogDialError(type + e.Message, DialErrorLogInterval))
                {
                    _log.LogFields(LogLevel.Warning, "failed to dial remote peer", ("stream-reader-type", type.Name()),
                        ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)), ("error", e.Message));
                }
            }
            finally
            {
                if (stream is not null)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }

                if (up && p.PartDown())
                {
                    stats?.Deactivated();
                    _log.LogFields(LogLevel.Warning, "peer became inactive (message send to peer failed)", ("peer-id", Hex(p.Id)));
                }
            }

            try
            {
                await Task.Delay(RedialInterval, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One of etcd's pipeline workers: POSTs each queued message to the peer's <c>/raft</c>.</summary>
    private async Task RunPipelineAsync(PeerState p)
    {
        using var run = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, p.Stop.Token);
        var ct = run.Token;
        var reader = p.Pipeline.Reader;
        try
        {
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                if (!reader.TryRead(out var m))
                {
                    continue;
                }

                var h = _handler!;
                var stats = p.Stats ??= PeerStats(p.Id);
                var ok = false;
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                try
                {
                    var body = m.ToByteArray();
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    timeout.CancelAfter(TimeSpan.FromSeconds(5));
                    var resp = await RequestAsync(p, p.Urls, "POST", "/raft", PeerHeaders("application/protobuf"), body, timeout.Token).ConfigureAwait(false);
                    switch (resp.Head.Status)
                    {
                        case 204:
                            ok = true;
                            stats?.SentBytes.Inc(body.Length);
                            break;
                        case 403:
                            h.OnRemovedByPeer();
                            break;
                        default:
                            if (p.ShouldLogDialError("pipeline" + resp.Head.Status, DialErrorLogInterval))
                            {
                                _log.LogFields(LogLevel.Warning, "failed to post to remote peer", ("local-member-id", Hex(h.MemberId)), ("remote-peer-id", Hex(p.Id)),
                                    ("error", $"unexpected http status {resp.Head.Status}: {System.Text.Encoding.UTF8.GetString(resp.Body).TrimEnd('\n')}"));
                            }

                            break;
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
                    or System.Security.Authentication.AuthenticationException or InvalidDataException or UriFormatException)
                {
                    if (ct.IsCancellationRequested)
                    {
                        return;
                    }
                }

                if (m.Type == MessageType.MsgApp)
                {
                    // etcd's pipeline counts MsgApp posts for /v2/stats/leader: the round trip on success, a failure otherwise.
                    h.ReportAppendSent(p.Id, System.Diagnostics.Stopwatch.GetElapsedTime(start), ok);
                }

                if (!ok)
                {
                    stats?.SentFailures.Inc();
                    h.ReportUnreachable(m.To);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// etcd's snapshotSender: POSTs the MsgSnap (message encoding) followed by the database to the peer's
    /// <c>/raft/snapshot</c> with its length known up front, then reports the outcome to raft.
    /// </summary>
    private async Task SendSnapshotAsync(PeerState p, OutgoingSnapshot s)
    {
        var h = _handler!;
        var m = s.Message;
        var ok = false;
        var stats = p.Stats ??= PeerStats(p.Id);
        var started = stats?.SnapshotSendStarted() ?? 0;
        var index = m.Snapshot?.Metadata?.Index ?? 0;
        try
        {
            var head = RaftStreamEncoder.EncodeMessage(m);
            _log.LogFields(LogLevel.Information, "sending database snapshot", ("snapshot-index", index), ("remote-peer-id", Hex(m.To)),
                ("bytes", head.Length + s.DbSize));
            var (stream, url) = await DialAsync(p, p.Urls, _stop.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                List<KeyValuePair<string, string>> headers = [.. PeerHeaders("application/octet-stream"), new("Connection", "close")];
                await stream.WriteAsync(PeerHttp.RequestHead("POST", new Uri(url).Authority, "/raft/snapshot", headers, head.Length + s.DbSize, chunked: false), _stop.Token).ConfigureAwait(false);
                await stream.WriteAsync(head, _stop.Token).ConfigureAwait(false);
                if (s.DbSize > 0)
                {
                    var buffered = new BufferedStream(stream, 256 * 1024);
                    var written = await Task.Run(() => s.WriteDb(buffered), _stop.Token).ConfigureAwait(false);
                    await buffered.FlushAsync(_stop.Token).ConfigureAwait(false);
                    if (written != s.DbSize)
                    {
                        throw new IOException($"database snapshot wrote {written} bytes, announced {s.DbSize}");
                    }
                }

                await stream.FlushAsync(_stop.Token).ConfigureAwait(false);
                var reader = new PeerConnectionReader(stream);
                var answer = await PeerHttp.ReadHeadAsync(reader, _stop.Token).ConfigureAwait(false)
                    ?? throw new IOException("peer closed the connection before answering the snapshot");
                CheckTlsAlert(answer);
                if (answer.Status is 403 or 410)
                {
                    h.OnRemovedByPeer();
                }

                ok = answer.Status == 204;
                if (!ok)
                {
                    throw new IOException($"unexpected http status {answer.Status}: {await ReadTextAsync(answer, reader, _stop.Token).ConfigureAwait(false)}");
                }
            }

            stats?.SentBytes.Inc(head.Length + s.DbSize);
            _log.LogFields(LogLevel.Information, "sent database snapshot", ("snapshot-index", index), ("remote-peer-id", Hex(m.To)), ("bytes", head.Length + s.DbSize));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
            or System.Security.Authentication.AuthenticationException or InvalidDataException or UriFormatException)
        {
            ok = false;
            _log.LogFields(LogLevel.Warning, "failed to send database snapshot", ("snapshot-index", index), ("remote-peer-id", Hex(m.To)), ("error", e.Message));
        }
        finally
        {
            s.Dispose();
        }

        stats?.SnapshotSendEnded(started, ok);
        h.ReportSnapshot(m.To, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        if (!ok)
        {
            h.ReportUnreachable(m.To);
        }
    }

    /// <inheritdoc/>
    public async Task<RemoteCluster?> FetchClusterAsync(IReadOnlyList<string> peerUrls, CancellationToken cancellationToken)
    {
        foreach (var url in peerUrls)
        {
            try
            {
                var resp = await RequestAsync(null, [url], "GET", "/members", PeerHeaders(), null, cancellationToken).ConfigureAwait(false);
                if (resp.Head.Status != 200)
                {
                    throw new IOException($"unexpected http status {resp.Head.Status}");
                }

                var members = JsonSerializer.Deserialize<List<Membership.Member>>(resp.Body) ?? [];
                if (!ulong.TryParse(resp.Head.Header("X-Etcd-Cluster-ID"), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var cid))
                {
                    throw new IOException("the answer carries no X-Etcd-Cluster-ID");
                }

                return new RemoteCluster(cid, members);
            }
            catch (Exception e) when (e is IOException or SocketException or JsonException or InvalidDataException
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
        var p = KnownPeer(leaderId, "leader");
        var resp = await RequestAsync(p, p.Urls, "POST", $"/members/promote/{learnerId}", PeerHeaders(), null, cancellationToken).ConfigureAwait(false);
        if (resp.Head.Status == 200)
        {
            return null;
        }

        var text = System.Text.Encoding.UTF8.GetString(resp.Body).TrimEnd('\n');
        return text switch
        {
            "membership: ID not found" => Etcd.Api.EtcdErrors.MemberNotFound,
            "membership: can only promote a learner member" => Etcd.Api.EtcdErrors.MemberNotLearner,
            _ when text == Etcd.Api.EtcdErrors.LearnerNotReady.Message => Etcd.Api.EtcdErrors.LearnerNotReady,
            _ when text == Etcd.Api.EtcdErrors.MemberNotFound.Message => Etcd.Api.EtcdErrors.MemberNotFound,
            _ when text == Etcd.Api.EtcdErrors.MemberNotLearner.Message => Etcd.Api.EtcdErrors.MemberNotLearner,
            _ => new Etcd.Api.EtcdError(Etcd.Api.Grpc.StatusCode.Unknown, text),
        };
    }

    /// <inheritdoc/>
    public async Task<byte[]> ForwardLeaseAsync(ulong leaderId, byte[] request, CancellationToken cancellationToken)
    {
        var p = KnownPeer(leaderId, "leader");
        if (request.Length == 0)
        {
            throw new ArgumentException("empty lease request", nameof(request));
        }

        var ttl = request[0] == ForwardedLease.TimeToLive;
        var body = ttl
            ? new Leasepb.LeaseInternalRequest { LeaseTimeToLiveRequest = Etcdserverpb.LeaseTimeToLiveRequest.Parser.ParseFrom(request.AsSpan(1)) }.ToByteArray()
            : request[1..];
        var resp = await RequestAsync(p, p.Urls, "POST", ttl ? "/leases/internal" : "/leases", [new("Content-Type", "application/protobuf")], body, cancellationToken).ConfigureAwait(false);
        switch (resp.Head.Status)
        {
            case 200 when ttl:
                return ForwardedLease.Ok(Leasepb.LeaseInternalResponse.Parser.ParseFrom(resp.Body).LeaseTimeToLiveResponse ?? new Etcdserverpb.LeaseTimeToLiveResponse());
            case 200:
                return ForwardedLease.Ok(Etcdserverpb.LeaseKeepAliveResponse.Parser.ParseFrom(resp.Body));
            case 404:
                return ForwardedLease.Error(Etcd.Api.EtcdErrors.LeaseNotFound);
            default:
                // etcd's follower retries on a timeout or a lessor that is not (yet) the primary.
                return ForwardedLease.NotPrimary();
        }
    }

    /// <inheritdoc/>
    public async Task<Etcdserverpb.HashKVResponse> FetchHashKvAsync(ulong peerId, long revision, CancellationToken cancellationToken)
    {
        var p = KnownPeer(peerId, "member");
        var body = System.Text.Encoding.UTF8.GetBytes($"{{\"revision\":{revision}}}");
        var resp = await RequestAsync(p, p.Urls, "GET", "/members/hashkv", [new("Content-Type", "application/json")], body, cancellationToken).ConfigureAwait(false);
        if (resp.Head.Status != 200)
        {
            throw HashKvError(System.Text.Encoding.UTF8.GetString(resp.Body).TrimEnd('\n'));
        }

        try
        {
            using var doc = JsonDocument.Parse(resp.Body);
            var root = doc.RootElement;
            var r = new Etcdserverpb.HashKVResponse { Header = new Etcdserverpb.ResponseHeader { MemberId = peerId } };
            if (root.TryGetProperty("header", out var hd) && hd.TryGetProperty("revision", out var rev))
            {
                r.Header.Revision = rev.GetInt64();
            }

            if (root.TryGetProperty("hash", out var hash))
            {
                r.Hash = hash.GetUInt32();
            }

            if (root.TryGetProperty("compact_revision", out var cr))
            {
                r.CompactRevision = cr.GetInt64();
            }

            return r;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new IOException($"malformed hashkv answer: {e.Message}", e);
        }
    }

    /// <summary>The error a peer answered a HashKV with, as etcd's <c>getPeerHashKVHTTP</c> reads it from the body.</summary>
    private static Exception HashKvError(string text)
        => text.Contains("required revision has been compacted", StringComparison.Ordinal) ? Etcd.Api.EtcdErrors.Compacted.ToException()
        : text.Contains("required revision is a future revision", StringComparison.Ordinal) ? Etcd.Api.EtcdErrors.FutureRev.ToException()
        : new IOException($"unknown error: {text}");

    private PeerState KnownPeer(ulong id, string what)
        => _peers.TryGetValue(id, out var p) ? p : throw new IOException($"{what} {Hex(id)} is not a known peer");

    /// <summary>An answer to a one-shot request: its head and whole body.</summary>
    private sealed record PeerAnswer(HttpHead Head, byte[] Body);

    /// <summary>One request on its own connection (<c>Connection: close</c>): dial, send, read the whole answer.</summary>
    private async Task<PeerAnswer> RequestAsync(PeerState? p, string[] urls, string method, string path, List<KeyValuePair<string, string>> headers,
        byte[]? body, CancellationToken ct)
    {
        var (stream, url) = await DialAsync(p, urls, ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            headers.Add(new("Connection", "close"));
            long? length = body is not null ? body.Length : method == "GET" ? null : 0;
            await stream.WriteAsync(PeerHttp.RequestHead(method, new Uri(url).Authority, path, headers, length, chunked: false), ct).ConfigureAwait(false);
            if (body is { Length: > 0 })
            {
                await stream.WriteAsync(body, ct).ConfigureAwait(false);
            }

            await stream.FlushAsync(ct).ConfigureAwait(false);
            var reader = new PeerConnectionReader(stream);
            var head = await PeerHttp.ReadHeadAsync(reader, ct).ConfigureAwait(false)
                ?? throw new IOException("peer closed the connection before answering");
            CheckTlsAlert(head);
            var bodyStream = PeerHttp.Body(head, reader, untilClose: true);
            using var ms = new MemoryStream();
            var buf = new byte[16 * 1024];
            int n;
            while ((n = await bodyStream.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
            {
                ms.Write(buf, 0, n);
                if (ms.Length > MaxAnswerBytes)
                {
                    throw new InvalidDataException("peer answer too large");
                }
            }

            return new PeerAnswer(head, ms.ToArray());
        }
    }

    private static async Task<string> ReadTextAsync(HttpHead head, PeerConnectionReader reader, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(5));
        using var ms = new MemoryStream();
        try
        {
            await PeerHttp.Body(head, reader, untilClose: !head.Headers.ContainsKey("Content-Length")).CopyToAsync(ms, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray()).TrimEnd('\n');
    }

    /// <summary>Our listener refused our client certificate (see <see cref="TlsAlertHeader"/>): Go's alert text.</summary>
    private static void CheckTlsAlert(HttpHead head)
    {
        if (head.Headers.ContainsKey(TlsAlertHeader))
        {
            throw new System.Security.Authentication.AuthenticationException("remote error: tls: bad certificate");
        }
    }

    /// <summary>
    /// Connects to the first of <paramref name="urls"/> that answers (starting at the one that worked last), TLS for
    /// https URLs. A listener certificate we refuse is told to the listener (<see cref="CertificateRejectedMarker"/>).
    /// </summary>
    private async Task<(Stream Stream, string Url)> DialAsync(PeerState? p, string[] urls, CancellationToken ct)
    {
        Exception? last = null;
        var start = p?.NextUrl ?? 0;
        for (var i = 0; i < urls.Length; i++)
        {
            var url = urls[(start + i) % urls.Length];
            Stream? stream = null;
            try
            {
                var u = new Uri(url);
                var unix = u.Scheme is "unix" or "unixs";
                var socket = unix ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using (var dial = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    dial.CancelAfter(TimeSpan.FromSeconds(1));
                    try
                    {
                        if (unix)
                        {
                            // etcd's unix peer URLs name a socket file: host:port (and path) relative to the working directory.
                            await socket.ConnectAsync(new UnixDomainSocketEndPoint(u.Authority + u.AbsolutePath.TrimEnd('/')), dial.Token).ConfigureAwait(false);
                        }
                        else
                        {
                            var host = u.Host == "localhost" ? IPAddress.Loopback.ToString() : u.Host;
                            await socket.ConnectAsync(host, u.Port, dial.Token).ConfigureAwait(false);
                        }
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                }

                stream = new NetworkStream(socket, ownsSocket: true);
                if (u.Scheme is "https" or "unixs")
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
                            await stream.WriteAsync(CertificateRejectedMarker.ToArray(), hs.Token).ConfigureAwait(false);
                            await stream.FlushAsync(hs.Token).ConfigureAwait(false);
                        }
                        catch (IOException)
                        {
                            // The listener went away first; the refusal stands.
                        }

                        throw new System.Security.Authentication.AuthenticationException(refused);
                    }
                }

                if (p is not null)
                {
                    p.NextUrl = (start + i) % urls.Length;
                }

                return (stream, url);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException
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

                last = e;
            }
        }

        throw last ?? new IOException("peer has no URLs");
    }
}

/// <summary>
/// A MsgSnap to send with the database image that goes after it (etcd's <c>snap.Message</c>): the message's snapshot data
/// is the v2 store JSON; <see cref="WriteDb"/> writes exactly <see cref="DbSize"/> bytes of the pinned bbolt image from any
/// one thread. Disposing releases the image.
/// </summary>
/// <param name="message">The MsgSnap.</param>
/// <param name="dbSize">Bytes of the database image (0 = none).</param>
/// <param name="writeDb">Writes the image; returns the bytes written.</param>
/// <param name="owner">What pins the image (released by <see cref="Dispose"/>).</param>
public sealed class OutgoingSnapshot(Message message, long dbSize, Func<Stream, long> writeDb, IDisposable? owner) : IDisposable
{
    private IDisposable? _owner = owner;

    /// <summary>The MsgSnap.</summary>
    public Message Message { get; } = message;

    /// <summary>Bytes of the database image.</summary>
    public long DbSize { get; } = dbSize;

    /// <summary>Writes the database image to a stream; returns the bytes written.</summary>
    public long WriteDb(Stream destination) => writeDb(destination);

    /// <summary>Releases the pinned image. Idempotent.</summary>
    public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Dispose();
}

/// <summary>Bytes already read, then the rest of a stream.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream rest) : PeerReadStream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_prefix.Length > 0)
        {
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return ValueTask.FromResult(n);
        }

        return rest.ReadAsync(buffer, cancellationToken);
    }
}
