using System.Collections.Concurrent;
using Etcd.Api;
using Etcd.Api.Grpc;
using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Grpc;

/// <summary>
/// What wraps every etcd handler Grpc.AspNetCore runs (etcd's unary and stream interceptors,
/// <c>etcdserver/api/v3rpc/interceptor.go</c>, plus go-grpc-prometheus): the call's deadline from
/// <c>grpc-timeout</c>, the <see cref="ServiceRegistry.Interceptor"/> (<c>hasleader</c>, later the auth token), the
/// <c>grpc_server_*</c> metrics, the drain at server stop, and the status the call ends with in grpc-go's words
/// (<see cref="GoStatus"/>): etcd errors as they are, a cancelled call as <c>context canceled</c>, a timed-out one as
/// <c>context deadline exceeded</c>, any other exception as Unknown with its message (logged). Thread-safe.
/// </summary>
internal sealed partial class GrpcCallHandler
{
    /// <summary>The <see cref="HttpContext.Items"/> key the call's <c>grpc-timeout</c> travels under (see <see cref="GrpcHttpServer"/>).</summary>
    public static readonly object TimeoutItem = new();

    /// <summary>The metadata key clientv3 sends its API version in (etcd's rpctypes.MetadataClientAPIVersionKey).</summary>
    private const string ClientApiVersionHeader = "client-api-version";

    private readonly ServiceRegistry _registry;
    private readonly GrpcHttpServerOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<GrpcCall, MethodType> _active = new();
    private int _draining;

    public GrpcCallHandler(ServiceRegistry registry, GrpcHttpServerOptions options, ILogger logger)
    {
        _registry = registry;
        _options = options;
        _logger = logger;
    }

    /// <summary>The registry the calls are served from.</summary>
    public ServiceRegistry Registry => _registry;

    /// <summary>The options (message size limits, metrics).</summary>
    public GrpcHttpServerOptions Options => _options;

    /// <summary>Runs <paramref name="body"/> as the handler of one call of <paramref name="method"/>; see the type's summary.</summary>
    public async Task<T> RunAsync<T>(ServiceMethod method, GrpcCore.ServerCallContext grpc, Func<GrpcCall, Task<T>> body)
    {
        var http = GrpcCore.ServerCallContextExtensions.GetHttpContext(grpc);
        TimeSpan? timeout = http.Items.TryGetValue(TimeoutItem, out var t) ? (TimeSpan)t! : null;
        using var call = new GrpcCall(grpc, timeout);
        var type = method.Method.Type;
        Metrics.GrpcServerMetrics.MethodStats? stats = null;
        long started = 0;
        if (_options.Metrics is { } metrics)
        {
            // go-grpc-prometheus and etcd's own interceptors count every call of a known method.
            stats = metrics.For(method.Method);
            stats.Started.Inc();
            started = System.Diagnostics.Stopwatch.GetTimestamp();
            var version = http.Request.Headers[ClientApiVersionHeader];
            metrics.ClientRequest(stats.IsUnary ? "unary" : "stream", version.Count > 0 ? version[0] : null);
        }

        _active[call] = type;
        if (Volatile.Read(ref _draining) == 1 && type != MethodType.Unary)
        {
            call.Abort(EtcdErrors.Stopped.ToException());
        }

        StatusCode status;
        string message;
        T result = default!;
        StreamGuard? guard = null;
        CancellationTokenRegistration abortRegistration = default;
        try
        {
            if (_registry.Interceptor is { } interceptor)
            {
                guard = interceptor.BeforeCall(method.Method, call.Context);
                if (guard is not null)
                {
                    var g = guard;
                    abortRegistration = g.Aborted.Register(() => call.Abort(g.Error));
                }
            }

            result = await body(call).ConfigureAwait(false);
            (status, message) = (StatusCode.OK, string.Empty);
        }
        catch (RpcException e)
        {
            (status, message) = (e.Status, e.Detail);
            if (status == StatusCode.Cancelled && call.DeadlineExceeded)
            {
                (status, message) = (StatusCode.DeadlineExceeded, GoStatus.DeadlineExceeded);
            }
        }
        catch (GrpcCore.RpcException e) when (!call.CallCancelled)
        {
            // Grpc.AspNetCore's own failure of the call's single request (e.g. our marshaller's size limit).
            (status, message) = ((StatusCode)e.StatusCode, e.Status.Detail);
        }
        catch (Exception e) when (call.CallCancelled && (GrpcCall.IsTransportFailure(e) || e is GrpcCore.RpcException))
        {
            (status, message) = call.DeadlineExceeded ? (StatusCode.DeadlineExceeded, GoStatus.DeadlineExceeded) : (StatusCode.Cancelled, GoStatus.Canceled);
        }
        catch (Exception e)
        {
            LogHandlerFailed(_logger, e, grpc.Method);
            (status, message) = (StatusCode.Unknown, e.Message);
        }
        finally
        {
            _active.TryRemove(call, out _);
            await abortRegistration.DisposeAsync().ConfigureAwait(false);
            guard?.Dispose();
        }

        if (call.AbortReason is { } reason)
        {
            // The server ended the stream (e.g. lost leader, stop): that, not what the handler made of it, is the status.
            (status, message) = (reason.Status, reason.Detail);
        }

        if (stats is not null)
        {
            // A client that cancelled (etcdctl watch interrupted, a reset stream) never sees the status; grpc-go's
            // handlers return the context's error then, and that is what etcd's metrics count.
            var counted = status == StatusCode.OK && call.CallCancelled && call.AbortReason is null
                ? (call.DeadlineExceeded ? StatusCode.DeadlineExceeded : StatusCode.Cancelled)
                : status;
            stats.Handled(counted, started);
        }

        if (call.Trailers is { } trailers)
        {
            foreach (var (key, value) in trailers)
            {
                if (key.EndsWith("-bin", StringComparison.Ordinal))
                {
                    grpc.ResponseTrailers.Add(key, Convert.FromBase64String(value));
                }
                else
                {
                    grpc.ResponseTrailers.Add(key, value);
                }
            }
        }

        if (status != StatusCode.OK)
        {
            throw new GrpcCore.RpcException(new GrpcCore.Status((GrpcCore.StatusCode)status, message));
        }

        return result;
    }

