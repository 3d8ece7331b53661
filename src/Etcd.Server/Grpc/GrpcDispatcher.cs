using System.Collections.Concurrent;
using Etcd.Api;
using Etcd.Api.Grpc;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Grpc;

/// <summary>
/// Serves one gRPC request: finds the method, runs its handler through a typed invoker, and ends the call with
/// <c>grpc-status</c>/<c>grpc-message</c> (trailers-only when nothing was sent). Thread-safe (per-call state
/// lives in <see cref="HttpServerCall"/>).
/// </summary>
internal sealed partial class GrpcDispatcher
{
    private readonly ServiceRegistry _registry;
    private readonly GrpcHttpServerOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<ServiceMethod, ServerMethodInvoker> _invokers = new();
    private readonly ConcurrentDictionary<HttpServerCall, MethodType> _active = new();
    private int _draining;

    /// <summary>The metadata key clientv3 sends its API version in (etcd's rpctypes.MetadataClientAPIVersionKey).</summary>
    private const string ClientApiVersionHeader = "client-api-version";

    public GrpcDispatcher(ServiceRegistry registry, GrpcHttpServerOptions options, ILogger logger)
    {
        _registry = registry;
        _options = options;
        _logger = logger;
    }

    public async Task HandleAsync(HttpContext http)
    {
        var features = http.Features;
        if (features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } maxBody)
        {
            maxBody.MaxRequestBodySize = null;
        }

        if (features.Get<IHttpMinRequestBodyDataRateFeature>() is { } minRequestRate)
        {
            minRequestRate.MinDataRate = null;
        }

        if (features.Get<IHttpMinResponseDataRateFeature>() is { } minResponseRate)
        {
            minResponseRate.MinDataRate = null;
        }

        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;

        var path = http.Request.Path.Value ?? string.Empty;
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            await WriteTrailersOnlyAsync(http, StatusCode.Internal, $"grpc: invalid HTTP method {http.Request.Method}").ConfigureAwait(false);
            return;
        }

        var method = _registry.Find(path);
        if (method is null)
        {
            await WriteTrailersOnlyAsync(http, StatusCode.Unimplemented, UnknownMethodMessage(path, _registry)).ConfigureAwait(false);
            return;
        }

        var invoker = _invokers.GetOrAdd(method, ServerMethodInvoker.Create);

        using var call = new HttpServerCall(http, path, _options);
        long started = 0;
        if (_options.Metrics is { } metrics)
        {
            // go-grpc-prometheus and etcd's own interceptors count every call of a known method.
            var stats = metrics.For(method.Method);
            call.Stats = stats;
            stats.Started.Inc();
            started = System.Diagnostics.Stopwatch.GetTimestamp();
            var version = http.Request.Headers[ClientApiVersionHeader];
            metrics.ClientRequest(stats.IsUnary ? "unary" : "stream", version.Count > 0 ? version[0] : null);
        }

        var type = method.Method.Type;
        _active[call] = type;
        if (Volatile.Read(ref _draining) == 1 && type != MethodType.Unary)
        {
            call.Abort(EtcdErrors.Stopped.ToException());
        }

        StatusCode status;
        string message;
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

            await invoker.InvokeAsync(call).ConfigureAwait(false);
            status = StatusCode.OK;
            message = string.Empty;
        }
        catch (RpcException e)
        {
            (status, message) = (e.Status, e.Detail);
            if (status == StatusCode.Cancelled && call.DeadlineExceeded)
            {
                (status, message) = (StatusCode.DeadlineExceeded, "context deadline exceeded");
            }
        }
        catch (Exception e) when (call.CallCancelled && (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Connections.ConnectionAbortedException))
        {
            (status, message) = call.DeadlineExceeded
                ? (StatusCode.DeadlineExceeded, "context deadline exceeded")
                : (StatusCode.Cancelled, "context canceled");
        }
        catch (Exception) when (call.AbortReason is not null)
        {
            (status, message) = (call.AbortReason.Status, call.AbortReason.Detail);
        }
        catch (Exception e)
        {
            LogHandlerFailed(_logger, e, path);
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
            // The server ended the stream (e.g. lost leader): that, not what the handler made of it, is the status.
            (status, message) = (reason.Status, reason.Detail);
        }

        if (call.Stats is { } callStats)
        {
            // A client that cancelled (etcdctl watch interrupted, a reset stream) never sees the status; grpc-go's
            // handlers return the context's error then, and that is what etcd's metrics count.
            var counted = status == StatusCode.OK && call.CallCancelled && call.AbortReason is null
                ? (call.DeadlineExceeded ? StatusCode.DeadlineExceeded : StatusCode.Cancelled)
                : status;
            callStats.Handled(counted, started);
        }

        await call.CompleteAsync(status, message).ConfigureAwait(false);
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

    private static string UnknownMethodMessage(string path, ServiceRegistry registry)
    {
        var slash = path.LastIndexOf('/');
        if (slash <= 0)
        {
            return $"malformed method name: \"{path}\"";
        }

        var service = path[1..slash];
        var method = path[(slash + 1)..];
        var prefix = "/" + service + "/";
        foreach (var m in registry.Methods)
        {
            if (m.Method.FullName.StartsWith(prefix, StringComparison.Ordinal))
            {
                return $"unknown method {method} for service {service}";
            }
        }

        return $"unknown service {service}";
    }

    internal static async Task WriteTrailersOnlyAsync(HttpContext http, StatusCode status, string message)
    {
        var headers = http.Response.Headers;
        headers[GrpcProtocol.StatusHeader] = GrpcProtocol.FormatStatus(status);
        if (message.Length > 0)
        {
            headers[GrpcProtocol.MessageHeader] = GrpcStatusMessage.Encode(message);
        }

        await http.Response.CompleteAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "gRPC handler for {Method} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string method);
}

