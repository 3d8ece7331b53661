using System.Net;
using System.Net.Security;
using Etcd.Server.Tls;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Etcd.Proxy;

/// <summary>
/// The grpc-proxy's connection to the cluster (etcd's <c>clientv3.Client</c> in <c>etcdmain/grpc_proxy.go</c>): one
/// Grpc.Net.Client channel over every endpoint (round-robin, reconnecting), with the generated client stubs of each
/// service, the proxy's message size limits, and TLS when <see cref="ProxyUpstreamOptions.Tls"/> is set.
/// Thread-safe; dispose to close the connections.
/// </summary>
public sealed class ProxyUpstream : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly ServiceProvider _services;

    /// <summary>Creates the channel; connections are made on first use, as clientv3 does without a blocking dial.</summary>
    /// <exception cref="ArgumentException">No endpoint, or one that is not <c>host:port</c> or a URL.</exception>
    public ProxyUpstream(ProxyUpstreamOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("no endpoints", nameof(options));
        }

        Endpoints = options.Endpoints;
        // clientv3's choice per scheme: https:// dials TLS, http:// dials in the clear even with TLS configured, and a
        // bare host:port dials TLS when TLS is configured.
        bool secure = options.Endpoints.Any(e => e.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            || ((options.Tls is not null || options.InsecureSkipTlsVerify) && options.Endpoints.Any(e => !e.Contains("://", StringComparison.Ordinal)));
        Secure = secure;
        var addresses = options.Endpoints.Select(e => ParseEndpoint(e)).Select(p => new BalancerAddress(p.Host, p.Port)).ToArray();
        var services = new ServiceCollection();
        services.AddSingleton<ResolverFactory>(new StaticResolverFactory(_ => addresses));
        services.AddSingleton(loggerFactory);
        _services = services.BuildServiceProvider();
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
        };
        if (secure)
        {
            var info = options.Tls;
            handler.SslOptions = info?.ClientOptions("", [SslApplicationProtocol.Http2], options.InsecureSkipTlsVerify)
                ?? new SslClientAuthenticationOptions
                {
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                    RemoteCertificateValidationCallback = options.InsecureSkipTlsVerify ? (_, _, _, _) => true : null,
                };
            handler.SslOptions.TargetHost = null;
        }

        _channel = GrpcChannel.ForAddress("static:///etcd", new GrpcChannelOptions
        {
            HttpHandler = handler,
            Credentials = secure ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
            ServiceProvider = _services,
            ServiceConfig = new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } },
            MaxSendMessageSize = options.MaxSendBytes,
            MaxReceiveMessageSize = options.MaxReceiveBytes,
            DisposeHttpClient = true,
        });
        Kv = new KV.KVClient(_channel);
        Watch = new Etcdserverpb.Watch.WatchClient(_channel);
        Lease = new Etcdserverpb.Lease.LeaseClient(_channel);
        Cluster = new Etcdserverpb.Cluster.ClusterClient(_channel);
        Maintenance = new Etcdserverpb.Maintenance.MaintenanceClient(_channel);
        Auth = new Etcdserverpb.Auth.AuthClient(_channel);
        Election = new V3Electionpb.Election.ElectionClient(_channel);
        Lock = new V3Lockpb.Lock.LockClient(_channel);
    }

    /// <summary>Whether the cluster is dialled over TLS.</summary>
    public bool Secure { get; }

    /// <summary>The endpoints as given.</summary>
    public IReadOnlyList<string> Endpoints { get; }

    /// <summary>KV stub.</summary>
    public KV.KVClient Kv { get; }

    /// <summary>Watch stub.</summary>
    public Etcdserverpb.Watch.WatchClient Watch { get; }

    /// <summary>Lease stub.</summary>
    public Etcdserverpb.Lease.LeaseClient Lease { get; }

    /// <summary>Cluster stub.</summary>
    public Etcdserverpb.Cluster.ClusterClient Cluster { get; }

    /// <summary>Maintenance stub.</summary>
    public Etcdserverpb.Maintenance.MaintenanceClient Maintenance { get; }

    /// <summary>Auth stub.</summary>
    public Etcdserverpb.Auth.AuthClient Auth { get; }

    /// <summary>Election stub.</summary>
    public V3Electionpb.Election.ElectionClient Election { get; }

    /// <summary>Lock stub.</summary>
    public V3Lockpb.Lock.LockClient Lock { get; }

    /// <summary>
    /// The options of an upstream call made for a client's call: its deadline and cancellation, and the metadata etcd's
    /// proxy passes on (the auth <c>token</c>, as <c>AuthUnaryClientInterceptor</c> does, and <c>hasleader</c>).
    /// </summary>
    public static CallOptions Forward(ServerCallContext context)
    {
        var headers = new Grpc.Core.Metadata();
        foreach (var entry in context.RequestHeaders)
        {
            if (entry.Key is "token" or "hasleader" or "authorization")
            {
                headers.Add(entry.Key, entry.Value);
            }
        }

        return new CallOptions(headers, context.Deadline == DateTime.MaxValue ? null : context.Deadline, context.CancellationToken);
    }

    /// <summary>Splits <c>host:port</c>, <c>http://host:port</c> or <c>https://host:port</c>.</summary>
    /// <exception cref="ArgumentException">Not of that form.</exception>
    public static (string Host, int Port) ParseEndpoint(string endpoint)
    {
        var text = endpoint.Contains("://", StringComparison.Ordinal) ? endpoint : "http://" + endpoint;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Port <= 0 || uri.Host.Length == 0)
        {
            throw new ArgumentException($"invalid endpoint {endpoint}", nameof(endpoint));
        }

        return (uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host, uri.Port);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _channel.Dispose();
        _services.Dispose();
    }
}

/// <summary>How the grpc-proxy reaches the cluster. Immutable.</summary>
public sealed record ProxyUpstreamOptions
{
    /// <summary>The members' client endpoints (<c>host:port</c> or URLs).</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = ["127.0.0.1:2379"];

    /// <summary>Client TLS (<c>--cert</c>, <c>--key</c>, <c>--cacert</c>); null for none.</summary>
    public EtcdTlsInfo? Tls { get; init; }

    /// <summary><c>--insecure-skip-tls-verify</c>: TLS without checking the members' certificates.</summary>
    public bool InsecureSkipTlsVerify { get; init; }

    /// <summary><c>--max-send-bytes</c>: largest request sent upstream.</summary>
    public int? MaxSendBytes { get; init; } = 1536 * 1024;

    /// <summary><c>--max-recv-bytes</c>: largest response taken from upstream.</summary>
    public int? MaxReceiveBytes { get; init; } = int.MaxValue;
}
