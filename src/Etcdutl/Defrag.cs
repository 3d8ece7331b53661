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

    /// <summary>Keys copied per destination commit (etcd's <c>defragLimit</c>).</summary>
    public const int DefragLimit = 10000;

    /// <summary>
    /// etcd's <c>defragdb</c>: copies every top-level bucket key by key into a fresh database at
    /// <paramref name="dstPath"/> with a fill percent of 0.9 (keys arrive in order) and no persisted freelist (etcd opens
    /// its backend with NoFreelistSync), committing every
    /// <see cref="DefragLimit"/> keys; the final commit is synced.
    /// </summary>
    public static void CopyLikeEtcd(BoltDb src, string dstPath)
    {
        if (File.Exists(dstPath))
        {
            File.Delete(dstPath);
        }
        using var srcTx = src.Begin(false);
        using var dst = BoltDb.Open(dstPath, new BoltOptions { PageSize = src.PageSize, NoSync = true, NoFreelistSync = true });
        var tx = dst.Begin(true);
        try
        {
            var count = 0;
            foreach (var name in srcTx.BucketNames())
            {
                var b = srcTx.Bucket(name)!;
                var nb = tx.CreateBucketIfNotExists(name);
                nb.FillPercent = 0.9;
                var c = b.Cursor();
                for (var ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
                {
                    count++;
                    if (count > DefragLimit)
                    {
                        tx.Commit();
                        tx.Dispose();
                        tx = dst.Begin(true);
                        nb = tx.Bucket(name)!;
                        nb.FillPercent = 0.9;
                        count = 0;
                    }
                    nb.Put(k, v);
                }
            }
            tx.Commit();
        }
        finally
        {
            tx.Dispose();
        }
        dst.Sync();
    }

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
            CopyLikeEtcd(db, tmp);
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
