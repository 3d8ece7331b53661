using System.Diagnostics;
using System.Threading.Channels;
using Etcd.Server.Lease;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using Xunit.Abstractions;

namespace Etcd.Server.Tests.Lease;

/// <summary>Many short leases on the real clock: every one is revoked within a bounded time after its TTL.</summary>
public sealed class LessorScaleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task HundredThousandShortLeasesAllExpireSoonAfterTheirTtl()
    {
        var count = int.TryParse(Environment.GetEnvironmentVariable("LEASE_SCALE_COUNT"), out var n) ? n : 100_000;
        const long ttl = 2;
        using var backend = new InMemoryBackend();

        // Revoke rate raised from etcd's 1000/s so that the expiry path itself is measured (at 1000/s,
        // 100,000 leases take 100 s by design).
        var lessor = new Lessor(backend, new LessorConfig { MinLeaseTtlSeconds = 1, RevokeRatePerSecond = 10_000_000 });
        using var kv = new KvStore(backend, lessor);
        lessor.SetStore(kv);

        // The proposer stands in for raft: a single "apply" task revokes in order, as the apply thread would.
        var proposals = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true });
        var expectedExpiry = new long[count + 1];
        var lateness = new List<long>(count);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var apply = Task.Run(async () =>
        {
            await foreach (var id in proposals.Reader.ReadAllAsync())
            {
                if (!lessor.Exists(id))
                {
                    continue; // handed out again after the retry interval before its revoke was applied
                }

                lessor.Revoke(id);
                lateness.Add(Stopwatch.GetTimestamp() - expectedExpiry[id]);
                if (lateness.Count == count)
                {
                    done.TrySetResult();
                }
            }
        });
        lessor.Start(id => proposals.Writer.WriteAsync(id).AsTask(), null);
        lessor.Promote(TimeSpan.Zero);

        var grantWatch = Stopwatch.StartNew();
        for (var id = 1; id <= count; id++)
        {
            expectedExpiry[id] = Stopwatch.GetTimestamp() + (ttl * Stopwatch.Frequency);
            lessor.Grant(id, ttl);

            if (id % 10 == 0)
            {
                kv.Put(new PutRequest { Key = ByteString.CopyFromUtf8($"k/{id}"), Value = ByteString.CopyFromUtf8("v"), Lease = id });
            }
        }

        output.WriteLine($"granted {count} leases in {grantWatch.ElapsedMilliseconds} ms");
        await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
        proposals.Writer.Complete();
        await apply;
        lessor.Dispose();

        lateness.Sort();
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        var p50 = Ms(lateness[count / 2]);
        var p99 = Ms(lateness[(int)(count * 0.99)]);
        var max = Ms(lateness[^1]);
        output.WriteLine($"revocation after TTL: p50 {p50:F0} ms, p99 {p99:F0} ms, max {max:F0} ms");
        Assert.Equal(0, lessor.Count);
        Assert.Equal(0, kv.Range(new RangeRequest { Key = ByteString.CopyFromUtf8("k/"), RangeEnd = ByteString.CopyFromUtf8("k0") }).Count);
        Assert.True(lateness[0] >= 0, "no lease is revoked before its TTL");
        Assert.True(max < 3000, $"slowest revocation {max:F0} ms after its TTL");
    }
}
