using System.Runtime.InteropServices;
using Etcd.Storage.Bolt;
using Etcd.Storage.FileSystem;

namespace Etcd.Storage.Tests.Wal;

/// <summary>
/// Locks must be released by Dispose even when another descriptor still shares the open file description, which
/// is what a child process holds between fork and exec. dup(2) makes such a copy deterministically.
/// </summary>
public partial class LockedFileTests
{
    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int SysDup(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int SysClose(int fd);

    private static int Dup(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        int fd = SysDup((int)handle.DangerousGetHandle());
        Assert.True(fd >= 0, $"dup failed: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    [Fact]
    public void DisposeReleasesLockWhileACopyOfTheDescriptorIsStillOpen()
    {
        using var t = new TempDir();
        string path = t.Sub("0000000000000000-0000000000000000.wal");
        LockedFile first = LockedFile.Lock(path, create: true);
        int copy = Dup(first.Handle);
        try
        {
            Assert.Throws<FileLockedException>(() => LockedFile.TryLock(path, create: false));
            first.Dispose();
            using LockedFile again = LockedFile.TryLock(path, create: false);
            Assert.Throws<FileLockedException>(() => LockedFile.TryLock(path, create: false));
        }
        finally
        {
            SysClose(copy);
        }
    }

    /// <summary>The bbolt file's flock is dropped by .NET's close (it unlocks before closing); kept so it stays so.</summary>
    [Fact]
    public void BoltDisposeReleasesFlockWhileACopyOfTheDescriptorIsStillOpen()
    {
        using var t = new TempDir();
        string path = t.Sub("db");
        var quick = new BoltOptions { Timeout = TimeSpan.FromMilliseconds(200) };
        BoltDb first = BoltDb.Open(path, quick);
        // Copy the db's own descriptor, found through /proc, as a forked child would hold it.
        int copy = -1;
        foreach (string fd in Directory.GetFiles("/proc/self/fd"))
        {
            if (new FileInfo(fd).LinkTarget == path && int.TryParse(Path.GetFileName(fd), out int n))
            {
                copy = SysDup(n);
                break;
            }
        }
        Assert.True(copy >= 0, $"no descriptor of {path} found");
        try
        {
            Assert.Throws<BoltException>(() => BoltDb.Open(path, quick).Dispose());
            first.Dispose();
            using BoltDb again = BoltDb.Open(path, quick);
        }
        finally
        {
            SysClose(copy);
        }
    }
}
