using Etcd.Server.Tls;
using System.Net;
using System.Net.Sockets;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Raftpb;

namespace Etcd.Server.Tests.Lease;

/// <summary>Forwarded lease requests over the peer transport (plain and TLS), as etcd's <c>/leases</c> and <c>/leases/internal</c> carry them.</summary>
public sealed class LeaseForwardingTransportTests
{
    private sealed class Leader(ulong id, ulong clusterId) : IRaftTransportHandler
    {
        public ulong MemberId => id;

        public ulong ClusterId => clusterId;

        public int Served;

        public bool Process(Message message) => true;

        public void ReportUnreachable(ulong peer)
        {
        }

        public void ReportSnapshot(ulong peer, SnapshotStatus status)
        {
        }

        public bool IsRemoved(ulong peer) => false;

        public void OnRemovedByPeer()
        {
        }

        public Task<EtcdError?> PromoteAsLeaderAsync(ulong learnerId, CancellationToken cancellationToken) => Task.FromResult<EtcdError?>(null);

        public RemoteCluster DescribeCluster() => new(clusterId, []);

        public Task<byte[]> ServeLeaseAsync(byte[] request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Served);
            if (request[0] == ForwardedLease.Renew)
            {
                var r = Etcdserverpb.LeaseKeepAliveRequest.Parser.ParseFrom(request.AsSpan(1));
                return Task.FromResult(r.ID == 404 ? ForwardedLease.Error(EtcdErrors.LeaseNotFound)
                    : r.ID == 500 ? ForwardedLease.NotPrimary()
                    : ForwardedLease.Ok(new Etcdserverpb.LeaseKeepAliveResponse { ID = r.ID, TTL = r.ID * 10 }));
            }

            var t = Etcdserverpb.LeaseTimeToLiveRequest.Parser.ParseFrom(request.AsSpan(1));
            var resp = new Etcdserverpb.LeaseTimeToLiveResponse { ID = t.ID, TTL = 7, GrantedTTL = 9 };
            if (t.Keys)
            {
                resp.Keys.Add(Google.Protobuf.ByteString.CopyFromUtf8("k1"));
            }

            return Task.FromResult(ForwardedLease.Ok(resp));
        }
    }

    /// <summary>A self-signed peer certificate (etcd's --peer-auto-tls) in a temp dir, shared by the TLS case.</summary>
    private static readonly Lazy<EtcdTlsInfo> AutoTls = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-test-lease-autotls-" + Environment.ProcessId);
        var (cert, key) = SelfSignedCertificate.Ensure(dir, ["127.0.0.1"]);
        return EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, selfCert: true);
    });

    private static (TcpRaftTransport T, Leader H, string Url) Node(ulong id, bool tls)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var h = new Leader(id, 77);
        var t = new TcpRaftTransport(NullLogger.Instance, tls ? AutoTls.Value : null);
        t.Start(h);
        t.Serve(l, tls);
        return (t, h, $"{(tls ? "https" : "http")}://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task FollowerGetsTheLeadersAnswerToEachForwardedRequest(bool tls)
    {
        var (a, _, _) = Node(1, tls);
        var (b, hb, urlB) = Node(2, tls);
        await using (a)
        await using (b)
        {
            a.AddPeer(2, [urlB]);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            for (var i = 1; i <= 5; i++)
            {
                var answer = await a.ForwardLeaseAsync(2, ForwardedLease.Request(ForwardedLease.Renew, new Etcdserverpb.LeaseKeepAliveRequest { ID = i }), cts.Token);
                Assert.Equal(i * 10, ForwardedLease.Parse(answer, Etcdserverpb.LeaseKeepAliveResponse.Parser).TTL);
            }

            var ttl = ForwardedLease.Parse(
                await a.ForwardLeaseAsync(2, ForwardedLease.Request(ForwardedLease.TimeToLive, new Etcdserverpb.LeaseTimeToLiveRequest { ID = 3, Keys = true }), cts.Token),
                Etcdserverpb.LeaseTimeToLiveResponse.Parser);
            Assert.Equal((3L, 7L, 9L, "k1"), (ttl.ID, ttl.TTL, ttl.GrantedTTL, Assert.Single(ttl.Keys).ToStringUtf8()));

            // etcd's 404 "lease not found" is the lease error; a lessor that is not primary makes the follower retry.
            var missing = await a.ForwardLeaseAsync(2, ForwardedLease.Request(ForwardedLease.Renew, new Etcdserverpb.LeaseKeepAliveRequest { ID = 404 }), cts.Token);
            Assert.Same(EtcdErrors.LeaseNotFound, Assert.Throws<EtcdException>(() => ForwardedLease.Parse(missing, Etcdserverpb.LeaseKeepAliveResponse.Parser)).Error);
            var notPrimary = await a.ForwardLeaseAsync(2, ForwardedLease.Request(ForwardedLease.Renew, new Etcdserverpb.LeaseKeepAliveRequest { ID = 500 }), cts.Token);
            Assert.Throws<Etcd.Server.Lease.LessorNotPrimaryException>(() => ForwardedLease.Parse(notPrimary, Etcdserverpb.LeaseKeepAliveResponse.Parser));
            Assert.Equal(8, hb.Served);

            // an unknown member cannot be reached: the caller retries with the next leader
            await Assert.ThrowsAsync<IOException>(() => a.ForwardLeaseAsync(9, ForwardedLease.Request(ForwardedLease.Renew, new Etcdserverpb.LeaseKeepAliveRequest { ID = 1 }), cts.Token));
        }
    }
}