    /// <summary>
    /// The server begins to stop: streaming calls (watch, lease keep-alive, observe, snapshot), which would never end by
    /// themselves, end now with etcd's <c>etcdserver: server stopped</c> (Unavailable, so clients retry elsewhere), and so
    /// does every streaming call that starts from now on; unary calls run on. Thread-safe.
    /// </summary>
    public void BeginDrain()
    {
        Volatile.Write(ref _draining, 1);
        foreach (var (call, type) in _active)
        {
            if (type != MethodType.Unary)
            {
                call.Abort(EtcdErrors.Stopped.ToException());
            }
        }
    }

    /// <summary>The drain time is up: every call still running ends with <c>etcdserver: server stopped</c>. Thread-safe.</summary>
    public void AbortAll()
    {
        foreach (var call in _active.Keys)
        {
            call.Abort(EtcdErrors.Stopped.ToException());
        }
    }

    /// <summary>
    /// Answers a gRPC request no served method matched (Grpc.AspNetCore passes unknown services on): Unimplemented with
    /// grpc-go's <c>unknown service S</c> / <c>unknown method M for service S</c>, or Internal for a method other than POST.
    /// </summary>
    public Task UnknownMethodAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? string.Empty;
        return !HttpMethods.IsPost(http.Request.Method)
            ? GoStatus.WriteTrailersOnlyAsync(http, StatusCode.Internal, $"grpc: invalid HTTP method {http.Request.Method}")
            : GoStatus.WriteTrailersOnlyAsync(http, StatusCode.Unimplemented, GoStatus.UnknownMethod(path, _registry.Methods.Select(m => m.Method.FullName)));
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "gRPC handler for {Method} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string method);
}

/// <summary>
/// The Grpc.AspNetCore service that serves every method of a <see cref="ServiceRegistry"/> (etcd's services and any
/// registered later, e.g. Auth): Grpc.AspNetCore routes, reads and writes the calls; each one runs its registry handler
/// through <see cref="GrpcCallHandler"/>. The same handlers serve the JSON gateway. Stateless; one instance per server.
/// </summary>
public sealed class EtcdGrpcService
{
}

