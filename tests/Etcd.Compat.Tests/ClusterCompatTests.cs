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
}
