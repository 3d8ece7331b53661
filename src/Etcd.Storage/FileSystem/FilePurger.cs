namespace Etcd.Storage.FileSystem;

/// <summary>
/// etcd's <c>fileutil.PurgeFile</c>: keeps at most a given number of the files of a directory whose names end
/// in <c>{suffix}</c>, removing the oldest (lowest name first, as the names of WAL segments and snap files sort
/// by sequence/index) — but never a file another holder has locked (a WAL segment still in use): purging stops
/// at the first locked file. Thread-safe (stateless); callers run it every 30 s (etcd's purgeFileInterval).
/// </summary>
public static class FilePurger
{
    /// <summary>How often etcd purges (<c>purgeFileInterval</c>, 30 s).</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Removes the oldest <c>*{suffix}</c> files of <paramref name="dir"/> beyond <paramref name="max"/>
    /// (0 = keep all) and returns the paths removed, oldest first. A file that cannot be locked (in use) stops
    /// the purge. A missing directory purges nothing.
    /// </summary>
    public static IReadOnlyList<string> PurgeOnce(string dir, string suffix, ulong max)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(suffix);
        var removed = new List<string>();
        if (max == 0 || !Directory.Exists(dir))
        {
            return removed;
        }

        var names = Directory.EnumerateFiles(dir)
            .Select(Path.GetFileName)
            .Where(n => n is not null && n.EndsWith(suffix, StringComparison.Ordinal))
            .Select(n => n!)
            .Order(StringComparer.Ordinal)
            .ToList();
        var excess = names.Count - (long)Math.Min(max, int.MaxValue);
        for (var i = 0; i < excess; i++)
        {
            var path = Path.Combine(dir, names[i]);
            LockedFile l;
            try
            {
                l = LockedFile.TryLock(path, create: false);
            }
            catch (FileLockedException)
            {
                break;
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            using (l)
            {
                File.Delete(path);
            }

            removed.Add(path);
        }

        return removed;
    }
}
