using Etcd.Api.Grpc;

namespace Etcd.Client.Grpc;

/// <summary>Settings of a <see cref="GrpcChannel"/>. Immutable; defaults are clientv3's (clientv3/config.go, client.go).</summary>
public sealed record GrpcChannelOptions
{
    /// <summary>Largest response message accepted, in bytes (clientv3: <c>MaxCallRecvMsgSize</c>, default unlimited).</summary>
    public int MaxReceiveMessageBytes { get; init; } = int.MaxValue;

    /// <summary>Largest request message sent, in bytes (clientv3: <c>MaxCallSendMsgSize</c>, default 2 MiB).</summary>
    public int MaxSendMessageBytes { get; init; } = 2 * 1024 * 1024;

    /// <summary>TCP connect timeout (clientv3: <c>DialTimeout</c>); infinite by default.</summary>
    public TimeSpan ConnectTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>Idle time before an HTTP/2 keepalive ping (clientv3: <c>DialKeepAliveTime</c>); infinite (off) by default.</summary>
    public TimeSpan KeepAlivePingDelay { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>How long to wait for a keepalive ping's answer (clientv3: <c>DialKeepAliveTimeout</c>), 20 s by default.</summary>
    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// TLS settings for <c>https://</c> addresses when the channel builds its own handler (ALPN must offer
    /// <c>h2</c>); null uses the system defaults (server verified against the system's roots).
    /// </summary>
    public System.Net.Security.SslClientAuthenticationOptions? SslOptions { get; init; }

    /// <summary>
    /// The HTTP handler; null builds a <see cref="System.Net.Http.SocketsHttpHandler"/> from the settings above.
    /// A supplied handler is not disposed by the channel. (The TLS seam: pass a handler with SslOptions.)
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; init; }

    /// <summary>
    /// Maps a failed call's status to the exception thrown; the default maps etcd's error strings to
    /// <see cref="Api.EtcdException"/> (through <see cref="Api.EtcdErrors.FromMessage"/>) and anything else to
    /// <see cref="RpcException"/>.
    /// </summary>
    public Func<StatusCode, string, RpcException> ExceptionFactory { get; init; } = GrpcChannel.DefaultException;
}

/// <summary>Per-call settings.</summary>
public sealed record CallOptions
{
    /// <summary>Request metadata (e.g. etcd's <c>token</c>); keys lower-case, <c>-bin</c> values base64.</summary>
    public Metadata? Headers { get; init; }

    /// <summary>Absolute deadline (UTC); sent as <c>grpc-timeout</c> and enforced locally (DeadlineExceeded).</summary>
    public DateTime? Deadline { get; init; }

    /// <summary>Relative timeout, an alternative to <see cref="Deadline"/> (the earlier of the two wins).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The effective absolute deadline, or null.</summary>
    internal DateTime? EffectiveDeadline(DateTime now)
    {
        DateTime? fromTimeout = Timeout is { } t ? (t >= DateTime.MaxValue - now ? DateTime.MaxValue : now + t) : null;
        return (Deadline, fromTimeout) switch
        {
            (null, null) => null,
            ({ } d, null) => d,
            (null, { } f) => f,
            ({ } d, { } f) => d < f ? d : f,
        };
    }
}
