using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text;
using Etcd.Storage.Bolt;
using Etcd.Storage.FileSystem;

namespace Etcd.Storage.Backend;

/// <summary>Selects pairs <see cref="BoltBackend.Hash"/> leaves out (etcd's <c>IgnoreKey</c> set).</summary>
/// <param name="bucket">The bucket name.</param>
/// <param name="key">The key.</param>
public delegate bool HashIgnore(string bucket, ReadOnlySpan<byte> key);

/// <summary>Settings of <see cref="BoltBackend"/> (etcd's <c>backend.BackendConfig</c>).</summary>
public sealed class BoltBackendOptions
{
    /// <summary>The database file, e.g. <c>member/snap/db</c>.</summary>
    public required string Path { get; init; }

    /// <summary>Longest time a batch stays uncommitted (etcd's default 100 ms).</summary>
    public TimeSpan BatchInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Writes (puts, deletes, bucket creations/deletions) after which <see cref="IBatchTx.Unlock"/> commits (etcd's default 10000).</summary>
    public int BatchLimit { get; init; } = 10000;

    /// <summary>Logical mmap size in bytes steering file growth as bbolt's InitialMmapSize (etcd's default 10 GiB).</summary>
    public long InitialMmapSize { get; init; } = 10L * 1024 * 1024 * 1024;

    /// <summary>Skip fdatasync (etcd's --unsafe-no-fsync).</summary>
    public bool UnsafeNoFsync { get; init; }
}

/// <summary>
/// etcd's durable backend (<c>mvcc/backend/backend.go</c>, <c>batch_tx.go</c>, <c>read_tx.go</c>,
/// <c>tx_buffer.go</c>) over a bbolt-format file (<see cref="BoltDb"/>): one long-lived bolt write
/// transaction holds the current batch and is committed every <see cref="BoltBackendOptions.BatchInterval"/>,
/// when <see cref="IBatchTx.Unlock"/> finds <see cref="BoltBackendOptions.BatchLimit"/> writes pending,
/// on <see cref="ForceCommit"/>, <see cref="Snapshot"/>, <see cref="Defrag()"/> and disposal.
/// </summary>
/// <remarks>
/// Reads: <see cref="ConcurrentReadTx"/> returns a view made of a bolt read transaction of the last
/// commit plus an immutable overlay of the writes unlocked since (etcd's txReadBuffer; here deletes and
/// bucket drops are buffered too), so a reader sees exactly what was unlocked, never a half batch, and
/// never blocks the writer or waits for it. Views are reference counted; the bolt read transaction of
/// an old commit closes when its last view is disposed.
/// Thread-safety: every public member is thread-safe; <see cref="BatchTx"/> follows the
/// <see cref="IBatchTx"/> lock contract.
/// </remarks>
public sealed class BoltBackend : IBackend
{
    private static readonly ConcurrentDictionary<string, byte[]> s_names = new();

    private readonly BoltBackendOptions _options;
    private readonly object _gate = new();
    private readonly object _defragGate = new();
    private List<DefragOp>? _defragLog;

    /// <summary>Most catch-up replays of a defrag outside the batch lock.</summary>
    private const int DefragCatchUpRounds = 8;

    /// <summary>Logged writes few enough to replay under the batch lock at the swap.</summary>
    private const int DefragFinalReplayOps = 2000;
    private readonly BatchTxImpl _batchTx;
    private readonly Thread _committer;
    private readonly ManualResetEventSlim _stop = new(false);
    private BoltDb _db;
    private Tx? _wtx;
    private readonly Dictionary<string, Bucket?> _wbuckets = new();
    private int _pending;
    private ImmutableDictionary<string, BucketOverlay> _overlay = ImmutableDictionary<string, BucketOverlay>.Empty;
    private volatile View _published;
    private long _size;
    private long _sizeInUse;
    private long _commits;
    private bool _disposed;
    private int _disposedFlag;
    private int _openReadTxs;
    private IBackendMetrics _metrics = NoBackendMetrics.Instance;

    /// <summary>Opens (creating when absent) the backend file and starts the batch committer thread.</summary>
    /// <exception cref="BoltException">The file is not a bbolt database, or is locked by another process (<c>timeout</c>).</exception>
    public BoltBackend(BoltBackendOptions options)
    {
        _options = options;
        _db = OpenDb(options.Path);
        _published = new View(new ReadTxHolder(_db.Begin(false)), _overlay);
        _wtx = _db.Begin(true);
        UpdateSizes();
        _batchTx = new BatchTxImpl(this);
        _committer = new Thread(CommitLoop) { IsBackground = true, Name = "etcd-backend-commit" };
        _committer.Start();
    }

