using System.Collections.Concurrent;
using System.Net;
using Etcd.Api;
using Etcd.Api.Grpc;
using Google.Protobuf;

namespace Etcd.Client.Grpc;

/// <summary>
/// A gRPC client channel to one server address over HTTP/2 (<c>http://</c>: prior knowledge h2c): Grpc.Net.Client over
/// <see cref="SocketsHttpHandler"/> with multiple HTTP/2 connections allowed. Calls of all four shapes;
/// per-call deadline (sent as <c>grpc-timeout</c>), cancellation (resets the HTTP/2 stream) and metadata.
/// A call that ends with a non-OK status throws the exception made by
/// <see cref="GrpcChannelOptions.ExceptionFactory"/> (etcd errors become <see cref="EtcdException"/>);
/// cancellation by the caller's token throws <see cref="RpcException"/> Cancelled <c>context canceled</c>, a
/// passed deadline DeadlineExceeded <c>context deadline exceeded</c>, a connection failure Unavailable.
/// Thread-safe: any number of concurrent calls.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private readonly HttpMessageInvoker _invoker;
    private readonly global::Grpc.Net.Client.GrpcChannel _channel;
    private readonly HttpMessageHandler _handler;
    private readonly bool _ownsHandler;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ConcurrentDictionary<IMethod, object> _descriptors = new();

    private GrpcChannel(Uri address, GrpcChannelOptions options)
    {
        Address = address;
        Options = options;
        var handler = options.HttpHandler;
        _ownsHandler = handler is null;
        handler ??= new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = options.ConnectTimeout,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        };
        if (_ownsHandler && options.SslOptions is not null && handler is SocketsHttpHandler sockets)
        {
            sockets.SslOptions = options.SslOptions;
        }

        _handler = handler;
        _invoker = new HttpMessageInvoker(handler, disposeHandler: false);

        // Size limits are ours (ClientCall and the marshallers), so their statuses carry grpc-go's text.
        _channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(address, new global::Grpc.Net.Client.GrpcChannelOptions
        {
            // An HttpClient, not the SocketsHttpHandler itself: Grpc.Net.Client would take a handler over for its own
            // subchannels (load balancing we do not use), and raw requests on the same connections would fail.
            HttpClient = new HttpClient(handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan },
            DisposeHttpClient = true,
            MaxReceiveMessageSize = null,
            MaxSendMessageSize = null,
            MaxRetryAttempts = null,
        });
        CallInvoker = _channel.CreateCallInvoker();
    }

    /// <summary>The server address (scheme, host, port).</summary>
    public Uri Address { get; }

    /// <summary>The channel's settings.</summary>
    public GrpcChannelOptions Options { get; }

    /// <summary>Raw HTTP requests over the channel's connections (tests of the wire).</summary>
    internal HttpMessageInvoker Invoker => _invoker;

    /// <summary>Grpc.Net.Client's invoker the calls go through.</summary>
    internal global::Grpc.Core.CallInvoker CallInvoker { get; }

    /// <summary>
    /// Grpc.Net.Client's descriptor of <paramref name="method"/>, one per method and channel, with our marshallers: the
    /// response parser enforces <see cref="GrpcChannelOptions.MaxReceiveMessageBytes"/> with grpc-go's status text.
    /// </summary>
    internal global::Grpc.Core.Method<TRequest, TResponse> Descriptor<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        if (_descriptors.TryGetValue(method, out var known))
        {
            return (global::Grpc.Core.Method<TRequest, TResponse>)known;
        }

        var max = Options.MaxReceiveMessageBytes;
        var requests = global::Grpc.Core.Marshallers.Create(
            (TRequest message, global::Grpc.Core.SerializationContext ctx) =>
            {
                var size = message.CalculateSize();
                ctx.SetPayloadLength(size);
                message.WriteTo(ctx.GetBufferWriter());
                ctx.Complete();
            },
            ctx => method.RequestParser.ParseFrom(ctx.PayloadAsReadOnlySequence()));
        var responses = global::Grpc.Core.Marshallers.Create(
            (TResponse message, global::Grpc.Core.SerializationContext ctx) =>
            {
                ctx.SetPayloadLength(message.CalculateSize());
                message.WriteTo(ctx.GetBufferWriter());
                ctx.Complete();
            },
            ctx => ctx.PayloadLength > max
                ? throw new ReceivedTooLargeException(ctx.PayloadLength, max)
                : method.ResponseParser.ParseFrom(ctx.PayloadAsReadOnlySequence()));
        var descriptor = new global::Grpc.Core.Method<TRequest, TResponse>((global::Grpc.Core.MethodType)method.Type, method.ServiceName, method.Name, requests, responses);
        return (global::Grpc.Core.Method<TRequest, TResponse>)_descriptors.GetOrAdd(method, descriptor);
    }

    internal CancellationToken ShutdownToken => _shutdown.Token;

    /// <summary>
    /// Creates a channel to <paramref name="address"/>: <c>http://host:port</c>, <c>https://host:port</c> (TLS per
    /// <see cref="GrpcChannelOptions.SslOptions"/>), or <c>host:port</c> (taken as http, as etcdctl does).
    /// </summary>
    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) =>
        new(ParseAddress(address), options ?? new GrpcChannelOptions());

    /// <summary>Creates a channel to <paramref name="address"/> (see <see cref="ForAddress(string, GrpcChannelOptions?)"/>).</summary>
    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null) =>
        new(address, options ?? new GrpcChannelOptions());

    /// <summary>Parses <c>host:port</c> or <c>scheme://host:port</c> into an http(s) base URI.</summary>
    public static Uri ParseAddress(string address)
    {
        var text = address.Contains("://", StringComparison.Ordinal) ? address : "http://" + address;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new FormatException($"expected host:port or http(s)://host:port, got {address}");
        }

        return new Uri(uri.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>Makes a unary call and returns its response; throws on a non-OK status (see the type remarks).</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        using var call = new ClientCall<TRequest, TResponse>(this, method, options, cancellationToken);
        call.Start(request);
        return await call.ReadSingleResponseAsync().ConfigureAwait(false);
    }

    /// <summary>Starts a server-streaming call; read <see cref="ServerStreamingCall{TResponse}.ResponseStream"/> to the end, then dispose.</summary>
    public ServerStreamingCall<TResponse> ServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new ClientCall<TRequest, TResponse>(this, method, options, cancellationToken);
        call.Start(request);
        return new ServerStreamingCall<TResponse>(call);
    }

    /// <summary>Starts a client-streaming call: write requests, complete the request stream, await the response.</summary>
    public ClientStreamingCall<TRequest, TResponse> ClientStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new ClientCall<TRequest, TResponse>(this, method, options, cancellationToken);
        call.StartStreaming();
        return new ClientStreamingCall<TRequest, TResponse>(call);
    }

    /// <summary>Starts a bidirectional-streaming call.</summary>
    public DuplexStreamingCall<TRequest, TResponse> DuplexStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new ClientCall<TRequest, TResponse>(this, method, options, cancellationToken);
        call.StartStreaming();
        return new DuplexStreamingCall<TRequest, TResponse>(call);
    }

    /// <summary>The default <see cref="GrpcChannelOptions.ExceptionFactory"/>: etcd's errors by message, else <see cref="RpcException"/>.</summary>
    public static RpcException DefaultException(StatusCode status, string message)
    {
        var known = EtcdErrors.FromMessage(message);
        return known is not null && known.Code == status ? known.ToException() : new RpcException(status, message);
    }

    /// <summary>
    /// Cancels the calls in flight (they fail with Cancelled <c>grpc: the client connection is closing</c>,
    /// their streams reset) and closes the channel's connections when it owns its handler. Idempotent.
    /// </summary>
    public void Dispose()
    {
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }

        _shutdown.Cancel();
        _channel.Dispose();
        _invoker.Dispose();
        if (_ownsHandler)
        {
            _handler.Dispose();
        }
    }
}

