using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Etcd.Api;
using Etcd.Raft;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Etcd.Server.Tls;
using Etcd.Server.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Raftpb;

namespace Etcd.Server.Tests.Cluster;

/// <summary>The rafthttp peer transport between real sockets on 127.0.0.1 (plain and TLS), and a 3-member cluster over it.</summary>
public sealed class TcpTransportTests
{
    private sealed class Recorder(ulong id, ulong clusterId) : IRaftTransportHandler
    {
        public readonly BlockingCollection<Message> Received = new();
        public readonly BlockingCollection<(ulong, SnapshotStatus)> Snapshots = new();
        public readonly ConcurrentQueue<ulong> Unreachable = new();
        public HashSet<ulong> Removed { get; } = [];
        public int RemovedByPeer;

        public ulong MemberId => id;

        public ulong ClusterId { get; set; } = clusterId;

        public bool Process(Message message)
        {
            Received.Add(message);
            return true;
        }

        public void ReportUnreachable(ulong peer) => Unreachable.Enqueue(peer);

        public void ReportSnapshot(ulong peer, SnapshotStatus status) => Snapshots.Add((peer, status));

        public bool IsRemoved(ulong peer) => Removed.Contains(peer);

        public void OnRemovedByPeer() => Interlocked.Increment(ref RemovedByPeer);

        public EtcdError? PromoteAnswer { get; set; }

        public ulong PromotedId;

        public Task<EtcdError?> PromoteAsLeaderAsync(ulong learnerId, CancellationToken cancellationToken)
        {
            PromotedId = learnerId;
            return Task.FromResult(PromoteAnswer);
        }

        public RemoteCluster DescribeCluster() => new(ClusterId, [new Membership.Member { Id = id, PeerUrls = ["http://x"] }]);
    }