    private BoltDb OpenDb(string path) => BoltDb.Open(path, new BoltOptions
    {
        InitialMmapSize = _options.InitialMmapSize,
        NoSync = _options.UnsafeNoFsync,
    });

    /// <inheritdoc />
    public IBatchTx BatchTx => _batchTx;

    /// <summary>
    /// Where commit, defrag and snapshot latencies are reported (etcd's <c>mvcc/backend/metrics.go</c>); set by the
    /// member once after opening. Defaults to <see cref="NoBackendMetrics"/>.
    /// </summary>
    public IBackendMetrics Metrics
    {
        get => _metrics;
        set => _metrics = value ?? NoBackendMetrics.Instance;
    }

    /// <summary>Read transactions handed out by <see cref="ConcurrentReadTx"/> and not yet disposed (bbolt's OpenTxN as etcd reports it).</summary>
    public int OpenReadTransactions => Volatile.Read(ref _openReadTxs);

    /// <summary>The file path.</summary>
    public string Path => _options.Path;

    /// <summary>Bolt commits made so far (tests and metrics).</summary>
    public long CommitCount => Interlocked.Read(ref _commits);

    /// <summary>
    /// Bytes of the database as etcd reports them (<c>backend.Size</c>, Status.dbSize,
    /// etcd_mvcc_db_total_size_in_bytes): bbolt's <c>tx.Size()</c>, the high-water page id times the
    /// page size, updated at each commit. The file itself may be larger (bbolt grows it ahead).
    /// </summary>
    public long Size => Interlocked.Read(ref _size);

    /// <summary>The database file's length in bytes.</summary>
    public long FileSize => _db.FileSize;

    /// <summary><see cref="Size"/> minus the bytes of the freelist's reusable pages after the last commit (etcd's <c>SizeInUse</c>, Status.dbSizeInUse).</summary>
    public long SizeInUse => Interlocked.Read(ref _sizeInUse);

    /// <inheritdoc />
    /// <exception cref="ObjectDisposedException">The backend was disposed.</exception>
    public IReadTx ConcurrentReadTx()
    {
        while (true)
        {
            var v = _published;
            if (v.Holder.TryAcquire())
            {
                Interlocked.Increment(ref _openReadTxs);
                return new ReadTxImpl(v, this);
            }

            // The view was retired by a commit or defrag (a newer one is published) or by disposal.
            if (Volatile.Read(ref _disposedFlag) != 0)
            {
                throw new ObjectDisposedException(nameof(BoltBackend));
            }
        }
    }

    /// <inheritdoc />
    public void ForceCommit()
    {
        lock (_gate)
        {
            CommitLocked(force: false);
        }
    }

    /// <summary>
    /// Commits the pending batch, then writes a consistent copy of the whole database to
    /// <paramref name="destination"/> (bbolt's tx.WriteTo: etcd's <c>backend.Snapshot</c>). Writers go on
    /// meanwhile. Returns the bytes written.
    /// </summary>
    public long Snapshot(Stream destination)
    {
        using var snapshot = CreateSnapshot();
        return snapshot.WriteTo(destination);
    }

    /// <summary>
    /// Commits the pending batch and pins a consistent image of the database (etcd's <c>backend.Snapshot()</c>):
    /// its <see cref="BoltSnapshot.Size"/> is known before it is written (Maintenance.Snapshot sends it as
    /// remaining_bytes). Writers go on meanwhile; dispose the handle when done.
    /// </summary>
    public BoltSnapshot CreateSnapshot()
    {
        ForceCommit();
        return new BoltSnapshot((ReadTxImpl)ConcurrentReadTx(), _metrics);
    }

