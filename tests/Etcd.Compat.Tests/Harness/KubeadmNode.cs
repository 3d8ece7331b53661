using System.Net;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// One control-plane node of a stacked kubeadm cluster as its etcd static pod sees it: the node's name and IP
/// (here a loopback address of its own, 127.0.0.x), the ports that stand in for 2379/2380/2381, its certificates
/// and data dir, and the etcd command line kubeadm writes into <c>/etc/kubernetes/manifests/etcd.yaml</c>
/// (kubeadm's <c>phases/etcd/local.go</c> <c>getEtcdCommand</c>, flags sorted as there). Immutable.
/// </summary>
public sealed record KubeadmNode(
    string Name,
    IPAddress NodeIp,
    int ClientPort,
    int PeerPort,
    int MetricsPort,
    string DataDir,
    string ServerCert,
    string ServerKey,
    string PeerCert,
    string PeerKey,
    string CaCert)
{
    /// <summary>The advertised client URL, <c>https://NODE-IP:2379</c>.</summary>
    public string ClientUrl => $"https://{NodeIp}:{ClientPort}";

    /// <summary>The loopback client URL the API server of a stacked node uses, <c>https://127.0.0.1:2379</c>.</summary>
    public string LocalClientUrl => $"https://127.0.0.1:{ClientPort}";

    /// <summary>The peer URL, <c>https://NODE-IP:2380</c>.</summary>
    public string PeerUrl => $"https://{NodeIp}:{PeerPort}";

    /// <summary>The metrics URL the kubelet probes, <c>http://127.0.0.1:2381</c>.</summary>
    public string MetricsUrl => $"http://127.0.0.1:{MetricsPort}";

    /// <summary>Creates node <paramref name="name"/>: free ports, its server and peer certificates from <paramref name="pki"/>.</summary>
    public static KubeadmNode Create(KubeadmPki pki, string name, IPAddress nodeIp, string dataDir)
    {
        var (serverCert, serverKey, peerCert, peerKey) = pki.AddNode(name, nodeIp);
        return new KubeadmNode(name, nodeIp, FreePorts.Next(), FreePorts.Next(), FreePorts.Next(), dataDir, serverCert, serverKey, peerCert, peerKey, pki.CaCert);
    }

    /// <summary>
    /// kubeadm's etcd command line (without the executable). The first control-plane node lists only itself in
    /// <c>--initial-cluster</c>; a joining node gets the list kubeadm built from the member-add response and
    /// <c>--initial-cluster-state=existing</c>.
    /// </summary>
    public IReadOnlyList<string> CommandLine(string? initialCluster = null) =>
    [
        $"--advertise-client-urls={ClientUrl}",
        $"--cert-file={ServerCert}",
        "--client-cert-auth=true",
        $"--data-dir={DataDir}",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        $"--initial-advertise-peer-urls={PeerUrl}",
        $"--initial-cluster={initialCluster ?? $"{Name}={PeerUrl}"}",
        .. initialCluster is null ? Array.Empty<string>() : ["--initial-cluster-state=existing"],
        $"--key-file={ServerKey}",
        $"--listen-client-urls={LocalClientUrl},{ClientUrl}",
        $"--listen-metrics-urls={MetricsUrl}",
        $"--listen-peer-urls={PeerUrl}",
        $"--name={Name}",
        $"--peer-cert-file={PeerCert}",
        "--peer-client-cert-auth=true",
        $"--peer-key-file={PeerKey}",
        $"--peer-trusted-ca-file={CaCert}",
        "--snapshot-count=10000",
        $"--trusted-ca-file={CaCert}",
    ];
}
