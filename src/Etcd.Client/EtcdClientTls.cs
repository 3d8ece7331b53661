using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Client;

/// <summary>
/// TLS settings of an <see cref="EtcdClient"/>, as etcdctl's <c>--cacert</c>, <c>--cert</c>/<c>--key</c> and
/// <c>--insecure-skip-tls-verify</c> (clientv3's <c>Config.TLS</c>). The server is verified against
/// <see cref="TrustedCas"/> (or the system's roots when empty) and the endpoint's host name, unless
/// <see cref="InsecureSkipVerify"/>. Immutable.
/// </summary>
public sealed record EtcdClientTls
{
    /// <summary>The CAs the server's certificate must chain to; empty = the system's trusted roots.</summary>
    public X509Certificate2Collection TrustedCas { get; init; } = [];

    /// <summary>The client certificate (with its private key) sent when the server asks; null sends none.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Accept any server certificate (etcdctl <c>--insecure-skip-tls-verify</c>; etcd's auto-TLS servers need it).</summary>
    public bool InsecureSkipVerify { get; init; }

    /// <summary>Overrides the name checked against the server certificate (and sent as SNI); null uses the endpoint's host.</summary>
    public string? ServerName { get; init; }

    /// <summary>
    /// Loads PEM files like etcdctl: <paramref name="caFile"/> (may be null), and the client pair
    /// <paramref name="certFile"/> + <paramref name="keyFile"/> (both or neither).
    /// </summary>
    /// <exception cref="IOException">A file is missing.</exception>
    /// <exception cref="System.Security.Cryptography.CryptographicException">A file is not PEM of the expected kind.</exception>
    public static EtcdClientTls FromFiles(string? caFile, string? certFile = null, string? keyFile = null, bool insecureSkipVerify = false)
    {
        var cas = new X509Certificate2Collection();
        if (!string.IsNullOrEmpty(caFile))
        {
            cas.ImportFromPemFile(caFile);
        }

        X509Certificate2? cert = null;
        if (!string.IsNullOrEmpty(certFile) || !string.IsNullOrEmpty(keyFile))
        {
            cert = X509Certificate2.CreateFromPemFile(certFile ?? "", keyFile);
        }

        return new EtcdClientTls { TrustedCas = cas, ClientCertificate = cert, InsecureSkipVerify = insecureSkipVerify };
    }

    /// <summary>The <see cref="SslClientAuthenticationOptions"/> for dialing <paramref name="host"/> (ALPN <c>h2</c>).</summary>
    public SslClientAuthenticationOptions ToSslOptions(string host)
    {
        var trusted = TrustedCas;
        var skip = InsecureSkipVerify;
        return new SslClientAuthenticationOptions
        {
            TargetHost = ServerName ?? host,
            ClientCertificates = ClientCertificate is null ? null : [ClientCertificate],
            LocalCertificateSelectionCallback = ClientCertificate is null ? null : (_, _, _, _, _) => ClientCertificate,
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, presented, errors) =>
            {
                if (skip)
                {
                    return true;
                }

                if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
                {
                    return false;
                }

                if (trusted.Count == 0)
                {
                    return errors == SslPolicyErrors.None;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
                if (presented is not null)
                {
                    foreach (var element in presented.ChainElements.Skip(1))
                    {
                        chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                    }
                }

                using var leaf = new X509Certificate2(certificate);
                return chain.Build(leaf);
            },
        };
    }
}
