using Prometheus;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's own families (etcd's <c>proxy/grpcproxy/metrics.go</c>), in a registry of the proxy's own:
/// <c>etcd_grpc_proxy_watchers_coalescing_total</c>, <c>etcd_grpc_proxy_events_coalescing_total</c>,
/// <c>etcd_grpc_proxy_cache_keys_total</c>, <c>etcd_grpc_proxy_cache_hits_total</c> and
/// <c>etcd_grpc_proxy_cache_misses_total</c>, with etcd's types (the cache hit and miss counts are gauges there) and
/// HELP text; plus <see cref="UpstreamWatches"/>, the number of watches the proxy holds open on the cluster. Thread-safe.
/// </summary>
public sealed class ProxyMetrics
{
    /// <summary>Creates the families in a new registry.</summary>
    public ProxyMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        WatchersCoalescing = f.CreateGauge("etcd_grpc_proxy_watchers_coalescing_total", "Total number of current watchers coalescing");
        EventsCoalescing = f.CreateCounter("etcd_grpc_proxy_events_coalescing_total", "Total number of events coalescing");
        CacheKeys = f.CreateGauge("etcd_grpc_proxy_cache_keys_total", "Total number of keys/ranges cached");
        CacheHits = f.CreateGauge("etcd_grpc_proxy_cache_hits_total", "Total number of cache hits");
        CacheMisses = f.CreateGauge("etcd_grpc_proxy_cache_misses_total", "Total number of cache misses");
    }

    /// <summary>The registry holding the families.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Client watchers served by a broadcast they share with others (receivers beyond the first).</summary>
    public Gauge WatchersCoalescing { get; }

    /// <summary>Events delivered to more than one watcher from one upstream event (copies beyond the first).</summary>
    public Counter EventsCoalescing { get; }

    /// <summary>Entries of the serializable-range cache.</summary>
    public Gauge CacheKeys { get; }

    /// <summary>Serializable ranges answered from the cache.</summary>
    public Gauge CacheHits { get; }

    /// <summary>Serializable ranges the cache could not answer.</summary>
    public Gauge CacheMisses { get; }

    /// <summary>Watches open on the cluster right now (one per broadcast); not an etcd family, read by tests and figures.</summary>
    public int UpstreamWatches => Volatile.Read(ref _upstreamWatches);

    internal int _upstreamWatches;
}