    /// <summary>
    /// etcd's <c>backend.Hash</c> (behind Maintenance.Hash): commits the batch, then runs CRC-32C
    /// (Castagnoli) over every top-level bucket name followed by each of its keys and values in key
    /// order, skipping pairs <paramref name="ignore"/> selects. Pass <see cref="EtcdDefaultHashIgnore"/>
    /// for etcd's DefaultIgnores (meta/consistent_index).
    /// </summary>
    public uint Hash(HashIgnore? ignore)
    {
        ForceCommit();
        using var r = (ReadTxImpl)ConcurrentReadTx();
        var tx = r.View.Holder.Tx;
        uint crc = 0;
        foreach (var name in tx.BucketNames())
        {
            crc = Wal.Crc32C.Update(crc, name);
            string bucketName = Encoding.UTF8.GetString(name);
            var c = tx.Bucket(name)!.Cursor();
            for (bool ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
            {
                if (ignore != null && ignore(bucketName, k))
                {
                    continue;
                }

                crc = Wal.Crc32C.Update(crc, k);
                crc = Wal.Crc32C.Update(crc, v);
            }
        }

        return crc;
    }

    /// <summary>etcd's mvcc DefaultIgnores for <see cref="Hash"/>: the <c>meta</c> bucket's <c>consistent_index</c>.</summary>
    public static bool EtcdDefaultHashIgnore(string bucket, ReadOnlySpan<byte> key)
        => bucket == "meta" && key.SequenceEqual("consistent_index"u8);

    /// <summary>
    /// Defragments (etcd's <c>backend.defrag</c>) without stopping the member: commits, then copies every bucket
    /// of the last commit into <c>db.tmp.*</c> beside the file with <see cref="BoltCompact"/> while reads AND
    /// writes go on against the old file (every batch write made meanwhile is also logged); then, under the
    /// batch lock, commits the old file, replays the logged writes into the copy, fsyncs it, renames it over the
    /// file and reopens. Only that last step stalls writers (etcd blocks them for the whole copy, etcd#9222);
    /// readers never wait: they read the old file's last commit until the swap. One defrag at a time.
    /// </summary>
    public void Defrag() => Defrag(out _);

    /// <summary><see cref="Defrag()"/>, also reporting how long writers were held at the swap (replay, fsync, rename, reopen).</summary>
    public void Defrag(out TimeSpan swapStall)
    {
        lock (_defragGate)
        {
            var defragStart = System.Diagnostics.Stopwatch.GetTimestamp();
            _metrics.DefragRunning(true);
            try
            {
                DefragLocked(out swapStall);
            }
            finally
            {
                _metrics.DefragRunning(false);
            }

            _metrics.DefragObserved(System.Diagnostics.Stopwatch.GetElapsedTime(defragStart));
        }
    }

    private void DefragLocked(out TimeSpan swapStall)
    {
        BoltDb src;
        lock (_gate)
        {
            EnsureNotDisposed();
            CommitLocked(force: false);
            _defragLog = [];
            src = _db;
        }

        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        var tmp = System.IO.Path.Combine(dir, "db.tmp." + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            // Reads the newest commit at its start; writes logged since before it are replayed idempotently.
            BoltCompact.Compact(src, tmp);

            // Catch up outside the lock while writes keep coming (a few rounds), so that the final replay
            // under the lock is short.
            for (var round = 0; round < DefragCatchUpRounds; round++)
            {
                List<DefragOp> pending;
                lock (_gate)
                {
                    if (_defragLog!.Count <= DefragFinalReplayOps)
                    {
                        break;
                    }

                    pending = _defragLog;
                    _defragLog = [];
                }

                ReplayDefragLog(tmp, src.PageSize, pending, sync: false);
            }

            lock (_gate)
            {
                var stallStart = System.Diagnostics.Stopwatch.GetTimestamp();
                EnsureNotDisposed();
                CommitLocked(force: false);
                ReplayDefragLog(tmp, src.PageSize, _defragLog!, sync: true);
                _defragLog = null;
                _wtx!.Rollback();
                _wtx = null;
                _wbuckets.Clear();
                try
                {
                    File.Move(tmp, Path, overwrite: true);
                    NativeFile.FsyncDir(dir);
                }
                catch
                {
                    _wtx = _db.Begin(true);
                    throw;
                }

                var old = _db;
                var oldView = _published;
                _db = OpenDb(Path);
                _published = new View(new ReadTxHolder(_db.Begin(false)), _overlay);
                oldView.Holder.Release();
                old.Dispose();
                _wtx = _db.Begin(true);
                UpdateSizes();
                swapStall = System.Diagnostics.Stopwatch.GetElapsedTime(stallStart);
            }
        }
        catch
        {
            lock (_gate)
            {
                _defragLog = null;
            }

            File.Delete(tmp);
            throw;
        }
    }

    /// <summary>Applies writes logged during a defrag copy to the copy, in order (optionally syncing it).</summary>
    private void ReplayDefragLog(string path, int pageSize, List<DefragOp> ops, bool sync)
    {
        using var dst = BoltDb.Open(path, new BoltOptions { PageSize = pageSize, NoSync = !sync || _options.UnsafeNoFsync });
        using (var tx = dst.Begin(true))
        {
            foreach (var op in ops)
            {
                var name = Name(op.Bucket);
                switch (op.Kind)
                {
                    case DefragOpKind.CreateBucket:
                        tx.CreateBucketIfNotExists(name);
                        break;
                    case DefragOpKind.DeleteBucket:
                        if (tx.Bucket(name) != null)
                        {
                            tx.DeleteBucket(name);
                        }

                        break;
                    case DefragOpKind.Put:
                        tx.Bucket(name)!.Put(op.Key, op.Value);
                        break;
                    case DefragOpKind.Delete:
                        tx.Bucket(name)?.Delete(op.Key);
                        break;
                }
            }

            tx.Commit();
        }

        if (sync)
        {
            dst.Sync();
        }
    }

    /// <summary>
    /// Replaces the database with the bbolt file at <paramref name="sourcePath"/> (a db received with a raft
    /// snapshot, etcd's <c>&lt;index&gt;.snap.db</c>): drops the pending batch, renames the file over
    /// <see cref="Path"/> (fsyncing the directory) and reopens, as etcd's <c>openSnapshotBackend</c> +
    /// <c>recoverBackendSnapshot</c> do. Open read views keep reading the old file until disposed. The caller
    /// must hold no batch lock and must rebuild whatever it cached from the old contents.
    /// </summary>
    /// <exception cref="BoltException">The file is not a bbolt database (the old one is then reopened).</exception>
    public void ReplaceDatabase(string sourcePath)
    {
        ArgumentNullException.ThrowIfNull(sourcePath);
        lock (_defragGate)
        lock (_gate)
        {
            EnsureNotDisposed();
            _wtx!.Rollback();
            _wtx = null;
            _wbuckets.Clear();
            _pending = 0;
            _overlay = ImmutableDictionary<string, BucketOverlay>.Empty;
            var old = _db;
            var oldView = _published;
            try
            {
                // Validate before the swap: a bad file must not replace a good database.
                BoltDb.Open(sourcePath, new BoltOptions { ReadOnly = true }).Dispose();
            }
            catch
            {
                _wtx = _db.Begin(true);
                throw;
            }

            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
            oldView.Holder.Release();
            old.Dispose();
            File.Move(sourcePath, Path, overwrite: true);
            NativeFile.FsyncDir(dir);
            _db = OpenDb(Path);
            _published = new View(new ReadTxHolder(_db.Begin(false)), _overlay);
            _wtx = _db.Begin(true);
            UpdateSizes();
        }
    }

    /// <summary>Commits what is pending, stops the committer and closes the file.</summary>
    public void Dispose()
    {
        _stop.Set();
        if (_committer.IsAlive && Thread.CurrentThread != _committer)
        {
            _committer.Join();
        }

        lock (_defragGate)
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            CommitLocked(force: false);
            _disposed = true;
            Volatile.Write(ref _disposedFlag, 1);
            _wtx?.Rollback();
            _wtx = null;
            _published.Holder.Release();
            _db.Dispose();
        }
    }

