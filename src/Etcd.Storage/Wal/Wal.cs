using System.Diagnostics;
using Etcd.Storage.FileSystem;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;
using Raftpb;

namespace Etcd.Storage.Wal;

/// <summary>
/// etcd's write-ahead log (wal/wal.go), byte-compatible with etcd 3.4: a directory of segment files named
/// <c>%016x-%016x.wal</c> (sequence, first raft index), each preallocated to <see cref="SegmentSizeBytes"/>,
/// holding 8-byte-aligned frames of walpb.Record whose CRC-32C is chained across records and segments.
/// </summary>
/// <remarks>
/// <para>Lifecycle, as etcd's: <see cref="Create"/> returns a WAL ready to append. <see cref="Open"/> returns
/// a WAL in read mode that holds locks on its segments; after <see cref="ReadAll()"/> it is ready to append.
/// <see cref="OpenForRead"/> takes no locks and can never append.</para>
/// <para>Durability: <see cref="Save"/> fdatasyncs when raft's MustSync rule holds (entries present, or the
/// term or vote changed); <see cref="SaveSnapshot"/> always syncs. Other records stay in an in-memory buffer
/// until the next sync, or are written (without sync) once more than 128 KiB are pending.</para>
/// <para>Concurrency: every public instance member takes one internal lock, so calls from several threads are
/// serialised; the raft loop is expected to be the only writer.</para>
/// </remarks>
public sealed class Wal : IDisposable
{
    private IWalMetrics _metrics = NoWalMetrics.Instance;

    /// <summary>
    /// Preallocated size of each segment, in bytes: 64 MB as etcd 3.4 defines it (64 * 1000 * 1000). A segment is
    /// cut once a Save leaves it at or above this size, so a segment can end up somewhat larger.
    /// </summary>
    public const long SegmentSizeBytes = 64L * 1000 * 1000;

    private readonly object _mu = new();
    private readonly string _dir;
    private readonly long _segmentSize;
    private readonly bool _write;
    private readonly List<LockedFile?> _locks = new();
    private List<SafeFileHandle>? _readHandles;
    private byte[] _metadata = Array.Empty<byte>();
    private ulong _stTerm;
    private ulong _stVote;
    private ulong _stCommit;
    private Walpb.Snapshot _start = new();
    private WalDecoder? _decoder;
    private WalEncoder? _encoder;
    private FilePipeline? _fp;
    private ulong _enti;
    private bool _disposed;

    private Wal(string dir, long segmentSize, bool write)
    {
        _dir = dir;
        _segmentSize = segmentSize;
        _write = write;
    }

    /// <summary>When true, syncs are skipped (etcd's --unsafe-no-fsync); records are still written to the files.</summary>
    public bool UnsafeNoFsync { get; set; }

    /// <summary>
    /// Where fsync latencies and written bytes are reported (etcd's <c>wal/metrics.go</c>); set by the member before
    /// it writes. Defaults to <see cref="NoWalMetrics"/>.
    /// </summary>
    public IWalMetrics Metrics
    {
        get => _metrics;
        set
        {
            _metrics = value ?? NoWalMetrics.Instance;
            if (_encoder is { } enc)
            {
                enc.Metrics = _metrics;
            }
        }
    }

    /// <summary>The WAL directory.</summary>
    public string Dir => _dir;

