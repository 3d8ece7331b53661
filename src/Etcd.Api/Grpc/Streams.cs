namespace Etcd.Api.Grpc;

/// <summary>
/// Reads the messages of an incoming gRPC stream in order. One reader at a time (not thread-safe).
/// <see cref="MoveNext"/> returns false at the end of the stream and throws <see cref="RpcException"/>
/// when the stream fails (bad frame, peer reset, cancellation as <see cref="StatusCode.Cancelled"/>).
/// </summary>
/// <typeparam name="T">Message type.</typeparam>
public interface IAsyncStreamReader<out T>
{
    /// <summary>The message read by the last successful <see cref="MoveNext"/>.</summary>
    T Current { get; }

    /// <summary>Advances to the next message; false at the end of the stream.</summary>
    ValueTask<bool> MoveNext(CancellationToken cancellationToken = default);
}

/// <summary>
/// Writes messages to an outgoing gRPC stream. Writes must not overlap (await each before the next);
/// callers that write from several tasks serialise them themselves.
/// </summary>
/// <typeparam name="T">Message type.</typeparam>
public interface IAsyncStreamWriter<in T>
{
    /// <summary>Writes one message (length-prefixed frame) and flushes it to the transport.</summary>
    ValueTask WriteAsync(T message, CancellationToken cancellationToken = default);
}

/// <summary>A client's request stream: writes and then completes (half-closes) the stream.</summary>
/// <typeparam name="T">Message type.</typeparam>
public interface IClientStreamWriter<in T> : IAsyncStreamWriter<T>
{
    /// <summary>Signals the end of the request stream (END_STREAM).</summary>
    ValueTask CompleteAsync();
}
