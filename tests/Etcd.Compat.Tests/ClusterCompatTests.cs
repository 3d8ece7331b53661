using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>endpoint status/health/hashkv and member list compared between real etcd 3.4.23 and the server under test.</summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class ClusterCompatTests
{
    private static IEnumerable<Step> StatusAndMembers() =>
    [
        Ok("endpoint", "status"),
        Ok("endpoint", "status", "-w", "table"),
        Ok("endpoint", "status", "-w", "json"),
        Ok("endpoint", "status", "-w", "fields"),
        Ok("member", "list"),
        Ok("member", "list", "-w", "table"),
        Ok("member", "list", "-w", "json"),
        Ok("member", "list", "-w", "fields"),
        Ok("endpoint", "health"),
        Ok("endpoint", "health", "-w", "json"),
        Ok("endpoint", "health", "-w", "table"),
    ];

    [Fact]
    public Task EndpointStatusMemberListHealth_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        // Fresh member: raft index/term after bootstrap must already agree.
        await c.RunAsync(StatusAndMembers());
        await c.RunAsync(Scenarios.Populate());
        await c.RunAsync(StatusAndMembers());
        await c.RunAsync(
        [
            // hashkv hashes the MVCC key space (revision keys and KeyValue encodings), not the file layout.
            Ok("endpoint", "hashkv", "-w", "json"),
            Ok("endpoint", "hashkv", "--rev", "10"),
            Ok("endpoint", "hashkv", "-w", "table"),
        ]);
    });

    [Fact]
    public Task RestartAfterSigtermAndSigkill_SameDataAndStatus_MatchRealEtcd() => Scenarios.CompareWithPairAsync(async (pair, c) =>
    {
        await c.RunAsync(Scenarios.Populate());
        await c.RunAsync(Ok("compaction", "10"));

        // Graceful stop of both, restart on the same data dirs and ports: term and index move the same way.
        var stopped = await Task.WhenAll(pair.Reference.StopAsync(), pair.UnderTest.StopAsync());
        Assert.True(stopped[0], "reference etcd did not exit on SIGTERM");
        Assert.True(stopped[1], $"server under test did not exit on SIGTERM within 15 s\n{pair.UnderTest.LogTail()}");
        await Task.WhenAll(pair.Reference.RestartAsync(), pair.UnderTest.RestartAsync());
        await c.RunAsync(
        [
            Ok("get", "", "--prefix", "-w", "json"),
            Fails(1, "get", "key/03", "--rev", "9"),
            Ok("endpoint", "status", "-w", "json"),
            Ok("member", "list", "-w", "json"),
            Ok("put", "after", "sigterm"),
        ]);

        // Crash of both (every acknowledged put was fsynced), restart, compare again.
        pair.Reference.Kill();
        pair.UnderTest.Kill();
        await Task.WhenAll(pair.Reference.RestartAsync(), pair.UnderTest.RestartAsync());
        await c.RunAsync(
        [
            Ok("get", "", "--prefix", "-w", "json"),
            Ok("endpoint", "status", "-w", "table"),
            Ok("endpoint", "hashkv", "-w", "json"),
        ]);
    });
}