    /// <summary>A self-signed auto-TLS peer setup shared by the TLS cases (etcd's --peer-auto-tls).</summary>
    private static readonly Lazy<EtcdTlsInfo> AutoTls = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-test-peer-autotls-" + Environment.ProcessId);
        var (cert, key) = SelfSignedCertificate.Ensure(dir, ["127.0.0.1"]);
        return EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, selfCert: true);
    });

    private static (TcpRaftTransport T, Recorder R, string Url) Node(ulong id, ulong clusterId, EtcdTlsInfo tls, ILogger log)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var r = new Recorder(id, clusterId);
        var t = new TcpRaftTransport(log, tls);
        t.Start(r);
        t.Serve(l, true);
        return (t, r, $"https://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}");
    }

    private static (TcpRaftTransport T, Recorder R, string Url) Node(ulong id, ulong clusterId, bool tls = false)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var r = new Recorder(id, clusterId);
        var t = new TcpRaftTransport(NullLogger.Instance, tls ? AutoTls.Value : null);
        t.Start(r);
        t.Serve(l, tls);
        var url = $"{(tls ? "https" : "http")}://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}";
        return (t, r, url);
    }

    private static async Task WaitForAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in 15 s");
            await Task.Delay(20);
        }
    }

    private static Message Take(Recorder r)
    {
        Assert.True(r.Received.TryTake(out var m, TimeSpan.FromSeconds(10)), "message not delivered");
        return m!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task MessagesArriveInOrderAndSnapshotsOnTheirOwnStream(bool tls)
    {
        var (a, ra, urlA) = Node(1, 77, tls);
        var (b, rb, urlB) = Node(2, 77, tls);
        await using (a)
        await using (b)
        {
            // Streams are dialled by the receiver: b reads a's stream once each knows the other.
            a.AddPeer(2, [urlB]);
            b.AddPeer(1, [urlA]);
            await WaitForAsync(() => a.IsStreaming(2, msgApp: true));
            var batch = Enumerable.Range(1, 300).Select(i => new Message { Type = MessageType.MsgApp, From = 1, To = 2, Index = (ulong)i, Term = 3 }).ToList();
            a.Send(batch);
            for (var i = 1; i <= 300; i++)
            {
                Assert.Equal((ulong)i, Take(rb).Index);
            }

            Assert.NotNull(a.ActiveSince(2));
            var data = new byte[3 * 1024 * 1024];
            Random.Shared.NextBytes(data);
            a.Send([new Message
            {
                Type = MessageType.MsgSnap,
                From = 1,
                To = 2,
                Snapshot = new Snapshot { Metadata = new SnapshotMetadata { Index = 500, Term = 3 }, Data = Google.Protobuf.ByteString.CopyFrom(data) },
            }]);
            var snap = Take(rb);
            Assert.Equal(MessageType.MsgSnap, snap.Type);
            Assert.Equal(data, snap.Snapshot.Data.ToByteArray());
            Assert.True(ra.Snapshots.TryTake(out var st, TimeSpan.FromSeconds(10)));
            Assert.Equal((2UL, SnapshotStatus.Finish), st);
        }
    }

    [Fact]
    public async Task ClusterIdMismatchIsRejectedAndRemovedSendersAreTold()
    {
        var (a, ra, _) = Node(1, 77);
        var (b, rb, urlB) = Node(2, 78);
        await using (a)
        await using (b)
        {
            a.AddPeer(2, [urlB]);
            a.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2 }]);
            // Rejected at the hello: nothing is delivered and the sender learns the peer is unreachable.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (ra.Unreachable.IsEmpty && DateTime.UtcNow < deadline)
            {
                a.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2 }]);
                await Task.Delay(20);
            }

            Assert.Contains(2UL, ra.Unreachable);
            Assert.Empty(rb.Received);
            Assert.Null(a.ActiveSince(2));

            rb.ClusterId = 77;
            rb.Removed.Add(1);
            deadline = DateTime.UtcNow.AddSeconds(10);
            while (Volatile.Read(ref ra.RemovedByPeer) == 0 && DateTime.UtcNow < deadline)
            {
                a.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2 }]);
                await Task.Delay(20);
            }

            Assert.True(ra.RemovedByPeer > 0);
            Assert.Empty(rb.Received);
        }
    }

    [Fact]
    public async Task PromoteIsForwardedToTheLeaderWithItsAnswer()
    {
        var (a, _, _) = Node(1, 7);
        var (b, rb, urlB) = Node(2, 7);
        await using (a)
        await using (b)
        {
            a.AddPeer(2, [urlB]);
            rb.PromoteAnswer = EtcdErrors.LearnerNotReady;
            Assert.Equal(EtcdErrors.LearnerNotReady, await a.ForwardPromoteAsync(2, 0xabc, CancellationToken.None));
            Assert.Equal(0xabcUL, rb.PromotedId);
            rb.PromoteAnswer = null;
            Assert.Null(await a.ForwardPromoteAsync(2, 0xdef, CancellationToken.None));
            await Assert.ThrowsAsync<IOException>(() => a.ForwardPromoteAsync(9, 1, CancellationToken.None));
        }
    }

    [Fact]
    public async Task ClusterQueryDescribesTheCluster()
    {
        var (a, _, urlA) = Node(5, 99);
        var (b, _, _) = Node(6, 99);
        await using (a)
        await using (b)
        {
            var c = await b.FetchClusterAsync(["http://127.0.0.1:1", urlA], CancellationToken.None);
            Assert.NotNull(c);
            Assert.Equal(99UL, c!.ClusterId);
            Assert.Equal(5UL, Assert.Single(c.Members).Id);
        }
    }

    [Fact]
    public async Task ThreeMembersOverTcpElectReplicateAndServeFollowerReads()
    {
        using var dir = new TempDir();
        var listeners = Enumerable.Range(0, 3).Select(_ => { var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); return l; }).ToList();
        var urls = listeners.Select(l => $"http://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}").ToList();
        var initial = string.Join(",", urls.Select((u, i) => $"n{i}={u}"));
        var servers = new List<EtcdServer>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var o = new EtcdOptions
                {
                    Name = $"n{i}",
                    DataDir = Path.Combine(dir.Path, $"n{i}"),
                    InitialAdvertisePeerUrls = [new Uri(urls[i])],
                    InitialCluster = initial,
                    HeartbeatIntervalMs = 20,
                    ElectionTimeoutMs = 200,
                };
                var t = new TcpRaftTransport(NullLogger.Instance);
                var s = EtcdServer.Start(o, NullLoggerFactory.Instance, startLoop: false, transport: t);
                t.Serve(listeners[i], false);
                s.StartLoop();
                servers.Add(s);
            }

            foreach (var s in servers)
            {
                await s.ReadyToServe.WaitAsync(InProcessCluster.Patience);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var follower = servers.First(s => !s.IsLeader);
            var put = await follower.PutAsync(InProcessCluster.Put("net", "work"), cts.Token);
            foreach (var s in servers)
            {
                var got = await s.RangeAsync(InProcessCluster.Get("net"), cts.Token);
                Assert.Equal("work", Assert.Single(got.Kvs).Value.ToStringUtf8());
                Assert.Equal(put.Header.Revision, got.Header.Revision);
            }

            Assert.Single(servers.Select(s => s.Leader).Distinct());
        }
        finally
        {
            foreach (var s in servers)
            {
                await s.DisposeAsync();
            }
        }
    }

    /// <summary>A CA with member certificates (server and client auth, IP SAN 127.0.0.1) and a CRL, as PEM files.</summary>
    private sealed class PeerPki : IDisposable
    {
        private readonly TempDir _dir = new();
        private readonly X509Certificate2 _ca;
        private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        private readonly List<X509Certificate2> _revoked = [];
        private long _serial = 100;

        public PeerPki()
        {
            var req = new CertificateRequest("CN=peer test CA", _caKey, HashAlgorithmName.SHA256);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            _ca = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
            CaFile = System.IO.Path.Combine(_dir.Path, "ca.crt");
            File.WriteAllText(CaFile, _ca.ExportCertificatePem());
        }

        public string CaFile { get; }

        public TlsSettings Issue(string cn, bool revoke = false)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var req = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName(cn);
            req.CertificateExtensions.Add(san.Build());
            req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
            var number = Interlocked.Increment(ref _serial);
            using var cert = req.Create(_ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMonths(1), BitConverter.GetBytes(number));
            var certFile = System.IO.Path.Combine(_dir.Path, $"{number}.crt");
            var keyFile = System.IO.Path.Combine(_dir.Path, $"{number}.key");
            File.WriteAllText(certFile, cert.ExportCertificatePem());
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
            if (revoke)
            {
                _revoked.Add(X509CertificateLoader.LoadCertificate(cert.RawData));
            }

            return new TlsSettings { CertFile = certFile, KeyFile = keyFile, TrustedCaFile = CaFile, ClientCertAuth = true };
        }

        public string WriteCrl()
        {
            var builder = new CertificateRevocationListBuilder();
            foreach (var c in _revoked)
            {
                builder.AddEntry(c.SerialNumberBytes.Span, DateTimeOffset.UtcNow.AddMinutes(-1));
            }

            var path = System.IO.Path.Combine(_dir.Path, "revoke.crl");
            File.WriteAllText(path, PemEncoding.WriteString("X509 CRL", builder.Build(_ca, BigInteger.One, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256)));
            return path;
        }

        public void Dispose()
        {
            _ca.Dispose();
            _caKey.Dispose();
            _dir.Dispose();
        }
    }

    /// <summary>Collects rendered log lines; a test awaits the line it expects.</summary>
    private sealed class LogLines : ILogger
    {
        public readonly BlockingCollection<string> Lines = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var fields = state is IEnumerable<KeyValuePair<string, object?>> kv ? string.Join(" ", kv.Select(p => $"{p.Key}={p.Value}")) : "";
            Lines.Add($"{formatter(state, exception)} {fields}");
        }

        public string WaitFor(params string[] parts)
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (DateTime.UtcNow < deadline)
            {
                if (Lines.TryTake(out var line, TimeSpan.FromMilliseconds(200)) && parts.All(p => line.Contains(p, StringComparison.Ordinal)))
                {
                    return line;
                }
            }

            Assert.Fail($"no log line with {string.Join(" and ", parts)}");
            return "";
        }
    }

    private static async Task SendUntilAsync(TcpRaftTransport t, Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!done() && DateTime.UtcNow < deadline)
        {
            t.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2 }]);
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task PeerCertAllowedCn_MatchingPeersTalk_OthersAreRefusedOnBothSides()
    {
        using var pki = new PeerPki();
        var member = pki.Issue("example.com");
        var stranger = pki.Issue("example2.com");
        var logA = new LogLines();
        var logB = new LogLines();
        var logC = new LogLines();
        var (a, _, urlA) = Node(1, 77, EtcdTlsInfo.Create(member, allowedCn: "example.com"), logA);
        var (b, rb, urlB) = Node(2, 77, EtcdTlsInfo.Create(member, allowedCn: "example.com"), logB);
        var (c, rc, urlC) = Node(3, 77, EtcdTlsInfo.Create(stranger, allowedCn: "example2.com"), logC);
        await using (a)
        await using (b)
        await using (c)
        {
            a.AddPeer(2, [urlB]);
            a.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2 }]);
            Assert.Equal(MessageType.MsgHeartbeat, Take(rb).Type);

            // a refuses c's certificate as a dialer (CN example2.com): c hears it as Go's TLS alert.
            a.AddPeer(3, [urlC]);
            a.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 3 }]);
            logA.WaitFor("failed to dial remote peer", "client certificate authentication failed");
            logC.WaitFor("rejected connection", "remote error: tls: bad certificate");

            // c dials a: each refuses the other; c refuses first, as the dialer checks the listener's certificate.
            c.AddPeer(1, [urlA]);
            c.Send([new Message { Type = MessageType.MsgHeartbeat, From = 3, To = 1 }]);
            logC.WaitFor("failed to dial remote peer", "client certificate authentication failed");
            Assert.Empty(rc.Received);
        }
    }

    [Fact]
    public async Task PeerClientCertAuth_ListenerRefusesCertificatesOutsideItsRules()
    {
        using var pki = new PeerPki();
        var member = pki.Issue("localhost");
        var revoked = pki.Issue("localhost", revoke: true);
        var other = pki.Issue("other.example");
        var crl = pki.WriteCrl();
        var logA = new LogLines();
        var (a, ra, urlA) = Node(1, 77, EtcdTlsInfo.Create(member with { CrlFile = crl }, allowedHostname: "localhost"), logA);
        await using (a)
        {
            // The dialers here have no name rule of their own, so only the listener judges.
            foreach (var (settings, reason) in new[] { (other, "client certificate authentication failed"), (revoked, "revoked") })
            {
                var log = new LogLines();
                var (d, rd, _) = Node(9, 77, EtcdTlsInfo.Create(settings), log);
                await using (d)
                {
                    d.AddPeer(1, [urlA]);
                    d.Send([new Message { Type = MessageType.MsgHeartbeat, From = 9, To = 1 }]);
                    logA.WaitFor("rejected connection", reason);
                    log.WaitFor("failed to dial remote peer", "remote error: tls: bad certificate");
                }
            }

            Assert.Empty(ra.Received);

            // Without a client certificate at all.
            var bare = new LogLines();
            var n = new TcpRaftTransport(bare, EtcdTlsInfo.Create(new TlsSettings { TrustedCaFile = pki.CaFile }));
            n.Start(new Recorder(8, 77));
            await using (n)
            {
                n.AddPeer(1, [urlA]);
                n.Send([new Message { Type = MessageType.MsgHeartbeat, From = 8, To = 1 }]);
                logA.WaitFor("rejected connection", "tls: client didn't provide a certificate");
            }
        }
    }
}