/// <summary>Runs one registered method's typed handler against an <see cref="HttpServerCall"/>.</summary>
internal abstract class ServerMethodInvoker
{
    public abstract Task InvokeAsync(HttpServerCall call);

    public static ServerMethodInvoker Create(ServiceMethod method)
    {
        var types = method.Method.GetType().GetGenericArguments();
        var invokerType = typeof(ServerMethodInvoker<,>).MakeGenericType(types);
        return (ServerMethodInvoker)Activator.CreateInstance(invokerType, method)!;
    }
}

/// <summary>Typed invoker for <c>Method&lt;TRequest, TResponse&gt;</c>.</summary>
internal sealed class ServerMethodInvoker<TRequest, TResponse> : ServerMethodInvoker
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly Method<TRequest, TResponse> _method;
    private readonly Delegate _handler;

    public ServerMethodInvoker(ServiceMethod method)
    {
        _method = (Method<TRequest, TResponse>)method.Method;
        _handler = method.Handler;
    }

    public override async Task InvokeAsync(HttpServerCall call)
    {
        var parser = _method.RequestParser;
        switch (_method.Type)
        {
            case MethodType.Unary:
            {
                var request = await call.ReadSingleRequestAsync(parser).ConfigureAwait(false);
                var response = await ((UnaryHandler<TRequest, TResponse>)_handler)(request, call.Context).ConfigureAwait(false);
                await call.WriteResponseAsync(response ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response"), CancellationToken.None, flush: false).ConfigureAwait(false);
                break;
            }

            case MethodType.ServerStreaming:
            {
                var request = await call.ReadSingleRequestAsync(parser).ConfigureAwait(false);
                await ((ServerStreamingHandler<TRequest, TResponse>)_handler)(request, new HttpServerCall.ResponseWriter<TResponse>(call), call.Context).ConfigureAwait(false);
                break;
            }

            case MethodType.ClientStreaming:
            {
                var response = await ((ClientStreamingHandler<TRequest, TResponse>)_handler)(new HttpServerCall.RequestReader<TRequest>(call, parser), call.Context).ConfigureAwait(false);
                await call.WriteResponseAsync(response ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response"), CancellationToken.None, flush: false).ConfigureAwait(false);
                break;
            }

            case MethodType.DuplexStreaming:
                await ((DuplexStreamingHandler<TRequest, TResponse>)_handler)(new HttpServerCall.RequestReader<TRequest>(call, parser), new HttpServerCall.ResponseWriter<TResponse>(call), call.Context).ConfigureAwait(false);
                break;

            default:
                throw new RpcException(StatusCode.Internal, $"grpc: unsupported method type {_method.Type}");
        }
    }
}
