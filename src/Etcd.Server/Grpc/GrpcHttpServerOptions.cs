using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Grpc;

/// <summary>
/// Settings of a <see cref="GrpcHttpServer"/>. Immutable once the server is constructed; the defaults are
/// etcd 3.4's (etcdmain/config.go, embed/config.go).
/// </summary>
public sealed record GrpcHttpServerOptions
{
    /// <summary>etcd's default <c>--max-request-bytes</c> (1.5 MiB) plus its 512 KiB gRPC overhead: 2 MiB.</summary>
    public const int DefaultMaxReceiveMessageBytes = (3 * 512 * 1024) + (512 * 1024);

    /// <summary>
    /// The URLs to listen on, <c>http://host:port</c>: host <c>localhost</c> (bound as 127.0.0.1, as Go's
    /// listener does), an IPv4/IPv6 literal (<c>0.0.0.0</c>, <c>[::]</c> is dual-stack) or a name resolved
    /// once at start; port 0 binds a free port (see <see cref="GrpcHttpServer.BoundUrls"/>). Each URL serves
    /// gRPC over h2c and HTTP/1.1 on one port; <c>https://host:port</c> serves both over TLS (needs
    /// <see cref="Tls"/>). An http and an https URL with the same address and port share one port.
    /// </summary>
    public IReadOnlyList<string> Urls { get; init; } = ["http://127.0.0.1:0"];

    /// <summary>Largest request message accepted, in bytes (etcd: <c>--max-request-bytes</c> + 512 KiB). Larger ones fail with ResourceExhausted.</summary>
    public int MaxReceiveMessageBytes { get; init; } = DefaultMaxReceiveMessageBytes;

    /// <summary>Largest response message sent, in bytes (etcd: unlimited).</summary>
    public int MaxSendMessageBytes { get; init; } = int.MaxValue;

    /// <summary>HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection (etcd: <c>--max-concurrent-streams</c>, default unlimited).</summary>
    public int MaxConcurrentStreams { get; init; } = int.MaxValue;

    /// <summary>Idle time after which the server pings a client over HTTP/2 (etcd: <c>--grpc-keepalive-interval</c>, 2 h).</summary>
    public TimeSpan KeepAlivePingInterval { get; init; } = TimeSpan.FromHours(2);

    /// <summary>How long the server waits for a ping's answer before closing the connection (etcd: <c>--grpc-keepalive-timeout</c>, 20 s).</summary>
    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long <see cref="GrpcHttpServer.DisposeAsync"/> lets in-flight requests finish before aborting them
    /// (their handlers' tokens fire); 2 s by default. <see cref="GrpcHttpServer.StopAsync"/> takes its own token instead.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// TLS of the https URLs (certificate, client-certificate rules, CRL, cipher suites, versions); ALPN offers
    /// <c>h2</c> and <c>http/1.1</c>. Null when no URL is https.
    /// </summary>
    public Etcd.Server.Tls.EtcdTlsInfo? Tls { get; init; }

    /// <summary>Logging; none by default.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>The member's gRPC metrics (grpc_server_*, client bytes and requests); null = calls are not counted.</summary>
    public Etcd.Server.Metrics.GrpcServerMetrics? Metrics { get; init; }

    /// <summary>
    /// Grpc.AspNetCore interceptors every call runs through, outermost first, inside the server's own
    /// <see cref="GrpcCallInterceptor"/> (so they see the call's <see cref="GrpcCall"/> context: deadline, abort, and a
    /// status they throw is rewritten like the handler's). etcd's member sets the auth token and <c>hasleader</c> ones.
    /// Instances are shared by all calls and must be thread-safe.
    /// </summary>
    public IReadOnlyList<global::Grpc.Core.Interceptors.Interceptor> Interceptors { get; init; } = [];
}
