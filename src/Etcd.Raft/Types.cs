using Raftpb;

namespace Etcd.Raft;

/// <summary>How linearizable reads (ReadIndex) are served; etcd-io/raft's ReadOnlyOption (raft.go).</summary>
public enum ReadOnlyOption
{
    /// <summary>Confirm leadership with a heartbeat round to a quorum before answering (ReadOnlySafe).</summary>
    Safe,
    /// <summary>Answer from the leader lease without a round trip; needs <see cref="RaftConfig.CheckQuorum"/> (ReadOnlyLeaseBased).</summary>
    LeaseBased,
}

/// <summary>The role of a Raft node (raft.go StateType). Numeric values match etcd's.</summary>
public enum StateType
{
    /// <summary>StateFollower.</summary>
    Follower = 0,
    /// <summary>StateCandidate.</summary>
    Candidate = 1,
    /// <summary>StateLeader.</summary>
    Leader = 2,
    /// <summary>StatePreCandidate (pre-vote phase).</summary>
    PreCandidate = 3,
}

/// <summary>Outcome of sending a snapshot to a follower, reported through <see cref="RawNode.ReportSnapshot"/>.</summary>
public enum SnapshotStatus
{
    /// <summary>SnapshotFinish: the follower received the snapshot.</summary>
    Finish,
    /// <summary>SnapshotFailure: sending failed; the leader probes the follower again.</summary>
    Failure,
}

/// <summary>
/// A sink for the core's log lines (etcd-io/raft's Logger, reduced to four levels). Calls happen on the thread
/// that drives the <see cref="RawNode"/>. When <see cref="RaftConfig.Logger"/> is null nothing is formatted.
/// </summary>
public interface IRaftLogger
{
    /// <summary>Debug-level line.</summary>
    void Debug(string message);
    /// <summary>Info-level line.</summary>
    void Info(string message);
    /// <summary>Warning-level line.</summary>
    void Warning(string message);
    /// <summary>Error-level line.</summary>
    void Error(string message);
}

/// <summary>A member given to <see cref="RawNode.Bootstrap"/>: its id and the ConfChange context (etcd puts the member JSON there).</summary>
/// <param name="Id">Raft id of the member (non-zero).</param>
/// <param name="Context">Opaque bytes stored in the ConfChange.Context of the bootstrap entry.</param>
public sealed record Peer(ulong Id, byte[]? Context = null);

/// <summary>Volatile state exposed in <see cref="Ready.SoftState"/> and <see cref="BasicStatus"/>: the known leader (0 = none) and the role.</summary>
/// <param name="Lead">Id of the leader this node knows of, 0 when none.</param>
/// <param name="RaftState">The node's role.</param>
public sealed record SoftState(ulong Lead, StateType RaftState);

/// <summary>
/// The answer to a <see cref="RawNode.ReadIndex"/> request (read_only.go ReadState): once the state machine has
/// applied up to <paramref name="Index"/>, a read issued with <paramref name="RequestCtx"/> is linearizable.
/// </summary>
/// <param name="Index">Commit index at the time the read was accepted by the leader.</param>
/// <param name="RequestCtx">The request context bytes passed to ReadIndex (identifies the request).</param>
public sealed record ReadState(ulong Index, byte[] RequestCtx);

