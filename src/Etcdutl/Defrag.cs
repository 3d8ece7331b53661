using Etcd.Storage.Bolt;

namespace Etcd.Utl;

/// <summary>
/// Offline defragmentation of a member's backend (etcdutl's <c>defrag --data-dir</c>, etcd's <c>backend.defrag</c>):
/// copies every bucket of <c>DIR/member/snap/db</c> into <c>db.tmp</c> beside it, then renames it over the original.
/// The database must not be open by a running etcd (bbolt's file lock is taken).
/// </summary>
public static class Defrag
{
    /// <summary>The backend path inside a data directory: <c>member/snap/db</c>.</summary>
    public static string DbPath(string dataDir) => Path.Combine(dataDir, "member", "snap", "db");

    /// <summary>Defragments the backend of <paramref name="dataDir"/>.</summary>
    /// <exception cref="FileNotFoundException">No database at <see cref="DbPath"/>.</exception>
    /// <exception cref="IOException">Copy, sync or rename failure.</exception>
    public static void Run(string dataDir)
    {
        var dbPath = DbPath(dataDir);
        if (!File.Exists(dbPath))
        {
            throw new FileNotFoundException($"open {dbPath}: no such file or directory", dbPath);
        }
        var tmp = dbPath + ".tmp";
        using (var db = BoltDb.Open(dbPath))
        {
            BoltCompact.Compact(db, tmp, txMaxSize: 64L * 1024 * 1024, noSync: true);
        }
        using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Flush(flushToDisk: true);
        }
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        File.Move(tmp, dbPath, overwrite: true);
    }
}
