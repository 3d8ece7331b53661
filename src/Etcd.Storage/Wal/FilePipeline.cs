using Etcd.Storage.FileSystem;

namespace Etcd.Storage.Wal;

/// <summary>
/// Keeps the next WAL segment ready: a locked, preallocated <c>0.tmp</c>/<c>1.tmp</c> file made in the
/// background so a cut does not wait for allocation (etcd's wal/file_pipeline.go). <see cref="Open"/> hands
/// the file over and starts allocating the next; the caller renames it before calling Open again.
/// Not thread-safe: one owner.
/// </summary>
internal sealed class FilePipeline : IDisposable
{
    private readonly string _dir;
    private readonly long _size;
    private int _count;
    private Task<LockedFile> _next;

    public FilePipeline(string dir, long sizeBytes)
    {
        _dir = dir;
        _size = sizeBytes;
        _next = Task.Run(Alloc);
    }

    /// <summary>Returns the prepared file (waiting for it if needed); throws the allocation's exception.</summary>
    public LockedFile Open()
    {
        LockedFile f = _next.GetAwaiter().GetResult();
        _next = Task.Run(Alloc);
        return f;
    }

    private LockedFile Alloc()
    {
        string path = Path.Combine(_dir, $"{_count % 2}.tmp");
        LockedFile f = LockedFile.Lock(path, create: true);
        try
        {
            // A leftover temp file from a crash may hold old bytes: start from empty, then preallocate (zero-filled).
            RandomAccess.SetLength(f.Handle, 0);
            NativeFile.Preallocate(f.Handle, _size, extendFile: true);
        }
        catch
        {
            f.Dispose();
            throw;
        }
        _count++;
        return f;
    }

    /// <summary>Waits for the pending allocation, then deletes and closes that unused file.</summary>
    public void Dispose()
    {
        try
        {
            LockedFile f = _next.GetAwaiter().GetResult();
            try
            {
                File.Delete(f.Path);
            }
            finally
            {
                f.Dispose();
            }
        }
        catch (IOException)
        {
            // Allocation failed; nothing to clean up.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
