using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Harness;
using Etcdserverpb;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests;

/// <summary>
/// Corruption checks on 3-member clusters of the executable under test (and, with <c>ETCD_UNDER_TEST=/usr/bin/etcd</c>,
/// of real etcd 3.4.23: the same scenarios pass there). A follower is stopped with SIGTERM and one stored value is
/// edited in its <c>member/snap/db</c> (same length, so the bbolt file stays valid); with
/// <c>--experimental-initial-corrupt-check</c> it then refuses to start with etcd's message, and with
/// <c>--experimental-corrupt-check-time</c> the leader's check raises the CORRUPT alarm, which fails writes on every member
/// with "etcdserver: corrupt cluster" until the alarm is disarmed.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class CorruptionCheckTests(ITestOutputHelper output)
{
    private const string Probe = "corruption-probe-value-";

    private static CallOptions Call() => new() { Timeout = TimeSpan.FromSeconds(5) };

    /// <summary>Puts 10 keys with recognisable values through the leader and waits until every member has them.</summary>
    private static async Task<ClusterMember> PopulateAsync(ProcessCluster cluster)
    {
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(20));
        for (var i = 0; i < 10; i++)
        {
            await ProcessCluster.RetryAsync(() => leader.Client.Kv.PutAsync($"foo{i:D5}", $"{Probe}{i:D5}", Call()), TimeSpan.FromSeconds(20));
        }

        await ClusterChecks.WaitForConvergenceAsync(cluster.Members, TimeSpan.FromSeconds(30), cluster);
        return leader;
    }

    /// <summary>Changes one byte of the value of <c>foo00003</c> wherever it is in the stopped member's db file.</summary>
    private static void EditOneValue(ClusterMember member)
    {
        var path = Path.Combine(member.DataDir, "member", "snap", "db");
        var bytes = File.ReadAllBytes(path);
        var needle = Encoding.ASCII.GetBytes(Probe + "00003");
        var edited = 0;
        for (var at = bytes.AsSpan().IndexOf(needle); at >= 0;)
        {
            bytes[at + needle.Length - 1] = (byte)'X';
            edited++;
            var next = bytes.AsSpan(at + 1).IndexOf(needle);
            at = next < 0 ? -1 : at + 1 + next;
        }

        Assert.True(edited > 0, $"value not found in {path}");
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public async Task EditedFollower_InitialCorruptCheck_RefusesToStart()
    {
        // A small snapshot count (as etcd's e2e test) so the restarting member knows its peers from its snapshot.
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { SnapshotCount = 3 });
        var leader = await PopulateAsync(cluster);
        var victim = cluster.Followers(leader)[0];
        await victim.TerminateAsync();

        // Unedited, the check passes and the member starts.
        victim.Arguments = [.. victim.Arguments, "--experimental-initial-corrupt-check"];
        await victim.StartAsync(cluster.Options.ReadyTimeout);
        await victim.TerminateAsync();

        EditOneValue(victim);
        await victim.StartAsync(cluster.Options.ReadyTimeout, waitReady: false);
        Assert.True(await victim.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"the edited member kept running\n{victim.LogTail()}");
        var expected = $"etcdmain: {victim.MemberId:x} found data inconsistency with peers";
        output.WriteLine(victim.LogTail(8));
        Assert.NotEqual(0, victim.ExitCode);
        Assert.Contains(expected, victim.Logs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EditedFollower_PeriodicCorruptCheck_RaisesCorruptUntilDisarmed()
    {
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { ExtraArgs = ["--experimental-corrupt-check-time=1s"] });
        var leader = await PopulateAsync(cluster);
        var victim = cluster.Followers(leader)[0];
        var witness = cluster.Followers(leader)[1];
        await victim.TerminateAsync();
        EditOneValue(victim);
        await victim.StartAsync(cluster.Options.ReadyTimeout);

        // The leader compares hashes every second and raises CORRUPT through raft (member 0, as etcd 3.4).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        AlarmMember? raised = null;
        while (raised is null && DateTime.UtcNow < deadline)
        {
            var list = await ProcessCluster.RetryAsync(
                () => witness.Client.UnaryAsync(EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get }, Call()),
                TimeSpan.FromSeconds(20));
            raised = list.Alarms.FirstOrDefault(a => a.Alarm == AlarmType.Corrupt);
            if (raised is null)
            {
                await Task.Delay(200);
            }
        }

        Assert.True(raised is not null, $"no CORRUPT alarm within 60 s\n{cluster.LogTails()}");
        Assert.Equal(0UL, raised.MemberID);

        // Writes fail on every member; linearizable reads still answer.
        foreach (var m in cluster.Members)
        {
            var e = await Assert.ThrowsAnyAsync<RpcException>(() => m.Client.Kv.PutAsync("after", "x", Call()));
            Assert.Equal(StatusCode.DataLoss, e.Status);
            Assert.Equal("etcdserver: corrupt cluster", e.Detail);
            Assert.Equal($"{Probe}00001", (await m.Client.Kv.GetAsync("foo00001", Call())).Kvs[0].Value.ToStringUtf8());
        }

        // With the edited member gone the alarm stays until it is disarmed; then writes work again.
        victim.Kill();
        var settle = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        RpcException stillCorrupt;
        do
        {
            // Until the two remaining members agree on a leader again, a put may time out instead.
            stillCorrupt = await Assert.ThrowsAnyAsync<RpcException>(() => witness.Client.Kv.PutAsync("after", "x", Call()));
            output.WriteLine($"put after the edited member stopped: {stillCorrupt.Status} {stillCorrupt.Detail}");
        }
        while (stillCorrupt.Status != StatusCode.DataLoss && DateTime.UtcNow < settle);

        Assert.Equal(StatusCode.DataLoss, stillCorrupt.Status);
        var disarmed = await witness.Client.UnaryAsync(
            EtcdMethods.MaintenanceService.Alarm,
            new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Deactivate, MemberID = raised.MemberID, Alarm = AlarmType.Corrupt },
            Call());
        Assert.Equal(AlarmType.Corrupt, Assert.Single(disarmed.Alarms).Alarm);
        await ProcessCluster.RetryAsync(() => witness.Client.Kv.PutAsync("after", "x", Call()), TimeSpan.FromSeconds(20));
    }
}
