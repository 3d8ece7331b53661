using System.Collections.Concurrent;
using Etcd.Server.Grpc;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// The JSON gateway's share of <c>--max-concurrent-streams</c>. etcd's gateway is a gRPC client holding one HTTP/2
/// connection to its own listener (one per listen address, <c>embed/serve.go</c>), so every gateway request in flight
/// (unary or a watch, keep-alive or observe stream) is one stream on that connection: with N streams open, the next
/// request waits until one ends (grpc-go's client waits for stream quota). Here each local listening port has one
/// such budget of <see cref="Limit"/> slots. Also ends the gateway's long-lived streams when the server begins to stop
/// (<see cref="IServerStopFeature"/>). Thread-safe.
/// </summary>
internal sealed class GatewayStreams
{
    private readonly ConcurrentDictionary<int, SemaphoreSlim> _byPort = new();

    /// <param name="limit">Streams per listener (etcd's <c>--max-concurrent-streams</c>); 0 or at least <see cref="int.MaxValue"/> is unlimited.</param>
    public GatewayStreams(long limit) => Limit = limit <= 0 || limit >= int.MaxValue ? int.MaxValue : (int)limit;

    /// <summary>Streams one listener's gateway may have open at once.</summary>
    public int Limit { get; }

    /// <summary>
    /// Waits for a stream slot on the request's listener; for a <paramref name="longLived"/> request, also makes
    /// <see cref="HttpContext.RequestAborted"/> fire when the server begins to stop, so the stream ends cleanly.
    /// Returns the slot to dispose when the request ends, or null when the client went away or the server began to
    /// stop while waiting.
    /// </summary>
    public async Task<IDisposable?> EnterAsync(HttpContext http, bool longLived)
    {
        var stopping = http.Features.Get<IServerStopFeature>()?.Stopping ?? CancellationToken.None;
        var linked = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
        SemaphoreSlim? gate = null;
        if (Limit != int.MaxValue)
        {
            gate = _byPort.GetOrAdd(http.Connection.LocalPort, _ => new SemaphoreSlim(Limit, Limit));
            try
            {
                await gate.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                linked.Dispose();
                return null;
            }
        }

        if (longLived)
        {
            http.RequestAborted = linked.Token;
        }

        return new Slot(gate, linked);
    }

    private sealed class Slot(SemaphoreSlim? gate, CancellationTokenSource linked) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                gate?.Release();
                linked.Dispose();
            }
        }
    }
}
