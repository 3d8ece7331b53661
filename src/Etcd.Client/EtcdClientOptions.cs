namespace Etcd.Client;

/// <summary>Settings of an <see cref="EtcdClient"/>, named as clientv3's <c>Config</c> (clientv3/config.go). Immutable.</summary>
public sealed record EtcdClientOptions
{
    /// <summary>
    /// Endpoints, <c>host:port</c>, <c>http://host:port</c> or <c>https://host:port</c>; calls go to the first
    /// reachable one, in order. A bare <c>host:port</c> is dialed with TLS when <see cref="Tls"/> is set.
    /// </summary>
    public IReadOnlyList<string> Endpoints { get; init; } = ["127.0.0.1:2379"];

    /// <summary>TCP connect timeout per endpoint (clientv3: <c>DialTimeout</c>); 5 s by default.</summary>
    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle time before an HTTP/2 keepalive ping (clientv3: <c>DialKeepAliveTime</c>); off by default.</summary>
    public TimeSpan DialKeepAliveTime { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>Wait for a keepalive ping's answer (clientv3: <c>DialKeepAliveTimeout</c>); 20 s by default.</summary>
    public TimeSpan DialKeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Largest request sent, in bytes (clientv3: <c>MaxCallSendMsgSize</c>, 2 MiB).</summary>
    public int MaxCallSendMsgSize { get; init; } = 2 * 1024 * 1024;

    /// <summary>Largest response accepted, in bytes (clientv3: <c>MaxCallRecvMsgSize</c>, unlimited).</summary>
    public int MaxCallRecvMsgSize { get; init; } = int.MaxValue;

    /// <summary>TLS for https endpoints (CA, client certificate, insecure-skip-verify); null dials in the clear.</summary>
    public EtcdClientTls? Tls { get; init; }

    /// <summary>
    /// Builds the HTTP handler for one endpoint (the TLS seam: return a <see cref="SocketsHttpHandler"/> with
    /// <c>SslOptions</c>); null uses plain h2c handlers made from the settings above.
    /// </summary>
    public Func<Uri, HttpMessageHandler>? HttpHandlerFactory { get; init; }
}
