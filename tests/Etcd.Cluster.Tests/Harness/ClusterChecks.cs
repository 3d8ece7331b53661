using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Linearizability;
using Etcdserverpb;
using Google.Protobuf;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>
/// The checks run after every scenario: the members converge on one revision, every acknowledged put is in every
/// member's history (serializable get at the put's revision on each member), HashKV agrees at that revision on
/// all members, and the recorded history is linearizable.
/// </summary>
public static class ClusterChecks
{
    /// <summary>Bound on the linearizability search; exceeding it fails the test.</summary>
    public static readonly TimeSpan CheckerBudget = TimeSpan.FromSeconds(30);

    /// <summary>Runs every check on the current members; fails the test with details on the first that does not hold.</summary>
    /// <param name="bulk">Acknowledged puts of keys written once each under <paramref name="bulkPrefix"/>, checked by one prefix read per member.</param>
    public static async Task VerifyAsync(ProcessCluster cluster, Workload load, ITestOutputHelper output, IReadOnlyList<AckedPut>? bulk = null, string bulkPrefix = "bulk/")
    {
        var members = cluster.Members.ToList();
        Assert.All(members, m => Assert.True(m.IsRunning && !m.IsPaused, $"{m.Name} is not running at verification\n{m.LogTail()}"));
        var revision = await WaitForConvergenceAsync(members, TimeSpan.FromSeconds(30), cluster);
        output.WriteLine($"converged at revision {revision} on {members.Count} members; {load.Summary()}");

        await AssertAckedPresentAsync(members, load.Acked.ToList(), cluster);
        if (bulk is not null)
        {
            await AssertBulkPresentAsync(members, bulk, bulkPrefix, cluster);
        }

        await AssertHashKvAgreeAsync(members, revision, output);

        var result = LinearizabilityChecker.Check(load.History.Operations, CheckerBudget);
        output.WriteLine(result.Describe());
        Assert.True(result.IsLinearizable, result.Describe());
    }

    /// <summary>Polls Status until every member reports the same revision and applied index twice in a row; returns the revision.</summary>
    public static async Task<long> WaitForConvergenceAsync(IReadOnlyList<ClusterMember> members, TimeSpan timeout, ProcessCluster cluster)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "";
        (long, ulong)? previous = null;
        while (DateTime.UtcNow < deadline)
        {
            var st = await Task.WhenAll(members.Select(ProcessCluster.TryStatusAsync));
            last = string.Join(", ", members.Select((m, i) => $"{m.Name}: rev {st[i]?.Header.Revision} applied {st[i]?.RaftAppliedIndex} leader {st[i]?.Leader:x}"));
            if (st.All(s => s is not null))
            {
                var revs = st.Select(s => s!.Header.Revision).Distinct().ToList();
                var applied = st.Select(s => s!.RaftAppliedIndex).Distinct().ToList();
                if (revs.Count == 1 && applied.Count == 1)
                {
                    if (previous == (revs[0], applied[0]))
                    {
                        return revs[0];
                    }

                    previous = (revs[0], applied[0]);
                }
            }

            await Task.Delay(200);
        }

        Assert.Fail($"members did not converge within {timeout.TotalSeconds:0} s: {last}\n{cluster.LogTails()}");
        return 0;
    }

    /// <summary>Each acknowledged put is found on each member by a serializable get at its revision.</summary>
    public static async Task AssertAckedPresentAsync(IReadOnlyList<ClusterMember> members, IReadOnlyList<AckedPut> acked, ProcessCluster cluster)
    {
        var missing = new List<string>();
        foreach (var m in members)
        {
            using var gate = new SemaphoreSlim(16);
            var results = await Task.WhenAll(acked.Select(async a =>
            {
                await gate.WaitAsync();
                try
                {
                    var resp = await ProcessCluster.RetryAsync(
                        () => m.Client.Kv.RangeAsync(
                            new RangeRequest { Key = ByteString.CopyFromUtf8(a.Key), Revision = a.Revision, Serializable = true },
                            new CallOptions { Timeout = TimeSpan.FromSeconds(5) }),
                        TimeSpan.FromSeconds(20));
                    var kv = resp.Kvs.Count == 1 ? resp.Kvs[0] : null;
                    return kv is not null && kv.ModRevision == a.Revision && kv.Value.ToStringUtf8() == a.Value
                        ? null
                        : $"{m.Name}: put {a.Key}={a.Value} acknowledged at revision {a.Revision}, member has {(kv is null ? "nothing" : $"{kv.Value.ToStringUtf8()} at mod revision {kv.ModRevision}")}";
                }
                finally
                {
                    gate.Release();
                }
            }));
            missing.AddRange(results.Where(r => r is not null)!);
        }

        Assert.True(missing.Count == 0,
            $"{missing.Count} acknowledged puts missing (of {acked.Count} × {members.Count} members):\n{string.Join('\n', missing.Take(20))}\n{cluster.LogTails()}");
    }

    /// <summary>Keys written once each: one serializable prefix read per member must hold every one at its revision.</summary>
    public static async Task AssertBulkPresentAsync(IReadOnlyList<ClusterMember> members, IReadOnlyList<AckedPut> bulk, string prefix, ProcessCluster cluster)
    {
        var end = prefix[..^1] + (char)(prefix[^1] + 1);
        foreach (var m in members)
        {
            var resp = await ProcessCluster.RetryAsync(
                () => m.Client.Kv.RangeAsync(
                    new RangeRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(end), Serializable = true },
                    new CallOptions { Timeout = TimeSpan.FromSeconds(10) }),
                TimeSpan.FromSeconds(20));
            var have = resp.Kvs.ToDictionary(kv => kv.Key.ToStringUtf8(), kv => (Value: kv.Value.ToStringUtf8(), kv.ModRevision));
            var missing = bulk.Where(b => !have.TryGetValue(b.Key, out var h) || h.Value != b.Value || h.ModRevision != b.Revision).ToList();
            Assert.True(missing.Count == 0,
                $"{m.Name} lacks {missing.Count} of {bulk.Count} acknowledged bulk puts, e.g. {string.Join(", ", missing.Take(5))}\n{cluster.LogTails()}");
        }
    }

    /// <summary>HashKV at <paramref name="revision"/> is identical on every member.</summary>
    public static async Task AssertHashKvAgreeAsync(IReadOnlyList<ClusterMember> members, long revision, ITestOutputHelper output)
    {
        var hashes = await Task.WhenAll(members.Select(m => ProcessCluster.RetryAsync(
            () => m.Client.UnaryAsync(EtcdMethods.MaintenanceService.HashKV, new HashKVRequest { Revision = revision }, new CallOptions { Timeout = TimeSpan.FromSeconds(10) }),
            TimeSpan.FromSeconds(30))));
        var sb = new StringBuilder();
        for (var i = 0; i < members.Count; i++)
        {
            sb.Append($"{members[i].Name}: hash {hashes[i].Hash} compact {hashes[i].CompactRevision} at {revision}; ");
        }

        output.WriteLine("HashKV " + sb);
        Assert.True(hashes.Select(h => (h.Hash, h.CompactRevision)).Distinct().Count() == 1, "HashKV disagrees: " + sb);
    }
}
