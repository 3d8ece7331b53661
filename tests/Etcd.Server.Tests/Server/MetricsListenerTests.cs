using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// <c>--listen-metrics-urls</c> through <see cref="EtcdHost"/>: http and https listeners of their own (https with the
/// client TLS settings, client-certificate auth included, as etcd's <c>serveMetrics</c>), and etcd's start errors.
/// </summary>
public sealed class MetricsListenerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task HttpsAndHttpMetricsUrls_ServeHealthAndMetrics_HttpsWithClientCertAuth()
    {
        var (caFile, serverCert, serverKey, ca, clientCert) = WritePki();
        using var _ca = ca;
        using var _client = clientCert;
        await using var host = await EtcdHost.StartAsync(
            Options() with
            {
                ListenClientUrls = [new Uri("https://127.0.0.1:0")],
                ListenMetricsUrls = [new Uri("https://127.0.0.1:0"), new Uri("http://127.0.0.1:0")],
                ClientTls = new TlsSettings { CertFile = serverCert, KeyFile = serverKey, TrustedCaFile = caFile, ClientCertAuth = true },
            },
            NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, host.MetricsUrls.Count);
        var https = host.MetricsUrls[0];
        var http = host.MetricsUrls[1];
        Assert.Equal("https", https.Scheme);
        Assert.Equal("http", http.Scheme);
        Assert.NotEqual(host.ClientUrls[0].Port, https.Port);

        using (var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            Assert.Equal("{\"health\":\"true\"}", await plain.GetStringAsync(new Uri(http, "/health?exclude=NOSPACE&serializable=true")));
            Assert.Contains("etcd_server_has_leader 1", await plain.GetStringAsync(new Uri(http, "/metrics")), StringComparison.Ordinal);
            using var notFound = await plain.GetAsync(new Uri(http, "/version"));
            Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        }

        using (var withCert = Client(ca, clientCert))
        {
            Assert.Equal("{\"health\":\"true\"}", await withCert.GetStringAsync(new Uri(https, "/health?serializable=false")));
            Assert.Contains("# TYPE etcd_server_has_leader gauge", await withCert.GetStringAsync(new Uri(https, "/metrics")), StringComparison.Ordinal);
        }

        // --client-cert-auth applies to the https metrics URL: no client certificate, no answer.
        using var withoutCert = Client(ca, null);
        await Assert.ThrowsAsync<HttpRequestException>(() => withoutCert.GetStringAsync(new Uri(https, "/health")));
    }

    [Fact]
    public async Task HttpsMetricsUrlWithoutClientTls_IsEtcdsStartError()
    {
        var port = FreePort();
        var e = await Assert.ThrowsAsync<EtcdStartException>(() => EtcdHost.StartAsync(
            Options() with { ListenMetricsUrls = [new Uri($"https://127.0.0.1:{port}")] }, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal($"cannot listen on TLS for 127.0.0.1:{port}: KeyFile and CertFile are not presented", e.Message);
    }

    [Fact]
    public async Task BusyMetricsPort_IsEtcdsStartError()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var e = await Assert.ThrowsAsync<EtcdStartException>(() => EtcdHost.StartAsync(
            Options() with { ListenMetricsUrls = [new Uri($"http://127.0.0.1:{port}")] }, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal($"listen tcp 127.0.0.1:{port}: bind: address already in use", e.Message);
    }

    private EtcdOptions Options() => new()
    {
        Name = "metrics",
        DataDir = Path.Combine(_dir.Path, "data"),
        ListenClientUrls = [new Uri("http://127.0.0.1:0")],
        ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
        InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        HeartbeatIntervalMs = 10,
        ElectionTimeoutMs = 100,
    };

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static HttpClient Client(X509Certificate2 ca, X509Certificate2? clientCert)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is X509Certificate2 c && chain.Build(c);
        };
        if (clientCert is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCert];
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    }

    // An etcd CA, a server pair for 127.0.0.1 in PEM files, and a client certificate it signed (with its key).
    private (string CaFile, string ServerCert, string ServerKey, X509Certificate2 Ca, X509Certificate2 Client) WritePki()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=etcd-ca", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.DigitalSignature, true));
        var ca = caReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverReq = new CertificateRequest("CN=node", serverKey, HashAlgorithmName.SHA256);
        var sans = new SubjectAlternativeNameBuilder();
        sans.AddIpAddress(IPAddress.Loopback);
        sans.AddDnsName("localhost");
        serverReq.CertificateExtensions.Add(sans.Build());
        serverReq.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var server = serverReq.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3]);

        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var clientReq = new CertificateRequest("CN=kube-etcd-healthcheck-client, O=system:masters", clientKey, HashAlgorithmName.SHA256);
        clientReq.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var client = clientReq.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), [4, 5, 6]);
        var clientWithKey = X509CertificateLoader.LoadPkcs12(client.CopyWithPrivateKey(clientKey).Export(X509ContentType.Pkcs12), null);

        var caFile = Path.Combine(_dir.Path, "ca.crt");
        var certFile = Path.Combine(_dir.Path, "server.crt");
        var keyFile = Path.Combine(_dir.Path, "server.key");
        File.WriteAllText(caFile, ca.ExportCertificatePem());
        File.WriteAllText(certFile, server.ExportCertificatePem());
        File.WriteAllText(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        return (caFile, certFile, keyFile, ca, clientWithKey);
    }
}
