namespace Etcd.Raft;

/// <summary>
/// The kinds of error the Raft core reports, one per sentinel error of etcd-io/raft (raft.go, rawnode.go,
/// storage.go in etcd 3.4). The <see cref="Exception.Message"/> carries etcd's exact error string.
/// </summary>
public enum RaftErrorKind
{
    /// <summary>"requested index is unavailable due to compaction" (storage.go ErrCompacted).</summary>
    Compacted,
    /// <summary>"requested index is older than the existing snapshot" (storage.go ErrSnapOutOfDate).</summary>
    SnapOutOfDate,
    /// <summary>"requested entry at index is unavailable" (storage.go ErrUnavailable).</summary>
    Unavailable,
    /// <summary>"snapshot is temporarily unavailable" (storage.go ErrSnapshotTemporarilyUnavailable).</summary>
    SnapshotTemporarilyUnavailable,
    /// <summary>"raft proposal dropped" (raft.go ErrProposalDropped).</summary>
    ProposalDropped,
    /// <summary>"raft: cannot step raft local message" (rawnode.go ErrStepLocalMsg).</summary>
    StepLocalMsg,
    /// <summary>"raft: cannot step as peer not found" (rawnode.go ErrStepPeerNotFound).</summary>
    StepPeerNotFound,
    /// <summary>Any other failure with no etcd sentinel (invalid configuration, bootstrapping a non-empty storage,
    /// an invalid configuration change); the message says what.</summary>
    Other,
}

/// <summary>
/// The one exception type thrown by the Raft core for etcd-io/raft's returned errors. Inspect <see cref="Kind"/>
/// rather than the message; the message is etcd's error string. Broken invariants (etcd's panics) are reported as
/// <see cref="InvalidOperationException"/> instead and mean a bug or corrupted storage.
/// </summary>
public class RaftException : Exception
{
    /// <summary>Creates an exception of <paramref name="kind"/> with etcd's message for that kind.</summary>
    public RaftException(RaftErrorKind kind) : this(kind, DefaultMessage(kind)) { }

    /// <summary>Creates an exception of <paramref name="kind"/> with a custom message.</summary>
    public RaftException(RaftErrorKind kind, string message) : base(message) => Kind = kind;

    /// <summary>Which etcd error this is.</summary>
    public RaftErrorKind Kind { get; }

    /// <summary>etcd's error string for <paramref name="kind"/>.</summary>
    public static string DefaultMessage(RaftErrorKind kind) => kind switch
    {
        RaftErrorKind.Compacted => "requested index is unavailable due to compaction",
        RaftErrorKind.SnapOutOfDate => "requested index is older than the existing snapshot",
        RaftErrorKind.Unavailable => "requested entry at index is unavailable",
        RaftErrorKind.SnapshotTemporarilyUnavailable => "snapshot is temporarily unavailable",
        RaftErrorKind.ProposalDropped => "raft proposal dropped",
        RaftErrorKind.StepLocalMsg => "raft: cannot step raft local message",
        RaftErrorKind.StepPeerNotFound => "raft: cannot step as peer not found",
        _ => "raft: error",
    };

}
