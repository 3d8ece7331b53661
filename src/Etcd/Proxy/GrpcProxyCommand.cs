using System.Net;
using System.Security.Cryptography.X509Certificates;
using Etcd.Main.Config;
using Etcd.Proxy;
using Etcd.Server;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Microsoft.Extensions.Logging;

namespace Etcd.Main.Proxy;

/// <summary>
/// <c>etcd grpc-proxy start</c> (etcd's <c>etcdmain/grpc_proxy.go</c>): etcd 3.4.23's flags, checks and log lines, then a
/// <see cref="GrpcProxyServer"/> until SIGTERM or SIGINT. Refused at start with a reason (flags we do not implement, never
/// parsed and ignored): <c>--discovery-srv</c>/<c>--discovery-srv-name</c> (no DNS SRV resolver),
/// <c>--resolver-prefix</c>/<c>--resolver-ttl</c> (proxy registration), <c>--enable-pprof</c> (Go's profiler),
/// <c>--experimental-serializable-ordering</c> and <c>--experimental-leasing-prefix</c>.
/// </summary>
internal static class GrpcProxyCommand
{
    private const string Caller = "etcdmain/grpc_proxy.go";

    /// <summary>The flags of <c>etcd grpc-proxy start</c>, as etcd 3.4.23 declares them.</summary>
    public static CobraFlags Flags() => new(
    [
        new("listen-addr", CobraFlagKind.String, "127.0.0.1:23790", "listen address"),
        new("discovery-srv", CobraFlagKind.String, "", "domain name to query for SRV records describing cluster endpoints"),
        new("discovery-srv-name", CobraFlagKind.String, "", "service name to query when using DNS discovery"),
        new("metrics-addr", CobraFlagKind.String, "", "listen for endpoint /metrics requests on an additional interface"),
        new("insecure-discovery", CobraFlagKind.Bool, "false", "accept insecure SRV records"),
        new("endpoints", CobraFlagKind.StringSlice, "[127.0.0.1:2379]", "comma separated etcd cluster endpoints"),
        new("advertise-client-url", CobraFlagKind.String, "127.0.0.1:23790", "advertise address to register (must be reachable by client)"),
        new("resolver-prefix", CobraFlagKind.String, "", "prefix to use for registering proxy (must be shared with other grpc-proxy members)"),
        new("resolver-ttl", CobraFlagKind.Int, "0", "specify TTL, in seconds, when registering proxy endpoints"),
        new("namespace", CobraFlagKind.String, "", "string to prefix to all keys for namespacing requests"),
        new("enable-pprof", CobraFlagKind.Bool, "false", "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\""),
        new("data-dir", CobraFlagKind.String, "default.proxy", "Data directory for persistent data"),
        new("max-send-bytes", CobraFlagKind.Int, "1572864", "message send limits in bytes (default value is 1.5 MiB)"),
        new("max-recv-bytes", CobraFlagKind.Int, "2147483647", "message receive limits in bytes (default value is math.MaxInt32)"),
        new("cert", CobraFlagKind.String, "", "identify secure connections with etcd servers using this TLS certificate file"),
        new("key", CobraFlagKind.String, "", "identify secure connections with etcd servers using this TLS key file"),
        new("cacert", CobraFlagKind.String, "", "verify certificates of TLS-enabled secure etcd servers using this CA bundle"),
        new("insecure-skip-tls-verify", CobraFlagKind.Bool, "false", "skip authentication of etcd server TLS certificates (CAUTION: this option should be enabled only for testing purposes)"),
        new("cert-file", CobraFlagKind.String, "", "identify secure connections to the proxy using this TLS certificate file"),
        new("key-file", CobraFlagKind.String, "", "identify secure connections to the proxy using this TLS key file"),
        new("trusted-ca-file", CobraFlagKind.String, "", "verify certificates of TLS-enabled secure proxy using this CA bundle"),
        new("listen-cipher-suites", CobraFlagKind.StringSlice, "[]", "Comma-separated list of supported TLS cipher suites between client/proxy (empty will be auto-populated by Go)."),
        new("auto-tls", CobraFlagKind.Bool, "false", "proxy TLS using generated certificates"),
        new("client-crl-file", CobraFlagKind.String, "", "proxy client certificate revocation list file."),
        new("experimental-serializable-ordering", CobraFlagKind.Bool, "false", "Ensure serializable reads have monotonically increasing store revisions across endpoints."),
        new("experimental-leasing-prefix", CobraFlagKind.String, "", "leasing metadata prefix for disconnected linearized reads."),
        new("debug", CobraFlagKind.Bool, "false", "Enable debug-level logging for grpc-proxy."),
        new("max-concurrent-streams", CobraFlagKind.Uint32, "4294967295", "Maximum concurrent streams that each client can open at a time."),
    ]);

