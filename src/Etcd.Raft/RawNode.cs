using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft;

/// <summary>
/// A Raft node driven by the caller (rawnode.go RawNode, with node.go's semantics but no goroutines).
/// Not thread-safe: one thread calls all methods (the server's raft loop). Time advances only through
/// <see cref="Tick"/>. Typical loop: Tick/Step/Propose …; <c>if (HasReady()) { var rd = GetReady(); persist rd.HardState,
/// rd.Entries, rd.Snapshot; send rd.Messages; apply rd.CommittedEntries; Advance(rd); }</c>.
/// Byte arrays passed in (Propose data, ReadIndex context) are wrapped without copying and must not be mutated
/// afterwards.
/// </summary>
public sealed class RawNode
{
    private readonly Raft _raft;
    private SoftState _prevSoftSt;
    private HardState _prevHardSt;

    /// <summary>Creates a node from <paramref name="config"/> (validated with <see cref="RaftConfig.Validate"/>),
    /// restoring term, vote, commit and membership from <see cref="RaftConfig.Storage"/>. Throws RaftException
    /// (Kind Other) for an invalid configuration.</summary>
    public RawNode(RaftConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _raft = new Raft(config);
        _prevSoftSt = _raft.SoftState();
        _prevHardSt = _raft.HardState();
    }

    internal Raft Raft => _raft;

