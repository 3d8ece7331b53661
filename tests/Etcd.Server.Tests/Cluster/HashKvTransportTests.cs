using System.Net;
using System.Net.Sockets;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Etcdserverpb;
using Microsoft.Extensions.Logging.Abstractions;
using Raftpb;

namespace Etcd.Server.Tests.Cluster;

/// <summary>A peer's HashKV asked over the TCP peer transport (the corruption checks' question): answer or etcd's error.</summary>
public sealed class HashKvTransportTests
{
    private sealed class Peer(ulong id, ulong clusterId) : IRaftTransportHandler
    {
        public ulong MemberId => id;

        public ulong ClusterId => clusterId;

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

        // Revision 5..9 hash; below is compacted, above is in the future (as the store answers).
        public Task<HashKVResponse> ServeHashKvAsync(long revision, CancellationToken cancellationToken) => revision switch
        {
            < 5 and not 0 => throw EtcdErrors.Compacted.ToException(),
            > 9 => throw EtcdErrors.FutureRev.ToException(),
            _ => Task.FromResult(new HashKVResponse { Header = new ResponseHeader { Revision = 9, MemberId = id }, Hash = (uint)(1000 + revision), CompactRevision = 4 }),
        };
    }

    private static (TcpRaftTransport T, string Url) Node(ulong id)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var t = new TcpRaftTransport(NullLogger.Instance);
        t.Start(new Peer(id, 77));
        t.Serve(l, tls: false);
        return (t, $"http://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}");
    }

    [Fact]
    public async Task HashKvAnswersAndErrorsCrossTheWire()
    {
        var (a, _) = Node(1);
        var (b, urlB) = Node(2);
        await using (a)
        await using (b)
        {
            a.AddPeer(2, [urlB]);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var resp = await a.FetchHashKvAsync(2, 7, cts.Token);
            Assert.Equal(1007u, resp.Hash);
            Assert.Equal(4, resp.CompactRevision);
            Assert.Equal(9, resp.Header.Revision);
            Assert.Equal(2UL, resp.Header.MemberId);
            Assert.Same(EtcdErrors.Compacted, (await Assert.ThrowsAsync<EtcdException>(() => a.FetchHashKvAsync(2, 3, cts.Token))).Error);
            Assert.Same(EtcdErrors.FutureRev, (await Assert.ThrowsAsync<EtcdException>(() => a.FetchHashKvAsync(2, 10, cts.Token))).Error);
            await Assert.ThrowsAsync<IOException>(() => a.FetchHashKvAsync(9, 7, cts.Token));
        }
    }
}
