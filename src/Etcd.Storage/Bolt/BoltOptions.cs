namespace Etcd.Storage.Bolt;

/// <summary>Options of <see cref="BoltDb.Open"/> (bbolt's <c>Options</c>).</summary>
public sealed class BoltOptions
{
    /// <summary>The default options: read-write, fsync on, 4096-byte pages for new files.</summary>
    public static BoltOptions Default { get; } = new();

    /// <summary>
    /// Minimum logical mmap size in bytes (bbolt's InitialMmapSize). It only steers file growth the
    /// way bbolt does: below 16 MiB the file grows to the mmap step, above it by 16 MiB chunks.
    /// </summary>
    public long InitialMmapSize { get; init; }

    /// <summary>Skips fdatasync on commit (etcd's --unsafe-no-fsync). Unsafe on power loss.</summary>
    public bool NoSync { get; init; }

    /// <summary>Page size in bytes for a NEW file (default 4096); existing files keep theirs.</summary>
    public int PageSize { get; init; } = 4096;

    /// <summary>Do not write the freelist on commit (meta.freelist = 0xFFFF...); it is rebuilt by scanning on open.</summary>
    public bool NoFreelistSync { get; init; }

    /// <summary>Open the file read-only (shared lock; write transactions throw <c>database is in read-only mode</c>).</summary>
    public bool ReadOnly { get; init; }

    /// <summary>How long to wait for the file lock; <see cref="TimeSpan.Zero"/> fails at once with <c>timeout</c>.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bytes the file grows by once past 16 MiB (bbolt's AllocSize, 16 MiB).</summary>
    public long AllocSize { get; init; } = 16 * 1024 * 1024;
}