/// <summary>
/// Binds the registry's methods to <see cref="EtcdGrpcService"/> with marshallers of our own: they enforce the
/// server's message size limits with grpc-go's status text (Grpc.AspNetCore's own limits are off) and count the
/// <c>grpc_server_msg_*</c> messages and client bytes.
/// </summary>
internal sealed class RegistryMethodProvider(GrpcCallHandler handler) : IServiceMethodProvider<EtcdGrpcService>
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<EtcdGrpcService> context)
    {
        foreach (var method in handler.Registry.Methods)
        {
            var types = method.Method.GetType().GetGenericArguments();
            var binder = (MethodBinder)Activator.CreateInstance(typeof(MethodBinder<,>).MakeGenericType(types), method, handler)!;
            binder.Bind(context);
        }
    }

    private abstract class MethodBinder
    {
        public abstract void Bind(ServiceMethodProviderContext<EtcdGrpcService> context);
    }

    private sealed class MethodBinder<TRequest, TResponse>(ServiceMethod method, GrpcCallHandler handler) : MethodBinder
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        public override void Bind(ServiceMethodProviderContext<EtcdGrpcService> context)
        {
            var m = (Method<TRequest, TResponse>)method.Method;
            var stats = handler.Options.Metrics?.For(m);
            var maxReceive = handler.Options.MaxReceiveMessageBytes;
            var maxSend = handler.Options.MaxSendMessageBytes;
            var requests = GrpcCore.Marshallers.Create(
                (TRequest message, GrpcCore.SerializationContext ctx) => Serialize(message, ctx, int.MaxValue, null),
                ctx =>
                {
                    if (ctx.PayloadLength > maxReceive)
                    {
                        throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.ResourceExhausted, GoStatus.ReceivedTooLarge(ctx.PayloadLength, maxReceive)));
                    }

                    stats?.MessageReceived(ctx.PayloadLength);
                    try
                    {
                        return m.RequestParser.ParseFrom(ctx.PayloadAsReadOnlySequence());
                    }
                    catch (InvalidProtocolBufferException e)
                    {
                        throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.Internal, GoStatus.Unmarshal(e.Message)));
                    }
                });
            var responses = GrpcCore.Marshallers.Create(
                (TResponse message, GrpcCore.SerializationContext ctx) => Serialize(message, ctx, maxSend, stats),
                ctx => m.ResponseParser.ParseFrom(ctx.PayloadAsReadOnlySequence()));
            var descriptor = new GrpcCore.Method<TRequest, TResponse>((GrpcCore.MethodType)m.Type, m.ServiceName, m.Name, requests, responses);
            var metadata = new List<object>();
            switch (m.Type)
            {
                case MethodType.Unary:
                    var unary = (UnaryHandler<TRequest, TResponse>)method.Handler;
                    context.AddUnaryMethod(descriptor, metadata, (_, request, grpc) => handler.RunAsync(method, grpc, async call =>
                        await unary(request, call.Context).ConfigureAwait(false) ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response")));
                    break;
                case MethodType.ServerStreaming:
                    var serverStreaming = (ServerStreamingHandler<TRequest, TResponse>)method.Handler;
                    context.AddServerStreamingMethod(descriptor, metadata, (_, request, writer, grpc) => handler.RunAsync(method, grpc, async call =>
                    {
                        await serverStreaming(request, new GrpcCall.ResponseWriter<TResponse>(writer, call), call.Context).ConfigureAwait(false);
                        return true;
                    }));
                    break;
                case MethodType.ClientStreaming:
                    var clientStreaming = (ClientStreamingHandler<TRequest, TResponse>)method.Handler;
                    context.AddClientStreamingMethod(descriptor, metadata, (_, reader, grpc) => handler.RunAsync(method, grpc, async call =>
                        await clientStreaming(new GrpcCall.RequestReader<TRequest>(reader, call), call.Context).ConfigureAwait(false) ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response")));
                    break;
                case MethodType.DuplexStreaming:
                    var duplex = (DuplexStreamingHandler<TRequest, TResponse>)method.Handler;
                    context.AddDuplexStreamingMethod(descriptor, metadata, (_, reader, writer, grpc) => handler.RunAsync(method, grpc, async call =>
                    {
                        await duplex(new GrpcCall.RequestReader<TRequest>(reader, call), new GrpcCall.ResponseWriter<TResponse>(writer, call), call.Context).ConfigureAwait(false);
                        return true;
                    }));
                    break;
            }
        }

        private static void Serialize<T>(T message, GrpcCore.SerializationContext ctx, int max, Metrics.GrpcServerMetrics.MethodStats? stats)
            where T : IMessage<T>
        {
            var size = message.CalculateSize();
            if (size > max)
            {
                throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.ResourceExhausted, GoStatus.SendTooLarge(size, max)));
            }

            ctx.SetPayloadLength(size);
            message.WriteTo(ctx.GetBufferWriter());
            ctx.Complete();
            stats?.MessageSent(size);
        }
    }
}
