using System.Buffers.Binary;
using System.Numerics;
using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Storage.Mvcc;

public sealed partial class KvStore
{
    /// <summary>
    /// Compacts the history at <c>revision</c> and returns once the compacted revisions are gone from the
    /// backend: <see cref="ScheduleCompaction"/>, then a wait for its physical phase (so <c>physical</c> is always
    /// honoured). Offline tools and tests use it; the server schedules and waits only when the request asks.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.Compacted"/> when <c>revision</c> ≤ the compacted
    /// revision; <see cref="EtcdErrors.FutureRev"/> when it is after the current revision.</exception>
    public CompactionResponse Compact(CompactionRequest r)
    {
        var resp = ScheduleCompaction(r, out var physical);
        physical.GetAwaiter().GetResult();
        return resp;
    }

    /// <summary>
    /// etcd's <c>store.Compact</c> + <c>applierV3backend.Compaction</c>: records <c>meta/scheduledCompactRev</c>,
    /// drops from the key index every revision not needed to read at or after <c>revision</c>, and queues the
    /// removal of those revisions from the backend (etcd's <c>scheduleCompaction</c> on its FIFO scheduler).
    /// Returns after the logical phase; <paramref name="physical"/> completes when the removal is done (or was
    /// abandoned because the store was restored from another backend or disposed).
    /// </summary>
    /// <remarks>
    /// The removal runs on a background task in batches of at most <see cref="KvStoreOptions.CompactionBatchLimit"/>
    /// revisions; each batch holds the write gate only while it deletes and commits, then the task pauses for
    /// <see cref="KvStoreOptions.CompactionBatchPause"/> (etcd: 10 ms) so writes and reads go on between batches.
    /// Removals of successive compactions run one after another, in order. <c>Header.Revision</c> of the response
    /// is the current revision. Thread-safe; serialised with writes.
    /// </remarks>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.Compacted"/> when <c>revision</c> ≤ the compacted
    /// revision; <see cref="EtcdErrors.FutureRev"/> when it is after the current revision.</exception>
    public CompactionResponse ScheduleCompaction(CompactionRequest r, out Task physical)
    {
        ArgumentNullException.ThrowIfNull(r);
        var rev = r.Revision;
        lock (_writeGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            HashSet<Revision> keep;
            _rw.EnterWriteLock();
            try
            {
                if (rev <= _compactRev)
                {
                    throw EtcdErrors.Compacted.ToException();
                }

                if (rev > _currentRev)
                {
                    throw EtcdErrors.FutureRev.ToException();
                }

                Volatile.Write(ref _compactRev, rev);
                var tx = _backend.BatchTx;
                tx.Lock();
                try
                {
                    tx.Put(MvccSchema.MetaBucket, MvccSchema.ScheduledCompactKey, new Revision(rev, 0).ToBytes());
                }
                finally
                {
                    tx.Unlock();
                }

                _backend.ForceCommit();
                var indexStart = System.Diagnostics.Stopwatch.GetTimestamp();
                keep = _index.Compact(rev);
                _options.Metrics?.IndexCompactionObserved(System.Diagnostics.Stopwatch.GetElapsedTime(indexStart));
            }
            finally
            {
                _rw.ExitWriteLock();
            }

            physical = _physical = RunAfter(_physical, rev, keep, _generation);
            return new CompactionResponse { Header = new ResponseHeader { Revision = CurrentRevision } };
        }
    }

    /// <summary>The removal of one compaction, queued behind the previous one (etcd's FIFO scheduler).</summary>
    private async Task RunAfter(Task previous, long compactRev, HashSet<Revision> keep, int generation)
    {
        try
        {
            await previous.ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or IOException)
        {
            // The previous removal failed with the backend (closed under it); this one tries on its own.
        }

        await Task.Yield();
        var totalStart = System.Diagnostics.Stopwatch.GetTimestamp();
        long removed = 0;
        var batch = 0;
        byte[]? cursor = null;
        while (true)
        {
            bool done;
            int deleted;
            var batchStart = System.Diagnostics.Stopwatch.GetTimestamp();
            lock (_writeGate)
            {
                if (_disposed || generation != _generation)
                {
                    return;
                }

                (done, deleted, cursor) = CompactBatch(compactRev, keep, cursor);
            }

            _options.Metrics?.DbCompactionBatchObserved(System.Diagnostics.Stopwatch.GetElapsedTime(batchStart));
            removed += deleted;
            batch++;
            _options.CompactionBatchCommitted?.Invoke(new CompactionBatch(compactRev, batch, deleted, done));
            if (done)
            {
                _options.Metrics?.DbCompactionObserved(System.Diagnostics.Stopwatch.GetElapsedTime(totalStart), removed);
                return;
            }

            await Task.Delay(_options.CompactionBatchPause).ConfigureAwait(false);
        }
    }

    /// <summary>The removal queue's tail (guarded by the write gate).</summary>
    private Task _physical = Task.CompletedTask;

    /// <summary>Bumped when the backend is replaced: removals scheduled against the old one stop.</summary>
    private int _generation;

