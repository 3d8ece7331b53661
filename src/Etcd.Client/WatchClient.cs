using System.Runtime.CompilerServices;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Client;

/// <summary>
/// clientv3's Watch as an <see cref="IAsyncEnumerable{T}"/>: each enumeration opens its own Watch stream on the current
/// endpoint, creates one watcher and yields every <see cref="WatchResponse"/> that carries events (or a progress
/// notification), in revision order; the server's "created" confirmation is not yielded. The enumeration ends when
/// its token fires (<see cref="OperationCanceledException"/>) or the enumerator is disposed (the stream is reset); a
/// watcher the server cancels ends it with an exception: <see cref="EtcdException"/>
/// <c>etcdserver: mvcc: required revision has been compacted</c> when its start revision was compacted, else
/// <see cref="RpcException"/> Cancelled with the server's reason (<c>etcdserver: watch canceled</c> when it gave none).
/// Thread-safe; each enumeration is independent.
/// </summary>
public sealed class WatchClient
{
    private readonly EtcdClient _client;

    internal WatchClient(EtcdClient client) => _client = client;

    /// <summary>Watches one key (UTF-8) from now on.</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is empty (checked before the stream opens).</exception>
    public IAsyncEnumerable<WatchResponse> WatchAsync(string key, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        WatchAsync(new WatchCreateRequest { Key = ByteString.CopyFromUtf8(key) }, options, cancellationToken);

    /// <summary>
    /// Watches what <paramref name="request"/> describes (key or range, start revision, filters, prev_kv, progress
    /// notifications, fragments); the request is copied, so later changes to it do not matter.
    /// </summary>
    /// <exception cref="ArgumentException">The key is empty (checked before the stream opens).</exception>
    public IAsyncEnumerable<WatchResponse> WatchAsync(WatchCreateRequest request, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Key.IsEmpty)
        {
            throw new ArgumentException("a watch needs a key", nameof(request));
        }

        return StreamAsync(request.Clone(), options, cancellationToken);
    }

    private async IAsyncEnumerable<WatchResponse> StreamAsync(WatchCreateRequest request, CallOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The token cancels the reads, not the call: the enumeration ends with OperationCanceledException and the
        // call is reset when the enumerator is disposed.
        using var call = _client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, options, CancellationToken.None);
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = request }, cancellationToken).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var response = call.ResponseStream.Current;
            if (response.Canceled)
            {
                throw response.CompactRevision != 0
                    ? EtcdErrors.Compacted.ToException()
                    : new RpcException(StatusCode.Cancelled, response.CancelReason.Length > 0 ? response.CancelReason : EtcdErrors.WatchCanceled.Message);
            }

            if (response.Created)
            {
                continue;
            }

            yield return response;
        }
    }
}
