using System.Collections.Concurrent;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcd.Storage.Wal;
using Etcdserverpb;
using Google.Protobuf;
using WalLog = Etcd.Storage.Wal.Wal;

namespace Etcd.Storage.Tests;

/// <summary>
/// The storage layers report to the metrics hooks a member gives them (no process-wide state): the WAL its fsyncs and
/// bytes, the bbolt backend its commits, defrags and snapshots, the MVCC store each transaction's operations, the
/// snapshotter its saves. Real files in temp dirs.
/// </summary>
public sealed class StorageMetricsHookTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "etcd-hooks-" + Guid.NewGuid().ToString("N")[..12]);

    public StorageMetricsHookTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public void WalReportsEachSyncAndTheBytesWritten()
    {
        var metrics = new Recorder();
        using var w = WalLog.Create(Path.Combine(_dir, "wal"), [1, 2, 3]);
        w.Metrics = metrics;
        w.Save(new Raftpb.HardState { Term = 1, Vote = 1, Commit = 0 }, [new Raftpb.Entry { Index = 1, Term = 1, Data = ByteString.CopyFromUtf8("x") }]);
        var afterFirst = metrics.Fsyncs.Count;
        w.Save(new Raftpb.HardState { Term = 1, Vote = 1, Commit = 1 }, [new Raftpb.Entry { Index = 2, Term = 1, Data = ByteString.CopyFromUtf8("y") }]);

        Assert.True(afterFirst >= 1, "a save with entries did not sync");
        Assert.True(metrics.Fsyncs.Count > afterFirst, "the second save did not sync");
        Assert.True(metrics.WalBytes > 0);
    }

    [Fact]
    public void BackendReportsCommitsDefragAndSnapshots()
    {
        var metrics = new Recorder();
        using var be = new BoltBackend(new BoltBackendOptions { Path = Path.Combine(_dir, "db"), UnsafeNoFsync = true, BatchInterval = TimeSpan.FromHours(1) });
        be.Metrics = metrics;
        var tx = be.BatchTx;
        tx.Lock();
        tx.CreateBucket("b");
        tx.Put("b", "k"u8, "v"u8);
        tx.Unlock();
        be.ForceCommit();
        Assert.Single(metrics.Commits);
        Assert.True(metrics.Commits.Single().Total >= metrics.Commits.Single().Write);

        be.Defrag();
        Assert.Equal(new[] { true, false }, metrics.DefragStates.ToArray());
        Assert.Single(metrics.Defrags);

        using (var snap = be.CreateSnapshot())
        {
            Assert.Equal(1, be.OpenReadTransactions);
            snap.WriteTo(Stream.Null);
            Assert.Empty(metrics.Snapshots);
        }

        Assert.Single(metrics.Snapshots);
        Assert.Equal(0, be.OpenReadTransactions);
    }

    [Fact]
    public void KvStoreReportsOperationsPerTransactionAndCountsLiveKeys()
    {
        var metrics = new Recorder();
        var path = Path.Combine(_dir, "kv.db");
        using (var be = new BoltBackend(new BoltBackendOptions { Path = path, UnsafeNoFsync = true }))
        {
            using var kv = new KvStore(be, null, new KvStoreOptions { Metrics = metrics });
            kv.Put(new PutRequest { Key = ByteString.CopyFromUtf8("a"), Value = ByteString.CopyFromUtf8("12") });
            kv.Put(new PutRequest { Key = ByteString.CopyFromUtf8("b"), Value = ByteString.CopyFromUtf8("3") });
            kv.Put(new PutRequest { Key = ByteString.CopyFromUtf8("a"), Value = ByteString.CopyFromUtf8("4") });
            kv.Range(new RangeRequest { Key = ByteString.CopyFromUtf8("a") });
            kv.DeleteRange(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8("b") });
            var txn = new TxnRequest();
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8("c"), Value = ByteString.CopyFromUtf8("5") } });
            txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8("a") } });
            kv.Txn(txn);

            Assert.Equal(
                new (int, int, int, long)[] { (0, 1, 0, 3L), (0, 1, 0, 2L), (0, 1, 0, 2L), (1, 0, 0, 0L), (0, 0, 1, 0L), (0, 1, 1, 2L) },
                metrics.Txns.ToArray());
            Assert.Equal(1, kv.LiveKeys);
            kv.Compact(new CompactionRequest { Revision = kv.CurrentRevision });
            Assert.Single(metrics.IndexCompactions);
            Assert.Single(metrics.DbCompactions);
            Assert.True(metrics.DbCompactions.Single().Keys > 0, "the compaction removed no revision");
        }

        // A store reopened on the same file counts the live keys it finds.
        using var reopened = new BoltBackend(new BoltBackendOptions { Path = path, UnsafeNoFsync = true });
        using var again = new KvStore(reopened);
        Assert.Equal(1, again.LiveKeys);
    }

    [Fact]
    public async Task SnapshotterReportsSaves()
    {
        var metrics = new Recorder();
        var snapshotter = new Etcd.Storage.Snap.Snapshotter(_dir, metrics);
        snapshotter.SaveSnap(new Raftpb.Snapshot { Metadata = new Raftpb.SnapshotMetadata { Index = 5, Term = 1 }, Data = ByteString.CopyFromUtf8("state") });
        Assert.Single(metrics.SnapSaves);
        await snapshotter.SaveDBFromAsync(new MemoryStream([1, 2, 3]), 7);
        Assert.Single(metrics.DbSaves);
    }

    private sealed class Recorder : IWalMetrics, IBackendMetrics, IMvccMetrics, Etcd.Storage.Snap.ISnapMetrics
    {
        public ConcurrentQueue<TimeSpan> Fsyncs { get; } = new();

        public long WalBytes;

        public ConcurrentQueue<(TimeSpan Total, TimeSpan Write)> Commits { get; } = new();

        public ConcurrentQueue<bool> DefragStates { get; } = new();

        public ConcurrentQueue<TimeSpan> Defrags { get; } = new();

        public ConcurrentQueue<TimeSpan> Snapshots { get; } = new();

        public ConcurrentQueue<(int, int, int, long)> Txns { get; } = new();

        public ConcurrentQueue<TimeSpan> IndexCompactions { get; } = new();

        public ConcurrentQueue<(TimeSpan Total, long Keys)> DbCompactions { get; } = new();

        public ConcurrentQueue<TimeSpan> SnapSaves { get; } = new();

        public ConcurrentQueue<TimeSpan> DbSaves { get; } = new();

        public void FsyncObserved(TimeSpan elapsed) => Fsyncs.Enqueue(elapsed);

        public void BytesWritten(long bytes) => Interlocked.Add(ref WalBytes, bytes);

        public void CommitObserved(TimeSpan total, TimeSpan rebalance, TimeSpan spill, TimeSpan write) => Commits.Enqueue((total, write));

        public void DefragRunning(bool running) => DefragStates.Enqueue(running);

        public void DefragObserved(TimeSpan elapsed) => Defrags.Enqueue(elapsed);

        public void SnapshotObserved(TimeSpan elapsed) => Snapshots.Enqueue(elapsed);

        public void TxnEnded(int ranges, int puts, int deletes, long putBytes) => Txns.Enqueue((ranges, puts, deletes, putBytes));

        public void IndexCompactionObserved(TimeSpan pause) => IndexCompactions.Enqueue(pause);

        public void DbCompactionBatchObserved(TimeSpan pause)
        {
        }

        public void DbCompactionObserved(TimeSpan total, long keys) => DbCompactions.Enqueue((total, keys));

        public void HashByRevisionObserved(TimeSpan elapsed)
        {
        }

        public void SnapSaved(TimeSpan total, TimeSpan marshalling, TimeSpan fsync) => SnapSaves.Enqueue(total);

        public void DbSaved(TimeSpan total, TimeSpan fsync) => DbSaves.Enqueue(total);
    }
}
