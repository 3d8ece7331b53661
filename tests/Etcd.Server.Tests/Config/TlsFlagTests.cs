using System.Collections;
using Etcd.Main.Config;

namespace Etcd.Server.Tests.Config;

/// <summary>The TLS flags reach <see cref="EtcdOptions"/>, and bad TLS settings fail with etcd's messages.</summary>
public sealed class TlsFlagTests : ConfigTestBase
{
    [Fact]
    public void ClientAndPeerTlsFlags_FillTheOptions()
    {
        var o = Ok(Load([
            "--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379",
            "--cert-file", "/c.crt", "--key-file", "/c.key", "--trusted-ca-file", "/ca.crt", "--client-cert-auth", "--client-crl-file", "/c.crl",
            "--peer-cert-file", "/p.crt", "--peer-key-file", "/p.key", "--peer-trusted-ca-file", "/pca.crt", "--peer-client-cert-auth", "--peer-crl-file", "/p.crl",
            "--peer-cert-allowed-cn", "etcd-peer",
            "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            "--tls-min-version", "TLS1.2", "--self-signed-cert-validity", "3",
        ]));
        Assert.Equal(new TlsSettings { CertFile = "/c.crt", KeyFile = "/c.key", TrustedCaFile = "/ca.crt", ClientCertAuth = true, CrlFile = "/c.crl" }, o.ClientTls);
        Assert.Equal(new TlsSettings { CertFile = "/p.crt", KeyFile = "/p.key", TrustedCaFile = "/pca.crt", ClientCertAuth = true, CrlFile = "/p.crl" }, o.PeerTls);
        Assert.Equal("etcd-peer", o.PeerCertAllowedCn);
        Assert.Equal("", o.PeerCertAllowedHostname);
        Assert.Equal(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"], o.CipherSuites);
        Assert.Equal("TLS1.2", o.TlsMinVersion);
        Assert.Equal(3, o.SelfSignedCertValidityYears);
        Assert.Equal("https", o.ListenClientUrls[0].Scheme);
    }

    [Fact]
    public void AutoTlsFlags_AndEnvironment()
    {
        var o = Ok(Load(["--auto-tls", "--peer-auto-tls"]));
        Assert.True(o.ClientTls.AutoTls);
        Assert.True(o.PeerTls.AutoTls);
        Assert.True(o.PeerAutoTls);
        Assert.Equal(1, o.SelfSignedCertValidityYears);

        var e = Ok(Load([], ("ETCD_CERT_FILE", "/e.crt"), ("ETCD_KEY_FILE", "/e.key"), ("ETCD_PEER_CERT_ALLOWED_HOSTNAME", "peer.example")));
        Assert.Equal("/e.crt", e.ClientTls.CertFile);
        Assert.Equal("/e.key", e.ClientTls.KeyFile);
        Assert.Equal("peer.example", e.PeerCertAllowedHostname);
    }

    [Fact]
    public void ConfigFile_TransportSecurity_FillsTheOptions()
    {
        var path = Path.Combine(Dir, "c.yml");
        File.WriteAllText(path, """
            client-transport-security:
              cert-file: /y.crt
              key-file: /y.key
              client-cert-auth: true
              trusted-ca-file: /yca.crt
            peer-transport-security:
              auto-tls: true
            cipher-suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
            """);
        var o = Ok(Load(["--config-file", path]));
        Assert.Equal(new TlsSettings { CertFile = "/y.crt", KeyFile = "/y.key", TrustedCaFile = "/yca.crt", ClientCertAuth = true }, o.ClientTls);
        Assert.True(o.PeerAutoTls);
        Assert.Equal(["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], o.CipherSuites);
    }

    public static TheoryData<string[], string> StartErrors => new()
    {
        { ["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,foo"], "C | etcdmain: unexpected TLS cipher suite \"foo\"\n" },
        { ["--cipher-suites="], "C | etcdmain: unexpected TLS cipher suite \"\"\n" },
        {
            ["--listen-client-urls", "https://127.0.0.1:23791", "--advertise-client-urls", "https://127.0.0.1:23791"],
            "C | etcdmain: TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:23791 with HTTPS scheme\n"
        },
        {
            ["--peer-cert-allowed-cn", "a", "--peer-cert-allowed-hostname", "b", "--peer-auto-tls", "--listen-peer-urls", "https://127.0.0.1:23801", "--initial-advertise-peer-urls", "https://127.0.0.1:23801"],
            "C | etcdmain: AllowedCN and AllowedHostname are mutually exclusive (cn=\"a\", hostname=\"b\")\n"
        },
    };

    /// <summary>etcd reports these when it starts the listeners (checked against etcd 3.4.23): critical line, exit 1.</summary>
    [Theory]
    [MemberData(nameof(StartErrors))]
    public void BadTls_FailsLikeEtcdsStart(string[] args, string line)
    {
        var r = Load(args);
        Assert.True(r.ShouldExit);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith(line, r.StandardError);
    }

    [Fact]
    public void BadTls_WithZap_IsEtcdsFatalDiscoveryLine()
    {
        var r = Load(["--logger", "zap", "--cipher-suites", "nope"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("\"msg\":\"discovery failed\",\"error\":\"unexpected TLS cipher suite \\\"nope\\\"\"", r.StandardError);
    }

    [Theory]
    [InlineData("--tls-min-version=TLS1.1", "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)")]
    [InlineData("--self-signed-cert-validity=0", "--self-signed-cert-validity must be at least 1 (years)")]
    public void BadTlsVersionFlags_AreFlagErrors(string arg, string message)
    {
        var r = Load([arg]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("E | etcdmain: error verifying flags, " + message + ". See 'etcd --help'.", r.StandardError);
    }

    [Fact]
    public void Tls13Only_WithCipherSuites_IsRefused()
    {
        var r = Load(["--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("cipher suites cannot be configured when only TLS1.3 is enabled", r.StandardError);
    }
}
