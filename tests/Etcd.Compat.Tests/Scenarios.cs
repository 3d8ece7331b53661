using System.Runtime.CompilerServices;
using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>Shared data set: enough keys with varied create/mod revisions, versions and values for sort/limit to mean something.</summary>
internal static class Scenarios
{
    /// <summary>
    /// 20 keys key/00..key/19 created in a scrambled order (so CREATE order ≠ KEY order) with values whose
    /// order differs again, then 8 updates giving versions 1..4 and MODIFY order ≠ CREATE order, plus a few
    /// keys outside the prefix. Every put is itself a compared step.
    /// </summary>
    public static IEnumerable<Step> Populate()
    {
        for (var i = 0; i < 20; i++)
        {
            var k = i * 7 % 20;
            yield return Ok("put", $"key/{k:D2}", $"val-{k * 13 % 20:D2}");
        }

        var n = 0;
        foreach (var k in new[] { 3, 11, 5, 3, 17, 3, 11, 0 })
        {
            yield return Ok("put", $"key/{k:D2}", $"upd-{n++:D2}-{k}");
        }

        yield return Ok("put", "a", "first");
        yield return Ok("put", "b/1", "bee");
        yield return Ok("put", "zz", "last");
    }

    /// <summary>Starts a fresh pair, runs <paramref name="body"/>'s steps on both, asserts no mismatches.</summary>
    public static Task CompareAsync(Func<Comparison, Task> body, [CallerMemberName] string name = "") =>
        CompareWithPairAsync((_, c) => body(c), name);

    /// <summary>As <see cref="CompareAsync"/>, also handing the body the pair (to stop, kill or restart members).</summary>
    public static async Task CompareWithPairAsync(Func<MemberPair, Comparison, Task> body, [CallerMemberName] string name = "")
    {
        await using var pair = await MemberPair.StartAsync();
        var comparison = new Comparison(pair, name);
        await body(pair, comparison);
        comparison.AssertNoMismatches();
    }
}
