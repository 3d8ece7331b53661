namespace Etcd.Api.Grpc;

/// <summary>
/// Runs before the handler of every call a <see cref="ServiceRegistry"/> serves over gRPC (etcd's unary and
/// stream interceptors, <c>etcdserver/api/v3rpc/interceptor.go</c>). Implementations must be thread-safe: calls
/// arrive concurrently.
/// </summary>
public abstract class ServerCallInterceptor
{
    /// <summary>
    /// Checks a call before its handler runs. Throw <see cref="RpcException"/> (e.g. an <see cref="EtcdException"/>)
    /// to fail the call without running the handler. For a streaming call, return a <see cref="StreamGuard"/> to
    /// have the stream ended early with the guard's error when its token fires; null to leave the call alone.
    /// </summary>
    /// <param name="method">The method being served.</param>
    /// <param name="context">The call (request metadata, cancellation).</param>
    public abstract StreamGuard? BeforeCall(IMethod method, ServerCallContext context);
}

/// <summary>
/// A server-side reason to end a streaming call: when <see cref="Aborted"/> fires, the dispatcher cancels the
/// handler's token and ends the call with <see cref="Error"/> (etcd's monitorLeader ends streams with
/// <c>etcdserver: no leader</c>). The dispatcher disposes the guard when the call ends, whatever the outcome;
/// <paramref name="onDispose"/> then runs once (e.g. to unregister the stream).
/// </summary>
/// <param name="aborted">Fires when the stream must end.</param>
/// <param name="error">The status the stream ends with once aborted.</param>
/// <param name="onDispose">Runs once when the call ends; may be null.</param>
public sealed class StreamGuard(CancellationToken aborted, RpcException error, Action? onDispose = null) : IDisposable
{
    private Action? _onDispose = onDispose;

    /// <summary>Fires when the stream must end.</summary>
    public CancellationToken Aborted { get; } = aborted;

    /// <summary>The status the aborted stream ends with.</summary>
    public RpcException Error { get; } = error;

    /// <summary>Runs the dispose action once; thread-safe.</summary>
    public void Dispose() => Interlocked.Exchange(ref _onDispose, null)?.Invoke();
}
