using System.Net.Sockets;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Grpc;

/// <summary>
/// The server side of one gRPC call served by Grpc.AspNetCore, as etcd's handlers need it: the call's token (client
/// reset, connection loss, the <c>grpc-timeout</c> deadline, a server-side abort) and the Go status the call ends with
/// when it was cancelled, timed out or aborted. Made by <see cref="GrpcCallInterceptor"/>, which makes the token the
/// request's <see cref="HttpContext.RequestAborted"/> for the call's duration, so Grpc.AspNetCore's own
/// <see cref="global::Grpc.Core.ServerCallContext.CancellationToken"/> (what interceptors and services see) is it;
/// interceptors find the call in the context's user state (<see cref="Of"/>). One per call; thread-safe for <see cref="Abort"/>, otherwise used
/// by the call's handler only.
/// </summary>
internal sealed class GrpcCall : IDisposable
{
    /// <summary>Deadlines this far off or farther are kept but never armed as timers.</summary>
    private static readonly TimeSpan MaxTimer = TimeSpan.FromDays(30);

    /// <summary>The <see cref="global::Grpc.Core.ServerCallContext.UserState"/> key of the call.</summary>
    public static readonly object UserStateKey = new();

    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private RpcException? _abortReason;

    /// <param name="http">The call's HTTP/2 request.</param>
    /// <param name="timeout">The call's <c>grpc-timeout</c>, taken off the request before Grpc.AspNetCore saw it; null when none.</param>
    public GrpcCall(HttpContext http, TimeSpan? timeout)
    {
        Http = http;
        Deadline = DateTime.MaxValue;
        if (timeout is { } t)
        {
            var now = DateTime.UtcNow;
            Deadline = t >= DateTime.MaxValue - now ? DateTime.MaxValue : now + t;
            if (t < MaxTimer)
            {
                _deadlineCts = new CancellationTokenSource(t);
            }
        }

        _callCts = _deadlineCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted)
            : CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _deadlineCts.Token);
        Token = _callCts.Token;
    }

    /// <summary>The call's HTTP/2 request (connection, client certificate, headers).</summary>
    public HttpContext Http { get; }

    /// <summary>Absolute deadline from <c>grpc-timeout</c>, or <see cref="DateTime.MaxValue"/>.</summary>
    public DateTime Deadline { get; }

    /// <summary>Fires on client cancellation, connection loss, deadline or <see cref="Abort"/>.</summary>
    public CancellationToken Token { get; }

    /// <summary>True once the call was cancelled, whatever the reason.</summary>
    public bool CallCancelled => Token.IsCancellationRequested;

    /// <summary>True once the <c>grpc-timeout</c> deadline passed.</summary>
    public bool DeadlineExceeded => _deadlineCts?.IsCancellationRequested == true;

    /// <summary>The error the server ended the call with (<see cref="Abort"/>); null when it did not.</summary>
    public RpcException? AbortReason => Volatile.Read(ref _abortReason);

    /// <summary>The call of a Grpc.AspNetCore call context inside <see cref="GrpcCallInterceptor"/>; null elsewhere (e.g. the JSON gateway).</summary>
    public static GrpcCall? Of(global::Grpc.Core.ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(UserStateKey, out var call) ? call as GrpcCall : null;
    }

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

    /// <summary>The status of a call whose token fired: the abort reason, else Go's deadline or cancel status.</summary>
    public RpcException CancelledException(Exception? inner) => AbortReason ?? (DeadlineExceeded
        ? new RpcException(StatusCode.DeadlineExceeded, GoStatus.DeadlineExceeded, inner)
        : new RpcException(StatusCode.Cancelled, GoStatus.Canceled, inner));

    /// <summary>Whether <paramref name="e"/> is how a read or write fails when the call or its connection went away.</summary>
    public static bool IsTransportFailure(Exception e) =>
        e is OperationCanceledException or IOException or ConnectionAbortedException or ConnectionResetException or SocketException or ObjectDisposedException or InvalidOperationException;

    public void Dispose()
    {
        _callCts.Dispose();
        _deadlineCts?.Dispose();
    }

    /// <summary>Reads request messages for streaming handlers, failing as etcd's handlers expect (our <see cref="RpcException"/> with Go's status).</summary>
    internal sealed class RequestReader<T>(global::Grpc.Core.IAsyncStreamReader<T> inner, GrpcCall call) : global::Grpc.Core.IAsyncStreamReader<T>
    {
        private bool _ended;

        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (_ended)
            {
                return false;
            }

            // Handlers mostly read with the call's own token: no linked source per message then.
            var token = call.Token;
            using var linked = cancellationToken.CanBeCanceled && cancellationToken != token ? CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken) : null;
            try
            {
                if (!await inner.MoveNext(linked?.Token ?? token).ConfigureAwait(false))
                {
                    _ended = true;
                    return false;
                }

                return true;
            }
            catch (global::Grpc.Core.RpcException e) when (!call.CallCancelled)
            {
                // The request failed to parse (e.g. over the size limit): the marshaller's Go status.
                throw new RpcException((StatusCode)e.StatusCode, e.Status.Detail, e);
            }
            catch (Exception e) when (IsTransportFailure(e) || e is global::Grpc.Core.RpcException)
            {
                if (cancellationToken.IsCancellationRequested && !call.CallCancelled)
                {
                    throw new OperationCanceledException(cancellationToken);
                }

                throw call.CancelledException(e);
            }
        }
    }

    /// <summary>Writes response messages for streaming handlers; writes must not overlap (the stream writer contract).</summary>
    internal sealed class ResponseWriter<T>(global::Grpc.Core.IServerStreamWriter<T> inner, GrpcCall call) : global::Grpc.Core.IServerStreamWriter<T>
    {
        public global::Grpc.Core.WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

        public async Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(message);
            if (call.CallCancelled)
            {
                throw call.CancelledException(null);
            }

            try
            {
                await inner.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransportFailure(e))
            {
                if (cancellationToken.IsCancellationRequested && !call.CallCancelled)
                {
                    throw new OperationCanceledException(cancellationToken);
                }

                throw call.CancelledException(e);
            }
        }
    }
}

