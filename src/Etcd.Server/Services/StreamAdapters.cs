using Etcd.Api.Grpc;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Services;

/// <summary>
/// Hands Grpc.Core's request and response streams to the member's stream consumers (watch sessions, keep-alive loops,
/// snapshot and observe writers), which are written against the project's narrower stream interfaces so the JSON
/// gateway and in-process tests can drive them too. Failures pass through unchanged (the call interceptor's streams
/// already throw etcd's statuses). Not thread-safe beyond the stream contracts (one read, one write at a time).
/// </summary>
internal static class StreamAdapters
{
    /// <summary>Reads <paramref name="inner"/> through <see cref="IAsyncStreamReader{T}"/>.</summary>
    public static IAsyncStreamReader<T> Reader<T>(GrpcCore.IAsyncStreamReader<T> inner) => new ReaderAdapter<T>(inner);

    /// <summary>Writes <paramref name="inner"/> through <see cref="IAsyncStreamWriter{T}"/>.</summary>
    public static IAsyncStreamWriter<T> Writer<T>(GrpcCore.IAsyncStreamWriter<T> inner) => new WriterAdapter<T>(inner);

    private sealed class ReaderAdapter<T>(GrpcCore.IAsyncStreamReader<T> inner) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public ValueTask<bool> MoveNext(CancellationToken cancellationToken = default) => new(inner.MoveNext(cancellationToken));
    }

    private sealed class WriterAdapter<T>(GrpcCore.IAsyncStreamWriter<T> inner) : IAsyncStreamWriter<T>
    {
        public ValueTask WriteAsync(T message, CancellationToken cancellationToken = default) => new(inner.WriteAsync(message, cancellationToken));
    }
}