    /// <summary>True when <paramref name="dir"/> exists and holds at least one file ending in ".wal" (etcd's wal.Exist).</summary>
    public static bool Exist(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return false;
        }
        try
        {
            return Directory.EnumerateFiles(dir, "*.wal").Any();
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Creates a WAL in <paramref name="dir"/> ready for appending: the first segment
    /// <c>0000000000000000-0000000000000000.wal</c> holds a crc record, the metadata record and an empty
    /// snapshot record, synced. The directory is built as <c>dir.tmp</c> and renamed into place, then its parent
    /// is fsynced, so creation appears atomic. Matches etcd's wal.Create.
    /// </summary>
    /// <param name="dir">The WAL directory (etcd: member/wal). Parent directories are created.</param>
    /// <param name="metadata">Bytes recorded at the head of every segment (etcd: serialized Etcdserverpb.Metadata).</param>
    /// <exception cref="WalException">AlreadyExists ("file already exists") when <paramref name="dir"/> already holds .wal files.</exception>
    /// <exception cref="IOException">File-system failures.</exception>
    public static Wal Create(string dir, byte[] metadata) => CreateWithSegmentSize(dir, metadata, SegmentSizeBytes);

    internal static Wal CreateWithSegmentSize(string dir, byte[] metadata, long segmentSize)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (Exist(dir))
        {
            throw new WalException(WalErrorKind.AlreadyExists);
        }
        string clean = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        string tmp = clean + ".tmp";
        if (Directory.Exists(tmp))
        {
            Directory.Delete(tmp, recursive: true);
        }
        CreateDirAll(tmp);

        string name = WalNames.Format(0, 0);
        LockedFile f = LockedFile.Lock(Path.Combine(tmp, name), create: true);
        var w = new Wal(clean, segmentSize, write: true) { _metadata = metadata };
        w._locks.Add(f);
        try
        {
            NativeFile.Preallocate(f.Handle, segmentSize, extendFile: true);
            w._encoder = new WalEncoder(f.Handle, 0, 0);
            w._encoder.EncodeCrc();
            w._encoder.EncodeRaw(WalRecordType.Metadata, metadata, hasData: true);
            w.SaveSnapshot(new Walpb.Snapshot { Index = 0, Term = 0 });

            if (Directory.Exists(clean))
            {
                Directory.Delete(clean, recursive: true);
            }
            // Locks are held across the rename (fine on Linux): no window where another process could take them.
            Directory.Move(tmp, clean);
            f.SetPath(Path.Combine(clean, name));
            w._fp = new FilePipeline(clean, segmentSize);
            string? parent = Path.GetDirectoryName(clean);
            if (parent != null)
            {
                NativeFile.FsyncDir(parent);
            }
            return w;
        }
        catch
        {
            w.DisposeCore(sync: false);
            throw;
        }
    }

    /// <summary>
    /// Opens the WAL at <paramref name="snap"/> for appending: locks every segment from the one holding
    /// <c>snap.Index</c> onwards (throws <see cref="FileLockedException"/>, "fileutil: file already locked", when
    /// another open holds one). Call <see cref="ReadAll()"/> next; it reads from the snapshot record on and then
    /// makes the WAL appendable. A torn last record left by a crash is repaired during that ReadAll.
    /// </summary>
    /// <exception cref="WalException">FileNotFound when no segment covers <c>snap.Index</c> or the sequence has a gap.</exception>
    public static Wal Open(string dir, Walpb.Snapshot snap) => OpenAtIndex(dir, snap, write: true, SegmentSizeBytes);

    internal static Wal OpenWithSegmentSize(string dir, Walpb.Snapshot snap, long segmentSize) => OpenAtIndex(dir, snap, write: true, segmentSize);

    /// <summary>
    /// Opens the WAL at <paramref name="snap"/> for reading only: no locks, so it works beside a writer.
    /// <see cref="ReadAll()"/> tolerates a torn tail (reads up to it); appending is not possible.
    /// </summary>
    /// <exception cref="WalException">FileNotFound as for <see cref="Open"/>.</exception>
    public static Wal OpenForRead(string dir, Walpb.Snapshot snap) => OpenAtIndex(dir, snap, write: false, SegmentSizeBytes);

