using System.Buffers.Binary;
using System.Numerics;
using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Storage.Mvcc;

public sealed partial class KvStore
{
    /// <summary>
    /// Compacts the history at <c>revision</c> (etcd's <c>store.Compact</c> + <c>applierV3backend.Compaction</c>):
    /// records <c>meta/scheduledCompactRev</c>, drops from the key index every revision not needed to read
    /// at or after <c>revision</c>, then removes those revisions from the backend in batches of
    /// <see cref="KvStoreOptions.CompactionBatchLimit"/> and records <c>meta/finishedCompactRev</c>.
    /// Returns after the physical removal (so <c>physical</c> is always honoured).
    /// <c>Header.Revision</c> is the current revision. Serialised with writes; reads continue during the
    /// physical phase.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.Compacted"/> when <c>revision</c> ≤ the compacted
    /// revision; <see cref="EtcdErrors.FutureRev"/> when it is after the current revision.</exception>
    public CompactionResponse Compact(CompactionRequest r)
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

            PhysicalCompact(rev, keep);
            return new CompactionResponse { Header = new ResponseHeader { Revision = CurrentRevision } };
        }
    }

    /// <summary>Removes from the key bucket every revision ≤ <paramref name="compactRev"/> not in <paramref name="keep"/> (etcd's scheduleCompaction).</summary>
    private void PhysicalCompact(long compactRev, HashSet<Revision> keep)
    {
        var end = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(end, compactRev + 1);
        var last = new byte[Revision.BytesLength];
        var limit = _options.CompactionBatchLimit;
        var tx = _backend.BatchTx;
        var totalStart = System.Diagnostics.Stopwatch.GetTimestamp();
        long removed = 0;
        while (true)
        {
            var batch = new List<byte[]>(Math.Min(limit, 1024));
            var batchStart = System.Diagnostics.Stopwatch.GetTimestamp();
            tx.Lock();
            try
            {
                tx.Range(MvccSchema.KeyBucket, last, end, (k, _) =>
                {
                    batch.Add(k.ToArray());
                    return batch.Count < limit;
                });
                foreach (var k in batch)
                {
                    if (!keep.Contains(Revision.FromBytes(k)))
                    {
                        tx.Delete(MvccSchema.KeyBucket, k);
                        removed++;
                    }
                }

                if (batch.Count < limit)
                {
                    tx.Put(MvccSchema.MetaBucket, MvccSchema.FinishedCompactKey, new Revision(compactRev, 0).ToBytes());
                }
                else
                {
                    var lastRev = Revision.FromBytes(batch[^1]);
                    new Revision(lastRev.Main, lastRev.Sub + 1).WriteTo(last);
                }
            }
            finally
            {
                tx.Unlock();
            }

            _backend.ForceCommit();
            _options.Metrics?.DbCompactionBatchObserved(System.Diagnostics.Stopwatch.GetElapsedTime(batchStart));
            if (batch.Count < limit)
            {
                _options.Metrics?.DbCompactionObserved(System.Diagnostics.Stopwatch.GetElapsedTime(totalStart), removed);
                return;
            }
        }
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
