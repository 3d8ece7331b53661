using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// The etcd part of kubeadm's PKI (<c>/etc/kubernetes/pki/etcd</c>, kubeadm's <c>certs/certlist.go</c>), written as PEM
/// files into a directory: the etcd CA (<c>ca.crt</c>/<c>ca.key</c>, CN <c>etcd-ca</c>); per control-plane node a
/// <c>server</c> and a <c>peer</c> certificate (CN = node name; SANs <c>localhost</c>, the node name, the node IP,
/// <c>127.0.0.1</c>, <c>::1</c>; extended key usage server and client auth); the
/// <c>healthcheck-client</c> certificate (CN <c>kube-etcd-healthcheck-client</c>, O <c>system:masters</c>, client auth)
/// the etcd probes and <c>etcdctl</c> use; and <c>apiserver-etcd-client</c> (CN <c>kube-apiserver-etcd-client</c>,
/// client auth), with which kubeadm's clientv3 adds, promotes and removes members. Keys are RSA 2048 in PKCS#1 PEM
/// (<c>RSA PRIVATE KEY</c>), as kubeadm writes them. Not thread-safe while nodes are added.
/// </summary>
public sealed class KubeadmPki
{
    private readonly X509Certificate2 _ca;

    private KubeadmPki(string directory, X509Certificate2 ca)
    {
        Directory = directory;
        _ca = ca;
    }

    /// <summary>The directory holding the PEM files.</summary>
    public string Directory { get; }

    /// <summary>The etcd CA certificate (<c>--trusted-ca-file</c>, <c>--peer-trusted-ca-file</c>, <c>etcdctl --cacert</c>).</summary>
    public string CaCert => Path.Combine(Directory, "ca.crt");

    /// <summary>The health-check client certificate.</summary>
    public string HealthcheckClientCert => Path.Combine(Directory, "healthcheck-client.crt");

    /// <summary>The health-check client key.</summary>
    public string HealthcheckClientKey => Path.Combine(Directory, "healthcheck-client.key");

    /// <summary>The API server's etcd client certificate.</summary>
    public string ApiServerClientCert => Path.Combine(Directory, "apiserver-etcd-client.crt");

    /// <summary>The API server's etcd client key.</summary>
    public string ApiServerClientKey => Path.Combine(Directory, "apiserver-etcd-client.key");

    /// <summary>Creates the CA and the two client certificates in <paramref name="directory"/> (created if missing).</summary>
    public static KubeadmPki Create(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=etcd-ca", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        var ca = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(10));
        File.WriteAllText(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "ca.key"), key.ExportRSAPrivateKeyPem());
        var pki = new KubeadmPki(directory, ca);
        pki.Issue("healthcheck-client", "CN=kube-etcd-healthcheck-client, O=system:masters", server: false, sans: null);
        pki.Issue("apiserver-etcd-client", "CN=kube-apiserver-etcd-client", server: false, sans: null);
        return pki;
    }

    /// <summary>
    /// Issues node <paramref name="nodeName"/>'s <c>{nodeName}-server</c> and <c>{nodeName}-peer</c> pairs (on a real
    /// node they are <c>server.crt</c> and <c>peer.crt</c>; here the nodes share one directory); returns their paths.
    /// </summary>
    public (string ServerCert, string ServerKey, string PeerCert, string PeerKey) AddNode(string nodeName, IPAddress nodeIp)
    {
        var sans = new SubjectAlternativeNameBuilder();
        sans.AddDnsName(nodeName);
        sans.AddDnsName("localhost");
        sans.AddIpAddress(nodeIp);
        sans.AddIpAddress(IPAddress.Loopback);
        sans.AddIpAddress(IPAddress.IPv6Loopback);
        var server = Issue($"{nodeName}-server", $"CN={nodeName}", server: true, sans);
        var peer = Issue($"{nodeName}-peer", $"CN={nodeName}", server: true, sans);
        return (server.Cert, server.Key, peer.Cert, peer.Key);
    }

    private (string Cert, string Key) Issue(string baseName, string subject, bool server, SubjectAlternativeNameBuilder? sans)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        var usages = new OidCollection();
        if (server)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
        }

        usages.Add(new Oid("1.3.6.1.5.5.7.3.2")); // clientAuth
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        if (sans is not null)
        {
            request.CertificateExtensions.Add(sans.Build());
        }

        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        var now = DateTimeOffset.UtcNow;
        using var cert = request.Create(_ca, now.AddMinutes(-5), now.AddYears(1), serial);
        var certPath = Path.Combine(Directory, baseName + ".crt");
        var keyPath = Path.Combine(Directory, baseName + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportRSAPrivateKeyPem());
        return (certPath, keyPath);
    }
}
