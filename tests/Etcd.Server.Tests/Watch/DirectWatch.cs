using System.Threading.Channels;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Server.Watch;
using Etcdserverpb;
using Metadata = Etcd.Api.Grpc.Metadata;

namespace Etcd.Server.Tests.Watch;

/// <summary>The Watch service driven in process, without a client connection (members without listeners, options the host does not expose).</summary>
internal sealed class DirectWatch : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new();

    private DirectWatch(EtcdServer server, WatchServiceOptions options, Metadata headers)
    {
        Serve = WatchService.ServeAsync(server, options, In, Out, headers.Get("hasleader") == "true", _cts.Token);
    }

    public Requests In { get; } = new();

    public Responses Out { get; } = new();

    /// <summary>The serving task; ends when the call is cancelled (<see cref="DisposeAsync"/>) or fails.</summary>
    public Task Serve { get; }

    public static DirectWatch Start(EtcdServer server, WatchServiceOptions? options = null, Metadata? headers = null)
        => new(server, options ?? new WatchServiceOptions(), headers ?? []);

    public void Send(WatchRequest r) => In.Queue.Writer.TryWrite(r);

    public Task<WatchResponse> NextAsync(TimeSpan? timeout = null) => Out.NextAsync(timeout);

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        try
        {
            await Serve.WaitAsync(WatchCall.DefaultTimeout);
        }
        finally
        {
            _cts.Dispose();
        }
    }

    internal sealed class Requests : IAsyncStreamReader<WatchRequest>
    {
        public Channel<WatchRequest> Queue { get; } = Channel.CreateUnbounded<WatchRequest>();

        public WatchRequest Current { get; private set; } = null!;

        public async ValueTask<bool> MoveNext(CancellationToken cancellationToken = default)
        {
            if (!await Queue.Reader.WaitToReadAsync(cancellationToken))
            {
                return false;
            }

            Current = await Queue.Reader.ReadAsync(cancellationToken);
            return true;
        }
    }

    internal sealed class Responses : IAsyncStreamWriter<WatchResponse>
    {
        public Channel<WatchResponse> Queue { get; } = Channel.CreateUnbounded<WatchResponse>();

        public ValueTask WriteAsync(WatchResponse message, CancellationToken cancellationToken = default) => Queue.Writer.WriteAsync(message, cancellationToken);

        public async Task<WatchResponse> NextAsync(TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? WatchCall.DefaultTimeout);
            return await Queue.Reader.ReadAsync(cts.Token);
        }
    }
}
