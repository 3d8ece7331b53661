using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Api.Tests.Tls;

/// <summary>
/// A throwaway PKI in a temp directory: a CA, a server certificate for 127.0.0.1/localhost (server + client
/// auth, like etcd's fixtures), a client certificate, a revoked client certificate, a CRL listing it, and a
/// second, untrusted CA with its own client certificate. Files are PEM; paths are exposed for EtcdTlsInfo.
/// </summary>
public sealed class TestPki : IDisposable
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private TestPki(string dir)
    {
        Dir = dir;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Ca = MakeCa("CN=etcd test CA", caKey);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        OtherCa = MakeCa("CN=other CA", otherKey);
        Server = Issue(Ca, caKey, "CN=example.com", [ServerAuth, ClientAuth], 1001, san: true);
        Client = Issue(Ca, caKey, "CN=etcd-client", [ClientAuth], 1002, san: false);
        Revoked = Issue(Ca, caKey, "CN=revoked-client", [ClientAuth], 0x1a2b, san: false);
        Stranger = Issue(OtherCa, otherKey, "CN=stranger", [ClientAuth], 3001, san: false);

        var crl = new CertificateRevocationListBuilder();
        crl.AddEntry(Revoked.SerialNumberBytes.Span, DateTimeOffset.UtcNow.AddMinutes(-1));
        var crlDer = crl.Build(Ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        CrlFile = Path.Combine(dir, "revoke.crl");
        File.WriteAllText(CrlFile, PemEncoding.WriteString("X509 CRL", crlDer));
        var emptyCrl = new CertificateRevocationListBuilder().Build(Ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        EmptyCrlFile = Path.Combine(dir, "empty.crl");
        File.WriteAllBytes(EmptyCrlFile, emptyCrl);

        CaFile = Path.Combine(dir, "ca.crt");
        File.WriteAllText(CaFile, Ca.ExportCertificatePem());
        (ServerCertFile, ServerKeyFile) = Write("server", Server);
    }

    public string Dir { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 OtherCa { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Client { get; }

    public X509Certificate2 Revoked { get; }

    public X509Certificate2 Stranger { get; }

    public string CaFile { get; }

    public string ServerCertFile { get; }

    public string ServerKeyFile { get; }

    public string CrlFile { get; }

    public string EmptyCrlFile { get; }

    public static TestPki Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-pki-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return new TestPki(dir);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private (string Cert, string Key) Write(string name, X509Certificate2 cert)
    {
        var certFile = Path.Combine(Dir, name + ".crt");
        var keyFile = Path.Combine(Dir, name + ".key");
        File.WriteAllText(certFile, cert.ExportCertificatePem());
        File.WriteAllText(keyFile, cert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (certFile, keyFile);
    }

    private static X509Certificate2 MakeCa(string subject, ECDsa key)
    {
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var ca = req.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
        return X509CertificateLoader.LoadCertificate(ca.Export(X509ContentType.Cert)).CopyWithPrivateKey(key);
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, ECDsa caKey, string subject, Oid[] usages, long serial, bool san)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([.. usages], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (san)
        {
            var b = new SubjectAlternativeNameBuilder();
            b.AddIpAddress(IPAddress.Loopback);
            b.AddDnsName("localhost");
            req.CertificateExtensions.Add(b.Build());
        }

        var now = DateTimeOffset.UtcNow;
        var serialBytes = BigInteger.Parse(serial.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToByteArray(isUnsigned: true, isBigEndian: true);
        using var signed = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddMinutes(-5), now.AddDays(30), serialBytes);
        var withKey = signed.CopyWithPrivateKey(key);

        // Round-trip through PKCS#12 so SslStream on Linux can use the key.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
