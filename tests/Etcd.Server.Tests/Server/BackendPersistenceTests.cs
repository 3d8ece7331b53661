using System.Buffers.Binary;
using System.Text;
using Etcd.Storage.Bolt;
using Etcd.Storage.Schema;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// The member's bbolt backend at <c>member/snap/db</c>: etcd 3.4's schema on disk, the consistent index, and
/// a restart that rebuilds from the backend instead of re-applying the WAL.
/// </summary>
public sealed class BackendPersistenceTests : IDisposable
{
    private readonly TempDir _dir = new();

    private EtcdOptions Options => TestMember.Options("s1", _dir.Path);

    public void Dispose() => _dir.Dispose();

    private static async Task<EtcdServer> StartReadyAsync(EtcdOptions o)
    {
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance);
        await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
        return s;
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    [Fact]
    public async Task DbFileHoldsEtcdSchemaWithConsistentIndexMembershipAndClusterVersion()
    {
        ulong applied;
        ulong memberId;
        await using (var s = await StartReadyAsync(Options))
        {
            memberId = s.MemberId;
            await s.PutAsync(new PutRequest { Key = B("foo"), Value = B("bar") }, CancellationToken.None);
            await WaitClusterVersionAsync(s);
            await s.PutAsync(new PutRequest { Key = B("foo"), Value = B("baz") }, CancellationToken.None);
            applied = s.AppliedIndex;
        }

        var path = Path.Combine(_dir.Path, "member", "snap", "db");
        Assert.True(File.Exists(path));
        using var db = BoltDb.Open(path, new BoltOptions { ReadOnly = true });
        using var tx = db.Begin(false);
        var names = tx.BucketNames().Select(n => Encoding.ASCII.GetString(n)).ToHashSet();
        foreach (var b in new[] { "key", "meta", "lease", "alarm", "members", "members_removed", "cluster" })
        {
            Assert.Contains(b, names);
        }

        var ci = tx.Bucket("meta"u8.ToArray())!.Get("consistent_index"u8.ToArray());
        Assert.NotNull(ci);
        Assert.Equal(applied, BinaryPrimitives.ReadUInt64BigEndian(ci));

        // etcd 3.4 does not write meta/term (3.5 does).
        Assert.Null(tx.Bucket("meta"u8.ToArray())!.Get("term"u8.ToArray()));

        var (members, removed) = MembershipSchema.ReadMembers(tx);
        var m = Assert.Single(members);
        Assert.Equal(memberId, m.Id);
        Assert.Equal("s1", m.Name);
        Assert.Equal(["http://127.0.0.1:12380"], m.PeerUrls);
        Assert.Equal(["http://127.0.0.1:2379"], m.ClientUrls);
        Assert.Empty(removed);
        Assert.Equal("3.4.0", Encoding.ASCII.GetString(tx.Bucket("cluster"u8.ToArray())!.Get("clusterVersion"u8.ToArray())!));

        // Revisions 2 and 3 of "foo" under etcd's 17-byte revision keys.
        var keys = new List<byte[]>();
        tx.Bucket("key"u8.ToArray())!.ForEach((k, _) =>
        {
            keys.Add(k.ToArray());
            return true;
        });
        Assert.Equal(2, keys.Count);
        Assert.All(keys, k => Assert.Equal(17, k.Length));
        Assert.Equal(2L, BinaryPrimitives.ReadInt64BigEndian(keys[0]));
        Assert.Equal(3L, BinaryPrimitives.ReadInt64BigEndian(keys[1]));
    }

    [Fact]
    public async Task RestartRebuildsFromTheBackendAndAppliesNoEntryTwice()
    {
        long leaseId;
        long revision;
        ulong applied;
        await using (var s = await StartReadyAsync(Options))
        {
            var grant = await s.LeaseGrantAsync(new LeaseGrantRequest { ID = 0, TTL = 600 }, CancellationToken.None);
            leaseId = grant.ID;
            await s.PutAsync(new PutRequest { Key = B("leased"), Value = B("v"), Lease = leaseId }, CancellationToken.None);
            for (var i = 0; i < 20; i++)
            {
                await s.PutAsync(new PutRequest { Key = B($"k{i:D2}"), Value = B($"v{i}") }, CancellationToken.None);
            }

            await s.DeleteRangeAsync(new DeleteRangeRequest { Key = B("k00") }, CancellationToken.None);
            await s.CompactAsync(new CompactionRequest { Revision = 10, Physical = true }, CancellationToken.None);
            await s.ProposeAsync(
                new InternalRaftRequest { Alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Activate, MemberID = s.MemberId, Alarm = AlarmType.Nospace } },
                CancellationToken.None);
            revision = s.Kv.CurrentRevision;
            applied = s.AppliedIndex;
        }