/// <summary>
/// Configuration of a Raft node (raft.go Config). Call <see cref="Validate"/> (RawNode's constructor does) to check
/// it and fill defaults. Times are in ticks: one tick is one call to <see cref="RawNode.Tick"/>.
/// </summary>
public sealed class RaftConfig
{
    /// <summary>This node's Raft id; must not be 0.</summary>
    public ulong Id { get; set; }
    /// <summary>Ticks a follower waits without hearing from a leader before campaigning; the actual timeout is
    /// randomized in [ElectionTick, 2*ElectionTick). Must exceed <see cref="HeartbeatTick"/>. etcd uses 10.</summary>
    public int ElectionTick { get; set; } = 10;
    /// <summary>Ticks between leader heartbeats. etcd uses 1.</summary>
    public int HeartbeatTick { get; set; } = 1;
    /// <summary>The stable log; the application appends persisted entries to it. Required.</summary>
    public IRaftStorage Storage { get; set; } = null!;
    /// <summary>Last applied index when restarting (entries up to it are not returned again as committed).</summary>
    public ulong Applied { get; set; }
    /// <summary>Max bytes of entries per append message (protobuf size of the entries); at least one entry is always sent.
    /// 0 means one entry per message. Default 1 MiB.</summary>
    public ulong MaxSizePerMsg { get; set; } = 1024 * 1024;
    /// <summary>Max bytes of committed entries per <see cref="Ready"/>; 0 means <see cref="MaxSizePerMsg"/>.</summary>
    public ulong MaxCommittedSizePerReady { get; set; }
    /// <summary>Max bytes of payload of uncommitted entries on the leader before proposals are dropped; 0 = unlimited.</summary>
    public ulong MaxUncommittedEntriesSize { get; set; }
    /// <summary>Max in-flight append messages per follower while replicating. Must be &gt; 0. Default 256.</summary>
    public int MaxInflightMsgs { get; set; } = 256;
    /// <summary>Leader steps down when it has not heard from a quorum within an election timeout; followers
    /// ignore votes while they have a live leader (leader lease).</summary>
    public bool CheckQuorum { get; set; }
    /// <summary>Enables the pre-vote phase (thesis §9.6) so partitioned nodes do not disrupt the cluster.</summary>
    public bool PreVote { get; set; }
    /// <summary>How ReadIndex is served; LeaseBased requires <see cref="CheckQuorum"/>.</summary>
    public ReadOnlyOption ReadOnlyOption { get; set; }
    /// <summary>When true followers drop proposals instead of forwarding them to the leader.</summary>
    public bool DisableProposalForwarding { get; set; }
    /// <summary>Source of randomness for election timeouts; inject a seeded one for deterministic tests.</summary>
    public Random Random { get; set; } = Random.Shared;
    /// <summary>Optional log sink; null disables logging.</summary>
    public IRaftLogger? Logger { get; set; }

    /// <summary>
    /// Checks the configuration as etcd's Config.validate does and fills defaults
    /// (MaxUncommittedEntriesSize 0 → unlimited, MaxCommittedSizePerReady 0 → MaxSizePerMsg).
    /// Throws <see cref="RaftException"/> (Kind Other) with etcd's message when invalid.
    /// </summary>
    public void Validate()
    {
        if (Id == 0) throw new RaftException(RaftErrorKind.Other, "cannot use none as id");
        if (HeartbeatTick <= 0) throw new RaftException(RaftErrorKind.Other, "heartbeat tick must be greater than 0");
        if (ElectionTick <= HeartbeatTick) throw new RaftException(RaftErrorKind.Other, "election tick must be greater than heartbeat tick");
        if (Storage is null) throw new RaftException(RaftErrorKind.Other, "storage cannot be nil");
        if (MaxUncommittedEntriesSize == 0) MaxUncommittedEntriesSize = ulong.MaxValue;
        if (MaxCommittedSizePerReady == 0) MaxCommittedSizePerReady = MaxSizePerMsg;
        if (MaxInflightMsgs <= 0) throw new RaftException(RaftErrorKind.Other, "max inflight messages must be greater than 0");
        if (ReadOnlyOption == ReadOnlyOption.LeaseBased && !CheckQuorum)
            throw new RaftException(RaftErrorKind.Other, "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased");
        Random ??= Random.Shared;
    }
}

/// <summary>
/// Everything the application must do after a step (node.go Ready). Contract, as in etcd-io/raft: persist
/// <see cref="HardState"/> (when <see cref="HasHardState"/>), <see cref="Entries"/> and <see cref="Snapshot"/> to
/// stable storage and to the <see cref="IRaftStorage"/> (MemoryStorage.Append/ApplySnapshot), fsync when
/// <see cref="MustSync"/>; send <see cref="Messages"/>; apply <see cref="CommittedEntries"/>; then call
/// <see cref="RawNode.Advance"/> with this object. Lists are never null.
/// </summary>
public sealed class Ready
{
    internal static readonly IReadOnlyList<Entry> NoEntries = Array.Empty<Entry>();
    internal static readonly IReadOnlyList<Message> NoMessages = Array.Empty<Message>();
    internal static readonly IReadOnlyList<ReadState> NoReadStates = Array.Empty<ReadState>();

