using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>lease grant/attach/list/timetolive/keep-alive/revoke compared between real etcd 3.4.23 and the server under test.</summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class LeaseCompatTests
{
    // Lease list order is by expiry in etcd (lessor.Leases sorts by expiry), hence distinct TTLs below.
    // The remaining TTL is a countdown (a timing): it may tick differently on the two sides. It is checked
    // to be within 15 s of the granted TTL, then blanked; the granted TTL is compared exactly.
    private static string RemainingTtl(string s) => SortAttachedKeys(RemainingRegex().Replace(s, m =>
    {
        var remaining = long.Parse(m.Groups[2].Value);
        var granted = long.Parse(m.Groups[1].Value);
        return remaining <= granted && remaining >= granted - 15
            ? $"granted with TTL({granted}s), remaining(<REMAINING>)"
            : m.Value;
    }));

    private static string RemainingTtlJson(string s) => SortAttachedKeys(RemainingJsonRegex().Replace(s, m =>
    {
        var remaining = long.Parse(m.Groups[1].Value);
        var granted = long.Parse(m.Groups[2].Value);
        return remaining <= granted && remaining >= granted - 15
            ? $"\"ttl\":<REMAINING>,\"granted-ttl\":{granted}"
            : m.Value;
    }));

    // etcd keeps a lease's attached keys in a Go map, so TimeToLive lists them in random order (it varies
    // between two runs of real etcd): sort the list, keep its content exact.
    private static string SortAttachedKeys(string s)
    {
        s = AttachedKeysRegex().Replace(s, m => "attached keys([" + string.Join(' ', m.Groups[1].Value.Split(' ').Order(StringComparer.Ordinal)) + "])");
        return JsonKeysRegex().Replace(s, m => "\"keys\":[" + string.Join(',', m.Groups[1].Value.Split(',').Order(StringComparer.Ordinal)) + "]");
    }

    [Fact]
    public Task Lease_Lifecycle_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(
        [
            new Step(["lease", "grant", "100"], LearnIdAs: "LEASE_1"),
            new Step(["lease", "grant", "300", "-w", "json"], LearnIdAs: "LEASE_2"),
            Ok("put", "l/1", "one", "--lease={LEASE_1}"),
            Ok("put", "l/2", "two", "--lease={LEASE_1}"),
            Ok("put", "l/3", "three", "--lease={LEASE_2}"),
            Ok("put", "l/4", "four"),
            Ok("get", "l/", "--prefix", "-w", "json"),
            Ok("get", "l/1", "-w", "fields"),
            Ok("lease", "list"),
            Ok("lease", "list", "-w", "json"),
            new Step(["lease", "timetolive", "{LEASE_1}"], ExtraNormalise: RemainingTtl),
            new Step(["lease", "timetolive", "{LEASE_1}", "--keys"], ExtraNormalise: RemainingTtl),
            new Step(["lease", "timetolive", "{LEASE_2}", "--keys", "-w", "json"], ExtraNormalise: RemainingTtlJson),
            Ok("lease", "keep-alive", "--once", "{LEASE_1}"),
            Ok("lease", "revoke", "{LEASE_1}"),
            Ok("get", "l/", "--prefix"),
            Ok("lease", "timetolive", "{LEASE_1}"),
            Fails(1, "lease", "revoke", "{LEASE_1}"),
            Fails(2, "lease", "keep-alive", "--once", "{LEASE_1}"),
            Fails(1, "put", "l/5", "five", "--lease={LEASE_1}"),
            Ok("put", "l/3", "rewritten", "--ignore-lease"),
            Ok("get", "l/3", "-w", "json"),
            Ok("lease", "list"),
            Ok("lease", "revoke", "{LEASE_2}"),
            Ok("get", "l/", "--prefix", "-w", "json"),
        ]);
    });

    [GeneratedRegex(@"attached keys\(\[([^\]]*)\]\)")]
    private static partial Regex AttachedKeysRegex();

    [GeneratedRegex(@"""keys"":\[([^\]]*)\]")]
    private static partial Regex JsonKeysRegex();

    [GeneratedRegex(@"granted with TTL\(([0-9]+)s\), remaining\(([0-9]+)s\)")]
    private static partial Regex RemainingRegex();

    [GeneratedRegex(@"""ttl"":([0-9]+),""granted-ttl"":([0-9]+)")]
    private static partial Regex RemainingJsonRegex();
}