    private static Wal OpenAtIndex(string dir, Walpb.Snapshot snap, bool write, long segmentSize)
    {
        ArgumentNullException.ThrowIfNull(snap);
        string clean = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        List<string> names = WalNames.Read(clean);
        int nameIndex = WalNames.SearchIndex(names, snap.Index);
        if (nameIndex < 0 || !WalNames.IsValidSeq(names, nameIndex))
        {
            throw new WalException(WalErrorKind.FileNotFound);
        }

        var w = new Wal(clean, segmentSize, write) { _start = snap.Clone() };
        var handles = new List<SafeFileHandle>();
        try
        {
            for (int i = nameIndex; i < names.Count; i++)
            {
                string p = Path.Combine(clean, names[i]);
                if (write)
                {
                    LockedFile l = LockedFile.TryLock(p, create: false);
                    w._locks.Add(l);
                    handles.Add(l.Handle);
                }
                else
                {
                    w._readHandles ??= new List<SafeFileHandle>();
                    SafeFileHandle h = File.OpenHandle(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    w._readHandles.Add(h);
                    handles.Add(h);
                }
            }
            w._decoder = new WalDecoder(handles);
            if (write)
            {
                w._fp = new FilePipeline(clean, segmentSize);
            }
            return w;
        }
        catch
        {
            w.DisposeCore(sync: false);
            throw;
        }
    }

    /// <summary>
    /// Reads every record after the opening snapshot, checking CRCs, the crc chain between segments, that all
    /// metadata records agree, and that a snapshot record matches the opening snapshot. In append mode it must
    /// reach the end: a torn final record (short, or with a zeroed sector, in the last segment) is cut off as
    /// etcd's Repair does (the segment is first copied to <c>&lt;name&gt;.broken</c>), the rest of the segment is
    /// zeroed, and the WAL becomes ready to append. May be called once.
    /// </summary>
    /// <returns>Metadata, the last HardState (empty when none) and the entries after the snapshot index.</returns>
    /// <exception cref="WalException">
    /// CrcMismatch ("wal: crc mismatch" / "walpb: crc mismatch"), MetadataConflict, SnapshotMismatch,
    /// SnapshotNotFound, SliceOutOfRange, MaxEntrySizeLimitExceeded, UnexpectedRecordType, Corrupt, DecoderNotFound.
    /// </exception>
    public WalReadResult ReadAll() => ReadAll(requireSnapshot: true);

    /// <summary>
    /// <see cref="ReadAll()"/>, except that with <paramref name="requireSnapshot"/> false a missing snapshot record is
    /// reported through <see cref="WalReadResult.SnapshotFound"/> instead of thrown (etcd returns the records together
    /// with ErrSnapshotNotFound; etcdctl backup uses them).
    /// </summary>
    public WalReadResult ReadAll(bool requireSnapshot)
    {
        lock (_mu)
        {
            ThrowIfDisposed();
            WalDecoder decoder = _decoder ?? throw new WalException(WalErrorKind.DecoderNotFound);
            byte[]? metadata = null;
            var state = new HardState();
            var ents = new List<Entry>();
            bool match = false;

            DecodeStatus status;
            while ((status = decoder.Decode()) == DecodeStatus.Record)
            {
                switch (decoder.Type)
                {
                    case WalRecordType.Entry:
                    {
                        Entry e = Parse(Entry.Parser, decoder.Data);
                        if (e.Index > _start.Index)
                        {
                            ulong up = e.Index - _start.Index - 1;
                            if (up > (ulong)ents.Count)
                            {
                                throw new WalException(WalErrorKind.SliceOutOfRange);
                            }
                            if (up < (ulong)ents.Count)
                            {
                                ents.RemoveRange((int)up, ents.Count - (int)up);
                            }
                            ents.Add(e);
                        }
                        _enti = e.Index;
                        break;
                    }
                    case WalRecordType.State:
                        state = Parse(HardState.Parser, decoder.Data);
                        break;
                    case WalRecordType.Metadata:
                        if (metadata != null && !decoder.Data.SequenceEqual(metadata))
                        {
                            throw new WalException(WalErrorKind.MetadataConflict);
                        }
                        metadata ??= decoder.Data.ToArray();
                        break;
                    case WalRecordType.Crc:
                    {
                        uint crc = decoder.Crc;
                        // A fresh decoder starts at 0; there is nothing to compare against then.
                        if (crc != 0 && decoder.RecordCrc != crc)
                        {
                            throw new WalException(WalErrorKind.CrcMismatch);
                        }
                        decoder.UpdateCrc(decoder.RecordCrc);
                        break;
                    }
                    case WalRecordType.Snapshot:
                    {
                        Walpb.Snapshot snap = Parse(Walpb.Snapshot.Parser, decoder.Data);
                        if (snap.Index == _start.Index)
                        {
                            if (snap.Term != _start.Term)
                            {
                                throw new WalException(WalErrorKind.SnapshotMismatch);
                            }
                            match = true;
                        }
                        break;
                    }
                    default:
                        throw new WalException(WalErrorKind.UnexpectedRecordType, $"unexpected block type {decoder.Type}");
                }
            }

            if (_write)
            {
                LockedFile tail = _locks[^1]!;
                if (status == DecodeStatus.UnexpectedEof)
                {
                    if (!decoder.OnLastFile)
                    {
                        throw new WalException(WalErrorKind.Corrupt, "unexpected EOF");
                    }
                    RepairTail(tail, decoder.LastOffset);
                }
                // Whatever follows the last valid record was never synced: zero it so new writes cannot
                // meet stale non-zero bytes (etcd's ZeroToEnd).
                ZeroToEnd(tail.Handle, decoder.LastOffset);
            }

            if (!match && requireSnapshot)
            {
                throw new WalException(WalErrorKind.SnapshotNotFound);
            }

            if (_readHandles != null)
            {
                foreach (SafeFileHandle h in _readHandles)
                {
                    h.Dispose();
                }
                _readHandles = null;
            }
            _start = new Walpb.Snapshot();
            _metadata = metadata ?? Array.Empty<byte>();
            if (_write)
            {
                _encoder = new WalEncoder(_locks[^1]!.Handle, decoder.LastOffset, decoder.Crc);
            }
            _decoder = null;
            // As in etcd, the state read back is not taken as the "last saved" state: the first Save after a
            // restart always syncs, and a cut before any Save writes no state record.
            return new WalReadResult(_metadata, state, ents) { SnapshotFound = match };
        }
    }

    /// <summary>
    /// Appends <paramref name="entries"/> then <paramref name="state"/> (skipped when empty), as etcd's wal.Save.
    /// Syncs (one write plus one fdatasync) when entries are present or the term or vote changed; cuts to a new
    /// segment when the current one has reached the segment size. Does nothing when both are empty.
    /// </summary>
    /// <exception cref="InvalidOperationException">The WAL is not ready to append (opened for read, or ReadAll not done).</exception>
    /// <exception cref="IOException">Write or sync failure; the WAL must then be considered broken.</exception>
    public void Save(HardState state, IReadOnlyList<Entry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        lock (_mu)
        {
            WalEncoder enc = Writable();
            ulong term = state?.Term ?? 0, vote = state?.Vote ?? 0, commit = state?.Commit ?? 0;
            bool emptyState = term == 0 && vote == 0 && commit == 0;
            if (emptyState && entries.Count == 0)
            {
                return;
            }
            bool mustSync = entries.Count != 0 || vote != _stVote || term != _stTerm;
            for (int i = 0; i < entries.Count; i++)
            {
                Entry e = entries[i];
                enc.EncodeEntry(e);
                _enti = e.Index;
            }
            if (!emptyState)
            {
                SaveStateLocked(term, vote, commit);
            }
            if (enc.Offset < _segmentSize)
            {
                if (mustSync)
                {
                    SyncLocked();
                }
                else
                {
                    enc.FlushIfOverWatermark();
                }
                return;
            }
            Cut();
        }
    }

    /// <summary>
    /// Appends a snapshot marker record {index, term} and syncs (etcd's wal.SaveSnapshot). Raft entries up to the
    /// index may later be released with <see cref="ReleaseLockTo"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The WAL is not ready to append.</exception>
    public void SaveSnapshot(Walpb.Snapshot snap)
    {
        ArgumentNullException.ThrowIfNull(snap);
        lock (_mu)
        {
            WalEncoder enc = Writable();
            enc.EncodeSnapshot(snap.Index, snap.Term);
            if (_enti < snap.Index)
            {
                _enti = snap.Index;
            }
            SyncLocked();
        }
    }

    /// <summary>
    /// Releases the locks of segments that hold only entries below <paramref name="index"/>, keeping the last
    /// such segment (it may still hold the entry at index - 1), as etcd's ReleaseLockTo: holding 1..6,
    /// ReleaseLockTo(4) releases 1 and 2. Released segments may then be purged.
    /// </summary>
    public void ReleaseLockTo(ulong index)
    {
        lock (_mu)
        {
            if (_locks.Count == 0)
            {
                return;
            }
            int smaller = -1;
            bool found = false;
            for (int i = 0; i < _locks.Count; i++)
            {
                LockedFile? l = _locks[i];
                if (l == null)
                {
                    continue;
                }
                WalNames.TryParse(Path.GetFileName(l.Path), out _, out ulong lockIndex);
                if (lockIndex >= index)
                {
                    smaller = i - 1;
                    found = true;
                    break;
                }
            }
            if (!found)
            {
                smaller = _locks.Count - 1;
            }
            if (smaller <= 0)
            {
                return;
            }
            for (int i = 0; i < smaller; i++)
            {
                _locks[i]?.Dispose();
            }
            _locks.RemoveRange(0, smaller);
        }
    }

    /// <summary>Writes any buffered records and fdatasyncs the current segment (unless <see cref="UnsafeNoFsync"/>).</summary>
    public void Sync()
    {
        lock (_mu)
        {
            ThrowIfDisposed();
            SyncLocked();
        }
    }

    /// <summary>
    /// Returns the snapshot records of the WAL in <paramref name="dir"/> whose index is at or below the last
    /// HardState's commit (etcd's wal.ValidSnapshotEntries), reading without locks. A torn tail ends the read.
    /// </summary>
    /// <exception cref="WalException">FileNotFound, CrcMismatch or other corruption.</exception>
    public static List<Walpb.Snapshot> ValidSnapshotEntries(string dir)
    {
        List<string> names = WalNames.Read(dir);
        var handles = new List<SafeFileHandle>();
        try
        {
            foreach (string n in names)
            {
                handles.Add(File.OpenHandle(Path.Combine(dir, n), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            }
            var decoder = new WalDecoder(handles);
            var snaps = new List<Walpb.Snapshot>();
            ulong commit = 0;
            while (decoder.Decode() == DecodeStatus.Record)
            {
                switch (decoder.Type)
                {
                    case WalRecordType.Snapshot:
                        snaps.Add(Parse(Walpb.Snapshot.Parser, decoder.Data));
                        break;
                    case WalRecordType.State:
                        commit = Parse(HardState.Parser, decoder.Data).Commit;
                        break;
                    case WalRecordType.Crc:
                        if (decoder.Crc != 0 && decoder.RecordCrc != decoder.Crc)
                        {
                            throw new WalException(WalErrorKind.CrcMismatch);
                        }
                        decoder.UpdateCrc(decoder.RecordCrc);
                        break;
                }
            }
            snaps.RemoveAll(s => s.Index > commit);
            return snaps;
        }
        finally
        {
            foreach (SafeFileHandle h in handles)
            {
                h.Dispose();
            }
        }
    }

    /// <summary>Syncs buffered records, deletes the prepared next segment, and closes every file (releasing locks).</summary>
    public void Dispose()
    {
        lock (_mu)
        {
            DisposeCore(sync: true);
        }
    }

    private void DisposeCore(bool sync)
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            _fp?.Dispose();
            _fp = null;
            if (sync && _write && _locks.Count > 0 && _locks[^1] != null)
            {
                SyncLocked();
            }
        }
        finally
        {
            _encoder?.Dispose();
            _encoder = null;
            foreach (LockedFile? l in _locks)
            {
                l?.Dispose();
            }
            _locks.Clear();
            if (_readHandles != null)
            {
                foreach (SafeFileHandle h in _readHandles)
                {
                    h.Dispose();
                }
                _readHandles = null;
            }
            _decoder = null;
        }
    }

    private void SaveStateLocked(ulong term, ulong vote, ulong commit)
    {
        _stTerm = term;
        _stVote = vote;
        _stCommit = commit;
        _encoder!.EncodeState(term, vote, commit);
    }

    private void SyncLocked()
    {
        _encoder?.Flush();
        if (UnsafeNoFsync || _locks.Count == 0 || _locks[^1] is not LockedFile tail)
        {
            return;
        }
        long t0 = Stopwatch.GetTimestamp();
        NativeFile.Fdatasync(tail.Handle);
        _metrics.FsyncObserved(Stopwatch.GetElapsedTime(t0));
    }

    /// <summary>Closes the full segment and continues in a fresh one (etcd's cut).</summary>
    private void Cut()
    {
        WalEncoder enc = _encoder!;
        LockedFile tail = _locks[^1]!;
        enc.Flush();
        // Drop the unused preallocated tail of an early cut.
        RandomAccess.SetLength(tail.Handle, enc.FlushedOffset);
        SyncLocked();

        WalNames.TryParse(Path.GetFileName(tail.Path), out ulong seq, out _);
        string fpath = Path.Combine(_dir, WalNames.Format(seq + 1, _enti + 1));

        LockedFile newTail = _fp!.Open();
        _locks.Add(newTail);
        uint prevCrc = enc.Crc;
        enc.Dispose();
        _encoder = new WalEncoder(newTail.Handle, 0, prevCrc) { Metrics = _metrics };
        _encoder.EncodeCrc();
        _encoder.EncodeRaw(WalRecordType.Metadata, _metadata, hasData: true);
        if (_stTerm != 0 || _stVote != 0 || _stCommit != 0)
        {
            SaveStateLocked(_stTerm, _stVote, _stCommit);
        }
        SyncLocked();

        newTail.Rename(fpath);
        long t0 = Stopwatch.GetTimestamp();
        NativeFile.FsyncDir(_dir);
        _metrics.FsyncObserved(Stopwatch.GetElapsedTime(t0));
    }

    private static void RepairTail(LockedFile tail, long lastValidOffset)
    {
        // Keep the damaged segment for inspection, as etcd's Repair does, then cut at the last valid record.
        File.Copy(tail.Path, tail.Path + ".broken", overwrite: true);
        RandomAccess.SetLength(tail.Handle, lastValidOffset);
        NativeFile.Fsync(tail.Handle);
    }

    private static void ZeroToEnd(SafeFileHandle handle, long offset)
    {
        long length = RandomAccess.GetLength(handle);
        RandomAccess.SetLength(handle, offset);
        // Keep the blocks allocated (zero-filled) up to the old length.
        NativeFile.Preallocate(handle, length, extendFile: true);
    }

    private WalEncoder Writable()
    {
        ThrowIfDisposed();
        return _encoder ?? throw new InvalidOperationException(_write
            ? "wal: not ready to append; call ReadAll first"
            : "wal: opened for read only");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySpan<byte> data) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new WalException(WalErrorKind.Corrupt, $"wal: cannot unmarshal {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    private static void CreateDirAll(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