    private void CommitLoop()
    {
        while (!_stop.Wait(_options.BatchInterval))
        {
            lock (_gate)
            {
                if (!_disposed && _pending > 0)
                {
                    CommitLocked(force: false);
                }
            }
        }
    }

    private void EnsureNotDisposed()
    {
        if (_disposed)
        {
            throw new ObjectDisposedException(nameof(BoltBackend));
        }
    }

    /// <summary>Commits the bolt write transaction (when anything is pending) and publishes a fresh read view.</summary>
    private void CommitLocked(bool force)
    {
        if (_disposed || _wtx == null || (_pending == 0 && !force))
        {
            return;
        }

        BackendFailpoints.BeforeTxCommit(_wtx);
        var commitStart = System.Diagnostics.Stopwatch.GetTimestamp();
        _wtx.Commit();
        var stats = _wtx.Stats;
        _metrics.CommitObserved(System.Diagnostics.Stopwatch.GetElapsedTime(commitStart), stats.RebalanceTime, stats.SpillTime, stats.WriteTime);
        BackendFailpoints.Hit(BackendFailpoints.AfterCommit);
        _wtx.Dispose();
        _wbuckets.Clear();
        _wtx = null;
        _pending = 0;
        Interlocked.Increment(ref _commits);

        // Publish the new commit first and drop the old view, so that the next write transaction can
        // reuse the pages this commit freed once no reader of an older commit remains.
        var oldView = _published;
        _overlay = ImmutableDictionary<string, BucketOverlay>.Empty;
        _published = new View(new ReadTxHolder(_db.Begin(false)), _overlay);
        oldView.Holder.Release();
        _wtx = _db.Begin(true);
        UpdateSizes();
    }

