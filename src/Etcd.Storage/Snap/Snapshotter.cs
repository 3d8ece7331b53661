using System.Diagnostics;
using Etcd.Storage.FileSystem;
using Etcd.Storage.Wal;
using Google.Protobuf;

namespace Etcd.Storage.Snap;

/// <summary>
/// etcd's snap files (etcdserver/api/snap): each raft snapshot is stored as <c>%016x-%016x.snap</c>
/// (term, index) holding a snappb.snapshot envelope {crc = CRC-32C of data, data = serialized raftpb.Snapshot}.
/// Database snapshots received from a leader live beside them as <c>%016x.snap.db</c>.
/// Thread-safety: methods touch only the file system and may be called concurrently for different snapshots.
/// </summary>
public sealed class Snapshotter
{
    private const string SnapSuffix = ".snap";

    private readonly ISnapMetrics? _metrics;

    /// <summary>Creates a snapshotter over <paramref name="dir"/> (etcd: member/snap); the directory must exist for saves.</summary>
    /// <param name="dir">The snap directory.</param>
    /// <param name="metrics">Where save and fsync latencies are reported; null = not measured.</param>
    public Snapshotter(string dir, ISnapMetrics? metrics = null)
    {
        Dir = dir;
        _metrics = metrics;
    }

    /// <summary>The snap directory.</summary>
    public string Dir { get; }

    /// <summary>The file name of the snapshot at (<paramref name="term"/>, <paramref name="index"/>): <c>%016x-%016x.snap</c>.</summary>
    public static string SnapName(ulong term, ulong index) => $"{term:x16}-{index:x16}{SnapSuffix}";

