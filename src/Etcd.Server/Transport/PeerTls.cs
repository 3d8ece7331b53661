using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Server.Transport;

/// <summary>
/// TLS for the peer port from <see cref="EtcdOptions.PeerTls"/>: certificate files, or with <c>--peer-auto-tls</c>
/// a self-signed ECDSA P-256 certificate made at start (etcd writes its auto-TLS files under
/// <c>{data-dir}/fixtures/peer</c>; ours lives in memory). Peers made with auto TLS accept any certificate, as
/// etcd's auto TLS skips verification; with <c>--peer-trusted-ca-file</c> certificates must chain to that CA.
/// Stand-in until the shared TLS configuration builder is wired in.
/// </summary>
public static class PeerTls
{
    /// <summary>Server and client TLS options for the peer transport, or (null, null) when peer TLS is off.</summary>
    /// <exception cref="EtcdStartException">A certificate or key file cannot be read.</exception>
    public static (SslServerAuthenticationOptions? Server, SslClientAuthenticationOptions? Client) Build(EtcdOptions options, IEnumerable<string> hosts)
    {
        var t = options.PeerTls;
        if (!t.Enabled)
        {
            return (null, null);
        }

        X509Certificate2 cert;
        try
        {
            cert = t.CertFile.Length > 0
                ? X509CertificateLoader.LoadPkcs12(X509Certificate2.CreateFromPemFile(t.CertFile, t.KeyFile.Length > 0 ? t.KeyFile : null).Export(X509ContentType.Pkcs12), null)
                : SelfSigned(hosts, options.SelfSignedCertValidityYears);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new EtcdStartException($"failed to load peer TLS certificate: {e.Message}", e);
        }

        X509Certificate2Collection? trusted = null;
        if (t.TrustedCaFile.Length > 0)
        {
            trusted = [];
            trusted.ImportFromPemFile(t.TrustedCaFile);
        }

        RemoteCertificateValidationCallback validate = (_, c, _, errors) =>
        {
            if (trusted is null || errors == SslPolicyErrors.None)
            {
                return true;
            }

            if (c is null)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(c as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(c.GetRawCertData()));
        };
        var server = new SslServerAuthenticationOptions
        {
            ServerCertificate = cert,
            ClientCertificateRequired = t.ClientCertAuth,
            RemoteCertificateValidationCallback = (s, c, ch, e) => c is null ? !t.ClientCertAuth : validate(s, c, ch, e),
        };
        var client = new SslClientAuthenticationOptions
        {
            ClientCertificates = [cert],
            RemoteCertificateValidationCallback = validate,
        };
        return (server, client);
    }

    /// <summary>A self-signed server+client certificate for <paramref name="hosts"/> (names or IP addresses).</summary>
    public static X509Certificate2 SelfSigned(IEnumerable<string> hosts, int validityYears)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("O=etcd", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var h in hosts.Append("localhost").Append("127.0.0.1").Distinct())
        {
            if (System.Net.IPAddress.TryParse(h.Trim('[', ']'), out var ip))
            {
                san.AddIpAddress(ip);
            }
            else if (h.Length > 0)
            {
                san.AddDnsName(h);
            }
        }

        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, false));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = DateTimeOffset.UtcNow;
        using var made = req.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(Math.Max(1, validityYears)));
        return X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pkcs12), null);
    }
}
