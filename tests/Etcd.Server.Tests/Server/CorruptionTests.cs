using Etcd.Api;
using Etcd.Server.Tests.Cluster;
using Etcd.Storage.Bolt;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Mvccpb;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// Corruption checks as etcd 3.4's corrupt.go: the CORRUPT alarm's effect on apply (applierV3Corrupt), the initial
/// check of a restarting member against its peers, and the leader's check of its followers raising the alarm through
/// raft, on in-process members whose db was edited on disk while stopped.
/// </summary>
public sealed class CorruptionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static InternalRaftRequest Alarm(AlarmRequest.Types.AlarmAction action)
        => new() { Alarm = new AlarmRequest { Action = action, MemberID = 0, Alarm = AlarmType.Corrupt } };

    private static async Task AssertCorruptAsync(Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<EtcdException>(call);
        Assert.Same(EtcdErrors.Corrupt, e.Error);
        Assert.Equal("etcdserver: corrupt cluster", e.Error.Message);
        Assert.Equal(Api.Grpc.StatusCode.DataLoss, e.Error.Code);
    }

    [Fact]
    public async Task CorruptAlarmFailsWritesCompactAndLeasesUntilDisarmedAndSurvivesARestart()
    {
        var o = TestMember.Options("corrupt", _dir.Path);
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance);
        try
        {
            await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
            await s.PutAsync(new PutRequest { Key = B("k"), Value = B("v") }, CancellationToken.None);
            var lease = await s.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 }, CancellationToken.None);
            await s.ProposeAsync(Alarm(AlarmRequest.Types.AlarmAction.Activate), CancellationToken.None);
            Assert.Contains(s.Status().Errors, e => e.Contains("alarm:CORRUPT", StringComparison.Ordinal));

            await AssertCorruptAsync(() => s.PutAsync(new PutRequest { Key = B("k"), Value = B("w") }, CancellationToken.None));
            await AssertCorruptAsync(() => s.DeleteRangeAsync(new DeleteRangeRequest { Key = B("k") }, CancellationToken.None));
            await AssertCorruptAsync(() => s.TxnAsync(new TxnRequest { Success = { new RequestOp { RequestPut = new PutRequest { Key = B("t"), Value = B("1") } } } }, CancellationToken.None));
            await AssertCorruptAsync(() => s.CompactAsync(new CompactionRequest { Revision = 2 }, CancellationToken.None));
            await AssertCorruptAsync(() => s.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 }, CancellationToken.None));
            await AssertCorruptAsync(() => s.LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease.ID }, CancellationToken.None));

            // Reads are served from local state (etcd's applyV3Base), not applied: they still answer.
            Assert.Equal("v", (await s.RangeAsync(new RangeRequest { Key = B("k") }, CancellationToken.None)).Kvs[0].Value.ToStringUtf8());
            Assert.Single((await s.TxnAsync(new TxnRequest { Success = { new RequestOp { RequestRange = new RangeRequest { Key = B("k") } } } }, CancellationToken.None)).Responses);

            // The alarm is persisted: a restarted member still refuses (etcd's restoreAlarms).
            await s.DisposeAsync();
            s = EtcdServer.Start(o, NullLoggerFactory.Instance);
            await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
            await AssertCorruptAsync(() => s.PutAsync(new PutRequest { Key = B("k"), Value = B("w") }, CancellationToken.None));

            var disarmed = (AlarmResponse)(await s.ProposeAsync(Alarm(AlarmRequest.Types.AlarmAction.Deactivate), CancellationToken.None))!;
            Assert.Equal(AlarmType.Corrupt, Assert.Single(disarmed.Alarms).Alarm);
            await s.PutAsync(new PutRequest { Key = B("k"), Value = B("w") }, CancellationToken.None);
            await s.CompactAsync(new CompactionRequest { Revision = 2, Physical = true }, CancellationToken.None);
            Assert.Equal(2, s.Kv.CompactRevision);
        }
        finally
        {
            await s.DisposeAsync();
        }
    }

    /// <summary>Changes one stored value's first byte in <c>member/snap/db</c> (the member is stopped).</summary>
    private static void EditOneValue(string dataDir)
    {
        using var db = BoltDb.Open(Path.Combine(dataDir, "member", "snap", "db"));
        db.Update(tx =>
        {
            var bucket = tx.Bucket("key"u8)!;
            byte[]? key = null;
            KeyValue? kv = null;
            bucket.ForEach((k, v) =>
            {
                key = k.ToArray();
                kv = KeyValue.Parser.ParseFrom(v.ToArray());
                return false;
            });
            var value = kv!.Value.ToByteArray();
            value[0]++;
            kv.Value = ByteString.CopyFrom(value);
            bucket.Put(key, kv.ToByteArray());
        });
    }

    [Fact]
    public async Task EditedMemberFailsTheInitialCheckAndTheLeadersCheckRaisesCorrupt()
    {
        // A small snapshot count, as etcd's e2e test uses, so the restarting member knows its peers from its snap file.
        await using var cluster = await InProcessCluster.StartAsync(3, o => o with { SnapshotCount = 3, ExperimentalInitialCorruptCheck = true });
        var leader = await cluster.WaitLeaderAsync();
        for (var i = 0; i < 10; i++)
        {
            await leader.PutAsync(new PutRequest { Key = B($"foo{i:D5}"), Value = B($"v{i:D5}") }, CancellationToken.None);
        }

        var rev = leader.Kv.CurrentRevision;
        await cluster.EventuallyAsync(() => cluster.Live.All(m => m.Kv.CurrentRevision == rev), "all members at the last revision");
        var victim = cluster.Members.FindIndex(m => !ReferenceEquals(m, leader));
        var victimId = cluster.Members[victim]!.MemberId;
        var options = cluster.OptionsFor(victim, string.Join(",", Enumerable.Range(0, 3).Select(i => $"m{i}={InProcessCluster.PeerUrl(i)}")));
        await cluster.Members[victim]!.DisposeAsync();

        // Unedited, the restarting member passes the check.
        await using (var clean = EtcdServer.Start(options, NullLoggerFactory.Instance, startLoop: false, transport: cluster.Network.CreateTransport()))
        {
            await clean.CheckInitialHashKvAsync(CancellationToken.None);
        }

        EditOneValue(options.DataDir);
        await using (var edited = EtcdServer.Start(options, NullLoggerFactory.Instance, startLoop: false, transport: cluster.Network.CreateTransport()))
        {
            var e = await Assert.ThrowsAsync<EtcdStartException>(() => edited.CheckInitialHashKvAsync(CancellationToken.None));
            Assert.Equal($"{victimId:x} found data inconsistency with peers", e.Message);
        }

        // Started anyway (no initial check), the edited member serves; the leader's check finds it and raises CORRUPT.
        var restarted = await cluster.RestartAsync(victim);
        await restarted.ReadyToServe.WaitAsync(InProcessCluster.Patience);
        await cluster.EventuallyAsync(() => restarted.Kv.CurrentRevision == rev && restarted.AppliedIndex >= leader.CommittedIndex, "the edited member caught up");
        leader = await cluster.WaitLeaderAsync();
        Assert.True(await leader.CheckHashKvAsync(CancellationToken.None));
        await cluster.EventuallyAsync(() => cluster.Live.All(m => m.Alarms.Get(AlarmType.Corrupt).Count == 1), "CORRUPT raised on every member");
        Assert.Equal(0UL, leader.Alarms.Get(AlarmType.Corrupt)[0].MemberID);
        foreach (var m in cluster.Live)
        {
            await AssertCorruptAsync(() => m.PutAsync(new PutRequest { Key = B("after"), Value = B("x") }, CancellationToken.None));
        }

        // The edited member goes away; the alarm stays until disarmed, then writes work again.
        await restarted.DisposeAsync();
        await AssertCorruptAsync(() => leader.PutAsync(new PutRequest { Key = B("after"), Value = B("x") }, CancellationToken.None));
        await leader.ProposeAsync(Alarm(AlarmRequest.Types.AlarmAction.Deactivate), CancellationToken.None);
        await leader.PutAsync(new PutRequest { Key = B("after"), Value = B("x") }, CancellationToken.None);
        Assert.False(await leader.CheckHashKvAsync(CancellationToken.None));
    }
}
