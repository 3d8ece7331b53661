using Etcd.Api.Grpc;
using Google.Protobuf;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Client.Grpc;

/// <summary>
/// One call made through Grpc.Net.Client, as the client's API presents it (clientv3's semantics): statuses in
/// grpc-go's words (<c>context canceled</c>, <c>context deadline exceeded</c>, <c>grpc: the client connection is
/// closing</c>, size limits), mapped through <see cref="GrpcChannelOptions.ExceptionFactory"/>; a read or write whose
/// own token fires throws <see cref="OperationCanceledException"/> while the call goes on. Reads are one at a time,
/// writes are one at a time (the stream contracts); reads and writes may run concurrently with each other (duplex).
/// </summary>
internal sealed class ClientCall<TRequest, TResponse> : IStreamingCall<TResponse>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions? _options;
    private readonly CancellationToken _userToken;
    private readonly CancellationTokenSource _cts = new();
    private readonly CancellationTokenRegistration _userRegistration;
    private readonly CancellationTokenRegistration _shutdownRegistration;
    private IDisposable? _call;
    private Func<Task<GrpcCore.Metadata>>? _headers;
    private Func<GrpcCore.Metadata>? _trailers;
    private GrpcCore.IAsyncStreamReader<TResponse>? _responses;
    private GrpcCore.IClientStreamWriter<TRequest>? _requests;
    private Task<TResponse>? _response;
    private Task<bool>? _pendingRead;
    private Task? _pendingWrite;
    private CallStatus? _status; // set once (first writer wins)
    private bool _requestsCompleted;
    private int _disposed;

    public ClientCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions? options, CancellationToken cancellationToken)
    {
        _channel = channel;
        _method = method;
        _options = options;
        _userToken = cancellationToken;
        if (cancellationToken.CanBeCanceled)
        {
            _userRegistration = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }

        _shutdownRegistration = channel.ShutdownToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
    }

    public Metadata? Trailers { get; private set; }

    public CallStatus? Status => Volatile.Read(ref _status);

    /// <summary>Starts a call whose single request is known now (unary, server streaming).</summary>
    public void Start(TRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        CheckSendSize(request);
        var invoker = _channel.CallInvoker;
        var method = _channel.Descriptor(_method);
        if (_method.Type == MethodType.Unary)
        {
            var call = invoker.AsyncUnaryCall(method, null, GrpcOptions(), request);
            (_call, _headers, _trailers, _response) = (call, () => call.ResponseHeadersAsync, call.GetTrailers, call.ResponseAsync);
        }
        else
        {
            var call = invoker.AsyncServerStreamingCall(method, null, GrpcOptions(), request);
            (_call, _headers, _trailers, _responses) = (call, () => call.ResponseHeadersAsync, call.GetTrailers, call.ResponseStream);
        }
    }

    /// <summary>Starts a call whose requests are written later (client, duplex streaming).</summary>
    public void StartStreaming()
    {
        var invoker = _channel.CallInvoker;
        var method = _channel.Descriptor(_method);
        if (_method.Type == MethodType.ClientStreaming)
        {
            var call = invoker.AsyncClientStreamingCall(method, null, GrpcOptions());
            (_call, _headers, _trailers, _requests, _response) = (call, () => call.ResponseHeadersAsync, call.GetTrailers, call.RequestStream, call.ResponseAsync);
        }
        else
        {
            var call = invoker.AsyncDuplexStreamingCall(method, null, GrpcOptions());
            (_call, _headers, _trailers, _requests, _responses) = (call, () => call.ResponseHeadersAsync, call.GetTrailers, call.RequestStream, call.ResponseStream);
        }
    }

    private GrpcCore.CallOptions GrpcOptions()
    {
        var deadline = _options?.EffectiveDeadline(DateTime.UtcNow);
        GrpcCore.Metadata? headers = null;
        if (_options?.Headers is { Count: > 0 } md)
        {
            headers = [];
            foreach (var (key, value) in md)
            {
                if (GrpcProtocol.IsReservedHeader(key))
                {
                    continue;
                }

                if (GrpcProtocol.IsBinaryKey(key))
                {
                    var text = value;
                    var pad = text.Length % 4;
                    headers.Add(key, Convert.FromBase64String(pad == 0 ? text : text + new string('=', 4 - pad)));
                }
                else
                {
                    headers.Add(key, value);
                }
            }
        }

        return new GrpcCore.CallOptions(headers, deadline is { } d && d != DateTime.MaxValue ? DateTime.SpecifyKind(d, DateTimeKind.Utc) : null, _cts.Token);
    }

    /// <summary>The response headers (waits for them); empty for a trailers-only response.</summary>
    public async Task<Metadata> GetResponseHeadersAsync()
    {
        try
        {
            return ToMetadata(await _headers!().ConfigureAwait(false));
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
    }

    /// <summary>Reads the next response; null at the end of an OK call; throws for a failed call.</summary>
    public async ValueTask<TResponse?> ReadNextAsync(CancellationToken cancellationToken)
    {
        if (_status is { } done)
        {
            return done.Code == StatusCode.OK ? null : throw _channel.Options.ExceptionFactory(done.Code, done.Message);
        }

        // The read goes on when only this read's token fires (the call lives on): the next read picks it up.
        var read = _pendingRead ??= _responses!.MoveNext(CancellationToken.None);
        bool more;
        try
        {
            more = await read.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && !read.IsCompleted)
        {
            throw new OperationCanceledException("the read was cancelled; the call goes on", e, cancellationToken);
        }
        catch (Exception e)
        {
            _pendingRead = null;
            throw Fail(e);
        }

        _pendingRead = null;
        if (more)
        {
            return _responses!.Current;
        }

        SetStatus(StatusCode.OK, string.Empty);
        Trailers = ToMetadata(_trailers!());
        return null;
    }

    /// <summary>Reads exactly one response and the OK status (unary, client streaming).</summary>
    public async Task<TResponse> ReadSingleResponseAsync()
    {
        try
        {
            var response = await _response!.ConfigureAwait(false);
            SetStatus(StatusCode.OK, string.Empty);
            Trailers = ToMetadata(_trailers!());
            return response;
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
    }

    /// <summary>Writes one request (client and duplex streaming).</summary>
    public async ValueTask WriteAsync(TRequest message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var requests = _requests ?? throw new InvalidOperationException("this call has no request stream");
        if (_status is { } ended)
        {
            throw ended.Code == StatusCode.OK
                ? new InvalidOperationException("the call has already completed")
                : _channel.Options.ExceptionFactory(ended.Code, ended.Message);
        }

        if (_requestsCompleted)
        {
            throw new InvalidOperationException("the request stream has already been completed");
        }

        CheckSendSize(message);
        if (_pendingWrite is { IsCompleted: false } previous)
        {
            // A write cancelled by its own token is still going; the stream allows one at a time.
            await previous.ConfigureAwait(false);
        }

        var write = _pendingWrite = requests.WriteAsync(message, CancellationToken.None);
        try
        {
            await write.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && !write.IsCompleted)
        {
            throw new OperationCanceledException("the write was cancelled", e, cancellationToken);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
    }

    /// <summary>Half-closes the request stream (END_STREAM).</summary>
    public async ValueTask CompleteRequestsAsync()
    {
        if (_requests is null || _requestsCompleted)
        {
            return;
        }

        _requestsCompleted = true;
        try
        {
            if (_pendingWrite is { } write)
            {
                await write.ConfigureAwait(false);
            }

            await _requests.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Fail(e);
        }
    }

    private void CheckSendSize(IMessage message)
    {
        var size = message.CalculateSize();
        var max = _channel.Options.MaxSendMessageBytes;
        if (size > max)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"trying to send message larger than max ({size} vs. {max})");
        }
    }

    private void SetStatus(StatusCode code, string message) => Interlocked.CompareExchange(ref _status, new CallStatus(code, message), null);

    private (StatusCode Code, string Message) CancelStatus() =>
        _channel.ShutdownToken.IsCancellationRequested && !_userToken.IsCancellationRequested ? (StatusCode.Cancelled, "grpc: the client connection is closing")
        : (StatusCode.Cancelled, "context canceled");

    /// <summary>Turns a failure of the call into its status exception, in grpc-go's words.</summary>
    private RpcException Fail(Exception e)
    {
        StatusCode code;
        string message;
        if (e is RpcException own)
        {
            (code, message) = (own.Status, own.Detail);
        }
        else if (_cts.IsCancellationRequested)
        {
            (code, message) = CancelStatus();
        }
        else if (e is GrpcCore.RpcException rpc)
        {
            (code, message) = ((StatusCode)rpc.StatusCode, rpc.Status.Detail);
            if (rpc.Status.DebugException is ReceivedTooLargeException large)
            {
                (code, message) = (StatusCode.ResourceExhausted, large.Message);
            }
            else if (code == StatusCode.DeadlineExceeded)
            {
                message = "context deadline exceeded";
            }
            else if (rpc.Status.DebugException is HttpRequestException hre)
            {
                // Connecting failed (refused, TLS handshake): grpc-go's transport reports Unavailable.
                (code, message) = (StatusCode.Unavailable, "connection error: " + (hre.InnerException?.Message ?? hre.Message));
                e = hre;
            }
        }
        else if (e is ReceivedTooLargeException large)
        {
            (code, message) = (StatusCode.ResourceExhausted, large.Message);
        }
        else
        {
            (code, message) = (StatusCode.Unavailable, "transport: " + e.Message);
        }

        SetStatus(code, message);
        var st = _status!;
        if (st.Code != StatusCode.OK)
        {
            try
            {
                Trailers ??= ToMetadata(_trailers!());
            }
            catch (InvalidOperationException)
            {
                // No trailers on a call that never got a response.
            }
        }

        var ex = _channel.Options.ExceptionFactory(st.Code, st.Message);
        return ex.InnerException is null && ex.GetType() == typeof(RpcException) ? new RpcException(st.Code, st.Message, e) : ex;
    }

    private static Metadata ToMetadata(GrpcCore.Metadata headers)
    {
        var md = new Metadata();
        foreach (var h in headers)
        {
            if (GrpcProtocol.IsReservedHeader(h.Key) || h.Key is "date" or "server")
            {
                continue;
            }

            md.Add(h.Key, h.IsBinary ? Convert.ToBase64String(h.ValueBytes) : h.Value);
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
        }

        _userRegistration.Dispose();
        _shutdownRegistration.Dispose();
        _call?.Dispose();
        _pendingRead?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _pendingWrite?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _response?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _cts.Dispose();
    }

    /// <summary>A call's final status.</summary>
    internal sealed record CallStatus(StatusCode Code, string Message);
}

/// <summary>A response over the channel's receive limit (thrown by its marshaller; grpc-go's status text).</summary>
internal sealed class ReceivedTooLargeException(long size, long max) : Exception($"grpc: received message larger than max ({size} vs. {max})");
