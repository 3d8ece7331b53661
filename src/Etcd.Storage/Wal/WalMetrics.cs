namespace Etcd.Storage.Wal;

/// <summary>
/// Process-wide WAL measurements behind etcd's <c>etcd_disk_wal_fsync_duration_seconds</c> histogram and
/// <c>etcd_disk_wal_write_bytes_total</c> gauge (wal/metrics.go). Thread-safe.
/// </summary>
public static class WalMetrics
{
    private static long s_writeBytes;

    /// <summary>Called with the duration in seconds of every fdatasync/fsync the WAL does; set once by the metrics layer.</summary>
    public static Action<double>? FsyncObserved { get; set; }

    /// <summary>Total bytes the WAL has written to segment files since the process started.</summary>
    public static long WriteBytesTotal => Interlocked.Read(ref s_writeBytes);

    internal static void AddWriteBytes(long n) => Interlocked.Add(ref s_writeBytes, n);

    internal static void ObserveFsync(long startTimestamp)
    {
        FsyncObserved?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }
}
