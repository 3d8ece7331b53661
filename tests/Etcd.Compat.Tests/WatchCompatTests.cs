using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>
/// watch over history (--rev) compared between real etcd 3.4.23 and the server under test. etcdctl
/// watch never ends by itself, so each step stops it once the expected number of lines arrived.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class WatchCompatTests
{
    private static Step Watch(int lines, params string[] args) => new(["watch", .. args], Etcdctl.StoppedAfterCondition, StreamLines: lines);

    [Fact]
    public Task Watch_History_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(
        [
            Ok("put", "w/a", "1"),
            Ok("put", "w/a", "2"),
            Ok("put", "w/b", "x"),
            Ok("del", "w/a"),
            Ok("put", "w/c", "y"),
            Ok("put", "other", "z"),
            // Simple format: 3 lines per event (type, key, value); history is replayed from --rev.
            Watch(9, "w/a", "--rev", "1"),
            Watch(15, "--prefix", "w/", "--rev", "1"),
            Watch(6, "w/a", "--rev", "3", "--prev-kv"),
            // JSON: one line per WatchResponse; historical events arrive in one response.
            Watch(1, "--prefix", "w/", "--rev", "1", "-w", "json"),
            Watch(1, "w/a", "w/c", "--rev", "2", "-w", "json"),
            Watch(1, "w/a", "--rev", "2", "--prev-kv", "-w", "json"),
            Watch(1, "w/b", "zzz", "--rev", "5", "-w", "json"),
            Watch(11, "w/c", "--rev", "6", "-w", "fields"),
            Ok("compaction", "4"),
            // A watch from a compacted revision is cancelled by the server; etcdctl exits 5 on its own.
            new Step(["watch", "w/a", "--rev", "2"], 5, StreamLines: 100),
            Watch(3, "w/c", "--rev", "4"),
        ]);
    });
}