/// <summary>
/// Go's wording of the statuses a client or etcd's e2e suite reads, where grpc-dotnet words them otherwise
/// (grpc-dotnet: "Deadline Exceeded", "Received message exceeds the maximum configured message size.", "Service is
/// unimplemented."; grpc-go: the strings below). etcdctl prints these texts, so they are part of the drop-in contract;
/// the call handler, the marshallers and the unknown-method answer take them from here.
/// </summary>
internal static class GoStatus
{
    /// <summary>A call whose <c>grpc-timeout</c> passed (Go's <c>context.DeadlineExceeded</c>).</summary>
    public const string DeadlineExceeded = "context deadline exceeded";

    /// <summary>A call its client cancelled (Go's <c>context.Canceled</c>).</summary>
    public const string Canceled = "context canceled";

    /// <summary>A request message over the server's limit (grpc-go's recvMsg).</summary>
    public static string ReceivedTooLarge(long size, long max) => $"grpc: received message larger than max ({size} vs. {max})";

    /// <summary>A request message that is not valid protobuf (grpc-go's recv).</summary>
    public static string Unmarshal(string error) => $"grpc: failed to unmarshal the received message {error}";

    /// <summary>A response message over the server's limit (grpc-go's encode).</summary>
    public static string SendTooLarge(long size, long max) => $"grpc: trying to send message larger than max ({size} vs. {max})";

    /// <summary>grpc-go's answer to a method it does not serve: <c>unknown service S</c> or <c>unknown method M for service S</c>.</summary>
    public static string UnknownMethod(string path, IEnumerable<string> servedPaths)
    {
        var slash = path.LastIndexOf('/');
        if (slash <= 0)
        {
            return $"malformed method name: \"{path}\"";
        }

        var service = path[1..slash];
        var method = path[(slash + 1)..];
        var prefix = "/" + service + "/";
        return servedPaths.Any(p => p.StartsWith(prefix, StringComparison.Ordinal))
            ? $"unknown method {method} for service {service}"
            : $"unknown service {service}";
    }

    /// <summary>Answers a gRPC request with a status only (trailers-only response), as grpc-go does for unknown methods.</summary>
    public static async Task WriteTrailersOnlyAsync(HttpContext http, StatusCode status, string message)
    {
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        var headers = response.Headers;
        headers[GrpcProtocol.StatusHeader] = GrpcProtocol.FormatStatus(status);
        if (message.Length > 0)
        {
            headers[GrpcProtocol.MessageHeader] = GrpcStatusMessage.Encode(message);
        }

        await response.CompleteAsync().ConfigureAwait(false);
    }
}
