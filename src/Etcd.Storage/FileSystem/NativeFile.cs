using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Etcd.Storage.FileSystem;

/// <summary>
/// Thin Linux system-call helpers the WAL and snap files need and .NET does not expose:
/// fdatasync, fsync of a directory, fallocate, and open-file-description (OFD) locks.
/// Mirrors the facts of etcd's pkg/fileutil (sync_linux.go, preallocate_unix.go, lock_linux.go).
/// Every method throws <see cref="IOException"/> (with the errno text) on failure.
/// Thread-safe: stateless.
/// </summary>
internal static partial class NativeFile
{
    private const string Libc = "libc";

    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int EACCES = 13;
    private const int EINVAL = 22;
    private const int EOPNOTSUPP = 95;

    private const int F_OFD_SETLK = 37;
    private const int F_OFD_SETLKW = 38;
    private const short F_WRLCK = 1;
    private const short F_UNLCK = 2;

    private const int LOCK_EX = 2;
    private const int LOCK_NB = 4;
    private const int LOCK_UN = 8;

    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    private struct FlockT
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Len;
        public int Pid;
        public int Pad;
    }

    [LibraryImport(Libc, EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int SysFdatasync(int fd);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    private static partial int SysFsync(int fd);

    [LibraryImport(Libc, EntryPoint = "fallocate", SetLastError = true)]
    private static partial int SysFallocate(int fd, int mode, long offset, long len);

    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    private static unsafe partial int SysFcntlLock(int fd, int cmd, FlockT* flock);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    private static partial int SysFlock(int fd, int operation);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SysOpen(string path, int flags);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int SysClose(int fd);

    private static volatile bool s_noOfdLocks;

    /// <summary>fdatasync(2): flushes the file's data (and the metadata needed to read it back) to stable storage.</summary>
    public static void Fdatasync(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int rc;
            do
            {
                rc = SysFdatasync(fd);
            }
            while (rc != 0 && Marshal.GetLastPInvokeError() == EINTR);
            if (rc != 0)
            {
                throw Error("fdatasync");
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

    /// <summary>fsync(2) of an open file.</summary>
    public static void Fsync(SafeFileHandle handle) => WithFd(handle, static fd =>
    {
        if (RetryEintr(() => SysFsync(fd)) != 0)
        {
            throw Error("fsync");
        }
    });

    /// <summary>Opens the directory and fsyncs it, so renames and creations inside it are durable.</summary>
    public static void FsyncDir(string dir)
    {
        int fd = SysOpen(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
        {
            throw Error($"open {dir}");
        }
        try
        {
            if (RetryEintr(() => SysFsync(fd)) != 0)
            {
                throw Error($"fsync {dir}");
            }
        }
        finally
        {
            SysClose(fd);
        }
    }

    /// <summary>
    /// Reserves <paramref name="sizeBytes"/> bytes of disk for the file. With
    /// <paramref name="extendFile"/> the file length becomes at least that size (fallocate mode 0, zero-filled),
    /// otherwise the length is kept (FALLOC_FL_KEEP_SIZE). Falls back to ftruncate when the
    /// file system has no fallocate, as etcd's fileutil.Preallocate does.
    /// </summary>
    public static void Preallocate(SafeFileHandle handle, long sizeBytes, bool extendFile)
    {
        if (sizeBytes == 0)
        {
            return;
        }
        int err = 0;
        WithFd(handle, fd =>
        {
            int mode = extendFile ? 0 : 1;
            if (SysFallocate(fd, mode, 0, sizeBytes) != 0)
            {
                err = Marshal.GetLastPInvokeError();
            }
        });
        if (err == 0)
        {
            return;
        }
        if (err == EOPNOTSUPP || err == EINTR || err == EINVAL)
        {
            if (extendFile && RandomAccess.GetLength(handle) < sizeBytes)
            {
                RandomAccess.SetLength(handle, sizeBytes);
            }
            return;
        }
        throw new IOException($"fallocate: {new Win32Exception(err).Message}");
    }

    /// <summary>
    /// Takes an exclusive write lock on the whole file: an OFD lock (fcntl F_OFD_SETLK[W]) as etcd's
    /// fileutil does on Linux, or flock(2) where OFD locks are missing. OFD locks belong to the open file
    /// description, so two opens in one process conflict too. The lock lives until <see cref="Unlock"/> or until
    /// every descriptor sharing the description is closed (a child process between fork and exec holds copies).
    /// </summary>
    /// <returns>false when <paramref name="wait"/> is false and another holder has the lock.</returns>
    public static unsafe bool LockExclusive(SafeFileHandle handle, bool wait)
    {
        bool ok = true;
        WithFd(handle, fd =>
        {
            if (!s_noOfdLocks)
            {
                var fl = new FlockT { Type = F_WRLCK, Whence = 0, Start = 0, Len = 0 };
                int rc;
                do
                {
                    rc = SysFcntlLock(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
                }
                while (rc != 0 && Marshal.GetLastPInvokeError() == EINTR);
                if (rc == 0)
                {
                    return;
                }
                int e = Marshal.GetLastPInvokeError();
                if (e == EAGAIN || e == EACCES)
                {
                    ok = false;
                    return;
                }
                if (e != EINVAL)
                {
                    throw new IOException($"fcntl lock: {new Win32Exception(e).Message}");
                }
                s_noOfdLocks = true;
            }
            int r;
            do
            {
                r = SysFlock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
            }
            while (r != 0 && Marshal.GetLastPInvokeError() == EINTR);
            if (r != 0)
            {
                int e = Marshal.GetLastPInvokeError();
                if (e == EAGAIN)
                {
                    ok = false;
                    return;
                }
                throw new IOException($"flock: {new Win32Exception(e).Message}");
            }
        });
        return ok;
    }

    /// <summary>
    /// Releases the lock <see cref="LockExclusive"/> took on <paramref name="handle"/>'s open file description.
    /// Closing the handle alone is not enough: a child process forked by any thread holds a copy of every
    /// descriptor until it execs (they are close-on-exec), and the description, with its lock, lives as long as
    /// any copy does; an explicit unlock releases it at once whoever else shares the description.
    /// </summary>
    public static unsafe void Unlock(SafeFileHandle handle)
    {
        WithFd(handle, fd =>
        {
            if (!s_noOfdLocks)
            {
                var fl = new FlockT { Type = F_UNLCK, Whence = 0, Start = 0, Len = 0 };
                int rc;
                do
                {
                    rc = SysFcntlLock(fd, F_OFD_SETLK, &fl);
                }
                while (rc != 0 && Marshal.GetLastPInvokeError() == EINTR);
                if (rc == 0)
                {
                    return;
                }
                if (Marshal.GetLastPInvokeError() != EINVAL)
                {
                    throw Error("fcntl unlock");
                }
            }
            if (RetryEintr(() => SysFlock(fd, LOCK_UN)) != 0)
            {
                throw Error("flock unlock");
            }
        });
    }

    private static int RetryEintr(Func<int> call)
    {
        int rc;
        do
        {
            rc = call();
        }
        while (rc != 0 && Marshal.GetLastPInvokeError() == EINTR);
        return rc;
    }

    private static void WithFd(SafeFileHandle handle, Action<int> action)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            action((int)handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static IOException Error(string op)
    {
        int e = Marshal.GetLastPInvokeError();
        return new IOException($"{op}: {new Win32Exception(e).Message}");
    }
}
