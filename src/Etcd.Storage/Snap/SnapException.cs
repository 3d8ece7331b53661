namespace Etcd.Storage.Snap;

/// <summary>What went wrong reading or finding a snap file; each kind matches an error of etcd's snap package.</summary>
public enum SnapErrorKind
{
    /// <summary>etcd's ErrNoSnapshot: "snap: no available snapshot".</summary>
    NoSnapshot,

    /// <summary>etcd's ErrEmptySnapshot: "snap: empty snapshot" (empty file, or an envelope without data or CRC).</summary>
    EmptySnapshot,

    /// <summary>etcd's ErrCRCMismatch: "snap: crc mismatch".</summary>
    CrcMismatch,

    /// <summary>etcd's ErrNoDBSnapshot: "snap: snapshot file doesn't exist" (no <c>%016x.snap.db</c> for the index).</summary>
    NoDbSnapshot,

    /// <summary>The envelope or the raftpb.Snapshot inside does not parse.</summary>
    Corrupt,
}

/// <summary>A snap-file failure; <see cref="Exception.Message"/> is etcd's error string for <see cref="Kind"/>.</summary>
public sealed class SnapException : Exception
{
    /// <summary>Creates the exception with etcd's message for <paramref name="kind"/>.</summary>
    public SnapException(SnapErrorKind kind, Exception? inner = null) : base(DefaultMessage(kind), inner)
    {
        Kind = kind;
    }

    /// <summary>The failure kind.</summary>
    public SnapErrorKind Kind { get; }

    private static string DefaultMessage(SnapErrorKind kind) => kind switch
    {
        SnapErrorKind.NoSnapshot => "snap: no available snapshot",
        SnapErrorKind.EmptySnapshot => "snap: empty snapshot",
        SnapErrorKind.CrcMismatch => "snap: crc mismatch",
        SnapErrorKind.NoDbSnapshot => "snap: snapshot file doesn't exist",
        SnapErrorKind.Corrupt => "snap: corrupt snapshot file",
        _ => kind.ToString(),
    };
}
