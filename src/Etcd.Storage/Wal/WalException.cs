namespace Etcd.Storage.Wal;

/// <summary>What went wrong in a WAL operation; each kind matches one of etcd's wal package errors.</summary>
public enum WalErrorKind
{
    /// <summary>etcd's ErrMetadataConflict: "wal: conflicting metadata found".</summary>
    MetadataConflict,

    /// <summary>etcd's ErrFileNotFound: "wal: file not found" (no WAL segment covers the snapshot index, or the sequence has a gap).</summary>
    FileNotFound,

    /// <summary>etcd's ErrCRCMismatch "wal: crc mismatch" (a crc record disagrees with the chain), or walpb's "walpb: crc mismatch" (a record's own CRC is wrong).</summary>
    CrcMismatch,

    /// <summary>etcd's ErrSnapshotMismatch: "wal: snapshot mismatch" (a snapshot record at the requested index has another term).</summary>
    SnapshotMismatch,

    /// <summary>etcd's ErrSnapshotNotFound: "wal: snapshot not found" (no snapshot record at the requested index).</summary>
    SnapshotNotFound,

    /// <summary>etcd's ErrSliceOutOfRange: "wal: slice bounds out of range" (an entry leaves a gap after the snapshot index).</summary>
    SliceOutOfRange,

    /// <summary>etcd's ErrMaxWALEntrySizeLimitExceeded: "wal: max entry size limit exceeded" (a record frame of 10 MiB or more).</summary>
    MaxEntrySizeLimitExceeded,

    /// <summary>etcd's ErrDecoderNotFound: "wal: decoder not found" (ReadAll called twice, or on a created WAL).</summary>
    DecoderNotFound,

    /// <summary>A record of a type outside 1..5: "unexpected block type N".</summary>
    UnexpectedRecordType,

    /// <summary>A record that does not parse and is not a torn write, or a short read in a segment other than the last.</summary>
    Corrupt,

    /// <summary>Create on a directory that already holds .wal files: "file already exists" (Go's os.ErrExist).</summary>
    AlreadyExists,
}

/// <summary>
/// A WAL failure. <see cref="Exception.Message"/> is the etcd error string for <see cref="Kind"/>.
/// Locking failures surface as <see cref="Etcd.Storage.FileSystem.FileLockedException"/> and I/O failures as <see cref="IOException"/>.
/// </summary>
public sealed class WalException : Exception
{
    /// <summary>Creates the exception with etcd's message for <paramref name="kind"/>.</summary>
    public WalException(WalErrorKind kind) : this(kind, DefaultMessage(kind))
    {
    }

    /// <summary>Creates the exception with an explicit message.</summary>
    public WalException(WalErrorKind kind, string message, Exception? inner = null) : base(message, inner)
    {
        Kind = kind;
    }

    /// <summary>The failure kind.</summary>
    public WalErrorKind Kind { get; }

    /// <summary>etcd's error string for each kind.</summary>
    public static string DefaultMessage(WalErrorKind kind) => kind switch
    {
        WalErrorKind.MetadataConflict => "wal: conflicting metadata found",
        WalErrorKind.FileNotFound => "wal: file not found",
        WalErrorKind.CrcMismatch => "wal: crc mismatch",
        WalErrorKind.SnapshotMismatch => "wal: snapshot mismatch",
        WalErrorKind.SnapshotNotFound => "wal: snapshot not found",
        WalErrorKind.SliceOutOfRange => "wal: slice bounds out of range",
        WalErrorKind.MaxEntrySizeLimitExceeded => "wal: max entry size limit exceeded",
        WalErrorKind.DecoderNotFound => "wal: decoder not found",
        WalErrorKind.UnexpectedRecordType => "unexpected block type",
        WalErrorKind.Corrupt => "wal: corrupt record",
        WalErrorKind.AlreadyExists => "file already exists",
        _ => kind.ToString(),
    };
}
