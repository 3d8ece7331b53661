using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using Etcd.Api.Grpc;
using Google.Protobuf;

namespace Etcd.Client.Grpc;

/// <summary>
/// The client side of one gRPC call over an HTTP/2 request: sends headers and framed requests, reads framed
/// responses and the status trailers. Reads are one at a time, writes are one at a time (the stream
/// contracts); reads and writes may run concurrently with each other (duplex).
/// </summary>
internal sealed class ClientCall<TRequest, TResponse> : IStreamingCall<TResponse>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private static readonly MediaTypeHeaderValue GrpcContentType = new(GrpcProtocol.ContentType);
    private static readonly ProductInfoHeaderValue UserAgent = new("grpc-csharp-etcd", "1.0");

    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions? _options;
    private readonly CancellationToken _userToken;
    private readonly CancellationTokenSource _cts;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenRegistration _userRegistration;
    private readonly CancellationTokenRegistration _shutdownRegistration;
    private readonly CancellationTokenRegistration _resetRegistration;
    private readonly DateTime? _deadline;
    private Task<HttpResponseMessage>? _sendTask;
    private Task? _responseReady;
    private HttpResponseMessage? _response;
    private GrpcMessageReader? _reader;
    private PipeReader? _pipe;
    private PushContent? _push;
    private Metadata? _responseHeaders;
    private Metadata? _trailers;
    private CallStatus? _status; // set once (first writer wins), read from reader and writer threads
    private int _disposed;

    public ClientCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions? options, CancellationToken cancellationToken)
    {
        _channel = channel;
        _method = method;
        _options = options;
        _userToken = cancellationToken;
        _cts = new CancellationTokenSource();
        if (cancellationToken.CanBeCanceled)
        {
            _userRegistration = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }

        _shutdownRegistration = channel.ShutdownToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _cts);

        // Once the response has arrived, cancelling the send token no longer stops the HTTP/2 stream:
        // disposing the response does (SocketsHttpHandler sends RST_STREAM(CANCEL) for an unfinished stream).
        _resetRegistration = _cts.Token.Register(static s => ((ClientCall<TRequest, TResponse>)s!).ResetStream(), this);

        var now = DateTime.UtcNow;
        _deadline = options?.EffectiveDeadline(now);
        if (_deadline is { } d && d != DateTime.MaxValue)
        {
            var left = d - now;
            if (left <= TimeSpan.Zero)
            {
                _deadlineCts = new CancellationTokenSource();
                _deadlineCts.Cancel();
                _cts.Cancel();
            }
            else if (left < TimeSpan.FromDays(30))
            {
                _deadlineCts = new CancellationTokenSource(left);
                _deadlineCts.Token.Register(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
            }
        }
    }

    public Metadata? Trailers => _trailers;

    public CallStatus? Status => Volatile.Read(ref _status);

    /// <summary>Starts a call whose single request is known now (unary, server streaming).</summary>
    public void Start(TRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var content = new FramedMessageContent(request, _channel.Options.MaxSendMessageBytes);
        Send(content);
    }

    /// <summary>Starts a call whose requests are written later (client, duplex streaming).</summary>
    public void StartStreaming()
    {
        _push = new PushContent();
        Send(_push);
    }

    private void Send(HttpContent content)
    {
        content.Headers.ContentType = GrpcContentType;
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_channel.Address, _method.FullName))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        var headers = message.Headers;
        headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        headers.UserAgent.Add(UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
        if (_deadline is { } d && d != DateTime.MaxValue)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(d - DateTime.UtcNow));
        }

        if (_options?.Headers is { } md)
        {
            foreach (var e in md)
            {
                if (!GrpcProtocol.IsReservedHeader(e.Key))
                {
                    headers.TryAddWithoutValidation(e.Key, e.Value);
                }
            }
        }

        if (_cts.IsCancellationRequested)
        {
            _sendTask = Task.FromCanceled<HttpResponseMessage>(_cts.Token);
            message.Dispose();
            return;
        }

        _sendTask = _channel.Invoker.SendAsync(message, _cts.Token);
    }

    /// <summary>The response headers (waits for them); empty for a trailers-only response.</summary>
    public async Task<Metadata> GetResponseHeadersAsync()
    {
        await EnsureResponseAsync().ConfigureAwait(false);
        return _responseHeaders ?? [];
    }

    private Task EnsureResponseAsync() => _responseReady ??= ReceiveHeadersAsync();

    private async Task ReceiveHeadersAsync()
    {
        HttpResponseMessage response;
        try
        {
            response = await _sendTask!.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }

        Volatile.Write(ref _response, response);
        if (_cts.IsCancellationRequested)
        {
            ResetStream();
            throw Fail(new OperationCanceledException(_cts.Token));
        }

        _responseHeaders = ToMetadata(response.Headers);
        var statusText = Single(response.Headers, GrpcProtocol.StatusHeader);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            if (statusText is null)
            {
                SetStatus(GrpcProtocol.FromHttpStatus((int)response.StatusCode), $"unexpected HTTP status code received from server: {(int)response.StatusCode} ({response.ReasonPhrase})");
                return;
            }
        }

        if (statusText is not null)
        {
            // Trailers-only response: the status came in the headers.
            _trailers = _responseHeaders;
            SetStatusFromText(statusText, Single(response.Headers, GrpcProtocol.MessageHeader));
            return;
        }

        var contentType = response.Content.Headers.ContentType?.MediaType;
        if (!GrpcProtocol.IsGrpcContentType(contentType))
        {
            SetStatus(StatusCode.Internal, $"transport: received unexpected content-type \"{contentType}\"");
            return;
        }

        Stream stream;
        try
        {
            stream = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }

        _pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(pool: MemoryPool<byte>.Shared, leaveOpen: true));
        var encoding = Single(response.Headers, GrpcProtocol.EncodingHeader);
        _reader = new GrpcMessageReader(_pipe, _channel.Options.MaxReceiveMessageBytes, encoding);
    }

    /// <summary>Reads the next response; null at the end of an OK call; throws for a failed call.</summary>
    public async ValueTask<TResponse?> ReadNextAsync(CancellationToken cancellationToken)
    {
        await EnsureResponseAsync().ConfigureAwait(false);
        if (_status is { } done)
        {
            return done.Code == StatusCode.OK ? null : throw _channel.Options.ExceptionFactory(done.Code, done.Message);
        }

        TResponse? message;
        CancellationTokenSource? linked = null;
        var token = _cts.Token;
        if (cancellationToken.CanBeCanceled)
        {
            linked = CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken);
            token = linked.Token;
        }

        try
        {
            message = await _reader!.ReadMessageAsync(_method.ResponseParser, token).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            // A bad frame from the server: fail the call and reset the stream.
            SetStatus(e.Status, e.Detail);
            _cts.Cancel();
            throw _channel.Options.ExceptionFactory(e.Status, e.Detail);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && !_cts.IsCancellationRequested)
        {
            throw new OperationCanceledException("the read was cancelled; the call goes on", e, cancellationToken);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
        finally
        {
            linked?.Dispose();
        }

        if (message is not null)
        {
            return message;
        }

        // End of the response body: the status is in the trailers.
        var trailers = _response!.TrailingHeaders;
        _trailers = ToMetadata(trailers);
        var statusText = Single(trailers, GrpcProtocol.StatusHeader);
        if (statusText is null)
        {
            SetStatus(_cts.IsCancellationRequested ? CancelStatus().Code : StatusCode.Internal, _cts.IsCancellationRequested ? CancelStatus().Message : "server closed the stream without sending trailers");
        }
        else
        {
            SetStatusFromText(statusText, Single(trailers, GrpcProtocol.MessageHeader));
        }

        var final = _status!;
        return final.Code == StatusCode.OK ? null : throw _channel.Options.ExceptionFactory(final.Code, final.Message);
    }

    /// <summary>Reads exactly one response and the OK status (unary, client streaming).</summary>
    public async Task<TResponse> ReadSingleResponseAsync()
    {
        var first = await ReadNextAsync(CancellationToken.None).ConfigureAwait(false)
            ?? throw _channel.Options.ExceptionFactory(StatusCode.Internal, "cardinality violation: expected <EOF> for non server-streaming RPCs, but received no message");
        if (await ReadNextAsync(CancellationToken.None).ConfigureAwait(false) is not null)
        {
            SetStatus(StatusCode.Internal, "cardinality violation: expected <EOF> for non server-streaming RPCs, but received another message");
            _cts.Cancel();
            throw _channel.Options.ExceptionFactory(StatusCode.Internal, _status!.Message);
        }

        return first;
    }

    /// <summary>Writes one request (client and duplex streaming).</summary>
    public async ValueTask WriteAsync(TRequest message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var push = _push ?? throw new InvalidOperationException("this call has no request stream");
        if (_status is { } ended)
        {
            throw ended.Code == StatusCode.OK
                ? new InvalidOperationException("the call has already completed")
                : _channel.Options.ExceptionFactory(ended.Code, ended.Message);
        }

        if (push.Completed)
        {
            throw new InvalidOperationException("the request stream has already been completed");
        }

        var size = message.CalculateSize();
        var max = _channel.Options.MaxSendMessageBytes;
        if (size > max)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"trying to send message larger than max ({size} vs. {max})");
        }

        var buffer = ArrayPool<byte>.Shared.Rent(GrpcFraming.HeaderSize + size);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken);
        try
        {
            GrpcFraming.WriteHeader(buffer, compressed: false, size);
            message.WriteTo(buffer.AsSpan(GrpcFraming.HeaderSize, size));
            var stream = await push.Stream.WaitAsync(linked.Token).ConfigureAwait(false);
            await stream.WriteAsync(buffer.AsMemory(0, GrpcFraming.HeaderSize + size), linked.Token).ConfigureAwait(false);
            await stream.FlushAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            if (cancellationToken.IsCancellationRequested && !_cts.IsCancellationRequested)
            {
                throw new OperationCanceledException("the write was cancelled", e, cancellationToken);
            }

            // The server may have ended the call already; prefer its status.
            if (_status is { Code: not StatusCode.OK } st)
            {
                throw _channel.Options.ExceptionFactory(st.Code, st.Message);
            }

            throw Fail(e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Half-closes the request stream (END_STREAM).</summary>
    public ValueTask CompleteRequestsAsync()
    {
        _push?.Complete();
        return ValueTask.CompletedTask;
    }

    private void SetStatusFromText(string statusText, string? messageText)
    {
        if (!GrpcProtocol.TryParseStatus(statusText, out var code))
        {
            SetStatus(StatusCode.Internal, $"transport: malformed grpc-status: {statusText}");
            return;
        }

        SetStatus(code, messageText is null ? string.Empty : GrpcStatusMessage.Decode(messageText));
    }

    private void SetStatus(StatusCode code, string message) => Interlocked.CompareExchange(ref _status, new CallStatus(code, message), null);

    private (StatusCode Code, string Message) CancelStatus() =>
        _deadlineCts?.IsCancellationRequested == true ? (StatusCode.DeadlineExceeded, "context deadline exceeded")
        : _channel.ShutdownToken.IsCancellationRequested && !_userToken.IsCancellationRequested ? (StatusCode.Cancelled, "grpc: the client connection is closing")
        : (StatusCode.Cancelled, "context canceled");

    private void ResetStream()
    {
        // Fail the request body rather than end it: ending it would send END_STREAM (a clean half-close).
        _push?.Abort();
        try
        {
            Volatile.Read(ref _response)?.Dispose();
        }
        catch (Exception)
        {
            // Disposing a response whose connection already failed may throw; the stream is gone either way.
        }
    }

    /// <summary>Turns a transport exception into the call's status exception.</summary>
    private RpcException Fail(Exception e)
    {
        StatusCode code;
        string message;
        if (_cts.IsCancellationRequested)
        {
            (code, message) = CancelStatus();
        }
        else if (e is HttpRequestException hre)
        {
            (code, message) = (StatusCode.Unavailable, "connection error: " + (hre.InnerException?.Message ?? hre.Message));
        }
        else if (e is RpcException rpc)
        {
            (code, message) = (rpc.Status, rpc.Detail);
        }
        else
        {
            (code, message) = (StatusCode.Unavailable, "transport: " + e.Message);
        }

        SetStatus(code, message);
        var st = _status!;
        _cts.Cancel();
        var ex = _channel.Options.ExceptionFactory(st.Code, st.Message);
        return ex.InnerException is null && ex.GetType() == typeof(RpcException) ? new RpcException(st.Code, st.Message, e) : ex;
    }

    private static string? Single(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static Metadata ToMetadata(HttpHeaders headers)
    {
        var md = new Metadata();
        foreach (var h in headers)
        {
            if (GrpcProtocol.IsReservedHeader(h.Key) || h.Key.Equals("date", StringComparison.OrdinalIgnoreCase) || h.Key.Equals("server", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var v in h.Value)
            {
                md.Add(h.Key, v);
            }
        }

        return md;
    }

    /// <summary>Ends the call: a call without a final status is cancelled (its HTTP/2 stream reset).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_status is null)
        {
            SetStatus(StatusCode.Cancelled, "context canceled");
            _cts.Cancel();
        }

        _push?.Complete();
        _userRegistration.Dispose();
        _shutdownRegistration.Dispose();
        _resetRegistration.Dispose();
        _pipe?.Complete();
        _response?.Dispose();
        _sendTask?.ContinueWith(
            static t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    t.Result.Dispose();
                }
                else
                {
                    _ = t.Exception; // observed: the call's outcome was already reported
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _deadlineCts?.Dispose();
        _cts.Dispose();
    }

    /// <summary>A call's final status.</summary>
    internal sealed record CallStatus(StatusCode Code, string Message);

    /// <summary>The request body of a one-request call: the framed message, serialised at construction.</summary>
    private sealed class FramedMessageContent : HttpContent
    {
        private readonly byte[] _frame;

        public FramedMessageContent(IMessage message, int maxSendBytes)
        {
            var size = message.CalculateSize();
            if (size > maxSendBytes)
            {
                throw new RpcException(StatusCode.ResourceExhausted, $"trying to send message larger than max ({size} vs. {maxSendBytes})");
            }

            _frame = new byte[GrpcFraming.HeaderSize + size];
            GrpcFraming.WriteHeader(_frame, compressed: false, size);
            message.WriteTo(_frame.AsSpan(GrpcFraming.HeaderSize));
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            stream.WriteAsync(_frame, 0, _frame.Length);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            stream.WriteAsync(_frame, cancellationToken).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = _frame.Length;
            return true;
        }
    }

    /// <summary>A request body written over time: hands the HTTP/2 request stream to writers until completed.</summary>
    private sealed class PushContent : HttpContent
    {
        private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<Stream> Stream => _stream.Task;

        public bool Completed => _complete.Task.IsCompleted;

        public void Complete() => _complete.TrySetResult();

        public void Abort() => _complete.TrySetException(new OperationCanceledException("the call was cancelled"));

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            _stream.TrySetResult(stream);
            using var registration = cancellationToken.Register(static s => ((PushContent)s!).Abort(), this);
            await _complete.Task.ConfigureAwait(false);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
