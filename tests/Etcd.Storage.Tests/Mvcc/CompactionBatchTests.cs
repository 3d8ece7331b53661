using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

/// <summary>
/// <c>--experimental-compaction-batch-limit</c> over real bbolt files: the removal of compacted revisions runs in
/// batches of at most N keys with commits and pauses between them (etcd's <c>scheduleCompaction</c>), writes and reads
/// go on between batches, and the outcome is byte for byte the one of a removal in one batch.
/// </summary>
public sealed class CompactionBatchTests : IDisposable
{
    private const int Keys = 40;
    private const int Rounds = 30;
    private readonly string _dir = Directory.CreateTempSubdirectory("etcd-compaction-batch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private BoltBackend Open(string name) => new(new BoltBackendOptions
    {
        Path = Path.Combine(_dir, name),
        UnsafeNoFsync = true,
        BatchInterval = TimeSpan.FromMilliseconds(100),
    });

    /// <summary>Rounds × keys puts (revisions 2..1201), then every third key deleted (14 more revisions).</summary>
    private static void Workload(KvStore s)
    {
        for (var r = 0; r < Rounds; r++)
        {
            for (var k = 0; k < Keys; k++)
            {
                s.Put($"key{k:D3}", $"value-{r}-{k}");
            }
        }

        for (var k = 0; k < Keys; k += 3)
        {
            s.Del($"key{k:D3}");
        }
    }

    private static List<(string Key, byte[] Value)> KeyBucket(IBackend backend)
    {
        var rows = new List<(string, byte[])>();
        using var rtx = backend.ConcurrentReadTx();
        rtx.ForEach(MvccSchema.KeyBucket, (k, v) =>
        {
            rows.Add((Convert.ToHexString(k), v.ToArray()));
            return true;
        });
        return rows;
    }

    private static string? Meta(IBackend backend, ReadOnlySpan<byte> key)
    {
        using var rtx = backend.ConcurrentReadTx();
        return rtx.Get(MvccSchema.MetaBucket, key) is { } v ? Convert.ToHexString(v) : null;
    }

    [Fact]
    public void BatchedRemovalLetsWritesAndReadsThroughAndMatchesOneBatch()
    {
        const int limit = 100;
        var batches = new List<CompactionBatch>();
        KvStore? batchedStore = null;
        long putBetweenBatches = 0;
        var readBetweenBatches = 0;
        using var batchedBackend = Open("batched.db");
        using var batched = batchedStore = new KvStore(batchedBackend, null, new KvStoreOptions
        {
            CompactionBatchLimit = limit,
            CompactionBatchPause = TimeSpan.FromMilliseconds(1),
            CompactionBatchCommitted = b =>
            {
                lock (batches)
                {
                    batches.Add(b);
                }

                if (b.Number == 3)
                {
                    // Between two batches another thread writes and reads; the removal waits for it, so a write
                    // blocked behind the removal would time out here.
                    var other = Task.Run(() =>
                    {
                        putBetweenBatches = batchedStore!.Put("written-between-batches", "x").Header.Revision;
                        readBetweenBatches = batchedStore!.Get("key001").Kvs.Count;
                    });
                    Assert.True(other.Wait(TimeSpan.FromSeconds(30)), "a put between compaction batches did not complete");
                }
            },
        });
        using var oneBackend = Open("one-batch.db");
        using var one = new KvStore(oneBackend, null, new KvStoreOptions { CompactionBatchLimit = int.MaxValue });

        Workload(batched);
        Workload(one);
        var compactAt = batched.CurrentRevision - 5;
        var storedBefore = KeyBucket(batchedBackend).Count;
        var nextRevision = batched.CurrentRevision + 1;

        batched.Compact(new CompactionRequest { Revision = compactAt });
        one.Compact(new CompactionRequest { Revision = compactAt });
        one.Put("written-between-batches", "x");

        // Revisions ≤ compactAt span ~12 batches of 100; the last one is short and records finishedCompactRev.
        Assert.True(batches.Count >= 10, $"only {batches.Count} batches");
        Assert.All(batches, b => Assert.Equal(compactAt, b.CompactRevision));
        Assert.Equal(Enumerable.Range(1, batches.Count), batches.Select(b => b.Number));
        Assert.True(batches[^1].Last);
        Assert.All(batches.SkipLast(1), b => Assert.False(b.Last));
        Assert.Equal(nextRevision, putBetweenBatches);
        Assert.Equal(1, readBetweenBatches);
        var removed = batches.Sum(b => b.Deleted);
        Assert.Equal(storedBefore + 1 - removed, KeyBucket(batchedBackend).Count);

        // Identical to a removal in one batch: same rows, same meta, same hash.
        batchedBackend.ForceCommit();
        oneBackend.ForceCommit();
        Assert.Equal(KeyBucket(oneBackend).Select(r => (r.Key, Convert.ToHexString(r.Value))), KeyBucket(batchedBackend).Select(r => (r.Key, Convert.ToHexString(r.Value))));
        Assert.Equal(Meta(oneBackend, MvccSchema.FinishedCompactKey), Meta(batchedBackend, MvccSchema.FinishedCompactKey));
        Assert.Equal(Meta(oneBackend, MvccSchema.ScheduledCompactKey), Meta(batchedBackend, MvccSchema.ScheduledCompactKey));
        Assert.Equal(one.HashByRevision(0), batched.HashByRevision(0));
        Assert.Equal(one.GetAll().Values(), batched.GetAll().Values());
    }

    [Fact]
    public async Task ScheduledRemovalRunsInTheBackgroundAndSurvivesAReopen()
    {
        var path = "reopen.db";
        long compactAt;
        var firstBatch = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new ManualResetEventSlim();
        using (var backend = Open(path))
        {
            using var s = new KvStore(backend, null, new KvStoreOptions
            {
                CompactionBatchLimit = 50,
                CompactionBatchPause = TimeSpan.Zero,
                CompactionBatchCommitted = b =>
                {
                    if (b.Number == 1)
                    {
                        firstBatch.TrySetResult();
                        release.Wait(TimeSpan.FromSeconds(30));
                    }
                },
            });
            Workload(s);
            compactAt = s.CurrentRevision - 1;
            s.ScheduleCompaction(new CompactionRequest { Revision = compactAt }, out var removal);

            // The logical phase is done when ScheduleCompaction returns; the removal is still under way.
            Assert.Equal(compactAt, s.CompactRevision);
            await firstBatch.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.False(removal.IsCompleted);
            Assert.Null(Meta(backend, MvccSchema.FinishedCompactKey));
            s.Put("while-removing", "v");
            s.Dispose();
            release.Set();
            await removal.WaitAsync(TimeSpan.FromSeconds(30));
            backend.ForceCommit();
        }

        // Reopened, the store finishes the compaction that was scheduled but not finished (etcd's restore).
        using (var backend = Open(path))
        using (var s = new KvStore(backend))
        {
            Assert.Equal(compactAt, s.CompactRevision);
            Assert.NotNull(Meta(backend, MvccSchema.FinishedCompactKey));
            using var oneBackend = Open("reference.db");
            using var one = new KvStore(oneBackend);
            Workload(one);
            one.Compact(new CompactionRequest { Revision = compactAt });
            one.Put("while-removing", "v");
            Assert.Equal(one.HashByRevision(0), s.HashByRevision(0));
            Assert.Equal(KeyBucket(oneBackend).Count, KeyBucket(backend).Count);
        }
    }
}