    /// <summary>Synchronous removal (start-up resumes a compaction scheduled before a restart, as etcd's restore does).</summary>
    private void PhysicalCompact(long compactRev, HashSet<Revision> keep)
    {
        byte[]? cursor = null;
        bool done;
        do
        {
            (done, _, cursor) = CompactBatch(compactRev, keep, cursor);
        }
        while (!done);
    }

    /// <summary>
    /// One batch of etcd's <c>scheduleCompaction</c>: deletes from the key bucket the revisions ≤ <paramref name="compactRev"/>
    /// not in <paramref name="keep"/> among the next <see cref="KvStoreOptions.CompactionBatchLimit"/> keys from
    /// <paramref name="from"/> (null = the start), commits, and records <c>meta/finishedCompactRev</c> in the last batch.
    /// Returns whether it was the last batch, how many revisions it deleted, and where the next batch starts.
    /// Caller holds the write gate (or owns the store exclusively).
    /// </summary>
    private (bool Done, int Deleted, byte[]? Next) CompactBatch(long compactRev, HashSet<Revision> keep, byte[]? from)
    {
        var end = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(end, compactRev + 1);
        var start = from ?? new byte[Revision.BytesLength];
        var limit = _options.CompactionBatchLimit;
        var tx = _backend.BatchTx;
        var batch = new List<byte[]>(Math.Min(limit, 1024));
        var deleted = 0;
        byte[]? next = null;
        tx.Lock();
        try
        {
            tx.Range(MvccSchema.KeyBucket, start, end, (k, _) =>
            {
                batch.Add(k.ToArray());
                return batch.Count < limit;
            });
            foreach (var k in batch)
            {
                if (!keep.Contains(Revision.FromBytes(k)))
                {
                    tx.Delete(MvccSchema.KeyBucket, k);
                    deleted++;
                }
            }

            if (batch.Count < limit)
            {
                tx.Put(MvccSchema.MetaBucket, MvccSchema.FinishedCompactKey, new Revision(compactRev, 0).ToBytes());
            }
            else
            {
                var lastRev = Revision.FromBytes(batch[^1]);
                next = new byte[Revision.BytesLength];
                new Revision(lastRev.Main, lastRev.Sub + 1).WriteTo(next);
            }
        }
        finally
        {
            tx.Unlock();
        }

        _backend.ForceCommit();
        return (batch.Count < limit, deleted, next);
    }

    /// <summary>
    /// etcd's <c>HashByRev</c> (the HashKV RPC): CRC-32C over the bucket name <c>key</c> and then, in key
    /// order, the key and value bytes of every stored revision up to <paramref name="revision"/>, skipping
    /// revisions at or below the compacted revision that a compaction at <paramref name="revision"/> would
    /// not keep. <paramref name="revision"/> 0 = the current revision. Thread-safe.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.Compacted"/> when 0 &lt; revision ≤ the compacted
    /// revision; <see cref="EtcdErrors.FutureRev"/> when revision is after the current revision.</exception>
    public KvHash HashByRevision(long revision)
    {
        var hashStart = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            return HashByRevisionCore(revision);
        }
        finally
        {
            _options.Metrics?.HashByRevisionObserved(System.Diagnostics.Stopwatch.GetElapsedTime(hashStart));
        }
    }

    private KvHash HashByRevisionCore(long revision)
    {
        long compactRev, currentRev;
        HashSet<Revision> keep;
        Backend.IReadTx rtx;
        _rw.EnterReadLock();
        try
        {
            compactRev = _compactRev;
            currentRev = _currentRev;
            if (revision > 0 && revision <= compactRev)
            {
                throw EtcdErrors.Compacted.ToException();
            }

            if (revision > currentRev)
            {
                throw EtcdErrors.FutureRev.ToException();
            }

            if (revision == 0)
            {
                revision = currentRev;
            }

            keep = _index.Keep(revision);
            rtx = _backend.ConcurrentReadTx();
        }
        finally
        {
            _rw.ExitReadLock();
        }

        using (rtx)
        {
            var upper = new Revision(revision + 1, 0);
            var lower = new Revision(compactRev + 1, 0);
            var crc = Crc32C.Update(Crc32C.Initial, "key"u8);
            rtx.ForEach(MvccSchema.KeyBucket, (k, v) =>
            {
                var kr = Revision.FromBytes(k);
                if (kr >= upper)
                {
                    return false;
                }

                if (kr < lower && keep.Count > 0 && !keep.Contains(kr))
                {
                    return true;
                }

                crc = Crc32C.Update(crc, k);
                crc = Crc32C.Update(crc, v);
                return true;
            });
            return new KvHash(Crc32C.Finish(crc), revision, compactRev, currentRev);
        }
    }
}

/// <summary>CRC-32C (Castagnoli) as Go's <c>hash/crc32</c> computes it, over <see cref="BitOperations.Crc32C(uint, byte)"/>.</summary>
internal static class Crc32C
{
    public const uint Initial = 0xFFFFFFFFu;

    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }

    public static uint Finish(uint crc) => ~crc;

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(Initial, data));
}
