using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// One member's metrics: a prometheus-net <see cref="CollectorRegistry"/> of its own (several members can run in one
/// process) holding every family etcd 3.4.23 exposes on <c>/metrics</c>, with etcd's names, label names, types,
/// buckets and HELP text (<c>etcdserver/metrics.go</c>, <c>mvcc/metrics.go</c>, <c>mvcc/backend/metrics.go</c>,
/// <c>wal/metrics.go</c>, <c>etcdserver/api/rafthttp/metrics.go</c>, <c>etcdserver/api/snap/metrics.go</c>,
/// go-grpc-prometheus, the Go process collector). Go's runtime collector (<c>go_*</c>) is replaced by .NET's runtime
/// figures under prometheus-net's usual names (<c>dotnet_*</c>, <c>process_working_set_bytes</c>, ...).
/// </summary>
/// <remarks>
/// Counters and histograms move where the work happens (through the storage hooks this type implements and the
/// gRPC dispatcher); gauges that mirror the member's state are read just before each collection from the member
/// given to <see cref="Bind"/>. Thread-safe.
/// </remarks>
public sealed class EtcdMetrics
{
    /// <summary>The content type of <see cref="WriteAsync"/>'s output (Prometheus text format 0.0.4).</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly Gauge _scrapesInFlight;
    private readonly Counter.Child _scrapesOk;
    private readonly Counter.Child _scrapesFailed;
    private EtcdServer? _server;

    /// <summary>Creates the registry and every family.</summary>
    /// <param name="extensive">etcd's <c>--metrics extensive</c>: also <c>grpc_server_handling_seconds</c>.</param>
    public EtcdMetrics(bool extensive = false)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);

        // etcd exposes no exemplars; without this every observation would look for a trace context to attach.
        factory.ExemplarBehavior = new ExemplarBehavior { DefaultExemplarProvider = static (_, _) => Exemplar.None };
        Server = new ServerMetrics(factory);
        Storage = new StorageMetrics(factory);
        Peers = new PeerMetrics(factory);
        Grpc = new GrpcServerMetrics(factory, extensive);
        Process = new ProcessMetrics(factory);
        DotNetStats.Register(Registry);

        _scrapesInFlight = factory.CreateGauge("promhttp_metric_handler_requests_in_flight", "Current number of scrapes being served.");
        var scrapes = factory.CreateCounter("promhttp_metric_handler_requests_total", "Total number of scrapes by HTTP status code.", "code");
        _scrapesOk = scrapes.WithLabels("200");
        _scrapesFailed = scrapes.WithLabels("500");
        scrapes.WithLabels("503");
        Registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>The member's registry (for tests and embedders that serve it themselves).</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>etcd_server_*, etcd_cluster_version, lease, v2 store, auth and gRPC proxy families.</summary>
    public ServerMetrics Server { get; }

    /// <summary>etcd_disk_*, etcd_mvcc_*, etcd_debugging_mvcc_*, etcd_snap_*: the hooks given to the WAL, backend and MVCC store.</summary>
    public StorageMetrics Storage { get; }

    /// <summary>etcd_network_* of the peer transport.</summary>
    public PeerMetrics Peers { get; }

    /// <summary>grpc_server_* and the client-facing etcd_network_* / etcd_server_client_requests_total.</summary>
    public GrpcServerMetrics Grpc { get; }

    /// <summary>process_* and os_fd_* as Go's process collector and etcd define them.</summary>
    public ProcessMetrics Process { get; }

    /// <summary>Makes the state gauges read <paramref name="server"/> at each collection.</summary>
    public void Bind(EtcdServer server) => _server = server;

    /// <summary>
    /// Writes every family in the Prometheus text format (<see cref="ContentType"/>) to <paramref name="destination"/>,
    /// counting the scrape as etcd's promhttp handler does. Any listener (client URLs, <c>--listen-metrics-urls</c>) may call it.
    /// </summary>
    public async Task WriteAsync(Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        _scrapesInFlight.Inc();
        try
        {
            await Registry.CollectAndExportAsTextAsync(destination, cancellationToken).ConfigureAwait(false);
            _scrapesOk.Inc();
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            _scrapesFailed.Inc();
            throw;
        }
        finally
        {
            _scrapesInFlight.Dec();
        }
    }

    private void Refresh()
    {
        if (_server is { } server)
        {
            Server.Refresh(server);
            Storage.Refresh(server);
        }

        Process.Refresh();
    }
}