    private void UpdateSizes()
    {
        // etcd's backend.begin: size = tx.Size() (high-water page id x page size), in use = size - free pages.
        long size = _wtx?.Size ?? _published.Holder.Tx.Size;
        var st = _db.Stats();
        Interlocked.Exchange(ref _size, size);
        Interlocked.Exchange(ref _sizeInUse, size - ((long)st.FreePageN * st.PageSize));
    }

    private static byte[] Name(string bucket) => s_names.GetOrAdd(bucket, static b => Encoding.UTF8.GetBytes(b));

    private Bucket? WriteBucket(string name)
    {
        if (!_wbuckets.TryGetValue(name, out var b))
        {
            b = _wtx!.Bucket(Name(name));
            if (b != null && name == "key")
            {
                // etcd appends revision keys with UnsafeSeqPut, which fills pages to 90%.
                b.FillPercent = 0.9;
            }

            _wbuckets[name] = b;
        }

        return b;
    }

    /// <summary>A write of the current batch that readers must see before it is committed.</summary>
    private sealed class OvEntry(byte[] key, byte[]? value)
    {
        public byte[] Key { get; } = key;

        /// <summary>Null marks a deleted key.</summary>
        public byte[]? Value { get; } = value;
    }

    private sealed class OvComparer : IComparer<OvEntry>
    {
        public static readonly OvComparer Instance = new();

        public int Compare(OvEntry? x, OvEntry? y) => x!.Key.AsSpan().SequenceCompareTo(y!.Key);
    }

    /// <summary>Changes to one bucket since the last commit. <c>Reset</c>: ignore the committed contents.</summary>
    private sealed record BucketOverlay(bool Reset, bool Exists, ImmutableSortedSet<OvEntry> Changes)
    {
        public static readonly ImmutableSortedSet<OvEntry> Empty = ImmutableSortedSet<OvEntry>.Empty.WithComparer(OvComparer.Instance);

        /// <summary>Index of <paramref name="key"/> in the changes, or the complement of where it would go.</summary>
        public int Find(ReadOnlySpan<byte> key)
        {
            int lo = 0, hi = Changes.Count - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                int c = Changes[mid].Key.AsSpan().SequenceCompareTo(key);
                if (c == 0)
                {
                    return mid;
                }

                if (c < 0)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            return ~lo;
        }
    }

    /// <summary>A bolt read transaction shared by all views of one commit; closed when the last user releases it.</summary>
    private sealed class ReadTxHolder(Tx tx)
    {
        private int _refs = 1;

        public Tx Tx { get; } = tx;

        public ConcurrentDictionary<string, Bucket?> Buckets { get; } = new();

        public Bucket? Bucket(string name) => Buckets.GetOrAdd(name, static (n, t) => t.Bucket(Name(n)), Tx);