    /// <summary>
    /// Writes <paramref name="snapshot"/> to <c>term-index.snap</c> and fsyncs it; a snapshot with
    /// Metadata.Index 0 is empty and is not saved (etcd's SaveSnap). A partly written file is removed on failure.
    /// </summary>
    /// <exception cref="IOException">Write or sync failure.</exception>
    public void SaveSnap(Raftpb.Snapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Metadata == null || snapshot.Metadata.Index == 0)
        {
            return;
        }
        long start = Stopwatch.GetTimestamp();
        byte[] data = snapshot.ToByteArray();
        var envelope = new Snappb.snapshot { Crc = Crc32C.Compute(data), Data = ByteString.CopyFrom(data) };
        var bytes = envelope.ToByteArray();
        var marshalling = Stopwatch.GetElapsedTime(start);
        string path = Path.Combine(Dir, SnapName(snapshot.Metadata.Term, snapshot.Metadata.Index));
        try
        {
            var fsync = WriteAndSyncFile(path, bytes);
            _metrics?.SnapSaved(Stopwatch.GetElapsedTime(start), marshalling, fsync);
        }
        catch
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
            throw;
        }
    }

    /// <summary>
    /// Returns the newest readable snapshot, or null when there is none (etcd: ErrNoSnapshot). Files that fail
    /// to read are renamed to <c>&lt;name&gt;.broken</c> and skipped, as etcd's Load does; orphaned
    /// <c>db.tmp*</c> files are deleted.
    /// </summary>
    public Raftpb.Snapshot? Load() => LoadMatching(static _ => true);

    /// <summary>
    /// Returns the newest readable snapshot whose (term, index) is among <paramref name="walSnaps"/> (typically
    /// <see cref="Wal.Wal.ValidSnapshotEntries"/>), or null when none (etcd's LoadNewestAvailable).
    /// </summary>
    public Raftpb.Snapshot? LoadNewestAvailable(IReadOnlyList<Walpb.Snapshot> walSnaps)
    {
        ArgumentNullException.ThrowIfNull(walSnaps);
        return LoadMatching(s =>
        {
            for (int i = walSnaps.Count - 1; i >= 0; i--)
            {
                if (s.Metadata.Term == walSnaps[i].Term && s.Metadata.Index == walSnaps[i].Index)
                {
                    return true;
                }
            }
            return false;
        });
    }

    /// <summary>Reads and verifies one snap file (etcd's snap.Read).</summary>
    /// <exception cref="SnapException">EmptySnapshot, CrcMismatch or Corrupt.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static Raftpb.Snapshot Read(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        if (b.Length == 0)
        {
            throw new SnapException(SnapErrorKind.EmptySnapshot);
        }
        Snappb.snapshot envelope;
        try
        {
            envelope = Snappb.snapshot.Parser.ParseFrom(b);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new SnapException(SnapErrorKind.Corrupt, ex);
        }
        if (envelope.Data.Length == 0 || envelope.Crc == 0)
        {
            throw new SnapException(SnapErrorKind.EmptySnapshot);
        }
        if (Crc32C.Compute(envelope.Data.Span) != envelope.Crc)
        {
            throw new SnapException(SnapErrorKind.CrcMismatch);
        }
        try
        {
            var snap = Raftpb.Snapshot.Parser.ParseFrom(envelope.Data);
            snap.Metadata ??= new Raftpb.SnapshotMetadata();
            return snap;
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new SnapException(SnapErrorKind.Corrupt, ex);
        }
    }

    /// <summary>Path of the database snapshot for raft index <paramref name="id"/>: <c>dir/%016x.snap.db</c>.</summary>
    /// <exception cref="SnapException">NoDbSnapshot when the file does not exist.</exception>
    public string DBFilePath(ulong id)
    {
        string fn = DbPath(id);
        return File.Exists(fn) ? fn : throw new SnapException(SnapErrorKind.NoDbSnapshot);
    }

    /// <summary>
    /// Copies a database snapshot from <paramref name="source"/> into a temp file, fsyncs it and renames it to
    /// <c>%016x.snap.db</c> for <paramref name="id"/> (kept as is when that file already exists). Returns bytes copied.
    /// </summary>
    public async Task<long> SaveDBFromAsync(Stream source, ulong id, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        long start = Stopwatch.GetTimestamp();
        string tmp = Path.Combine(Dir, "tmp" + Guid.NewGuid().ToString("N")[..10]);
        long n;
        TimeSpan fsync;
        try
        {
            await using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await source.CopyToAsync(f, cancellationToken).ConfigureAwait(false);
                await f.FlushAsync(cancellationToken).ConfigureAwait(false);
                n = f.Length;
                long t0 = Stopwatch.GetTimestamp();
                NativeFile.Fsync(f.SafeFileHandle);
                fsync = Stopwatch.GetElapsedTime(t0);
            }
            string fn = DbPath(id);
            if (File.Exists(fn))
            {
                File.Delete(tmp);
            }
            else
            {
                File.Move(tmp, fn);
            }

            _metrics?.DbSaved(Stopwatch.GetElapsedTime(start), fsync);
            return n;
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException)
            {
            }
            throw;
        }
    }

    /// <summary>Deletes <c>*.snap.db</c> files for indexes below <paramref name="snap"/>'s index (etcd's ReleaseSnapDBs).</summary>
    public void ReleaseSnapDBs(Raftpb.Snapshot snap)
    {
        ArgumentNullException.ThrowIfNull(snap);
        ulong index = snap.Metadata?.Index ?? 0;
        foreach (string path in Directory.EnumerateFiles(Dir, "*.snap.db"))
        {
            string hex = Path.GetFileName(path)[..^".snap.db".Length];
            if (ulong.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, null, out ulong idx) && idx < index)
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private string DbPath(ulong id) => Path.Combine(Dir, $"{id:x16}.snap.db");

    private Raftpb.Snapshot? LoadMatching(Func<Raftpb.Snapshot, bool> match)
    {
        foreach (string name in SnapNames())
        {
            Raftpb.Snapshot? snap = LoadSnap(name);
            if (snap != null && match(snap))
            {
                return snap;
            }
        }
        return null;
    }

    private Raftpb.Snapshot? LoadSnap(string name)
    {
        string path = Path.Combine(Dir, name);
        try
        {
            return Read(path);
        }
        catch (Exception ex) when (ex is SnapException or IOException)
        {
            try
            {
                File.Move(path, path + ".broken", overwrite: true);
            }
            catch (IOException)
            {
            }
            return null;
        }
    }

    /// <summary>Snap file names, newest first; deletes orphaned db.tmp* defragmentation files on the way.</summary>
    private List<string> SnapNames()
    {
        var snaps = new List<string>();
        if (!Directory.Exists(Dir))
        {
            return snaps;
        }
        foreach (string path in Directory.EnumerateFiles(Dir))
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith("db.tmp", StringComparison.Ordinal))
            {
                try
                {
                    File.Delete(path);
                }
                catch (FileNotFoundException)
                {
                }
                continue;
            }
            if (name.EndsWith(SnapSuffix, StringComparison.Ordinal))
            {
                snaps.Add(name);
            }
        }
        snaps.Sort(StringComparer.Ordinal);
        snaps.Reverse();
        return snaps;
    }

    private static TimeSpan WriteAndSyncFile(string path, byte[] data)
    {
        using SafeFileHandleScope h = new(File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite));
        RandomAccess.Write(h.Handle, data, 0);
        long t0 = Stopwatch.GetTimestamp();
        NativeFile.Fsync(h.Handle);
        return Stopwatch.GetElapsedTime(t0);
    }

    private readonly struct SafeFileHandleScope(Microsoft.Win32.SafeHandles.SafeFileHandle handle) : IDisposable
    {
        public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; } = handle;

        public void Dispose() => Handle.Dispose();
    }
}
