using System.Runtime.CompilerServices;
using Etcd.Api.Grpc;
using Google.Protobuf;

namespace Etcd.Client.Grpc;

/// <summary>
/// A server-streaming call in progress. Read <see cref="ResponseStream"/> until <c>MoveNext</c> returns false
/// (OK) or throws (the call's status); dispose to end the call early (cancels it, resetting the stream).
/// </summary>
/// <typeparam name="TResponse">Response message type.</typeparam>
public sealed class ServerStreamingCall<TResponse> : IDisposable
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly IStreamingCall<TResponse> _call;

    internal ServerStreamingCall(IStreamingCall<TResponse> call)
    {
        _call = call;
        ResponseStream = new ResponseReader<TResponse>(call);
    }

    /// <summary>The responses, in order; one reader at a time.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    /// <summary>The server's response headers (completes when they arrive).</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.GetResponseHeadersAsync();

    /// <summary>The trailers, once the call has ended (empty before).</summary>
    public Metadata GetTrailers() => _call.Trailers ?? [];

    /// <summary>Ends the call; cancels it when still running.</summary>
    public void Dispose() => _call.Dispose();
}

/// <summary>A client-streaming call in progress: write requests, complete, then await <see cref="ResponseAsync"/>.</summary>
/// <typeparam name="TRequest">Request message type.</typeparam>
/// <typeparam name="TResponse">Response message type.</typeparam>
public sealed class ClientStreamingCall<TRequest, TResponse> : IDisposable
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly ClientCall<TRequest, TResponse> _call;
    private Task<TResponse>? _response;

    internal ClientStreamingCall(ClientCall<TRequest, TResponse> call)
    {
        _call = call;
        RequestStream = new RequestWriter<TRequest, TResponse>(call);
    }

    /// <summary>The request stream; writes must not overlap.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The single response; throws the call's status when it fails.</summary>
    public Task<TResponse> ResponseAsync => _response ??= _call.ReadSingleResponseAsync();

    /// <summary>The server's response headers.</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.GetResponseHeadersAsync();

    /// <summary>The trailers, once the call has ended (empty before).</summary>
    public Metadata GetTrailers() => _call.Trailers ?? [];

    /// <summary>Ends the call; cancels it when still running.</summary>
    public void Dispose() => _call.Dispose();
}

/// <summary>A bidirectional-streaming call in progress. Reading and writing may run concurrently.</summary>
/// <typeparam name="TRequest">Request message type.</typeparam>
/// <typeparam name="TResponse">Response message type.</typeparam>
public sealed class DuplexStreamingCall<TRequest, TResponse> : IDisposable
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly ClientCall<TRequest, TResponse> _call;

    internal DuplexStreamingCall(ClientCall<TRequest, TResponse> call)
    {
        _call = call;
        RequestStream = new RequestWriter<TRequest, TResponse>(call);
        ResponseStream = new ResponseReader<TResponse>(call);
    }

    /// <summary>The request stream; writes must not overlap.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The responses, in order; one reader at a time.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    /// <summary>The server's response headers.</summary>
    public Task<Metadata> ResponseHeadersAsync => _call.GetResponseHeadersAsync();

    /// <summary>The trailers, once the call has ended (empty before).</summary>
    public Metadata GetTrailers() => _call.Trailers ?? [];

    /// <summary>Ends the call; cancels it when still running.</summary>
    public void Dispose() => _call.Dispose();
}

/// <summary>Helpers over <see cref="IAsyncStreamReader{T}"/>.</summary>
public static class AsyncStreamReaderExtensions
{
    /// <summary>Enumerates the remaining messages; the enumeration throws the call's failure status.</summary>
    public static async IAsyncEnumerable<T> ReadAllAsync<T>(this IAsyncStreamReader<T> reader, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        while (await reader.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return reader.Current;
        }
    }
}

/// <summary>The reading half of a call, as the wrappers need it.</summary>
internal interface IStreamingCall<TResponse> : IDisposable
{
    Metadata? Trailers { get; }

    Task<Metadata> GetResponseHeadersAsync();

    ValueTask<TResponse?> ReadNextAsync(CancellationToken cancellationToken);
}

internal sealed class ResponseReader<TResponse> : IAsyncStreamReader<TResponse>
    where TResponse : class
{
    private readonly IStreamingCall<TResponse> _call;
    private TResponse? _current;

    public ResponseReader(IStreamingCall<TResponse> call) => _call = call;

    public TResponse Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true");

    public async ValueTask<bool> MoveNext(CancellationToken cancellationToken = default)
    {
        var next = await _call.ReadNextAsync(cancellationToken).ConfigureAwait(false);
        if (next is null)
        {
            return false;
        }

        _current = next;
        return true;
    }
}

internal sealed class RequestWriter<TRequest, TResponse> : IClientStreamWriter<TRequest>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private readonly ClientCall<TRequest, TResponse> _call;

    public RequestWriter(ClientCall<TRequest, TResponse> call) => _call = call;

    public ValueTask WriteAsync(TRequest message, CancellationToken cancellationToken = default) => _call.WriteAsync(message, cancellationToken);

    public ValueTask CompleteAsync() => _call.CompleteRequestsAsync();
}
