using System.Net.Sockets;
using Etcd.Api.Grpc;
using Google.Protobuf;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Grpc;

/// <summary>
/// The server side of one gRPC call over a Kestrel HTTP/2 stream: its cancellation (client reset, connection
/// loss, <c>grpc-timeout</c>), request message reading and response message writing. Reads are one at a
/// time (the stream reader contract); writes are serialised here by a lock so a stray concurrent write cannot
/// corrupt framing. Completing the call (status trailers) takes the same lock.
/// </summary>
internal sealed class HttpServerCall : IDisposable
{
    private static readonly TimeSpan MaxTimer = TimeSpan.FromDays(30);

    private readonly HttpContext _http;
    private readonly GrpcMessageReader _reader;
    private readonly int _maxSendBytes;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private bool _sentMessage;
    private bool _completed;
    private RpcException? _abortReason;

    public HttpServerCall(HttpContext http, string method, GrpcHttpServerOptions options)
    {
        _http = http;
        _maxSendBytes = options.MaxSendMessageBytes;
        var request = http.Request;
        _reader = new GrpcMessageReader(request.BodyReader, options.MaxReceiveMessageBytes, request.Headers[GrpcProtocol.EncodingHeader].ToString() is { Length: > 0 } e ? e : null);

        var deadline = DateTime.MaxValue;
        var timeoutText = request.Headers[GrpcProtocol.TimeoutHeader].ToString();
        if (timeoutText.Length > 0 && GrpcTimeout.TryParse(timeoutText, out var timeout))
        {
            var now = DateTime.UtcNow;
            deadline = timeout >= DateTime.MaxValue - now ? DateTime.MaxValue : now + timeout;
            if (timeout < MaxTimer)
            {
                _deadlineCts = new CancellationTokenSource(timeout);
            }
        }

        _callCts = _deadlineCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted)
            : CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _deadlineCts.Token);
        Context = new Ctx(this, method, deadline);
    }

    public ServerCallContext Context { get; }

    /// <summary>Where this call's messages are counted (grpc_server_msg_*, client bytes); null = not counted.</summary>
    public Metrics.GrpcServerMetrics.MethodStats? Stats { get; set; }

    /// <summary>True once the call's token fired (deadline, client reset, connection loss).</summary>
    public bool CallCancelled => _callCts.IsCancellationRequested;

    /// <summary>True once the <c>grpc-timeout</c> deadline passed.</summary>
    public bool DeadlineExceeded => _deadlineCts?.IsCancellationRequested == true;

    /// <summary>The error the server ended the call with (<see cref="Abort"/>); null when it did not.</summary>
    public RpcException? AbortReason => Volatile.Read(ref _abortReason);

    /// <summary>
    /// Ends the call from the server side: the handler's token fires and the call ends with <paramref name="reason"/>
    /// whatever the handler then returns or throws. The first reason wins. Thread-safe.
    /// </summary>
    public void Abort(RpcException reason)
    {
        Interlocked.CompareExchange(ref _abortReason, reason, null);

        try
        {
            _callCts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The call already ended.
        }
    }

    private RpcException CancelledException(Exception? inner) => AbortReason ?? (DeadlineExceeded
        ? new RpcException(StatusCode.DeadlineExceeded, "context deadline exceeded", inner)
        : new RpcException(StatusCode.Cancelled, "context canceled", inner));

    public async ValueTask<T> ReadSingleRequestAsync<T>(MessageParser<T> parser)
        where T : class, IMessage<T>
    {
        var message = await ReadAsync(parser, CancellationToken.None).ConfigureAwait(false);
        return message ?? throw new RpcException(StatusCode.Internal, "grpc: the client sent no request message");
    }

    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        CancellationTokenSource? linked = null;
        var token = _callCts.Token;
        if (cancellationToken.CanBeCanceled)
        {
            linked = CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken);
            token = linked.Token;
        }

        try
        {
            var message = await _reader.ReadMessageAsync(parser, token).ConfigureAwait(false);
            if (message is not null)
            {
                Stats?.MessageReceived(_reader.LastMessageBytes);
            }

            return message;
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            if (cancellationToken.IsCancellationRequested && !_callCts.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            throw CancelledException(e);
        }
        finally
        {
            linked?.Dispose();
        }
    }

    /// <summary>
    /// Frames and writes one response. With <paramref name="flush"/> false (the single response of a unary or
    /// client-streaming call) the bytes wait for <see cref="CompleteAsync"/>, which sends them with the trailers.
    /// </summary>
    public async ValueTask WriteResponseAsync(IMessage message, CancellationToken cancellationToken, bool flush = true)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_completed)
            {
                throw new InvalidOperationException("the gRPC call has already completed");
            }

            if (_callCts.IsCancellationRequested)
            {
                throw CancelledException(null);
            }

            var body = _http.Response.BodyWriter;
            var bytes = GrpcFraming.WriteMessage(body, message, _maxSendBytes);
            _sentMessage = true;
            Stats?.MessageSent(bytes);
            if (!flush)
            {
                return;
            }

            var result = await body.FlushAsync(_callCts.Token).ConfigureAwait(false);
            if (result.IsCanceled || _callCts.IsCancellationRequested)
            {
                throw CancelledException(null);
            }
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            throw CancelledException(e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Ends the call with <paramref name="status"/>; trailers-only when no message was sent.</summary>
    public async Task CompleteAsync(StatusCode status, string message)
    {
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _completed = true;
            if (_http.RequestAborted.IsCancellationRequested)
            {
                return; // the stream is gone; Kestrel has reset it.
            }

            var response = _http.Response;
            var trailers = ((Ctx)Context).Trailers;
            if (!_sentMessage && !response.HasStarted)
            {
                if (trailers is not null)
                {
                    foreach (var t in trailers)
                    {
                        response.Headers.Append(t.Key, t.Value);
                    }
                }

                await GrpcDispatcher.WriteTrailersOnlyAsync(_http, status, message).ConfigureAwait(false);
                return;
            }

            if (trailers is not null)
            {
                foreach (var t in trailers)
                {
                    response.AppendTrailer(t.Key, t.Value);
                }
            }

            response.AppendTrailer(GrpcProtocol.StatusHeader, GrpcProtocol.FormatStatus(status));
            if (message.Length > 0)
            {
                response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcStatusMessage.Encode(message));
            }

            await response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransportFailure(e) || e is InvalidOperationException)
        {
            // The client went away while we were finishing; nothing left to tell it.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public void Dispose()
    {
        _callCts.Dispose();
        _deadlineCts?.Dispose();
    }

    private static bool IsTransportFailure(Exception e) =>
        e is OperationCanceledException or IOException or ConnectionAbortedException or ConnectionResetException or SocketException or ObjectDisposedException;

    /// <summary>Reads request messages for streaming handlers.</summary>
    internal sealed class RequestReader<T> : IAsyncStreamReader<T>
        where T : class, IMessage<T>
    {
        private readonly HttpServerCall _call;
        private readonly MessageParser<T> _parser;
        private T? _current;
        private bool _ended;

        public RequestReader(HttpServerCall call, MessageParser<T> parser)
        {
            _call = call;
            _parser = parser;
        }

        public T Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true");

        public async ValueTask<bool> MoveNext(CancellationToken cancellationToken = default)
        {
            if (_ended)
            {
                return false;
            }

            var next = await _call.ReadAsync(_parser, cancellationToken).ConfigureAwait(false);
            if (next is null)
            {
                _ended = true;
                return false;
            }

            _current = next;
            return true;
        }
    }

    /// <summary>Writes response messages for streaming handlers.</summary>
    internal sealed class ResponseWriter<T> : IAsyncStreamWriter<T>
        where T : class, IMessage<T>
    {
        private readonly HttpServerCall _call;

        public ResponseWriter(HttpServerCall call) => _call = call;

        public ValueTask WriteAsync(T message, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(message);
            return _call.WriteResponseAsync(message, cancellationToken);
        }
    }

    private sealed class Ctx : ServerCallContext
    {
        private readonly HttpServerCall _call;
        private Metadata? _requestHeaders;

        public Ctx(HttpServerCall call, string method, DateTime deadline)
        {
            _call = call;
            Method = method;
            Deadline = deadline;
        }

        public Metadata? Trailers { get; private set; }

        public override string Method { get; }

        public override DateTime Deadline { get; }

        public override CancellationToken CancellationToken => _call._callCts.Token;

        public override string Peer
        {
            get
            {
                var c = _call._http.Connection;
                var ip = c.RemoteIpAddress;
                if (ip is null)
                {
                    return "unknown";
                }

                if (ip.IsIPv4MappedToIPv6)
                {
                    ip = ip.MapToIPv4();
                }

                return ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"ipv6:[{ip}]:{c.RemotePort}" : $"ipv4:{ip}:{c.RemotePort}";
            }
        }

        public override Metadata RequestHeaders => _requestHeaders ??= BuildHeaders();

        public override Metadata ResponseTrailers => Trailers ??= [];

        public override System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate => _call._http.Connection.ClientCertificate;

        private Metadata BuildHeaders()
        {
            var md = new Metadata();
            foreach (var h in _call._http.Request.Headers)
            {
                if (GrpcProtocol.IsReservedHeader(h.Key))
                {
                    continue;
                }

                foreach (var v in h.Value)
                {
                    md.Add(h.Key, v ?? string.Empty);
                }
            }

            return md;
        }
    }
}
