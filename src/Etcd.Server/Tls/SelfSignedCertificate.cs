using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tls;

/// <summary>
/// etcd's auto-TLS certificates (<c>pkg/transport/listener.go</c> <c>SelfCert</c>): in a directory
/// (<c>{data-dir}/fixtures/client</c> or <c>.../peer</c>) <c>cert.pem</c> and <c>key.pem</c> are reused when both
/// exist, else a self-signed ECDSA P-256 certificate is made: organisation <c>etcd</c>, random 128-bit serial,
/// valid from now for the given years, key usages digital signature + key encipherment, extended usage server
/// auth, and the hosts of the listen URLs as IP or DNS subject alternative names. The key is written as
/// <c>EC PRIVATE KEY</c> PEM with mode 0600. Thread-safe: concurrent calls for one directory are serialised.
/// </summary>
public static class SelfSignedCertificate
{
    private static readonly Lock Gate = new();

    /// <summary>Ensures the pair exists and returns its file paths.</summary>
    /// <param name="directory">Where <c>cert.pem</c> and <c>key.pem</c> live (created if missing).</param>
    /// <param name="hosts">Hosts (names or IP literals, optionally with <c>:port</c>) for the SANs.</param>
    /// <param name="validityYears">Validity in years (365-day years, as etcd counts); at least 1.</param>
    /// <param name="log">Receives etcd's "created cert file"/"created key file" lines; may be null.</param>
    /// <exception cref="IOException">The directory or files cannot be written.</exception>
    public static (string CertFile, string KeyFile) Ensure(string directory, IEnumerable<string> hosts, int validityYears = 1, ILogger? log = null)
    {
        var certPath = Path.Combine(directory, "cert.pem");
        var keyPath = Path.Combine(directory, "key.pem");
        lock (Gate)
        {
            Directory.CreateDirectory(directory);
            if (File.Exists(certPath) && File.Exists(keyPath))
            {
                return (certPath, keyPath);
            }

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("O=etcd", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
            var san = new SubjectAlternativeNameBuilder();
            var any = false;
            foreach (var h in hosts)
            {
                var host = HostOf(h);
                if (host.Length == 0)
                {
                    continue;
                }

                any = true;
                if (IPAddress.TryParse(host, out var ip))
                {
                    san.AddIpAddress(ip);
                }
                else
                {
                    san.AddDnsName(host);
                }
            }

            if (any)
            {
                request.CertificateExtensions.Add(san.Build());
            }

            var serial = new byte[16];
            RandomNumberGenerator.Fill(serial);
            serial[0] &= 0x7F;
            var now = DateTimeOffset.UtcNow;
            using var cert = request.Create(request.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now, now.AddDays(365.0 * Math.Max(1, validityYears)), serial);
            File.WriteAllText(certPath, cert.ExportCertificatePem() + "\n");
            log?.LogFields(LogLevel.Information, "created cert file", ("path", certPath));
            var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var w = new StreamWriter(keyPath, options))
            {
                w.Write(key.ExportECPrivateKeyPem());
                w.Write('\n');
            }

            log?.LogFields(LogLevel.Information, "created key file", ("path", keyPath));
            return (certPath, keyPath);
        }
    }

    // "host:port", "[v6]:port", "[v6]" or "host" → the bare host.
    private static string HostOf(string hostPort)
    {
        if (hostPort.StartsWith('['))
        {
            var end = hostPort.IndexOf(']');
            return end > 0 ? hostPort[1..end] : hostPort;
        }

        var colon = hostPort.LastIndexOf(':');
        return colon >= 0 && hostPort.IndexOf(':') == colon ? hostPort[..colon] : hostPort;
    }
}
