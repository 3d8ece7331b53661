using System.Runtime.InteropServices;
using Etcd.Storage.FileSystem;

namespace Etcd.Storage.Bolt;

/// <summary>Database-wide counters (bbolt's <c>Stats</c>, the subset etcd reads).</summary>
/// <param name="FreePageN">Pages on the freelist that can be reused now.</param>
/// <param name="PendingPageN">Pages freed by recent write transactions, held while readers may see them.</param>
/// <param name="FreeAlloc">Bytes of free and pending pages.</param>
/// <param name="FreelistInuse">Bytes the freelist page needs.</param>
/// <param name="TxN">Read transactions started so far.</param>
/// <param name="OpenTxN">Read transactions open now.</param>
/// <param name="PageSize">The page size in bytes.</param>
public readonly record struct BoltStats(int FreePageN, int PendingPageN, long FreeAlloc, int FreelistInuse, long TxN, int OpenTxN, int PageSize);

/// <summary>
/// A database file in bbolt 1.3.x's format (the format of etcd's <c>member/snap/db</c>): two meta pages
/// (magic 0xED0CDAED, version 2, FNV-1a 64 checksum) alternated by txid, a freelist page, and a
/// copy-on-write B+tree of buckets. Reads go through a read-only memory mapping of the file; writes
/// use positioned writes followed by fdatasync, then the meta page and a second fdatasync.
/// </summary>
/// <remarks>
/// Concurrency: one write transaction at a time (<see cref="Begin"/>(true) blocks while another is open);
/// any number of read transactions concurrently with it, each seeing the commit that was current when
/// it began. Pages freed by a commit are reused only once no reader older than that commit remains.
/// Growth remaps the file without waiting for readers: each transaction keeps the mapping it began with.
/// The file is locked with flock (exclusive, shared when read-only) as bbolt does, so etcd and we never
/// open one file at the same time.
/// </remarks>
public sealed partial class BoltDb : IDisposable
{
    private const long MaxMmapStep = 1L << 30;
    private const long MaxMapSize = 0xFFFFFFFFFFFFL;

    private readonly object _metaLock = new();
    private readonly SemaphoreSlim _writerLock = new(1, 1);
    private readonly Dictionary<ulong, int> _readers = new();
    private readonly FileStream _file;
    private Mapping _mapping;
    private BoltMeta _meta;
    private long _datasz;
    private long _filesz;
    private long _txN;
    private int _openTxN;
    private BoltStats _stats;
    private bool _disposed;

    private BoltDb(string path, BoltOptions options, FileStream file)
    {
        Path = path;
        Options = options;
        _file = file;
        _mapping = null!;
    }

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>The options the database was opened with.</summary>
    public BoltOptions Options { get; }

    /// <summary>The page size of the file in bytes.</summary>
    public int PageSize { get; private set; }

    /// <summary>Whether the database was opened read-only.</summary>
    public bool ReadOnly => Options.ReadOnly;

    /// <summary>The current file size in bytes.</summary>
    public long FileSize => Interlocked.Read(ref _filesz);

    /// <summary>Test hook run in every commit between the data-page sync and the meta write (failpoint).</summary>
    internal Action? BeforeMetaWrite { get; set; }

    internal Freelist Freelist { get; } = new();

