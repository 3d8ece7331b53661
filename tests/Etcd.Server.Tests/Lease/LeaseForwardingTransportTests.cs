using Etcd.Server.Tls;
using System.Net;
using System.Net.Sockets;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Raftpb;

namespace Etcd.Server.Tests.Lease;

/// <summary>Forwarded lease requests over the TCP peer transport (plain and TLS): one opaque frame each way.</summary>
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
            return Task.FromResult(request.Reverse().Append((byte)0xFF).ToArray());
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
            for (var i = 0; i < 5; i++)
            {
                byte[] request = [1, (byte)i, 2, 3];
                Assert.Equal([3, 2, (byte)i, 1, 0xFF], await a.ForwardLeaseAsync(2, request, cts.Token));
            }

            Assert.Equal(5, hb.Served);

            // an unknown member cannot be reached: the caller retries with the next leader
            await Assert.ThrowsAsync<IOException>(() => a.ForwardLeaseAsync(9, [1], cts.Token));
        }
    }
}
