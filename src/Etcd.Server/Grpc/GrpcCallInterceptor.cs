using System.Collections.Concurrent;
using Etcd.Api;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Grpc;

/// <summary>
/// The outermost Grpc.AspNetCore interceptor of a <see cref="GrpcHttpServer"/> (etcd's unary and stream interceptors,
/// <c>etcdserver/api/v3rpc/interceptor.go</c>, plus go-grpc-prometheus): it makes each call's <see cref="GrpcCall"/>
/// (deadline from <c>grpc-timeout</c>, server-side abort), whose token the call context then carries, for the interceptors inside it
/// (<see cref="GrpcHttpServerOptions.Interceptors"/>: auth token, <c>hasleader</c>) and to the service; it counts the
/// <c>grpc_server_*</c> metrics, logs handler failures, ends streams at server stop (<see cref="BeginDrain"/>), and
/// rewrites the status the call ends with into grpc-go's words (<see cref="GoStatus"/>).
/// <para>
/// Why the rewriting exists: etcdctl and the e2e suite print and compare grpc-go's texts (<c>context deadline
/// exceeded</c>, <c>context canceled</c>, etcd's own error strings), which grpc-dotnet words otherwise. etcd's errors
/// (<see cref="RpcException"/>, <see cref="EtcdException"/>) keep their code and text, a cancelled call ends as
/// <c>context canceled</c>, a timed-out one as <c>context deadline exceeded</c>, any other exception as Unknown with its
/// message (logged). Thread-safe; one per server.
/// </para>
/// </summary>
internal sealed partial class GrpcCallInterceptor : GrpcCore.Interceptors.Interceptor
{
    /// <summary>The <see cref="HttpContext.Items"/> key the call's <c>grpc-timeout</c> travels under (see <see cref="GrpcHttpServer"/>).</summary>
    public static readonly object TimeoutItem = new();

    /// <summary>The metadata key clientv3 sends its API version in (etcd's rpctypes.MetadataClientAPIVersionKey).</summary>
    private const string ClientApiVersionHeader = "client-api-version";

    private readonly GrpcServiceTable _table;
    private readonly GrpcHttpServerOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<GrpcCall, GrpcCore.MethodType> _active = new();
    private int _draining;

    public GrpcCallInterceptor(GrpcServiceTable table, GrpcHttpServerOptions options, ILogger logger)
    {
        _table = table;
        _options = options;
        _logger = logger;
    }

    /// <inheritdoc/>
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, GrpcCore.ServerCallContext context, GrpcCore.UnaryServerMethod<TRequest, TResponse> continuation)
        => RunAsync(context, async call => await continuation(request, context).ConfigureAwait(false)
            ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response"));

    /// <inheritdoc/>
    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, GrpcCore.IServerStreamWriter<TResponse> responseStream, GrpcCore.ServerCallContext context, GrpcCore.ServerStreamingServerMethod<TRequest, TResponse> continuation)
        => RunAsync(context, async call =>
        {
            await continuation(request, new GrpcCall.ResponseWriter<TResponse>(responseStream, call), context).ConfigureAwait(false);
            return true;
        });

    /// <inheritdoc/>
    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(GrpcCore.IAsyncStreamReader<TRequest> requestStream, GrpcCore.ServerCallContext context, GrpcCore.ClientStreamingServerMethod<TRequest, TResponse> continuation)
        => RunAsync(context, async call => await continuation(new GrpcCall.RequestReader<TRequest>(requestStream, call), context).ConfigureAwait(false)
            ?? throw new RpcException(StatusCode.Internal, "grpc: the handler returned no response"));

    /// <inheritdoc/>
    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(GrpcCore.IAsyncStreamReader<TRequest> requestStream, GrpcCore.IServerStreamWriter<TResponse> responseStream, GrpcCore.ServerCallContext context, GrpcCore.DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        => RunAsync(context, async call =>
        {
            await continuation(new GrpcCall.RequestReader<TRequest>(requestStream, call), new GrpcCall.ResponseWriter<TResponse>(responseStream, call), context).ConfigureAwait(false);
            return true;
        });

    private async Task<T> RunAsync<T>(GrpcCore.ServerCallContext grpc, Func<GrpcCall, Task<T>> body)
    {
        var http = GrpcCore.ServerCallContextExtensions.GetHttpContext(grpc);
        TimeSpan? timeout = http.Items.TryGetValue(TimeoutItem, out var t) ? (TimeSpan)t! : null;
        using var call = new GrpcCall(http, timeout);

        // Grpc.AspNetCore's context reads its token from the request on each access, and its interceptor pipeline needs
        // its own context type (it cannot be wrapped): the call's token goes into the request for the call's duration.
        var requestAborted = http.RequestAborted;
        http.RequestAborted = call.Token;
        grpc.UserState[GrpcCall.UserStateKey] = call;
        var method = _table.Find(grpc.Method)?.Method;
        var type = method?.Type ?? GrpcCore.MethodType.Unary;
        Metrics.GrpcServerMetrics.MethodStats? stats = null;
        long started = 0;
        if (_options.Metrics is { } metrics && method is not null)
        {
            // go-grpc-prometheus and etcd's own interceptors count every call of a known method.
            stats = metrics.For(method);
            stats.Started.Inc();
            started = System.Diagnostics.Stopwatch.GetTimestamp();
            var version = http.Request.Headers[ClientApiVersionHeader];
            metrics.ClientRequest(stats.IsUnary ? "unary" : "stream", version.Count > 0 ? version[0] : null);
        }

        _active[call] = type;
        if (Volatile.Read(ref _draining) == 1 && type != GrpcCore.MethodType.Unary)
        {
            call.Abort(EtcdErrors.Stopped.ToException());
        }

        StatusCode status;
        string message;
        T result = default!;
        try
        {
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
            // A status of the library's own (e.g. our marshaller's size limit, an unimplemented generated method).
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
            http.RequestAborted = requestAborted;
            grpc.UserState.Remove(GrpcCall.UserStateKey);
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
            if (type != GrpcCore.MethodType.Unary)
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
            : GoStatus.WriteTrailersOnlyAsync(http, StatusCode.Unimplemented, GoStatus.UnknownMethod(path, _table.Methods.Select(m => m.Method.FullName)));
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "gRPC handler for {Method} failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string method);
}