    /// <summary>The new soft state, or null when unchanged since the last Ready.</summary>
    public SoftState? SoftState { get; init; }
    /// <summary>The hard state to persist; an empty HardState (all zero) when unchanged — see <see cref="HasHardState"/>.</summary>
    public HardState HardState { get; init; } = new();
    /// <summary>True when <see cref="HardState"/> changed and must be persisted.</summary>
    public bool HasHardState => !RaftUtil.IsEmptyHardState(HardState);
    /// <summary>ReadIndex answers ready for the application (see <see cref="ReadState"/>).</summary>
    public IReadOnlyList<ReadState> ReadStates { get; init; } = NoReadStates;
    /// <summary>Entries to persist before sending <see cref="Messages"/> (in etcd's leader pipelining, in parallel).</summary>
    public IReadOnlyList<Entry> Entries { get; init; } = NoEntries;
    /// <summary>Snapshot to persist and apply, or null when none. Install it (MemoryStorage.ApplySnapshot) before
    /// appending <see cref="Entries"/>, which then follow it.</summary>
    public Snapshot? Snapshot { get; init; }
    /// <summary>Committed entries to apply to the state machine, in index order (may include entries also in
    /// <see cref="Entries"/>, as etcd 3.4 allows for a single voter).</summary>
    public IReadOnlyList<Entry> CommittedEntries { get; init; } = NoEntries;
    /// <summary>Messages to send to peers (after persisting Entries; MsgSnap messages carry the snapshot).</summary>
    public IReadOnlyList<Message> Messages { get; init; } = NoMessages;
    /// <summary>True when HardState term/vote or Entries changed, so the write must be fsynced (node.go MustSync).</summary>
    public bool MustSync { get; init; }

    /// <summary>True when this Ready carries nothing at all.</summary>
    public bool IsEmpty => SoftState is null && !HasHardState && Snapshot is null && Entries.Count == 0
        && CommittedEntries.Count == 0 && Messages.Count == 0 && ReadStates.Count == 0;

    internal ulong AppliedCursor()
    {
        if (CommittedEntries.Count > 0) return CommittedEntries[^1].Index;
        if (Snapshot?.Metadata is { } md && md.Index > 0) return md.Index;
        return 0;
    }
}

/// <summary>The replication state of a follower as seen by the leader (tracker/state.go).</summary>
public enum ProgressState
{
    /// <summary>StateProbe: one append at a time until the match point is found.</summary>
    Probe,
    /// <summary>StateReplicate: optimistic pipelined appends.</summary>
    Replicate,
    /// <summary>StateSnapshot: waiting for a snapshot to be applied.</summary>
    Snapshot,
}

/// <summary>A copy of the leader's view of one peer (tracker.Progress), as returned in <see cref="Status.Progress"/>.</summary>
/// <param name="Match">Highest index known to be replicated on the peer.</param>
/// <param name="Next">Next index to send.</param>
/// <param name="State">Replication state.</param>
/// <param name="PendingSnapshot">Index of the snapshot in flight (StateSnapshot), else 0.</param>
/// <param name="RecentActive">Heard from within the last election timeout (CheckQuorum).</param>
/// <param name="ProbeSent">In StateProbe: an append is outstanding.</param>
/// <param name="IsLearner">The peer is a learner (non-voting).</param>
/// <param name="Inflights">Number of in-flight append messages.</param>
public sealed record ProgressStatus(ulong Match, ulong Next, ProgressState State, ulong PendingSnapshot,
    bool RecentActive, bool ProbeSent, bool IsLearner, int Inflights);

/// <summary>Cheap status of a node (status.go BasicStatus). All values are copies.</summary>
public class BasicStatus
{
    /// <summary>This node's id.</summary>
    public ulong Id { get; init; }
    /// <summary>Current term, vote and commit index.</summary>
    public HardState HardState { get; init; } = new();
    /// <summary>Known leader and role.</summary>
    public SoftState SoftState { get; init; } = new(0, StateType.Follower);
    /// <summary>Applied index as acknowledged through Advance.</summary>
    public ulong Applied { get; init; }
    /// <summary>Target of an ongoing leadership transfer, 0 when none.</summary>
    public ulong LeadTransferee { get; init; }
    /// <summary>Shorthand for <c>SoftState.Lead</c>.</summary>
    public ulong Lead => SoftState.Lead;
    /// <summary>Shorthand for <c>SoftState.RaftState</c>.</summary>
    public StateType RaftState => SoftState.RaftState;
    /// <summary>Shorthand for <c>HardState.Term</c>.</summary>
    public ulong Term => HardState.Term;
    /// <summary>Shorthand for <c>HardState.Commit</c>.</summary>
    public ulong Commit => HardState.Commit;
}

/// <summary>Full status (status.go Status): basic status plus the configuration and, on the leader, per-peer progress.</summary>
public sealed class Status : BasicStatus
{
    /// <summary>Per-peer progress keyed by id; empty unless this node is the leader.</summary>
    public IReadOnlyDictionary<ulong, ProgressStatus> Progress { get; init; } = new Dictionary<ulong, ProgressStatus>();
    /// <summary>The current membership as a ConfState (voters, learners, outgoing voters when joint).</summary>
    public ConfState Config { get; init; } = new();
}
