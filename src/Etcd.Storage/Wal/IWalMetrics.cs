namespace Etcd.Storage.Wal;

/// <summary>
/// Receives a <see cref="Wal"/>'s measurements (etcd's <c>wal/metrics.go</c>: <c>etcd_disk_wal_fsync_duration_seconds</c>,
/// <c>etcd_disk_wal_write_bytes_total</c>). The member supplies one per WAL so that several members in one process keep
/// their own figures. Called on the WAL's writer thread; implementations must be cheap and thread-safe.
/// </summary>
public interface IWalMetrics
{
    /// <summary>One fdatasync/fsync of a segment or of the WAL directory finished after <paramref name="elapsed"/>.</summary>
    void FsyncObserved(TimeSpan elapsed);

    /// <summary><paramref name="bytes"/> more bytes were written to segment files.</summary>
    void BytesWritten(long bytes);
}

/// <summary>The <see cref="IWalMetrics"/> that records nothing (a WAL opened by a tool or a test).</summary>
public sealed class NoWalMetrics : IWalMetrics
{
    /// <summary>The one instance.</summary>
    public static readonly NoWalMetrics Instance = new();

    private NoWalMetrics()
    {
    }

    /// <inheritdoc/>
    public void FsyncObserved(TimeSpan elapsed)
    {
    }

    /// <inheritdoc/>
    public void BytesWritten(long bytes)
    {
    }
}
