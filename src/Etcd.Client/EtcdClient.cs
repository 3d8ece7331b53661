using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Client;

/// <summary>
/// An etcd v3 client in the shape of clientv3: <see cref="Kv"/>, <see cref="Watch"/>, <see cref="Lease"/>, <see cref="Maintenance"/>,
/// <see cref="Cluster"/>.
/// Calls go to the current endpoint; when it cannot be connected to (Unavailable before the request was
/// sent) the next endpoint is tried, each at most once per call. Failed calls throw <see cref="EtcdException"/>
/// for etcd's own errors (e.g. <c>etcdserver: mvcc: database space exceeded</c>) and <see cref="RpcException"/>
/// otherwise. Thread-safe; dispose to close connections.
/// </summary>
public sealed class EtcdClient : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private int _current;

    private EtcdClient(EtcdClientOptions options)
    {
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("at least one endpoint is required", nameof(options));
        }

        Options = options;
        _channels = options.Endpoints.Select(e => CreateChannel(ParseEndpoint(e))).ToArray();
        Kv = new KvClient(this);
        Maintenance = new MaintenanceClient(this);
        Cluster = new ClusterClient(this);
        Watch = new WatchClient(this);
        Lease = new LeaseClient(this);
    }

    /// <summary>Creates a client; no connection is made until the first call.</summary>
    public static EtcdClient Create(EtcdClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new EtcdClient(options);
    }

    /// <summary>The settings.</summary>
    public EtcdClientOptions Options { get; }

    /// <summary>The endpoints as base URIs, in order.</summary>
    public IReadOnlyList<Uri> Endpoints => _channels.Select(c => c.Address).ToArray();

    /// <summary>Key-value calls (etcdserverpb.KV).</summary>
    public KvClient Kv { get; }

    /// <summary>Maintenance calls (etcdserverpb.Maintenance).</summary>
    public MaintenanceClient Maintenance { get; }

    /// <summary>Cluster membership calls (etcdserverpb.Cluster).</summary>
    public ClusterClient Cluster { get; }

    /// <summary>Watches as async streams of responses (etcdserverpb.Watch).</summary>
    public WatchClient Watch { get; }

    /// <summary>Lease calls and keep-alive handles (etcdserverpb.Lease).</summary>
    public LeaseClient Lease { get; }

    /// <summary>
    /// Makes any unary call with endpoint failover (the building block of the typed clients; other services
    /// can be called through it with <see cref="EtcdMethods"/>).
    /// </summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var start = Volatile.Read(ref _current);
        for (var attempt = 0; ; attempt++)
        {
            var index = (start + attempt) % _channels.Length;
            try
            {
                var response = await _channels[index].UnaryAsync(method, request, options, cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _current, index);
                return response;
            }
            catch (RpcException e) when (attempt + 1 < _channels.Length && IsConnectFailure(e) && !cancellationToken.IsCancellationRequested)
            {
                // Try the next endpoint.
            }
        }
    }

    /// <summary>The channel of one endpoint (<paramref name="endpoint"/> as given in the options or as a URI), or of the current one.</summary>
    public GrpcChannel GetChannel(string? endpoint = null)
    {
        if (endpoint is null)
        {
            return _channels[Volatile.Read(ref _current)];
        }

        var uri = ParseEndpoint(endpoint);
        return _channels.FirstOrDefault(c => c.Address == uri) ?? throw new ArgumentException($"{endpoint} is not one of the client's endpoints", nameof(endpoint));
    }

    /// <summary>Closes all connections; calls in flight fail.</summary>
    public void Dispose()
    {
        foreach (var c in _channels)
        {
            c.Dispose();
        }
    }

    private static bool IsConnectFailure(RpcException e) => e.Status == StatusCode.Unavailable && e.InnerException is HttpRequestException;

    // etcdctl dials a bare host:port with TLS when TLS settings are given.
    private Uri ParseEndpoint(string endpoint) =>
        Options.Tls is not null && !endpoint.Contains("://", StringComparison.Ordinal) ? GrpcChannel.ParseAddress("https://" + endpoint) : GrpcChannel.ParseAddress(endpoint);

    private GrpcChannel CreateChannel(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        SslOptions = address.Scheme == Uri.UriSchemeHttps ? (Options.Tls ?? new EtcdClientTls()).ToSslOptions(address.IdnHost) : null,
        ConnectTimeout = Options.DialTimeout,
        KeepAlivePingDelay = Options.DialKeepAliveTime,
        KeepAlivePingTimeout = Options.DialKeepAliveTimeout,
        MaxSendMessageBytes = Options.MaxCallSendMsgSize,
        MaxReceiveMessageBytes = Options.MaxCallRecvMsgSize,
        HttpHandler = Options.HttpHandlerFactory?.Invoke(address),
    });
}

/// <summary>clientv3's KV: range, put, delete, txn, compact. Thread-safe.</summary>
public sealed class KvClient
{
    private readonly EtcdClient _client;

    internal KvClient(EtcdClient client) => _client = client;

    /// <summary>Range (get) keys; see etcd's RangeRequest for ranges, limits, revisions and sorting.</summary>
    public Task<RangeResponse> RangeAsync(RangeRequest request, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.KVService.Range, request, options, cancellationToken);

    /// <summary>Gets one key (UTF-8).</summary>
    public Task<RangeResponse> GetAsync(string key, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, options, cancellationToken);

    /// <summary>Puts a key.</summary>
    public Task<PutResponse> PutAsync(PutRequest request, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.KVService.Put, request, options, cancellationToken);

    /// <summary>Puts one key with a value (both UTF-8).</summary>
    public Task<PutResponse> PutAsync(string key, string value, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) }, options, cancellationToken);

    /// <summary>Deletes a key or range.</summary>
    public Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.KVService.DeleteRange, request, options, cancellationToken);

    /// <summary>Runs a transaction (compare, then success or failure operations).</summary>
    public Task<TxnResponse> TxnAsync(TxnRequest request, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.KVService.Txn, request, options, cancellationToken);

    /// <summary>Compacts the key-value history up to a revision.</summary>
    public Task<CompactionResponse> CompactAsync(CompactionRequest request, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.KVService.Compact, request, options, cancellationToken);
}

/// <summary>clientv3's Maintenance (the parts implemented so far). Thread-safe.</summary>
public sealed class MaintenanceClient
{
    private readonly EtcdClient _client;

    internal MaintenanceClient(EtcdClient client) => _client = client;

    /// <summary>
    /// The status of one member: <paramref name="endpoint"/> (one of the client's endpoints), or the current
    /// endpoint when null. No failover: the status is of the endpoint asked.
    /// </summary>
    public Task<StatusResponse> StatusAsync(string? endpoint = null, CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.GetChannel(endpoint).UnaryAsync(EtcdMethods.MaintenanceService.Status, new StatusRequest(), options, cancellationToken);
}

/// <summary>clientv3's Cluster (the parts implemented so far). Thread-safe.</summary>
public sealed class ClusterClient
{
    private readonly EtcdClient _client;

    internal ClusterClient(EtcdClient client) => _client = client;

    /// <summary>Lists the cluster's members.</summary>
    public Task<MemberListResponse> MemberListAsync(CallOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.UnaryAsync(EtcdMethods.ClusterService.MemberList, new MemberListRequest(), options, cancellationToken);
}
