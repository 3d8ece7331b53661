using System.Net.Sockets;
using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Grpc;

/// <summary>
/// The server side of one gRPC call served by Grpc.AspNetCore, as etcd's handlers see it: the call's token (client
/// reset, connection loss, the <c>grpc-timeout</c> deadline, a server-side abort), its request metadata and trailers,
/// and the Go status the call ends with when it was cancelled, timed out or aborted. One per call; thread-safe for
/// <see cref="Abort"/>, otherwise used by the call's handler only.
/// </summary>
internal sealed class GrpcCall : IDisposable
{
    /// <summary>Deadlines this far off or farther are kept but never armed as timers.</summary>
    private static readonly TimeSpan MaxTimer = TimeSpan.FromDays(30);

    private readonly global::Grpc.Core.ServerCallContext _grpc;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private RpcException? _abortReason;

    /// <param name="grpc">Grpc.AspNetCore's context of the call.</param>
    /// <param name="timeout">The call's <c>grpc-timeout</c>, taken off the request before Grpc.AspNetCore saw it; null when none.</param>
    public GrpcCall(global::Grpc.Core.ServerCallContext grpc, TimeSpan? timeout)
    {
        _grpc = grpc;
        var deadline = DateTime.MaxValue;
        if (timeout is { } t)
        {
            var now = DateTime.UtcNow;
            deadline = t >= DateTime.MaxValue - now ? DateTime.MaxValue : now + t;
            if (t < MaxTimer)
            {
                _deadlineCts = new CancellationTokenSource(t);
            }
        }

        _callCts = _deadlineCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(grpc.CancellationToken)
            : CancellationTokenSource.CreateLinkedTokenSource(grpc.CancellationToken, _deadlineCts.Token);
        Context = new Ctx(this, deadline);
    }

    /// <summary>What the handler sees of the call.</summary>
    public ServerCallContext Context { get; }

    /// <summary>Fires on client cancellation, connection loss, deadline or <see cref="Abort"/>.</summary>
    public CancellationToken Token => _callCts.Token;

    /// <summary>True once the call was cancelled, whatever the reason.</summary>
    public bool CallCancelled => _callCts.IsCancellationRequested;

    /// <summary>True once the <c>grpc-timeout</c> deadline passed.</summary>
    public bool DeadlineExceeded => _deadlineCts?.IsCancellationRequested == true;

    /// <summary>The error the server ended the call with (<see cref="Abort"/>); null when it did not.</summary>
    public RpcException? AbortReason => Volatile.Read(ref _abortReason);

    /// <summary>The trailers the handler added; null when none.</summary>
    public Metadata? Trailers => ((Ctx)Context).Trailers;

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

    /// <summary>Reads request messages for streaming handlers, failing as etcd's handlers expect (our <see cref="RpcException"/>).</summary>
    internal sealed class RequestReader<T>(global::Grpc.Core.IAsyncStreamReader<T> inner, GrpcCall call) : IAsyncStreamReader<T>
    {
        private bool _ended;

        public T Current => inner.Current;

        public async ValueTask<bool> MoveNext(CancellationToken cancellationToken = default)
        {
            if (_ended)
            {
                return false;
            }

            // Handlers mostly read with the call's own token: no linked source per message then.
            using var linked = cancellationToken.CanBeCanceled && cancellationToken != call.Token ? CancellationTokenSource.CreateLinkedTokenSource(call.Token, cancellationToken) : null;
            try
            {
                if (!await inner.MoveNext(linked?.Token ?? call.Token).ConfigureAwait(false))
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
    internal sealed class ResponseWriter<T>(global::Grpc.Core.IServerStreamWriter<T> inner, GrpcCall call) : IAsyncStreamWriter<T>
    {
        public async ValueTask WriteAsync(T message, CancellationToken cancellationToken = default)
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

    private sealed class Ctx(GrpcCall call, DateTime deadline) : ServerCallContext
    {
        private Metadata? _requestHeaders;

        public Metadata? Trailers { get; private set; }

        public override string Method => call._grpc.Method;

        public override DateTime Deadline { get; } = deadline;

        public override CancellationToken CancellationToken => call._callCts.Token;

        public override string Peer => call._grpc.Peer;

        public override Metadata RequestHeaders => _requestHeaders ??= BuildHeaders();

        public override Metadata ResponseTrailers => Trailers ??= [];

        public override System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate =>
            global::Grpc.Core.ServerCallContextExtensions.GetHttpContext(call._grpc).Connection.ClientCertificate;

        private Metadata BuildHeaders()
        {
            var md = new Metadata();
            foreach (var h in call._grpc.RequestHeaders)
            {
                if (GrpcProtocol.IsReservedHeader(h.Key))
                {
                    continue;
                }

                md.Add(h.Key, h.IsBinary ? Convert.ToBase64String(h.ValueBytes) : h.Value);
            }

            return md;
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
