namespace Etcd.Api.Grpc;

/// <summary>
/// What a server-side handler knows of its call: request metadata, deadline, peer and a token that is
/// cancelled when the client cancels, the deadline passes or the connection drops. Handlers may set
/// response headers before the first message and trailers before returning.
/// </summary>
public abstract class ServerCallContext
{
    /// <summary>The method being served (e.g. <c>/etcdserverpb.KV/Range</c>).</summary>
    public abstract string Method { get; }

    /// <summary>Request headers, lower-case keys, pseudo-headers and gRPC-reserved headers removed.</summary>
    public abstract Metadata RequestHeaders { get; }

    /// <summary>Absolute deadline from <c>grpc-timeout</c>, or <see cref="DateTime.MaxValue"/>.</summary>
    public abstract DateTime Deadline { get; }

    /// <summary>Cancelled on client cancellation, deadline or connection loss.</summary>
    public abstract CancellationToken CancellationToken { get; }

    /// <summary>The remote endpoint, e.g. <c>ipv4:127.0.0.1:50312</c>.</summary>
    public abstract string Peer { get; }

    /// <summary>Trailers sent with the status; add before the handler returns.</summary>
    public abstract Metadata ResponseTrailers { get; }

    /// <summary>The client's TLS certificate, verified by the handshake; null without TLS client authentication.</summary>
    public virtual System.Security.Cryptography.X509Certificates.X509Certificate2? ClientCertificate => null;
}