    /// <summary>Runs the proxy; returns the exit code (1 on any start error, after etcd's message).</summary>
    public static async Task<int> RunAsync(CobraFlags flags, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        // etcd's checkArgs
        string resolverPrefix = flags.Str("resolver-prefix");
        long resolverTtl = flags.Int("resolver-ttl");
        if (resolverPrefix.Length > 0 && resolverTtl < 1)
        {
            await stderr.WriteLineAsync($"invalid resolver-ttl {resolverTtl}").ConfigureAwait(false);
            return 1;
        }

        if (resolverPrefix.Length == 0 && resolverTtl > 0)
        {
            await stderr.WriteLineAsync("invalid resolver-prefix \"\"").ConfigureAwait(false);
            return 1;
        }

        if (Unsupported(flags) is { } refusal)
        {
            await stderr.WriteLineAsync($"etcd grpc-proxy: {refusal} is not supported by {EtcdConfigLoader.ProductName}").ConfigureAwait(false);
            return 1;
        }

        using var loggerFactory = EtcdLogging.CreateLoggerFactory("zap", flags.Bool("debug") ? "debug" : "info", ["stderr"]);
        var log = loggerFactory.CreateLogger("etcdmain");
        string listenAddr = flags.Str("listen-addr");

        EtcdTlsInfo? listenTls;
        try
        {
            listenTls = ListenTls(flags, listenAddr, log);
        }
        catch (TlsConfigException e)
        {
            // etcd: log.Fatal(err)
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 1;
        }

        if (listenTls is not null)
        {
            log.LogEtcd(LogLevel.Information, Caller + ":187", "gRPC proxy server TLS", "", ("tls-info", listenTls.ToString()));
        }

        if (!GatewayCommand.TrySplitHostPort(listenAddr, out var host, out var portText) || !ushort.TryParse(portText, out var port))
        {
            await stderr.WriteLineAsync($"listen tcp {listenAddr}: address {listenAddr}: missing port in address").ConfigureAwait(false);
            return 1;
        }

        IPAddress address;
        try
        {
            address = host.Length == 0 ? IPAddress.IPv6Any
                : IPAddress.TryParse(host, out var ip) ? ip
                : (await Dns.GetHostAddressesAsync(host, stop).ConfigureAwait(false)).OrderBy(a => a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork).First();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
        {
            await stderr.WriteLineAsync($"listen tcp {listenAddr}: lookup {host}: no such host").ConfigureAwait(false);
            return 1;
        }

        // the cluster side: etcd's newClientCfg, with its refusal of a client certificate that names a Common Name
        ProxyUpstreamOptions upstream;
        try
        {
            upstream = UpstreamOptions(flags, log);
        }
        catch (TlsConfigException e)
        {
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 1;
        }

        Uri? metricsUrl = null;
        string metricsAddr = flags.Str("metrics-addr");
        if (metricsAddr.Length > 0 && (!Uri.TryCreate(metricsAddr, UriKind.Absolute, out metricsUrl) || metricsUrl.Scheme is not ("http" or "https")))
        {
            await stderr.WriteAsync($"cannot parse \"{metricsAddr}\"").ConfigureAwait(false);
            return 1;
        }

        await using var server = new GrpcProxyServer(new GrpcProxyOptions
        {
            ListenAddress = new IPEndPoint(address, port),
            Tls = listenTls,
            MetricsUrl = metricsUrl,
            Upstream = upstream,
            Namespace = flags.Str("namespace"),
            MaxConcurrentStreams = (int)Math.Min(int.MaxValue, uint.Parse(flags.Str("max-concurrent-streams"), System.Globalization.CultureInfo.InvariantCulture)),
        }, loggerFactory);
        try
        {
            await server.StartAsync(stop).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await stderr.WriteLineAsync($"listen tcp {listenAddr}: bind: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        log.LogEtcd(LogLevel.Information, Caller + ":345", "listening for gRPC proxy client requests", "", ("address", listenAddr));
        if (metricsUrl is not null)
        {
            log.LogEtcd(LogLevel.Information, Caller + ":481", "gRPC proxy listening for metrics", "", ("address", metricsUrl.OriginalString));
        }

        log.LogEtcd(LogLevel.Information, Caller + ":240", "started gRPC proxy", "", ("address", listenAddr));
        if (metricsUrl is not null)
        {
            log.LogEtcd(LogLevel.Information, Caller + ":230", "gRPC proxy server metrics URL serving", "");
        }

        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        log.LogEtcd(LogLevel.Information, Caller + ":181", "stop listening gRPC proxy client requests", "", ("address", listenAddr));
        return 0;
    }

    private static string? Unsupported(CobraFlags flags)
    {
        if (flags.Str("discovery-srv").Length > 0 || flags.Str("discovery-srv-name").Length > 0)
        {
            return "DNS SRV discovery (--discovery-srv, --discovery-srv-name)";
        }

        if (flags.Str("resolver-prefix").Length > 0)
        {
            return "proxy registration (--resolver-prefix, --resolver-ttl)";
        }

        if (flags.Bool("enable-pprof"))
        {
            return "--enable-pprof (Go's runtime profiler)";
        }

        if (flags.Bool("experimental-serializable-ordering"))
        {
            return "--experimental-serializable-ordering";
        }

        if (flags.Str("experimental-leasing-prefix").Length > 0)
        {
            return "--experimental-leasing-prefix";
        }

        return null;
    }

    /// <summary>etcd's listener TLS: cert/key/CA files, else auto-TLS under <c>--data-dir</c>; cipher suites checked.</summary>
    private static EtcdTlsInfo? ListenTls(CobraFlags flags, string listenAddr, ILogger log)
    {
        var suites = flags.Slice("listen-cipher-suites");
        var settings = new TlsSettings
        {
            CertFile = flags.Str("cert-file"),
            KeyFile = flags.Str("key-file"),
            TrustedCaFile = flags.Str("trusted-ca-file"),
            CrlFile = flags.Str("client-crl-file"),
        };
        if (settings.CertFile.Length > 0 || settings.KeyFile.Length > 0 || settings.TrustedCaFile.Length > 0)
        {
            return EtcdTlsInfo.Create(settings, suites);
        }

        if (flags.Bool("auto-tls"))
        {
            var dir = Path.Combine(flags.Str("data-dir"), "fixtures", "proxy");
            var (cert, key) = SelfSignedCertificate.Ensure(dir, ["https://" + listenAddr], 1, log);
            return EtcdTlsInfo.Create(settings with { CertFile = cert, KeyFile = key }, suites, selfCert: true);
        }

        if (suites.Count > 0)
        {
            // checked as etcd checks them, though without TLS they shape nothing
            EtcdTlsInfo.Create(new TlsSettings(), suites);
            log.LogEtcd(LogLevel.Warning, Caller + ":188", "--listen-cipher-suites has no effect without TLS (--cert-file/--key-file or --auto-tls)", "");
        }

        return null;
    }

    private static ProxyUpstreamOptions UpstreamOptions(CobraFlags flags, ILogger log)
    {
        var settings = new TlsSettings { CertFile = flags.Str("cert"), KeyFile = flags.Str("key"), TrustedCaFile = flags.Str("cacert") };
        bool skip = flags.Bool("insecure-skip-tls-verify");
        EtcdTlsInfo? tls = null;
        if (settings.CertFile.Length > 0 || settings.KeyFile.Length > 0 || settings.TrustedCaFile.Length > 0)
        {
            tls = EtcdTlsInfo.Create(settings);
            if (settings.CertFile.Length > 0 && CommonName(settings.CertFile) is { Length: > 0 } cn)
            {
                throw new TlsConfigException($"cert has non empty Common Name ({cn})");
            }
        }

        if (skip)
        {
            log.LogEtcd(LogLevel.Warning, Caller + ":308", "--insecure-skip-tls-verify was given, this grpc proxy process skips authentication of etcd server TLS certificates. This option should be enabled only for testing purposes.", "");
        }

        if (tls is not null)
        {
            log.LogEtcd(LogLevel.Information, Caller + ":311", "gRPC proxy client TLS", "", ("tls-info", tls.ToString()));
        }

        return new ProxyUpstreamOptions
        {
            Endpoints = flags.Slice("endpoints"),
            Tls = tls,
            InsecureSkipTlsVerify = skip,
            MaxSendBytes = (int)Math.Clamp(flags.Int("max-send-bytes"), 0, int.MaxValue) is var s && s > 0 ? s : null,
            MaxReceiveBytes = (int)Math.Clamp(flags.Int("max-recv-bytes"), 0, int.MaxValue) is var r && r > 0 ? r : null,
        };
    }

    /// <summary>The subject's Common Name of the first certificate in a PEM file; empty when it has none.</summary>
    internal static string CommonName(string certFile)
    {
        var certs = new X509Certificate2Collection();
        certs.ImportFromPemFile(certFile);
        using var cert = certs[0];
        foreach (var rdn in cert.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.GetSingleElementType().Value == "2.5.4.3")
            {
                return rdn.GetSingleElementValue() ?? "";
            }
        }

        return "";
    }
}
