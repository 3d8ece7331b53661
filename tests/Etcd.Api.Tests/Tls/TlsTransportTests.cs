using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Etcd.Api.Grpc;
using Etcd.Api.Tests.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Server;
using Etcd.Server.Grpc;
using Etcd.Server.Tls;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;

namespace Etcd.Api.Tests.Tls;

/// <summary>GrpcHttpServer over TLS against our GrpcChannel, HttpClient and raw SslStreams, with a PKI made per test class.</summary>
public sealed class TlsTransportTests : IClassFixture<TlsTransportTests.Pki>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly TestPki _pki;

    public TlsTransportTests(Pki pki) => _pki = pki.Value;

    public sealed class Pki : IDisposable
    {
        public TestPki Value { get; } = TestPki.Create();

        public void Dispose() => Value.Dispose();
    }

    private EtcdTlsInfo ServerTls(bool clientCertAuth = false, string crl = "", string[]? ciphers = null, string allowedCn = "") =>
        EtcdTlsInfo.Create(
            new TlsSettings { CertFile = _pki.ServerCertFile, KeyFile = _pki.ServerKeyFile, TrustedCaFile = clientCertAuth ? _pki.CaFile : "", ClientCertAuth = clientCertAuth, CrlFile = crl },
            ciphers,
            allowedCn: allowedCn);

    private static async Task<GrpcHttpServer> StartAsync(EtcdTlsInfo tls, params string[] urls)
    {
        var registry = new Etcd.Api.Tests.Grpc.ToyServices().MapUnary(EchoMethods.Unary, (req, _) => ValueTask.FromResult(new StringValue { Value = "echo " + req.Value })).Table;
        var server = new GrpcHttpServer(
            new GrpcHttpServerOptions { Urls = urls.Length == 0 ? ["https://127.0.0.1:0"] : urls, Tls = tls },
            registry,
            async ctx =>
            {
                ctx.Response.ContentType = "text/plain";
                var cn = ctx.Connection.ClientCertificate?.GetNameInfo(X509NameType.SimpleName, false);
                await ctx.Response.WriteAsync($"fallback {ctx.Request.Protocol} {ctx.Request.Path}" + (cn is null ? "" : $" {ctx.Request.Scheme} cn={cn}"));
            });
        await server.StartAsync();
        return server;
    }

    private GrpcChannel Channel(Uri url, X509Certificate2? clientCert = null, bool trust = true) =>
        GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            SslOptions = new EtcdClientTls { TrustedCas = trust ? [_pki.Ca] : [_pki.OtherCa], ClientCertificate = clientCert }.ToSslOptions(url.Host),
        });

    private static async Task<string> EchoAsync(GrpcChannel channel) =>
        (await channel.UnaryAsync(EchoMethods.Unary, new StringValue { Value = "hi" }, new CallOptions { Timeout = Timeout })).Value;

    [Fact]
    public async Task Grpc_OverTls_ServerVerifiedAgainstTrustedCa()
    {
        await using var server = await StartAsync(ServerTls());
        Assert.Equal("https", server.BoundUrls[0].Scheme);
        using var channel = Channel(server.BoundUrls[0]);
        Assert.Equal("echo hi", await EchoAsync(channel));
    }

    [Fact]
    public async Task Grpc_UntrustedServerCertificate_IsUnavailable()
    {
        await using var server = await StartAsync(ServerTls());
        using var channel = Channel(server.BoundUrls[0], trust: false);
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => EchoAsync(channel));
        Assert.Equal(StatusCode.Unavailable, e.Status);
    }

    [Fact]
    public async Task ClientCertAuth_AcceptsClientCertificateOfTrustedCa()
    {
        await using var server = await StartAsync(ServerTls(clientCertAuth: true));
        using var channel = Channel(server.BoundUrls[0], _pki.Client);
        Assert.Equal("echo hi", await EchoAsync(channel));
    }

    [Fact]
    public async Task ClientCertAuth_RejectsMissingAndForeignCertificates()
    {
        var tls = ServerTls(clientCertAuth: true);
        await using var server = await StartAsync(tls);
        var ep = server.BoundEndPoints[0];
        var none = await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(ep, null));
        Assert.True(none is AuthenticationException or IOException, none.ToString());
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(ep, _pki.Stranger));

        Assert.Equal("tls: client didn't provide a certificate", tls.VerifyClient(null, null));
        Assert.StartsWith("tls: failed to verify client's certificate: x509: certificate signed by unknown authority", tls.VerifyClient(_pki.Stranger, null));
        Assert.Null(tls.VerifyClient(_pki.Client, null));
    }

    [Fact]
    public async Task Crl_RevokedClientCertificate_FailsTheConnection()
    {
        var tls = ServerTls(clientCertAuth: true, crl: _pki.CrlFile);
        await using var server = await StartAsync(tls);
        using (var revoked = Channel(server.BoundUrls[0], _pki.Revoked))
        {
            var e = await Assert.ThrowsAnyAsync<RpcException>(() => EchoAsync(revoked));
            Assert.Equal(StatusCode.Unavailable, e.Status);
        }

        Assert.Equal("transport: certificate serial 1a2b revoked", tls.VerifyClient(_pki.Revoked, null));
        using var good = Channel(server.BoundUrls[0], _pki.Client);
        Assert.Equal("echo hi", await EchoAsync(good));
    }

    [Fact]
    public async Task AllowedCn_RejectsOtherNames()
    {
        var tls = ServerTls(clientCertAuth: true, allowedCn: "someone-else");
        Assert.Equal("client certificate authentication failed", tls.VerifyClient(_pki.Client, null));
        Assert.Null(ServerTls(clientCertAuth: true, allowedCn: "etcd-client").VerifyClient(_pki.Client, null));
        await using var server = await StartAsync(tls);
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(server.BoundEndPoints[0], _pki.Client));
    }

    [Theory]
    [InlineData("1.1", "fallback HTTP/1.1 /health")]
    [InlineData("2.0", "fallback HTTP/2 /health")]
    public async Task Alpn_ServesHttp1AndHttp2OnOnePort(string version, string expected)
    {
        await using var server = await StartAsync(ServerTls());
        using var handler = new SocketsHttpHandler { SslOptions = new EtcdClientTls { TrustedCas = [_pki.Ca] }.ToSslOptions("127.0.0.1") };
        handler.SslOptions.ApplicationProtocols = version == "2.0" ? [SslApplicationProtocol.Http2] : [SslApplicationProtocol.Http11];
        using var http = new HttpClient(handler) { Timeout = Timeout };
        using var req = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BoundUrls[0], "/health"))
        {
            Version = Version.Parse(version),
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var resp = await http.SendAsync(req);
        Assert.Equal(Version.Parse(version), resp.Version);
        Assert.Equal(expected, await resp.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Requests_SeeHttpsAndTheVerifiedClientCertificate(string version)
    {
        await using var server = await StartAsync(ServerTls(clientCertAuth: true));
        using var handler = new SocketsHttpHandler { SslOptions = new EtcdClientTls { TrustedCas = [_pki.Ca], ClientCertificate = _pki.Client }.ToSslOptions("127.0.0.1") };
        handler.SslOptions.ApplicationProtocols = [version == "2.0" ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11];
        using var http = new HttpClient(handler) { Timeout = Timeout };
        using var req = new HttpRequestMessage(HttpMethod.Get, new Uri(server.BoundUrls[0], "/v3/x")) { Version = Version.Parse(version), VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var resp = await http.SendAsync(req);
        Assert.EndsWith("/v3/x https cn=etcd-client", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HttpAndHttps_OnOneAddress_ShareThePort()
    {
        var port = FreePort();
        await using var server = await StartAsync(ServerTls(), $"http://127.0.0.1:{port}", $"https://127.0.0.1:{port}");
        Assert.Single(server.BoundEndPoints.Distinct());
        Assert.Equal(["http", "https"], server.BoundUrls.Select(u => u.Scheme));
        using var clear = GrpcChannel.ForAddress(server.BoundUrls[0]);
        using var secure = Channel(server.BoundUrls[1]);
        Assert.Equal("echo hi", await EchoAsync(clear));
        Assert.Equal("echo hi", await EchoAsync(secure));
        using var http = new HttpClient { Timeout = Timeout };
        Assert.Equal("fallback HTTP/1.1 /version", await http.GetStringAsync(new Uri(server.BoundUrls[0], "/version")));
    }

    [Fact]
    public async Task CipherSuites_RestrictTls12Negotiation()
    {
        // An ECDSA server key: only ECDHE_ECDSA suites can be chosen.
        var tls = ServerTls(ciphers: ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]);
        await using var server = await StartAsync(tls);
        var ep = server.BoundEndPoints[0];
        var ok = await HandshakeAsync(ep, null, SslProtocols.Tls12, [TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
        Assert.Equal(TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, ok);
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(ep, null, SslProtocols.Tls12, [TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]));

        // TLS 1.3 stays available, as with Go.
        Assert.Equal(TlsCipherSuite.TLS_AES_128_GCM_SHA256, await HandshakeAsync(ep, null, SslProtocols.Tls13, [TlsCipherSuite.TLS_AES_128_GCM_SHA256]));
    }

    [Fact]
    public async Task HttpsWithoutTls_FailsAtStartWithEtcdsMessage()
    {
        var server = new GrpcHttpServer(new GrpcHttpServerOptions { Urls = ["https://127.0.0.1:0"] }, new GrpcServiceTable(), _ => Task.CompletedTask);
        await using (server)
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => server.StartAsync());
            Assert.Equal("TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:0 with HTTPS scheme", e.Message);
        }
    }

    [Fact]
    public async Task EtcdClient_TalksToEtcdHostOverTls()
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-tls-host-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new EtcdOptions
            {
                Name = "tls",
                DataDir = dir,
                ListenClientUrls = [new Uri("https://127.0.0.1:0")],
                AdvertiseClientUrls = [new Uri("https://127.0.0.1:0")],
                ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
                InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:2380")],
                ClientTls = new TlsSettings { CertFile = _pki.ServerCertFile, KeyFile = _pki.ServerKeyFile, TrustedCaFile = _pki.CaFile, ClientCertAuth = true },
            };
            await using var host = await EtcdHost.StartAsync(options);
            var url = host.ClientUrls[0];
            Assert.Equal("https", url.Scheme);
            using var client = EtcdClient.Create(new EtcdClientOptions
            {
                Endpoints = [url.Authority],
                Tls = new EtcdClientTls { TrustedCas = [_pki.Ca], ClientCertificate = _pki.Client },
            });
            await client.Kv.PutAsync("foo", "bar");
            var got = await client.Kv.GetAsync("foo");
            Assert.Equal("bar", got.Kvs[0].Value.ToStringUtf8());

            using var noCert = EtcdClient.Create(new EtcdClientOptions { Endpoints = [url.Authority], Tls = new EtcdClientTls { TrustedCas = [_pki.Ca] } });
            var e = await Assert.ThrowsAnyAsync<RpcException>(() => noCert.Kv.GetAsync("foo", new CallOptions { Timeout = Timeout }));
            Assert.Equal(StatusCode.Unavailable, e.Status);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task AutoTls_SelfSignedServer_NeedsInsecureSkipVerify()
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-autotls-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new EtcdOptions
            {
                Name = "auto",
                DataDir = dir,
                ListenClientUrls = [new Uri("https://127.0.0.1:0")],
                AdvertiseClientUrls = [new Uri("https://127.0.0.1:0")],
                ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
                InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:2380")],
                ClientTls = new TlsSettings { AutoTls = true },
            };
            await using var host = await EtcdHost.StartAsync(options);
            Assert.True(File.Exists(Path.Combine(dir, "fixtures", "client", "cert.pem")));
            var ep = host.ClientUrls[0].Authority;
            using var skip = EtcdClient.Create(new EtcdClientOptions { Endpoints = [ep], Tls = new EtcdClientTls { InsecureSkipVerify = true } });
            await skip.Kv.PutAsync("k", "v");
            using var strict = EtcdClient.Create(new EtcdClientOptions { Endpoints = [ep], Tls = new EtcdClientTls { TrustedCas = [_pki.Ca] } });
            var e = await Assert.ThrowsAnyAsync<RpcException>(() => strict.Kv.GetAsync("k", new CallOptions { Timeout = Timeout }));
            Assert.Equal(StatusCode.Unavailable, e.Status);
        }
        finally
        {
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task<TlsCipherSuite> HandshakeAsync(IPEndPoint ep, X509Certificate2? clientCert, SslProtocols protocols = SslProtocols.None, TlsCipherSuite[]? suites = null)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(ep);
        await using var ssl = new SslStream(tcp.GetStream());
        var options = new EtcdClientTls { TrustedCas = [_pki.Ca], ClientCertificate = clientCert }.ToSslOptions("127.0.0.1");
        options.ApplicationProtocols = [SslApplicationProtocol.Http11];
        options.EnabledSslProtocols = protocols;
        if (suites is not null && !OperatingSystem.IsWindows())
        {
            options.CipherSuitesPolicy = new CipherSuitesPolicy(suites);
        }

        using var cts = new CancellationTokenSource(Timeout);
        await ssl.AuthenticateAsClientAsync(options, cts.Token);

        // With TLS 1.3 the server's verdict on our certificate arrives after the client's handshake: make a
        // request and read, so a rejection surfaces here.
        await ssl.WriteAsync("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), cts.Token);
        var buffer = new byte[64];
        var n = await ssl.ReadAsync(buffer, cts.Token);
        if (n == 0)
        {
            throw new IOException("the server closed the connection");
        }

        return ssl.NegotiatedCipherSuite;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
