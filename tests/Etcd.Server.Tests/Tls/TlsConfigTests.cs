using System.Net;
using System.Net.Security;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Etcd.Server.Tls;

namespace Etcd.Server.Tests.Tls;

/// <summary>Go cipher names, CRL parsing, auto-TLS certificates and the start-time checks of EtcdTlsInfo/TlsConfig.</summary>
public sealed class TlsConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("etcd-tlsconfig-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void GoCipherSuiteNames_MapToIanaSuites()
    {
        Assert.Equal(
            [TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256],
            GoCipherSuites.Parse(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]));
        var e = Assert.Throws<FormatException>(() => GoCipherSuites.Parse(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "tls_ecdhe_rsa_with_aes_128_gcm_sha256"]));
        Assert.Equal("unexpected TLS cipher suite \"tls_ecdhe_rsa_with_aes_128_gcm_sha256\"", e.Message);
        Assert.Null(GoCipherSuites.Policy([]));
        if (!OperatingSystem.IsWindows())
        {
            var policy = GoCipherSuites.Policy([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256])!;
            Assert.Equal([TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, .. GoCipherSuites.Tls13], policy.AllowedCipherSuites);
        }
    }

    [Fact]
    public void RevocationList_ParsesPemAndDer_AndNamesTheRevokedSerial()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=ca", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.KeyCertSign, true));
        using var ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var revoked = Leaf(ca, key, [0x00, 0xbe, 0xef]);
        using var fine = Leaf(ca, key, [0x12, 0x34]);
        var builder = new CertificateRevocationListBuilder();
        builder.AddEntry(revoked);
        var der = builder.Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);

        var fromDer = RevocationList.Parse(der);
        var fromPem = RevocationList.Parse(System.Text.Encoding.ASCII.GetBytes(PemEncoding.WriteString("X509 CRL", der)));
        foreach (var crl in new[] { fromDer, fromPem })
        {
            Assert.Equal(1, crl.Count);
            Assert.True(crl.IsRevoked(revoked));
            Assert.False(crl.IsRevoked(fine));
            Assert.Equal("transport: certificate serial beef revoked", crl.Check([fine, revoked]));
            Assert.Null(crl.Check([fine]));
        }

        Assert.Equal(0, RevocationList.Parse(new CertificateRevocationListBuilder().Build(ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256)).Count);
        Assert.Throws<FormatException>(() => RevocationList.Parse("not a crl"u8));
    }

    [Fact]
    public void SelfSignedCertificate_IsEtcdsAutoTlsPair_AndIsReused()
    {
        var dir = Path.Combine(_dir, "fixtures", "client");
        var (cert, key) = SelfSignedCertificate.Ensure(dir, ["127.0.0.1:2379", "localhost:2379", "[::1]:2379"], validityYears: 2);
        Assert.Equal(Path.Combine(dir, "cert.pem"), cert);
        Assert.StartsWith("-----BEGIN EC PRIVATE KEY-----", File.ReadAllText(key));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }

        using var x = X509Certificate2.CreateFromPemFile(cert, key);
        Assert.Equal("O=etcd", x.Subject);
        using (var pub = x.GetECDsaPublicKey())
        {
            Assert.Equal(256, pub!.KeySize);
        }

        Assert.InRange((x.NotAfter - x.NotBefore).TotalDays, 729, 731);
        Assert.True(x.MatchesHostname("127.0.0.1"));
        Assert.True(x.MatchesHostname("localhost"));
        Assert.True(x.MatchesHostname("::1"));
        Assert.False(x.MatchesHostname("example.com"));
        var eku = x.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Equal(["1.3.6.1.5.5.7.3.1"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value));

        var before = File.ReadAllText(cert);
        SelfSignedCertificate.Ensure(dir, ["10.0.0.1:2379"]);
        Assert.Equal(before, File.ReadAllText(cert));
    }

    [Fact]
    public void EtcdTlsInfo_RefusesWhatEtcdRefuses()
    {
        var (cert, key) = SelfSignedCertificate.Ensure(Path.Combine(_dir, "p"), ["127.0.0.1"]);
        Assert.Equal(
            "AllowedCN and AllowedHostname are mutually exclusive (cn=\"a\", hostname=\"b\")",
            Assert.Throws<TlsConfigException>(() => EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, allowedCn: "a", allowedHostname: "b")).Message);
        Assert.Equal(
            $"KeyFile and CertFile must both be present[key: , cert: {cert}]",
            Assert.Throws<TlsConfigException>(() => EtcdTlsInfo.Create(new TlsSettings { CertFile = cert })).Message);
        Assert.Equal(
            "open /nonexistent/ca.crt: no such file or directory",
            Assert.Throws<TlsConfigException>(() => EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key, TrustedCaFile = "/nonexistent/ca.crt" })).Message);
        Assert.Equal(
            "unexpected TLS cipher suite \"RC5\"",
            Assert.Throws<TlsConfigException>(() => EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, ["RC5"])).Message);
        Assert.Throws<TlsConfigException>(() => EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, minVersion: "TLS1.0"));

        var info = EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key, TrustedCaFile = cert }, minVersion: "TLS1.3");
        Assert.True(info.ClientCertificateRequired);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls13, info.EnabledProtocols);
        var server = info.ServerOptions();
        Assert.True(server.ClientCertificateRequired);
        Assert.Equal([SslApplicationProtocol.Http2, SslApplicationProtocol.Http11], server.ApplicationProtocols);
        Assert.Equal($"cert = {cert}, key = {key}, trusted-ca = {cert}, client-cert-auth = false, crl-file = ", info.ToString());
    }

    [Fact]
    public void TlsConfig_AutoTlsForBothSides_GeneratesPairsUnderTheDataDir()
    {
        var options = new EtcdOptions
        {
            DataDir = Path.Combine(_dir, "m.etcd"),
            ListenClientUrls = [new Uri("https://127.0.0.1:2379")],
            ListenPeerUrls = [new Uri("https://127.0.0.1:2380")],
            ClientTls = new TlsSettings { AutoTls = true },
            PeerAutoTls = true,
        };
        var client = TlsConfig.ForClients(options)!;
        Assert.True(client.SelfCert);
        Assert.Equal(Path.Combine(options.DataDir, "fixtures", "client", "cert.pem"), client.Settings.CertFile);
        Assert.False(client.ClientCertificateRequired);

        var peerServer = TlsConfig.ForPeerServer(options)!;
        Assert.NotNull(peerServer.ServerCertificateContext);
        Assert.False(peerServer.ClientCertificateRequired);
        var peerClient = TlsConfig.ForPeerClient(options, "127.0.0.1")!;
        Assert.Equal("127.0.0.1", peerClient.TargetHost);
        using var foreign = SelfSigned("CN=other");

        // Auto-TLS peers accept each other's self-signed certificates, as etcd's InsecureSkipVerify does.
        Assert.True(peerClient.RemoteCertificateValidationCallback!(this, foreign, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.True(File.Exists(Path.Combine(options.DataDir, "fixtures", "peer", "key.pem")));

        Assert.Null(TlsConfig.ForPeerServer(options with { PeerAutoTls = false }));
    }

    [Fact]
    public void TlsConfig_HttpsWithoutCertificate_IsEtcdsStartError()
    {
        var options = new EtcdOptions { DataDir = _dir, ListenClientUrls = [new Uri("https://127.0.0.1:23790")] };
        var e = Assert.Throws<EtcdStartException>(() => TlsConfig.ForClients(options));
        Assert.Equal("TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:23790 with HTTPS scheme", e.Message);
        Assert.Null(TlsConfig.ForClients(options with { ListenClientUrls = [new Uri("http://127.0.0.1:23790")] }));
        Assert.Equal(
            "unexpected TLS cipher suite \"x\"",
            Assert.Throws<EtcdStartException>(() => TlsConfig.ForClients(options with { ListenClientUrls = [new Uri("http://127.0.0.1:1")], CipherSuites = ["x"] })).Message);
    }

    [Fact]
    public void PeerClient_VerifiesAgainstTrustedCa_WhenNotSelfSigned()
    {
        var (cert, key) = SelfSignedCertificate.Ensure(Path.Combine(_dir, "v"), ["127.0.0.1"]);
        var info = EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key, TrustedCaFile = cert });
        var options = info.ClientOptions("127.0.0.1");
        using var stranger = SelfSigned("CN=stranger");
        string? why = null;
        var rejecting = info.ClientOptions("127.0.0.1", onRejected: r => why = r);
        Assert.False(rejecting.RemoteCertificateValidationCallback!(this, stranger, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.Equal("x509: certificate signed by unknown authority", why);
        Assert.Same(info.Certificate, options.ClientCertificateContext!.TargetCertificate);
        Assert.True(info.ClientOptions("127.0.0.1", insecureSkipVerify: true).RemoteCertificateValidationCallback!(this, stranger, null, SslPolicyErrors.RemoteCertificateChainErrors));
    }

    [Fact]
    public async Task PeerSanCheck_MatchesIpSansAndResolvableNames()
    {
        var (cert, _) = SelfSignedCertificate.Ensure(Path.Combine(_dir, "san"), ["127.0.0.1:1", "localhost:1"]);
        using var x = X509CertificateLoader.LoadCertificateFromFile(cert);
        Assert.Null(await EtcdTlsInfo.CheckClientSanAsync(x, IPAddress.Loopback));
        Assert.Null(await EtcdTlsInfo.CheckClientSanAsync(x, IPAddress.Loopback.MapToIPv6()));

        var (ipOnly, _) = SelfSignedCertificate.Ensure(Path.Combine(_dir, "ip"), ["10.1.2.3:1"]);
        using var y = X509CertificateLoader.LoadCertificateFromFile(ipOnly);
        Assert.Equal("x509: certificate is valid for 10.1.2.3, not 127.0.0.1", await EtcdTlsInfo.CheckClientSanAsync(y, IPAddress.Loopback));

        var (dnsOnly, _) = SelfSignedCertificate.Ensure(Path.Combine(_dir, "dns"), ["nothing.invalid:1"]);
        using var z = X509CertificateLoader.LoadCertificateFromFile(dnsOnly);
        Assert.Equal("tls: \"10.9.9.9\" does not match any of DNSNames [\"nothing.invalid\"]", await EtcdTlsInfo.CheckClientSanAsync(z, IPAddress.Parse("10.9.9.9")));
    }

    private static X509Certificate2 Leaf(X509Certificate2 ca, ECDsa caKey, byte[] serial)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=leaf", key, HashAlgorithmName.SHA256);
        return req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), serial);
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var b = new SubjectAlternativeNameBuilder();
        b.AddIpAddress(IPAddress.Loopback);
        req.CertificateExtensions.Add(b.Build());
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
    }
}
