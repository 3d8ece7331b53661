using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Raftpb;

namespace Etcd.Server.Tests.Cluster;

/// <summary>The TCP peer transport between real sockets on 127.0.0.1 (plain and TLS), and a 3-member cluster over it.</summary>
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

    private static (TcpRaftTransport T, Recorder R, string Url) Node(ulong id, ulong clusterId, bool tls = false)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var r = new Recorder(id, clusterId);
        var (server, client) = tls
            ? PeerTls.Build(new EtcdOptions { PeerAutoTls = true }, ["127.0.0.1"])
            : (null, null);
        var t = new TcpRaftTransport(NullLogger.Instance, client);
        t.Start(r);
        t.Serve(l, server);
        var url = $"{(tls ? "https" : "http")}://127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}";
        return (t, r, url);
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
        var (a, ra, _) = Node(1, 77, tls);
        var (b, rb, urlB) = Node(2, 77, tls);
        await using (a)
        await using (b)
        {
            a.AddPeer(2, [urlB]);
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
                t.Serve(listeners[i], null);
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
}
