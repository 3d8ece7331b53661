using System.Net;
using Etcd.Api;
using Etcd.Api.Grpc;
using Google.Protobuf;

namespace Etcd.Client.Grpc;

/// <summary>
/// A gRPC client channel to one server address over HTTP/2 (<c>http://</c>: prior knowledge h2c), built on
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
    private readonly bool _ownsHandler;
    private readonly CancellationTokenSource _shutdown = new();

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

        _invoker = new HttpMessageInvoker(handler, disposeHandler: _ownsHandler);
    }

    /// <summary>The server address (scheme, host, port).</summary>
    public Uri Address { get; }

    /// <summary>The channel's settings.</summary>
    public GrpcChannelOptions Options { get; }

    internal HttpMessageInvoker Invoker => _invoker;

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
        _invoker.Dispose();
    }
}