        await using (var s = await StartReadyAsync(Options))
        {
            // Everything was in the backend: nothing of it is applied again (the revision would move on).
            Assert.Equal(applied, s.ConsistentIndexAtStart);
            Assert.Equal(revision, s.Kv.CurrentRevision);
            Assert.Equal(10, s.Kv.CompactRevision);
            var r = await s.RangeAsync(new RangeRequest { Key = B("k"), RangeEnd = B("l") }, CancellationToken.None);
            Assert.Equal(19, r.Count);
            Assert.Equal(revision, r.Header.Revision);

            var lease = s.Lessor.Lookup(leaseId);
            Assert.NotNull(lease);
            Assert.Equal(600, lease!.GrantedTtl);
            Assert.Equal("leased", Encoding.UTF8.GetString(Assert.Single(lease.Keys)));

            var alarm = Assert.Single(s.Alarms.Get(AlarmType.None));
            Assert.Equal(AlarmType.Nospace, alarm.Alarm);

            // The recovered NOSPACE alarm caps writes (etcd's restoreAlarms) until it is disarmed.
            var capped = await Assert.ThrowsAsync<Etcd.Api.EtcdException>(() => s.PutAsync(new PutRequest { Key = B("capped"), Value = B("x") }, CancellationToken.None));
            Assert.Same(Etcd.Api.EtcdErrors.NoSpace, capped.Error);
            await s.ProposeAsync(
                new InternalRaftRequest { Alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Deactivate, MemberID = alarm.MemberID, Alarm = AlarmType.Nospace } },
                CancellationToken.None);

            // The membership is rebuilt by replaying the WAL, as etcd 3.4 does.
            Assert.Equal("s1", Assert.Single(s.Cluster.Members()).Name);
            Assert.Equal(EtcdServer.ClusterVersionValue, s.Cluster.Version);

            var put = await s.PutAsync(new PutRequest { Key = B("after"), Value = B("restart") }, CancellationToken.None);
            Assert.Equal(revision + 1, put.Header.Revision);

            // Revoking the recovered lease deletes its key in the backend as well.
            await s.LeaseRevokeAsync(new LeaseRevokeRequest { ID = leaseId }, CancellationToken.None);
            var gone = await s.RangeAsync(new RangeRequest { Key = B("leased") }, CancellationToken.None);
            Assert.Equal(0, gone.Count);
        }

        await using (var s = await StartReadyAsync(Options))
        {
            Assert.Null(s.Lessor.Lookup(leaseId));
            Assert.Equal(revision + 2, s.Kv.CurrentRevision);
            Assert.Empty(s.Alarms.Get(AlarmType.None));
        }
    }

    [Fact]
    public async Task StatusReportsTheDatabaseSize()
    {
        await using var s = await StartReadyAsync(Options);
        var before = s.Backend.Size;
        var big = new byte[64 * 1024];
        Random.Shared.NextBytes(big);
        for (var i = 0; i < 32; i++)
        {
            await s.PutAsync(new PutRequest { Key = B($"big{i}"), Value = ByteString.CopyFrom(big) }, CancellationToken.None);
        }

        s.Backend.ForceCommit();
        var status = s.Status();
        Assert.True(status.DbSize >= before + (32L * big.Length), $"dbSize {status.DbSize} before {before}");
        Assert.True(status.DbSizeInUse <= status.DbSize);
        Assert.True(new FileInfo(Path.Combine(_dir.Path, "member", "snap", "db")).Length >= status.DbSize);
    }

    [Fact]
    public async Task SnapshotsEverySnapshotCountEntriesArePurgedAndRestartStartsFromTheNewest()
    {
        var o = Options with { SnapshotCount = 10, MaxSnapshots = 2 };
        var snapDir = Path.Combine(_dir.Path, "member", "snap");
        long revision;
        await using (var s = await StartReadyAsync(o))
        {
            s.SnapshotCatchUpEntries = 5;
            await WaitClusterVersionAsync(s);
            for (var i = 0; i < 60; i++)
            {
                await s.PutAsync(new PutRequest { Key = B($"s{i:D2}"), Value = B($"v{i}") }, CancellationToken.None);
            }

            revision = s.Kv.CurrentRevision;
            var snaps = Directory.GetFiles(snapDir, "*.snap");
            Assert.True(snaps.Length >= 5, $"{snaps.Length} snap files");
            var removed = s.PurgeFiles();
            Assert.Equal(snaps.Length - 2, removed.Count(p => p.EndsWith(".snap", StringComparison.Ordinal)));
            Assert.Equal(2, Directory.GetFiles(snapDir, "*.snap").Length);
        }

        // The newest snap file holds the membership as etcd's v2 store JSON.
        var newest = Directory.GetFiles(snapDir, "*.snap").Order(StringComparer.Ordinal).Last();
        var snap = Etcd.Storage.Snap.Snapshotter.Read(newest);
        var (members, _, version) = V2StoreSnapshot.ReadMembership(snap.Data.Span);
        Assert.Equal("s1", Assert.Single(members).Name);
        Assert.Equal(EtcdServer.ClusterVersionValue, version);

        await using (var s = await StartReadyAsync(o))
        {
            Assert.Equal(revision, s.Kv.CurrentRevision);
            var r = await s.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t") }, CancellationToken.None);
            Assert.Equal(60, r.Count);
            Assert.Equal("s1", Assert.Single(s.Cluster.Members()).Name);
            Assert.Equal(EtcdServer.ClusterVersionValue, s.Cluster.Version);
            var put = await s.PutAsync(new PutRequest { Key = B("after"), Value = B("restart") }, CancellationToken.None);
            Assert.Equal(revision + 1, put.Header.Revision);
        }
    }

    private static async Task WaitClusterVersionAsync(EtcdServer s)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (s.Cluster.Version is null && DateTime.UtcNow < deadline)
        {
            await s.WaitAppliedAsync(s.AppliedIndex + 1, new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        }

        Assert.NotNull(s.Cluster.Version);
    }
}