        public bool TryAcquire()
        {
            while (true)
            {
                int r = Volatile.Read(ref _refs);
                if (r == 0)
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref _refs, r + 1, r) == r)
                {
                    return true;
                }
            }
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _refs) == 0)
            {
                Tx.Dispose();
            }
        }
    }

    private sealed record View(ReadTxHolder Holder, ImmutableDictionary<string, BucketOverlay> Overlay);

    private enum DefragOpKind
    {
        CreateBucket,
        DeleteBucket,
        Put,
        Delete,
    }

    /// <summary>A batch write made while a defrag copy runs, replayed into the copy before the swap.</summary>
    private readonly record struct DefragOp(DefragOpKind Kind, string Bucket, byte[] Key, byte[] Value);

    /// <summary>
    /// A pinned consistent image of the database (etcd's <c>backend.Snapshot</c>). <see cref="WriteTo"/> may be
    /// called from any one thread; dispose it to let the backend reuse the pages it pins.
    /// </summary>
    public sealed class BoltSnapshot : IDisposable
    {
        private readonly IReadTx _rtx;
        private readonly Tx _tx;
        private readonly IBackendMetrics _metrics;
        private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
        private int _disposed;

        internal BoltSnapshot(IReadTx rtx, IBackendMetrics metrics)
        {
            _rtx = rtx;
            _tx = ((ReadTxImpl)rtx).View.Holder.Tx;
            _metrics = metrics;
        }

        /// <summary>Bytes <see cref="WriteTo"/> writes: bbolt's <c>tx.Size()</c> (high-water page id × page size).</summary>
        public long Size => _tx.Size;

        /// <summary>Writes the whole image (bbolt's <c>tx.WriteTo</c>); returns the bytes written.</summary>
        public long WriteTo(Stream destination) => _tx.WriteTo(destination);

        /// <summary>Releases the pinned image; the time since it was taken is reported as the snapshot's duration.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _metrics.SnapshotObserved(System.Diagnostics.Stopwatch.GetElapsedTime(_started));
                _rtx.Dispose();
            }
        }
    }

    private sealed class ReadTxImpl(View view, BoltBackend owner) : IReadTx
    {
        private int _disposed;

        public View View => view;

        public bool BucketExists(string bucket)
        {
            if (view.Overlay.TryGetValue(bucket, out var ov))
            {
                return ov.Exists;
            }

            return view.Holder.Bucket(bucket) != null;
        }

        public byte[]? Get(string bucket, ReadOnlySpan<byte> key)
        {
            if (view.Overlay.TryGetValue(bucket, out var ov))
            {
                if (!ov.Exists)
                {
                    return null;
                }

                int i = ov.Find(key);
                if (i >= 0)
                {
                    return ov.Changes[i].Value;
                }

                if (ov.Reset)
                {
                    return null;
                }
            }

            return view.Holder.Bucket(bucket)?.Get(key);
        }

        public void Range(string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor)
            => MergedRange(view, bucket, start, end, visitor);

        public void ForEach(string bucket, BucketVisitor visitor) => MergedRange(view, bucket, default, default, visitor);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref owner._openReadTxs);
                view.Holder.Release();
            }
        }
    }

    /// <summary>Range over committed pairs merged with the overlay (overlay wins; tombstones hide).</summary>
    private static void MergedRange(View view, string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor)
    {
        view.Overlay.TryGetValue(bucket, out var ov);
        if (ov != null && !ov.Exists)
        {
            return;
        }

        var baseBucket = ov is { Reset: true } ? null : view.Holder.Bucket(bucket);
        Cursor? c = baseBucket?.Cursor();
        ReadOnlySpan<byte> bk = default, bv = default;
        bool haveBase = false;
        if (c != null)
        {
            haveBase = start.IsEmpty ? c.First(out bk, out bv) : c.Seek(start, out bk, out bv);
            while (haveBase && c.IsBucket)
            {
                haveBase = c.Next(out bk, out bv);
            }
        }

        int oi = 0, on = ov?.Changes.Count ?? 0;
        if (ov != null && !start.IsEmpty)
        {
            oi = ov.Find(start);
            if (oi < 0)
            {
                oi = ~oi;
            }
        }

        while (true)
        {
            OvEntry? oe = oi < on ? ov!.Changes[oi] : null;
            if (!haveBase && oe == null)
            {
                return;
            }

            int cmp = !haveBase ? 1 : oe == null ? -1 : bk.SequenceCompareTo(oe.Key);
            if (cmp < 0)
            {
                if (!end.IsEmpty && bk.SequenceCompareTo(end) >= 0)
                {
                    return;
                }

                if (!visitor(bk, bv))
                {
                    return;
                }

                do
                {
                    haveBase = c!.Next(out bk, out bv);
                }
                while (haveBase && c.IsBucket);
                continue;
            }

            if (!end.IsEmpty && oe!.Key.AsSpan().SequenceCompareTo(end) >= 0)
            {
                return;
            }

            if (cmp == 0)
            {
                do
                {
                    haveBase = c!.Next(out bk, out bv);
                }
                while (haveBase && c.IsBucket);
            }

            oi++;
            if (oe!.Value != null && !visitor(oe.Key, oe.Value))
            {
                return;
            }
        }
    }

    private sealed class BatchTxImpl(BoltBackend owner) : IBatchTx
    {
        public void Lock()
        {
            Monitor.Enter(owner._gate);
            if (owner._disposed)
            {
                Monitor.Exit(owner._gate);
                throw new ObjectDisposedException(nameof(BoltBackend));
            }
        }

        public void Unlock()
        {
            EnsureLocked();
            try
            {
                // Publish this batch's writes to new readers (etcd's writeback of the tx buffer).
                var cur = owner._published;
                if (!ReferenceEquals(cur.Overlay, owner._overlay))
                {
                    owner._published = cur with { Overlay = owner._overlay };
                }

                if (owner._pending >= owner._options.BatchLimit)
                {
                    owner.CommitLocked(force: false);
                }
            }
            finally
            {
                Monitor.Exit(owner._gate);
            }
        }

        public bool BucketExists(string bucket)
        {
            EnsureLocked();
            return owner.WriteBucket(bucket) != null;
        }

        public byte[]? Get(string bucket, ReadOnlySpan<byte> key)
        {
            EnsureLocked();
            return owner.WriteBucket(bucket)?.Get(key);
        }

        public void Range(string bucket, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, BucketVisitor visitor)
        {
            EnsureLocked();
            var b = owner.WriteBucket(bucket);
            if (b == null)
            {
                return;
            }

            var c = b.Cursor();
            for (bool ok = start.IsEmpty ? c.First(out var k, out var v) : c.Seek(start, out k, out v); ok; ok = c.Next(out k, out v))
            {
                if (!end.IsEmpty && k.SequenceCompareTo(end) >= 0)
                {
                    return;
                }

                if (!c.IsBucket && !visitor(k, v))
                {
                    return;
                }
            }
        }

        public void ForEach(string bucket, BucketVisitor visitor) => Range(bucket, default, default, visitor);

        public void CreateBucket(string name)
        {
            EnsureLocked();
            if (owner.WriteBucket(name) != null)
            {
                return;
            }

            owner._wbuckets[name] = owner._wtx!.CreateBucket(Name(name));
            owner._defragLog?.Add(new DefragOp(DefragOpKind.CreateBucket, name, [], []));
            owner._overlay = owner._overlay.SetItem(name, new BucketOverlay(true, true, BucketOverlay.Empty));
            owner._pending++;
        }

        public void DeleteBucket(string name)
        {
            EnsureLocked();
            if (owner.WriteBucket(name) == null)
            {
                return;
            }

            owner._wtx!.DeleteBucket(Name(name));
            owner._defragLog?.Add(new DefragOp(DefragOpKind.DeleteBucket, name, [], []));
            owner._wbuckets[name] = null;
            owner._overlay = owner._overlay.SetItem(name, new BucketOverlay(true, false, BucketOverlay.Empty));
            owner._pending++;
        }

        public void Put(string bucket, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            var b = BucketForWrite(bucket);
            if (key.IsEmpty)
            {
                b.Put(key, value); // bbolt's "key required"
            }

            // One copy of each array, shared by the bolt node and the read overlay (both treat them as immutable).
            var k = key.ToArray();
            var v = value.ToArray();
            b.PutOwned(k, v);
            owner._defragLog?.Add(new DefragOp(DefragOpKind.Put, bucket, k, v));
            Record(bucket, new OvEntry(k, v));
        }

        public void Delete(string bucket, ReadOnlySpan<byte> key)
        {
            var b = BucketForWrite(bucket);
            b.Delete(key);
            var dk = key.ToArray();
            owner._defragLog?.Add(new DefragOp(DefragOpKind.Delete, bucket, dk, []));
            Record(bucket, new OvEntry(dk, null));
        }

        private void Record(string bucket, OvEntry e)
        {
            var ov = owner._overlay.TryGetValue(bucket, out var cur) ? cur : new BucketOverlay(false, true, BucketOverlay.Empty);
            var set = ov.Changes;
            if (set.TryGetValue(e, out var old))
            {
                set = set.Remove(old);
            }

            owner._overlay = owner._overlay.SetItem(bucket, ov with { Changes = set.Add(e) });
            owner._pending++;
        }

        private Bucket BucketForWrite(string bucket)
        {
            EnsureLocked();
            return owner.WriteBucket(bucket) ?? throw new InvalidOperationException($"backend: bucket {bucket} does not exist");
        }

        private void EnsureLocked()
        {
            if (!Monitor.IsEntered(owner._gate))
            {
                throw new InvalidOperationException("backend: the batch transaction is used without holding its lock");
            }
        }
    }
}