    /// <summary>
    /// Initializes an empty storage's log with one committed ConfChangeAddNode entry per peer at term 1
    /// (bootstrap.go), applies them to the membership, and makes the node a follower at term 1. The entries
    /// and hard state appear in the next Ready like any other. Throws RaftException (Kind Other) when
    /// <paramref name="peers"/> is empty ("must provide at least one peer to Bootstrap") or the storage is not
    /// empty ("can't bootstrap a nonempty Storage").
    /// </summary>
    public void Bootstrap(IReadOnlyList<Peer> peers)
    {
        if (peers is null || peers.Count == 0)
            throw new RaftException(RaftErrorKind.Other, "must provide at least one peer to Bootstrap");
        if (_raft.Log.Storage.LastIndex() != 0)
            throw new RaftException(RaftErrorKind.Other, "can't bootstrap a nonempty Storage");
        // Make sure the bootstrap hard state is emitted by the next Ready.
        _prevHardSt = new HardState();
        _raft.BecomeFollower(1, Raft.None);
        var ents = new Entry[peers.Count];
        for (int i = 0; i < peers.Count; i++)
        {
            var cc = new ConfChange { Id = 0, Type = ConfChangeType.ConfChangeAddNode, NodeId = peers[i].Id };
            if (peers[i].Context is { } ctx) cc.Context = ByteString.CopyFrom(ctx);
            ents[i] = RaftUtil.NewEntry(1, (ulong)(i + 1), EntryType.EntryConfChange, cc.ToByteString());
        }
        _raft.Log.Append(ents);
        // The entries are committed by construction; they become CommittedEntries so the application sees the
        // membership as usual, while the core applies them right away.
        _raft.Log.Committed = (ulong)ents.Length;
        foreach (var p in peers)
            _raft.ApplyConfChange(RaftUtil.AsV2(new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = p.Id }));
    }

    /// <summary>Advances the logical clock by one tick (election timeout and heartbeat are counted in ticks).</summary>
    public void Tick() => _raft.Tick();

    /// <summary>Like <see cref="Tick"/> for a quiesced group: only the election-elapsed counter advances.</summary>
    public void TickQuiesced() => _raft.ElectionElapsed++;

    /// <summary>Starts an election now (MsgHup); with PreVote, a pre-election first. No-op on a leader or learner.</summary>
    public void Campaign() => _raft.Step(new Message { Type = MessageType.MsgHup });

    /// <summary>Proposes <paramref name="data"/> as a normal entry. Throws RaftException ProposalDropped
    /// ("raft proposal dropped") when there is no leader, forwarding is disabled, a leadership transfer is in
    /// progress, or the uncommitted-size limit is hit. Acceptance does not guarantee commit.</summary>
    public void Propose(byte[] data)
    {
        var m = new Message { Type = MessageType.MsgProp, From = _raft.Id };
        m.Entries.Add(RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, UnsafeByteOperations.UnsafeWrap(data ?? [])));
        _raft.Step(m);
    }

    /// <summary>Proposes several normal entries in one step: one MsgProp, so a leader appends them together and sends
    /// one append per follower for all of them, and a follower forwards them in one message. Errors as
    /// <see cref="Propose(byte[])"/>, for the whole batch (none of it is appended then).</summary>
    public void Propose(IReadOnlyList<byte[]> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return;
        var m = new Message { Type = MessageType.MsgProp, From = _raft.Id };
        for (int i = 0; i < batch.Count; i++)
            m.Entries.Add(RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, UnsafeByteOperations.UnsafeWrap(batch[i] ?? [])));
        _raft.Step(m);
    }

    /// <summary>Proposes a (v1) configuration change as an EntryConfChange entry; errors as <see cref="Propose(byte[])"/>.
    /// A change proposed while another is unapplied is replaced by an empty entry (etcd's behaviour).</summary>
    public void ProposeConfChange(ConfChange cc) => StepConfChange(EntryType.EntryConfChange, cc.ToByteString());

    /// <summary>Proposes a ConfChangeV2 (joint consensus) as an EntryConfChangeV2 entry; errors as <see cref="Propose(byte[])"/>.</summary>
    public void ProposeConfChange(ConfChangeV2 cc) => StepConfChange(EntryType.EntryConfChangeV2, cc.ToByteString());

    private void StepConfChange(EntryType type, ByteString data)
    {
        var m = new Message { Type = MessageType.MsgProp, From = _raft.Id };
        m.Entries.Add(RaftUtil.NewEntry(0, 0, type, data));
        _raft.Step(m);
    }

    /// <summary>Applies a committed configuration change to the membership and returns the resulting ConfState
    /// (to be stored with the next snapshot). Must be called for every committed conf-change entry, in order.
    /// Throws RaftException (Kind Other) when the change is invalid for the current configuration.</summary>
    public ConfState ApplyConfChange(ConfChange cc) => _raft.ApplyConfChange(RaftUtil.AsV2(cc));

    /// <summary>Applies a committed ConfChangeV2 (entering or leaving a joint configuration as it says).</summary>
    public ConfState ApplyConfChange(ConfChangeV2 cc) => _raft.ApplyConfChange(cc);

    /// <summary>Feeds a message received from a peer. Throws RaftException StepLocalMsg for local-only types
    /// and StepPeerNotFound for a response from an unknown peer; ProposalDropped for an undeliverable MsgProp.</summary>
    public void Step(Message m)
    {
        if (RaftUtil.IsLocalMsg(m.Type)) throw new RaftException(RaftErrorKind.StepLocalMsg);
        if (_raft.Prs.Progress.ContainsKey(m.From) || !RaftUtil.IsResponseMsg(m.Type))
        {
            _raft.Step(m);
            return;
        }
        throw new RaftException(RaftErrorKind.StepPeerNotFound);
    }

    /// <summary>Requests a linearizable read point; the answer arrives as a <see cref="ReadState"/> with the same
    /// context in a later Ready (dropped silently when there is no leader — retry on timeout).</summary>
    public void ReadIndex(byte[] requestContext)
    {
        var m = new Message { Type = MessageType.MsgReadIndex };
        m.Entries.Add(new Entry { Data = UnsafeByteOperations.UnsafeWrap(requestContext ?? []) });
        _raft.Step(m);
    }

    /// <summary>Asks the leader to hand leadership to <paramref name="transferee"/> (MsgTransferLeader). On a
    /// follower the request is forwarded to the leader naming this node, as etcd does.</summary>
    public void TransferLeader(ulong transferee) =>
        _raft.Step(new Message { Type = MessageType.MsgTransferLeader, From = transferee });

    /// <summary>Tells the leader the last message to <paramref name="id"/> could not be sent; it falls back to probing.</summary>
    public void ReportUnreachable(ulong id) => StepIgnoringErrors(new Message { Type = MessageType.MsgUnreachable, From = id });

    /// <summary>Reports the outcome of sending a snapshot to <paramref name="id"/>.</summary>
    public void ReportSnapshot(ulong id, SnapshotStatus status) =>
        StepIgnoringErrors(new Message { Type = MessageType.MsgSnapStatus, From = id, Reject = status == SnapshotStatus.Failure });

    private void StepIgnoringErrors(Message m)
    {
        try { _raft.Step(m); }
        catch (RaftException) { }
    }

    /// <summary>True when <see cref="GetReady"/> would return something to do.</summary>
    public bool HasReady()
    {
        // Compare fields directly: this is called on every loop iteration and must not allocate.
        var r = _raft;
        if (r.Lead != _prevSoftSt.Lead || r.State != _prevSoftSt.RaftState) return true;
        bool hsEmpty = r.Term == 0 && r.Vote == 0 && r.Log.Committed == 0;
        if (!hsEmpty && (r.Term != _prevHardSt.Term || r.Vote != _prevHardSt.Vote || r.Log.Committed != _prevHardSt.Commit)) return true;
        if (r.Log.Unstable.Snapshot is not null && !RaftUtil.IsEmptySnap(r.Log.Unstable.Snapshot)) return true;
        if (r.Msgs.Count > 0 || r.Log.Unstable.Entries.Count > 0 || r.Log.HasNextEnts()) return true;
        return r.ReadStates.Count != 0;
    }

    /// <summary>Returns the pending work and hands messages and read states over to the caller. The caller must
    /// call <see cref="Advance"/> with it once done (before the next GetReady).</summary>
    public Ready GetReady()
    {
        var r = _raft;
        bool softChanged = r.Lead != _prevSoftSt.Lead || r.State != _prevSoftSt.RaftState;
        var ss = softChanged ? r.SoftState() : null;
        bool hsChanged = r.Term != _prevHardSt.Term || r.Vote != _prevHardSt.Vote || r.Log.Committed != _prevHardSt.Commit;
        var hs = hsChanged ? r.HardState() : _prevHardSt;
        var ents = r.Log.UnstableEntries();
        var rd = new Ready
        {
            Entries = ents,
            CommittedEntries = r.Log.NextEnts(),
            Messages = r.Msgs.Count == 0 ? Ready.NoMessages : r.Msgs,
            SoftState = ss,
            HardState = hsChanged ? hs : new HardState(),
            Snapshot = r.Log.Unstable.Snapshot,
            ReadStates = r.ReadStates.Count == 0 ? Ready.NoReadStates : r.ReadStates,
            MustSync = ents.Count != 0 || hs.Vote != _prevHardSt.Vote || hs.Term != _prevHardSt.Term,
        };
        // Accept: the caller now owns messages and read states.
        if (rd.SoftState is not null) _prevSoftSt = rd.SoftState;
        if (r.ReadStates.Count != 0) r.ReadStates = new List<ReadState>();
        if (r.Msgs.Count != 0) r.Msgs = new List<Message>();
        return rd;
    }

    /// <summary>Acknowledges that <paramref name="rd"/> was persisted, sent and applied: stable entries leave the
    /// unstable log and the applied index moves to the last committed entry of the Ready.</summary>
    public void Advance(Ready rd)
    {
        if (rd.HasHardState) _prevHardSt = rd.HardState;
        _raft.Advance(rd);
    }

    /// <summary>Full status, with per-peer progress when leader (status.go getStatus).</summary>
    public Status GetStatus()
    {
        var r = _raft;
        Dictionary<ulong, ProgressStatus> prs = new();
        if (r.State == StateType.Leader)
            foreach (var (id, pr) in r.Prs.Progress) prs[id] = pr.ToStatus();
        return new Status
        {
            Id = r.Id,
            HardState = r.HardState(),
            SoftState = r.SoftState(),
            Applied = r.Log.Applied,
            LeadTransferee = r.LeadTransferee,
            Progress = prs,
            Config = r.Prs.ToConfState(),
        };
    }

    /// <summary>Cheap status without progress or configuration (status.go getBasicStatus).</summary>
    public BasicStatus GetBasicStatus()
    {
        var r = _raft;
        return new BasicStatus
        {
            Id = r.Id,
            HardState = r.HardState(),
            SoftState = r.SoftState(),
            Applied = r.Log.Applied,
            LeadTransferee = r.LeadTransferee,
        };
    }
}
