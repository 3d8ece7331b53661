using Etcd.Api;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>The member without its network front: raft loop, WAL persistence, apply and restart.</summary>
public sealed class EtcdServerTests : IDisposable
{
    private readonly TempDir _dir = new();

    private EtcdOptions Options => new()
    {
        Name = "s1",
        DataDir = _dir.Path,
        InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        HeartbeatIntervalMs = 10,
        ElectionTimeoutMs = 100,
    };

    public void Dispose() => _dir.Dispose();

    private static async Task<EtcdServer> StartReadyAsync(EtcdOptions o)
    {
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance);
        await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
        return s;
    }

    [Fact]
    public async Task NewMemberElectsItselfPublishesAndSetsClusterVersion()
    {
        await using var s = await StartReadyAsync(Options);
        Assert.Equal(s.MemberId, s.Leader);
        Assert.True(s.IsLeader);
        Assert.Equal(2UL, s.Term);
        var members = s.Cluster.Members();
        var m = Assert.Single(members);
        Assert.Equal("s1", m.Name);
        Assert.Equal(["http://127.0.0.1:12380"], m.PeerUrls);
        await s.LinearizableReadNotifyAsync(CancellationToken.None);
        // bootstrap conf change (1), leader's empty entry (2), attributes (3), cluster version (4): as etcd 3.4
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (s.Cluster.Version is null && DateTime.UtcNow < deadline)
        {
            await s.WaitAppliedAsync(s.AppliedIndex + 1, new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        }

        Assert.Equal(EtcdServer.ClusterVersionValue, s.Cluster.Version);
        Assert.Equal(4UL, s.AppliedIndex);
    }

    [Fact]
    public async Task PutsAreAppliedAndSurviveRestart()
    {
        var o = Options;
        ulong memberId;
        await using (var s = await StartReadyAsync(o))
        {
            memberId = s.MemberId;
            for (var i = 0; i < 50; i++)
            {
                var resp = await s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"k{i:D2}"), Value = ByteString.CopyFromUtf8($"v{i}") }, CancellationToken.None);
                Assert.Equal(i + 2, resp.Header.Revision);
                Assert.Equal(memberId, resp.Header.MemberId);
            }
        }

        await using (var s = await StartReadyAsync(o))
        {
            Assert.Equal(memberId, s.MemberId);
            var r = await s.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("k"), RangeEnd = ByteString.CopyFromUtf8("l") }, CancellationToken.None);
            Assert.Equal(50, r.Count);
            Assert.Equal("v49", r.Kvs[49].Value.ToStringUtf8());
            Assert.Equal(51, r.Header.Revision);
            Assert.Equal(3UL, s.Term);
            var put = await s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("after"), Value = ByteString.CopyFromUtf8("restart") }, CancellationToken.None);
            Assert.Equal(52, put.Header.Revision);
            Assert.Single(s.Cluster.Members());
        }
    }

    [Fact]
    public async Task ConcurrentProposalsAllCommitWithDistinctRevisions()
    {
        await using var s = await StartReadyAsync(Options);
        var tasks = Enumerable.Range(0, 200).Select(i => s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"c{i}"), Value = ByteString.CopyFromUtf8("x") }, CancellationToken.None)).ToList();
        var revs = (await Task.WhenAll(tasks)).Select(r => r.Header.Revision).ToList();
        Assert.Equal(200, revs.Distinct().Count());
        Assert.Equal(201, revs.Max());
    }

    [Fact]
    public async Task ApplyErrorsReachTheProposer()
    {
        await using var s = await StartReadyAsync(Options);
        var e = await Assert.ThrowsAsync<EtcdException>(() => s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("a"), Lease = 42 }, CancellationToken.None));
        Assert.Same(EtcdErrors.LeaseNotFound, e.Error);
        await s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("a"), Value = ByteString.CopyFromUtf8("1") }, CancellationToken.None);
        await s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("a"), Value = ByteString.CopyFromUtf8("2") }, CancellationToken.None);
        await s.CompactAsync(new CompactionRequest { Revision = 3 }, CancellationToken.None);
        var c = await Assert.ThrowsAsync<EtcdException>(() => s.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("a"), Revision = 2 }, CancellationToken.None));
        Assert.Same(EtcdErrors.Compacted, c.Error);
        var f = await Assert.ThrowsAsync<EtcdException>(() => s.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("a"), Revision = 100 }, CancellationToken.None));
        Assert.Same(EtcdErrors.FutureRev, f.Error);
    }

    [Fact]
    public async Task OversizeProposalIsRejected()
    {
        await using var s = await StartReadyAsync(Options with { MaxRequestBytes = 1024 });
        var e = await Assert.ThrowsAsync<EtcdException>(() => s.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("big"), Value = ByteString.CopyFrom(new byte[2048]) }, CancellationToken.None));
        Assert.Same(EtcdErrors.RequestTooLarge, e.Error);
    }

    [Fact]
    public void MissingLocalNameFailsToStart()
    {
        var e = Assert.Throws<EtcdStartException>(() => EtcdServer.Start(Options with { InitialCluster = "other=http://127.0.0.1:12380" }, NullLoggerFactory.Instance));
        Assert.Contains("couldn't find local name \"s1\" in the initial cluster configuration", e.Message);
    }
}
