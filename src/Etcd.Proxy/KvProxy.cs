using Etcdserverpb;
using Grpc.Core;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's KV service (etcd's <c>proxy/grpcproxy/kv.go</c>): serializable ranges are answered from the
/// <see cref="RangeCache"/> when they can be, every other call goes to the cluster, and responses of ranges (also those
/// inside a transaction) fill the cache; writes through the proxy (put, delete, the compares and writes of a
/// transaction) drop the cached ranges they touch, and a compaction moves the cache's compacted revision.
/// Errors from the cluster pass to the client unchanged. Thread-safe.
/// </summary>
public sealed class KvProxy : KV.KVBase
{
    private readonly ProxyUpstream _upstream;
    private readonly KeyNamespace _ns;
    private readonly RangeCache _cache;
    private readonly ProxyMetrics _metrics;

    /// <summary>Creates the service.</summary>
    public KvProxy(ProxyUpstream upstream, KeyNamespace ns, RangeCache cache, ProxyMetrics metrics)
    {
        _upstream = upstream;
        _ns = ns;
        _cache = cache;
        _metrics = metrics;
    }

    /// <inheritdoc/>
    public override async Task<RangeResponse> Range(RangeRequest request, ServerCallContext context)
    {
        if (request.Serializable)
        {
            RangeResponse? cached;
            try
            {
                cached = _cache.Get(request);
            }
            catch (RpcException)
            {
                _metrics.CacheHits.Inc();
                throw;
            }

            if (cached is not null)
            {
                _metrics.CacheHits.Inc();
                return cached;
            }

            _metrics.CacheMisses.Inc();
        }

        var response = _ns.Down(await _upstream.Kv.RangeAsync(_ns.Up(request), ProxyUpstream.Forward(context)).ConfigureAwait(false));
        _cache.Add(request, response);
        _metrics.CacheKeys.Set(_cache.Count);
        return response;
    }

    /// <inheritdoc/>
    public override async Task<PutResponse> Put(PutRequest request, ServerCallContext context)
    {
        _cache.Invalidate(request.Key, Google.Protobuf.ByteString.Empty);
        _metrics.CacheKeys.Set(_cache.Count);
        return _ns.Down(await _upstream.Kv.PutAsync(_ns.Up(request), ProxyUpstream.Forward(context)).ConfigureAwait(false));
    }

    /// <inheritdoc/>
    public override async Task<DeleteRangeResponse> DeleteRange(DeleteRangeRequest request, ServerCallContext context)
    {
        _cache.Invalidate(request.Key, request.RangeEnd);
        _metrics.CacheKeys.Set(_cache.Count);
        return _ns.Down(await _upstream.Kv.DeleteRangeAsync(_ns.Up(request), ProxyUpstream.Forward(context)).ConfigureAwait(false));
    }

    /// <inheritdoc/>
    public override async Task<TxnResponse> Txn(TxnRequest request, ServerCallContext context)
    {
        var response = _ns.Down(await _upstream.Kv.TxnAsync(_ns.Up(request), ProxyUpstream.Forward(context)).ConfigureAwait(false));
        foreach (var cmp in request.Compare)
        {
            _cache.Invalidate(cmp.Key, cmp.RangeEnd);
        }

        ToCache(response.Succeeded ? request.Success : request.Failure, response.Responses);
        _metrics.CacheKeys.Set(_cache.Count);
        return response;
    }

    /// <inheritdoc/>
    public override async Task<CompactionResponse> Compact(CompactionRequest request, ServerCallContext context)
    {
        var response = await _upstream.Kv.CompactAsync(request, ProxyUpstream.Forward(context)).ConfigureAwait(false);
        _cache.Compact(request.Revision);
        _metrics.CacheKeys.Set(_cache.Count);
        return response;
    }

    private void ToCache(IList<RequestOp> requests, IList<ResponseOp> responses)
    {
        for (int i = 0; i < responses.Count && i < requests.Count; i++)
        {
            var req = requests[i];
            switch (responses[i].ResponseCase)
            {
                case ResponseOp.ResponseOneofCase.ResponsePut:
                    _cache.Invalidate(req.RequestPut.Key, Google.Protobuf.ByteString.Empty);
                    break;
                case ResponseOp.ResponseOneofCase.ResponseDeleteRange:
                    _cache.Invalidate(req.RequestDeleteRange.Key, req.RequestDeleteRange.RangeEnd);
                    break;
                case ResponseOp.ResponseOneofCase.ResponseRange:
                    _cache.Add(req.RequestRange, responses[i].ResponseRange);
                    break;
                case ResponseOp.ResponseOneofCase.ResponseTxn:
                    var nested = responses[i].ResponseTxn;
                    foreach (var cmp in req.RequestTxn.Compare)
                    {
                        _cache.Invalidate(cmp.Key, cmp.RangeEnd);
                    }

                    ToCache(nested.Succeeded ? req.RequestTxn.Success : req.RequestTxn.Failure, nested.Responses);
                    break;
            }
        }
    }
}