    /// <summary>
    /// Opens (creating when absent and not read-only) the database file at <paramref name="path"/>.
    /// A new file gets pages 0-1 (meta, txid 0 and 1), 2 (empty freelist) and 3 (empty root leaf).
    /// </summary>
    /// <exception cref="BoltException"><c>invalid database</c>, <c>version mismatch</c>, <c>checksum error</c>
    /// (both meta pages bad), <c>timeout</c> (file locked by another process or handle).</exception>
    public static BoltDb Open(string path, BoltOptions? options = null)
    {
        options ??= BoltOptions.Default;
        var deadline = DateTime.UtcNow + options.Timeout;
        FileStream file;
        while (true)
        {
            try
            {
                // .NET itself takes a shared flock for FileShare.Read*; an exclusive holder makes it fail.
                file = new FileStream(
                    path,
                    options.ReadOnly ? FileMode.Open : FileMode.OpenOrCreate,
                    options.ReadOnly ? FileAccess.Read : FileAccess.ReadWrite,
                    FileShare.ReadWrite | FileShare.Delete,
                    1,
                    FileOptions.None);
                break;
            }
            catch (IOException e) when ((e.HResult == SharingViolationHResult || e.HResult == EWOULDBLOCK) && e is not FileNotFoundException)
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new BoltException(BoltException.Timeout, e);
                }

                Thread.Sleep(50);
            }
        }

        try
        {
            Flock(file, exclusive: !options.ReadOnly, options.Timeout);
            var db = new BoltDb(path, options, file);
            db.Load();
            return db;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void Load()
    {
        if (_file.Length == 0)
        {
            Init(Options.PageSize);
        }

        var head = new byte[0x1000];
        int n = RandomAccess.Read(_file.SafeFileHandle, head, 0);
        PageSize = 4096;
        if (n == head.Length && BoltMeta.Validate(head) == null)
        {
            PageSize = (int)BoltMeta.Read(head).PageSize;
        }

        _filesz = _file.Length;
        if (_filesz < PageSize * 2L)
        {
            throw new BoltException($"file size too small {_filesz}");
        }

        _mapping = Mapping.Create(_file);
        _datasz = MmapSize(Math.Max(_filesz, Options.InitialMmapSize));

        var p0 = _mapping.Page(0, PageSize);
        var p1 = _mapping.Page(1, PageSize);
        string? e0 = BoltMeta.Validate(p0), e1 = BoltMeta.Validate(p1);
        if (e0 != null && e1 != null)
        {
            throw new BoltException(e0);
        }

        var m0 = BoltMeta.Read(p0);
        var m1 = BoltMeta.Read(p1);
        _meta = e0 != null ? m1 : e1 != null ? m0 : (m1.Txid > m0.Txid ? m1 : m0);

        if (_meta.Freelist == BoltPage.NoFreelist)
        {
            RebuildFreelist();
        }
        else
        {
            Freelist.Read(_mapping.Page(_meta.Freelist, PageSize));
        }

        UpdateStats();
    }

    private void Init(int pageSize)
    {
        var buf = new byte[pageSize * 4];
        for (ulong i = 0; i < 2; i++)
        {
            var m = new BoltMeta
            {
                Magic = BoltPage.Magic,
                Version = BoltPage.Version,
                PageSize = (uint)pageSize,
                Freelist = 2,
                Root = 3,
                Pgid = 4,
                Txid = i,
            };
            m.WritePage(buf.AsSpan((int)i * pageSize, pageSize), i);
        }

        BoltPage.WriteHeader(buf.AsSpan(2 * pageSize), 2, BoltPage.FreelistFlag, 0, 0);
        BoltPage.WriteHeader(buf.AsSpan(3 * pageSize), 3, BoltPage.LeafFlag, 0, 0);
        RandomAccess.Write(_file.SafeFileHandle, buf, 0);
        Sync();
    }

    private void RebuildFreelist()
    {
        var tx = new Tx(this, _mapping, _meta, false);
        var reachable = tx.ReachablePages();
        var free = new List<ulong>();
        for (ulong i = 2; i < _meta.Pgid; i++)
        {
            if (!reachable.Contains(i))
            {
                free.Add(i);
            }
        }

        Freelist.ReloadIds(free);
    }

    /// <summary>bbolt's mmap sizing: powers of two from 32 KiB to 1 GiB, then 1 GiB steps.</summary>
    internal static long MmapSize(long size)
    {
        for (int i = 15; i <= 30; i++)
        {
            if (size <= 1L << i)
            {
                return 1L << i;
            }
        }

        if (size > MaxMapSize)
        {
            throw new BoltException("mmap too large");
        }

        long sz = size;
        long rem = sz % MaxMmapStep;
        if (rem > 0)
        {
            sz += MaxMmapStep - rem;
        }

        return Math.Min(sz, MaxMapSize);
    }

    /// <summary>
    /// Starts a transaction. A write transaction waits for the previous one to finish.
    /// </summary>
    /// <exception cref="BoltException"><c>database not open</c>; <c>database is in read-only mode</c> for a write transaction on a read-only db.</exception>
    public Tx Begin(bool writable)
    {
        if (writable)
        {
            if (ReadOnly)
            {
                throw new BoltException(BoltException.DatabaseReadOnly);
            }

            _writerLock.Wait();
            lock (_metaLock)
            {
                if (_disposed)
                {
                    _writerLock.Release();
                    throw new BoltException(BoltException.DatabaseNotOpen);
                }

                // Release pages freed by commits that no open reader can still see.
                ulong min = ulong.MaxValue;
                foreach (var t in _readers.Keys)
                {
                    min = Math.Min(min, t);
                }

                Freelist.ReleaseUpTo(min);
                UpdateStats();
                _mapping.Acquire();
                return new Tx(this, _mapping, _meta, true);
            }
        }

        lock (_metaLock)
        {
            if (_disposed)
            {
                throw new BoltException(BoltException.DatabaseNotOpen);
            }

            _mapping.Acquire();
            _readers[_meta.Txid] = _readers.GetValueOrDefault(_meta.Txid) + 1;
            _txN++;
            _openTxN++;
            return new Tx(this, _mapping, _meta, false);
        }
    }

    /// <summary>Runs <paramref name="fn"/> in a write transaction and commits it (rolls back if it throws).</summary>
    public void Update(Action<Tx> fn)
    {
        using var tx = Begin(true);
        fn(tx);
        tx.Commit();
    }

    /// <summary>Runs <paramref name="fn"/> in a read transaction.</summary>
    public T View<T>(Func<Tx, T> fn)
    {
        using var tx = Begin(false);
        return fn(tx);
    }

    /// <summary>Counters of the database; a consistent snapshot taken after the last commit.</summary>
    public BoltStats Stats()
    {
        lock (_metaLock)
        {
            return _stats with { TxN = _txN, OpenTxN = _openTxN };
        }
    }

    /// <summary>Forces an fdatasync of the file.</summary>
    public void Sync() => NativeFile.Fdatasync(_file.SafeFileHandle);

    internal void CloseTx(Tx tx, Mapping mapping)
    {
        if (tx.Writable)
        {
            UpdateStats();
            mapping.Release();
            _writerLock.Release();
            return;
        }

        lock (_metaLock)
        {
            ulong id = tx.Id;
            int c = _readers[id] - 1;
            if (c == 0)
            {
                _readers.Remove(id);
            }
            else
            {
                _readers[id] = c;
            }

            _openTxN--;
        }

        mapping.Release();
    }

    private void UpdateStats()
    {
        lock (_metaLock)
        {
            int free = Freelist.FreeCount, pending = Freelist.PendingCount;
            _stats = new BoltStats(free, pending, (long)(free + pending) * PageSize, Freelist.Size, 0, 0, PageSize);
        }
    }

    internal void NoteHighWater(long minsz)
    {
        if (minsz >= _datasz)
        {
            _datasz = MmapSize(Math.Max(minsz, _filesz));
        }
    }

    internal void Grow(long sz)
    {
        if (sz <= _filesz)
        {
            return;
        }

        sz = _datasz < Options.AllocSize ? Math.Max(_datasz, sz) : sz + Options.AllocSize;
        _file.SetLength(sz);
        if (!Options.NoSync)
        {
            NativeFile.Fsync(_file.SafeFileHandle);
        }

        Interlocked.Exchange(ref _filesz, sz);
    }

    internal void WritePages(Dictionary<ulong, byte[]> pages, TxStats stats)
    {
        var ids = pages.Keys.ToArray();
        Array.Sort(ids);
        foreach (var id in ids)
        {
            RandomAccess.Write(_file.SafeFileHandle, pages[id], (long)id * PageSize);
            stats.Write++;
        }

        if (!Options.NoSync)
        {
            Sync();
        }
    }

    internal void WriteMeta(ref BoltMeta meta)
    {
        var buf = new byte[PageSize];
        ulong id = meta.Txid % 2;
        meta.WritePage(buf, id);
        RandomAccess.Write(_file.SafeFileHandle, buf, (long)id * PageSize);
        if (!Options.NoSync)
        {
            Sync();
        }
    }

    /// <summary>After a commit: remap if the file grew, then publish the new meta to new transactions.</summary>
    internal void Published(BoltMeta meta)
    {
        Mapping? old = null;
        long len = _file.Length;
        if (len > _filesz)
        {
            Interlocked.Exchange(ref _filesz, len);
        }

        Mapping? fresh = len > _mapping.Length ? Mapping.Create(_file) : null;
        lock (_metaLock)
        {
            if (fresh != null)
            {
                old = _mapping;
                _mapping = fresh;
            }

            _meta = meta;
        }

        old?.Release();
        UpdateStats();
    }

    internal void RollbackFreelist(ulong txid)
    {
        Freelist.Rollback(txid);
        if (_meta.Freelist != BoltPage.NoFreelist)
        {
            Freelist.Reload(_mapping.Page(_meta.Freelist, PageSize));
        }
        else
        {
            RebuildFreelist();
        }
    }

    internal List<ulong> FreelistSnapshotForCheck(Tx tx)
    {
        if (tx.Writable)
        {
            return Freelist.All();
        }

        // A reader checks the freelist stored with its own snapshot.
        var m = tx.Meta;
        if (m.Freelist == BoltPage.NoFreelist)
        {
            var reach = tx.ReachablePages();
            var free = new List<ulong>();
            for (ulong i = 2; i < m.Pgid; i++)
            {
                if (!reach.Contains(i))
                {
                    free.Add(i);
                }
            }

            return free;
        }

        return Freelist.ReadIds(tx.PageSpan(new PageRef(m.Freelist, null)));
    }

    /// <summary>
    /// Closes the file. Transactions still open keep their mapping (and can finish reading); the
    /// write lock is taken first, so an open write transaction is waited for.
    /// </summary>
    public void Dispose()
    {
        _writerLock.Wait();
        try
        {
            lock (_metaLock)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
            }

            _mapping.Release();
            _file.Dispose();
        }
        finally
        {
            _writerLock.Release();
        }
    }

    private const int SharingViolationHResult = unchecked((int)0x80070020);
    private const int EWOULDBLOCK = 11;
    private const int LOCK_SH = 1;
    private const int LOCK_EX = 2;
    private const int LOCK_NB = 4;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int SysFlock(int fd, int operation);

    private static void Flock(FileStream file, bool exclusive, TimeSpan timeout)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var handle = file.SafeFileHandle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                if (SysFlock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
                {
                    return;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != 11)
                {
                    throw new IOException($"flock: errno {errno}");
                }

                if (DateTime.UtcNow >= deadline)
                {
                    throw new BoltException(BoltException.Timeout);
                }

                Thread.Sleep(50);
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}
