using Microsoft.Win32.SafeHandles;

namespace Etcd.Storage.FileSystem;

/// <summary>
/// An open file holding an exclusive OFD/flock lock for as long as it is open (etcd's fileutil.LockedFile).
/// <see cref="Path"/> follows renames done through <see cref="Rename"/>. Not thread-safe: the owner serialises use.
/// </summary>
internal sealed class LockedFile : IDisposable
{
    /// <summary>The message etcd's fileutil.ErrLocked carries.</summary>
    public const string ErrLockedMessage = "fileutil: file already locked";

    private LockedFile(string path, SafeFileHandle handle)
    {
        Path = path;
        Handle = handle;
    }

    /// <summary>The file's current path.</summary>
    public string Path { get; private set; }

    /// <summary>The open handle (read/write or write-only as opened).</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>Opens (creating if <paramref name="create"/>) and locks, waiting for the lock if another holds it.</summary>
    public static LockedFile Lock(string path, bool create) => OpenAndLock(path, create, wait: true)!;

    /// <summary>Opens and locks without waiting; throws <see cref="FileLockedException"/> when another holder has it.</summary>
    public static LockedFile TryLock(string path, bool create)
    {
        return OpenAndLock(path, create, wait: false) ?? throw new FileLockedException(path);
    }

    private static LockedFile? OpenAndLock(string path, bool create, bool wait)
    {
        bool existed = File.Exists(path);
        var handle = File.OpenHandle(path, create ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite,
            FileShare.ReadWrite | FileShare.Delete);
        try
        {
            if (create && !existed && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(handle, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            if (!NativeFile.LockExclusive(handle, wait))
            {
                handle.Dispose();
                return null;
            }
            return new LockedFile(path, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Renames the file in place (rename(2)); the handle and lock stay valid.</summary>
    public void Rename(string newPath)
    {
        File.Move(Path, newPath, overwrite: true);
        Path = newPath;
    }

    /// <summary>Records that the file now lives at <paramref name="newPath"/> (after its directory was renamed).</summary>
    public void SetPath(string newPath) => Path = newPath;

    /// <summary>
    /// Releases the lock, then closes the handle. The explicit unlock matters: closing alone leaves the lock held
    /// while a child process, forked by any thread of this process and not yet exec'd, still holds a copy of the
    /// descriptor, so a reopen right after Dispose would fail with "fileutil: file already locked".
    /// Idempotent.
    /// </summary>
    public void Dispose()
    {
        if (Handle.IsClosed)
        {
            return;
        }
        try
        {
            NativeFile.Unlock(Handle);
        }
        catch (IOException)
        {
            // Closing below still releases the lock once no other copy of the descriptor remains.
        }
        finally
        {
            Handle.Dispose();
        }
    }
}

/// <summary>Thrown when a file is locked by another open (etcd's fileutil.ErrLocked).</summary>
public sealed class FileLockedException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/>; the message is etcd's "fileutil: file already locked".</summary>
    public FileLockedException(string path) : base(LockedFile.ErrLockedMessage)
    {
        FilePath = path;
    }

    /// <summary>The locked file's path.</summary>
    public string FilePath { get; }
}
