using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft;

/// <summary>
/// The Raft state machine (raft.go). Single-threaded and deterministic: input is <see cref="Step"/> and
/// <see cref="Tick"/>, output is accumulated in <see cref="Msgs"/>, <see cref="ReadStates"/> and the log.
/// </summary>
internal sealed class Raft
{
    public const ulong None = 0;
    private static readonly ByteString CampaignTransferCtx = ByteString.CopyFromUtf8("CampaignTransfer");

    private enum CampaignType { PreElection, Election, Transfer }

    public readonly ulong Id;
    public ulong Term;
    public ulong Vote;
    public List<ReadState> ReadStates = new();
    public readonly RaftLog Log;
    private readonly ulong _maxMsgSize;
    private readonly ulong _maxUncommittedSize;
    public ProgressTracker Prs;
    public StateType State;
    public bool IsLearner;
    public List<Message> Msgs = new();
    public ulong Lead;
    public ulong LeadTransferee;
    public ulong PendingConfIndex;
    public ulong UncommittedSize;
    private ReadOnly _readOnly;
    public int ElectionElapsed;
    public int HeartbeatElapsed;
    private readonly bool _checkQuorum;
    private readonly bool _preVote;
    public readonly int HeartbeatTimeout;
    public readonly int ElectionTimeout;
    public int RandomizedElectionTimeout;
    private readonly bool _disableProposalForwarding;
    private readonly Random _random;
    private readonly IRaftLogger? _logger;
    private List<Message> _pendingReadIndexMessages = new();

    public Raft(RaftConfig c)
    {
        c.Validate();
        _logger = c.Logger;
        Log = new RaftLog(c.Storage, c.Logger, c.MaxCommittedSizePerReady);
        var (hs, cs) = c.Storage.InitialState();
        Id = c.Id;
        Lead = None;
        _maxMsgSize = c.MaxSizePerMsg;
        _maxUncommittedSize = c.MaxUncommittedEntriesSize;
        Prs = new ProgressTracker(c.MaxInflightMsgs);
        ElectionTimeout = c.ElectionTick;
        HeartbeatTimeout = c.HeartbeatTick;
        _checkQuorum = c.CheckQuorum;
        _preVote = c.PreVote;
        _readOnly = new ReadOnly(c.ReadOnlyOption);
        _disableProposalForwarding = c.DisableProposalForwarding;
        _random = c.Random;

        var (cfg, prs) = ConfChanger.Restore(Prs, Log.LastIndex(), cs ?? new ConfState());
        SwitchToConfig(cfg, prs);
        if (!RaftUtil.IsEmptyHardState(hs)) LoadState(hs);
        if (c.Applied > 0) Log.AppliedTo(c.Applied);
        BecomeFollower(Term, None);
        _logger?.Info($"newRaft {Id:x} [peers: [{string.Join(",", Prs.VoterNodes().Select(n => n.ToString("x")))}], term: {Term}, commit: {Log.Committed}, applied: {Log.Applied}, lastindex: {Log.LastIndex()}, lastterm: {Log.LastTerm()}]");
    }

    public bool HasLeader => Lead != None;

    public SoftState SoftState() => new(Lead, State);

    public HardState HardState() => new() { Term = Term, Vote = Vote, Commit = Log.Committed };

    public bool CheckQuorum => _checkQuorum;

    public ReadOnlyOption ReadOnlyOption => _readOnly.Option;

    // ---- sending ----

    private void Send(Message m)
    {
        m.From = Id;
        var t = m.Type;
        if (t is MessageType.MsgVote or MessageType.MsgVoteResp or MessageType.MsgPreVote or MessageType.MsgPreVoteResp)
        {
            if (m.Term == 0) throw new InvalidOperationException($"term should be set when sending {t}");
        }
        else
        {
            if (m.Term != 0) throw new InvalidOperationException($"term should not be set when sending {t} (was {m.Term})");
            // Proposals and read requests forwarded to the leader are term-less (treated as local there).
            if (t != MessageType.MsgProp && t != MessageType.MsgReadIndex) m.Term = Term;
        }
        Msgs.Add(m);
    }

    private void SendAppend(ulong to) => MaybeSendAppend(to, sendIfEmpty: true);

    /// <summary>Sends an append (or a snapshot when the needed entries are compacted) to <paramref name="to"/>.</summary>
    private bool MaybeSendAppend(ulong to, bool sendIfEmpty)
    {
        var pr = Prs.Progress[to];
        if (pr.IsPaused()) return false;
        var m = new Message { To = to };
        bool termOk = Log.TryTerm(pr.Next - 1, out ulong term);
        // Entries go straight into the message (no intermediate list on the hot path).
        bool compacted = false;
        if (pr.Next <= Log.LastIndex()) Log.SliceInto(m.Entries, pr.Next, Log.LastIndex() + 1, _maxMsgSize, out compacted);
        var ents = m.Entries;
        if (ents.Count == 0 && !sendIfEmpty) return false;

        if (!termOk || compacted)
        {
            if (!pr.RecentActive)
            {
                _logger?.Debug($"ignore sending snapshot to {to:x} since it is not recently active");
                return false;
            }
            m.Type = MessageType.MsgSnap;
            m.Entries.Clear();
            Snapshot snapshot;
            try
            {
                snapshot = Log.Snapshot();
            }
            catch (RaftException e) when (e.Kind == RaftErrorKind.SnapshotTemporarilyUnavailable)
            {
                _logger?.Debug($"{Id:x} failed to send snapshot to {to:x} because snapshot is temporarily unavailable");
                return false;
            }
            if (RaftUtil.IsEmptySnap(snapshot)) throw new InvalidOperationException("need non-empty snapshot");
            m.Snapshot = snapshot;
            ulong sindex = snapshot.Metadata.Index, sterm = snapshot.Metadata.Term;
            _logger?.Debug($"{Id:x} [firstindex: {Log.FirstIndex()}, commit: {Log.Committed}] sent snapshot[index: {sindex}, term: {sterm}] to {to:x} [{pr}]");
            pr.BecomeSnapshot(sindex);
            _logger?.Debug($"{Id:x} paused sending replication messages to {to:x} [{pr}]");
        }
        else
        {
            m.Type = MessageType.MsgApp;
            m.Index = pr.Next - 1;
            m.LogTerm = term;
            m.Commit = Log.Committed;
            int n = ents.Count;
            if (n != 0)
            {
                switch (pr.State)
                {
                    case ProgressState.Replicate:
                        ulong last = ents[n - 1].Index;
                        pr.OptimisticUpdate(last);
                        pr.Inflights.Add(last);
                        break;
                    case ProgressState.Probe:
                        pr.ProbeSent = true;
                        break;
                    default:
                        throw new InvalidOperationException($"{Id:x} is sending append in unhandled state {pr.State}");
                }
            }
        }
        Send(m);
        return true;
    }

    private void SendHeartbeat(ulong to, ByteString? ctx)
    {
        // A follower might not have all entries up to our commit index; never tell it to commit past its match.
        ulong commit = Math.Min(Prs.Progress[to].Match, Log.Committed);
        var m = new Message { To = to, Type = MessageType.MsgHeartbeat, Commit = commit };
        if (ctx is not null) m.Context = ctx;
        Send(m);
    }

    private void BcastAppend()
    {
        foreach (var id in Prs.Ids)
            if (id != Id) SendAppend(id);
    }

    private void BcastHeartbeat()
    {
        var last = _readOnly.LastPendingRequestCtx();
        BcastHeartbeatWithCtx(last is { Length: > 0 } ? last : null);
    }

    private void BcastHeartbeatWithCtx(ByteString? ctx)
    {
        foreach (var id in Prs.Ids)
            if (id != Id) SendHeartbeat(id, ctx);
    }

    // ---- Ready/Advance ----

    public void Advance(Ready rd)
    {
        ulong index = rd.AppliedCursor();
        if (index > 0)
        {
            Log.AppliedTo(index);
            if (Prs.Config.AutoLeave && index >= PendingConfIndex && State == StateType.Leader)
            {
                // Propose the empty ConfChangeV2 that leaves the joint configuration.
                var ent = RaftUtil.NewEntry(0, 0, EntryType.EntryConfChangeV2, new ConfChangeV2().ToByteString());
                bool appended = AppendEntry([ent]);
                // Retry after the next apply when dropped; when appended, the leave entry is the pending conf
                // change. (etcd 3.4 forgot the latter and could append a second leave entry, which fails to
                // apply; later etcd-io/raft versions fixed it the same way.)
                PendingConfIndex = Log.LastIndex();
                if (appended) _logger?.Info($"initiating automatic transition out of joint configuration {Prs.Config}");
            }
        }
        ReduceUncommittedSize(rd.CommittedEntries);
        if (rd.Entries.Count > 0)
        {
            var e = rd.Entries[^1];
            Log.StableTo(e.Index, e.Term);
        }
        if (!RaftUtil.IsEmptySnap(rd.Snapshot)) Log.StableSnapTo(rd.Snapshot!.Metadata.Index);
    }

    private bool MaybeCommit() => Log.MaybeCommit(Prs.Committed(), Term);

    private void Reset(ulong term)
    {
        if (Term != term)
        {
            Term = term;
            Vote = None;
        }
        Lead = None;
        ElectionElapsed = 0;
        HeartbeatElapsed = 0;
        ResetRandomizedElectionTimeout();
        AbortLeaderTransfer();
        Prs.ResetVotes();
        ulong last = Log.LastIndex();
        foreach (var (id, pr) in Prs.Progress)
        {
            pr.Match = id == Id ? last : 0;
            pr.Next = last + 1;
            pr.State = ProgressState.Probe;
            pr.PendingSnapshot = 0;
            pr.RecentActive = false;
            pr.ProbeSent = false;
            pr.Inflights = new Inflights(Prs.MaxInflight);
        }
        PendingConfIndex = 0;
        UncommittedSize = 0;
        _readOnly = new ReadOnly(_readOnly.Option);
    }

    /// <summary>Appends entries at the current term (assigning term and index in place); false when dropped by the
    /// uncommitted-size limit.</summary>
    private bool AppendEntry(IReadOnlyList<Entry> es)
    {
        ulong li = Log.LastIndex();
        for (int i = 0; i < es.Count; i++)
        {
            es[i].Term = Term;
            es[i].Index = li + 1 + (ulong)i;
        }
        if (!IncreaseUncommittedSize(es))
        {
            _logger?.Debug($"{Id:x} appending new entries to log would exceed uncommitted entry size limit; dropping proposal");
            return false;
        }
        li = Log.Append(es);
        Prs.Progress[Id].MaybeUpdate(li);
        // A single voter commits right away (etcd 3.4 counts the leader's unpersisted log as acknowledged).
        MaybeCommit();
        return true;
    }

    // ---- ticks ----

    public void Tick()
    {
        if (State == StateType.Leader) TickHeartbeat();
        else TickElection();
    }

    private void TickElection()
    {
        ElectionElapsed++;
        if (Promotable() && PastElectionTimeout())
        {
            ElectionElapsed = 0;
            Step(new Message { From = Id, Type = MessageType.MsgHup });
        }
    }

    private void TickHeartbeat()
    {
        HeartbeatElapsed++;
        ElectionElapsed++;
        if (ElectionElapsed >= ElectionTimeout)
        {
            ElectionElapsed = 0;
            if (_checkQuorum) Step(new Message { From = Id, Type = MessageType.MsgCheckQuorum });
            // A transfer that has not completed within an election timeout is abandoned.
            if (State == StateType.Leader && LeadTransferee != None) AbortLeaderTransfer();
        }
        if (State != StateType.Leader) return;
        if (HeartbeatElapsed >= HeartbeatTimeout)
        {
            HeartbeatElapsed = 0;
            Step(new Message { From = Id, Type = MessageType.MsgBeat });
        }
    }

    // ---- role transitions ----

    public void BecomeFollower(ulong term, ulong lead)
    {
        Reset(term);
        Lead = lead;
        State = StateType.Follower;
        _logger?.Info($"{Id:x} became follower at term {Term}");
    }

    private void BecomeCandidate()
    {
        if (State == StateType.Leader) throw new InvalidOperationException("invalid transition [leader -> candidate]");
        Reset(Term + 1);
        Vote = Id;
        State = StateType.Candidate;
        _logger?.Info($"{Id:x} became candidate at term {Term}");
    }

    private void BecomePreCandidate()
    {
        if (State == StateType.Leader) throw new InvalidOperationException("invalid transition [leader -> pre-candidate]");
        // Pre-candidacy changes neither term nor vote.
        Prs.ResetVotes();
        Lead = None;
        State = StateType.PreCandidate;
        _logger?.Info($"{Id:x} became pre-candidate at term {Term}");
    }

    private void BecomeLeader()
    {
        if (State == StateType.Follower) throw new InvalidOperationException("invalid transition [follower -> leader]");
        Reset(Term);
        Lead = Id;
        State = StateType.Leader;
        // Our own log is, by definition, fully replicated to ourselves.
        Prs.Progress[Id].BecomeReplicate();
        // Conservatively assume there may be an unapplied conf change in the log.
        PendingConfIndex = Log.LastIndex();
        var empty = RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, null);
        if (!AppendEntry([empty])) throw new InvalidOperationException("empty entry was dropped");
        // The empty entry does not count against the uncommitted-size limit.
        ReduceUncommittedSize([empty]);
        _logger?.Info($"{Id:x} became leader at term {Term}");
    }

    private void Campaign(CampaignType t)
    {
        if (!Promotable()) _logger?.Warning($"{Id:x} is unpromotable; campaign() should have been called");
        ulong term;
        MessageType voteMsg;
        if (t == CampaignType.PreElection)
        {
            BecomePreCandidate();
            voteMsg = MessageType.MsgPreVote;
            // Pre-votes are requested for the term we would campaign in.
            term = Term + 1;
        }
        else
        {
            BecomeCandidate();
            voteMsg = MessageType.MsgVote;
            term = Term;
        }
        if (Poll(Id, VoteRespMsgType(voteMsg), true).result == VoteResult.Won)
        {
            // Single-voter config: won by our own vote.
            if (t == CampaignType.PreElection) Campaign(CampaignType.Election);
            else BecomeLeader();
            return;
        }
        ulong lastIndex = Log.LastIndex(), lastTerm = Log.LastTerm();
        foreach (var id in Prs.VoterNodes())
        {
            if (id == Id) continue;
            _logger?.Info($"{Id:x} [logterm: {lastTerm}, index: {lastIndex}] sent {voteMsg} request to {id:x} at term {Term}");
            var m = new Message { Term = term, To = id, Type = voteMsg, Index = lastIndex, LogTerm = lastTerm };
            if (t == CampaignType.Transfer) m.Context = CampaignTransferCtx;
            Send(m);
        }
    }

    private (int granted, int rejected, VoteResult result) Poll(ulong id, MessageType t, bool v)
    {
        if (v) _logger?.Info($"{Id:x} received {t} from {id:x} at term {Term}");
        else _logger?.Info($"{Id:x} received {t} rejection from {id:x} at term {Term}");
        Prs.RecordVote(id, v);
        return Prs.TallyVotes();
    }

    private static MessageType VoteRespMsgType(MessageType t) => t switch
    {
        MessageType.MsgVote => MessageType.MsgVoteResp,
        MessageType.MsgPreVote => MessageType.MsgPreVoteResp,
        _ => throw new InvalidOperationException($"not a vote message: {t}"),
    };

    // ---- Step ----

    /// <summary>Processes one message. Throws RaftException ProposalDropped for proposals that cannot be accepted.</summary>
    public void Step(Message m)
    {
        // Term handling common to all roles.
        if (m.Term == 0)
        {
            // Local message.
        }
        else if (m.Term > Term)
        {
            if (m.Type is MessageType.MsgVote or MessageType.MsgPreVote)
            {
                bool force = m.Context.Equals(CampaignTransferCtx);
                bool inLease = _checkQuorum && Lead != None && ElectionElapsed < ElectionTimeout;
                if (!force && inLease)
                {
                    // We heard from a live leader within the minimum election timeout: ignore the vote (leader lease).
                    _logger?.Info($"{Id:x} [logterm: {Log.LastTerm()}, index: {Log.LastIndex()}, vote: {Vote:x}] ignored {m.Type} from {m.From:x} [logterm: {m.LogTerm}, index: {m.Index}] at term {Term}: lease is not expired (remaining ticks: {ElectionTimeout - ElectionElapsed})");
                    return;
                }
            }
            if (m.Type == MessageType.MsgPreVote)
            {
                // Never change our term in response to a pre-vote.
            }
            else if (m.Type == MessageType.MsgPreVoteResp && !m.Reject)
            {
                // A granted pre-vote carries the future term; we bump it only when the pre-election is won.
            }
            else
            {
                _logger?.Info($"{Id:x} [term: {Term}] received a {m.Type} message with higher term from {m.From:x} [term: {m.Term}]");
                if (m.Type is MessageType.MsgApp or MessageType.MsgHeartbeat or MessageType.MsgSnap)
                    BecomeFollower(m.Term, m.From);
                else
                    BecomeFollower(m.Term, None);
            }
        }
        else if (m.Term < Term)
        {
            if ((_checkQuorum || _preVote) && m.Type is MessageType.MsgHeartbeat or MessageType.MsgApp)
            {
                // A stale leader (e.g. after a partition healed): tell it about the newer term so it steps down,
                // otherwise with CheckQuorum/PreVote it could keep us from ever being elected.
                Send(new Message { To = m.From, Type = MessageType.MsgAppResp });
            }
            else if (m.Type == MessageType.MsgPreVote)
            {
                _logger?.Info($"{Id:x} [logterm: {Log.LastTerm()}, index: {Log.LastIndex()}, vote: {Vote:x}] rejected {m.Type} from {m.From:x} [logterm: {m.LogTerm}, index: {m.Index}] at term {Term}");
                Send(new Message { To = m.From, Term = Term, Type = MessageType.MsgPreVoteResp, Reject = true });
            }
            else
            {
                _logger?.Info($"{Id:x} [term: {Term}] ignored a {m.Type} message with lower term from {m.From:x} [term: {m.Term}]");
            }
            return;
        }

        switch (m.Type)
        {
            case MessageType.MsgHup:
                if (State != StateType.Leader)
                {
                    if (!Promotable())
                    {
                        _logger?.Warning($"{Id:x} is unpromotable and can not campaign; ignoring MsgHup");
                        return;
                    }
                    var ents = Log.Slice(Log.Applied + 1, Log.Committed + 1, ulong.MaxValue, out bool compacted);
                    if (compacted) throw new InvalidOperationException("unexpected error getting unapplied entries (compacted)");
                    int n = NumOfPendingConf(ents);
                    if (n != 0 && Log.Committed > Log.Applied)
                    {
                        _logger?.Warning($"{Id:x} cannot campaign at term {Term} since there are still {n} pending configuration changes to apply");
                        return;
                    }
                    _logger?.Info($"{Id:x} is starting a new election at term {Term}");
                    Campaign(_preVote ? CampaignType.PreElection : CampaignType.Election);
                }
                else
                {
                    _logger?.Debug($"{Id:x} ignoring MsgHup because already leader");
                }
                break;

            case MessageType.MsgVote:
            case MessageType.MsgPreVote:
            {
                // We can vote for the sender if we already did, if we have neither voted nor know a leader in this
                // term, or if it is a pre-vote for a future term.
                bool canVote = Vote == m.From || (Vote == None && Lead == None) ||
                               (m.Type == MessageType.MsgPreVote && m.Term > Term);
                if (canVote && Log.IsUpToDate(m.Index, m.LogTerm))
                {
                    _logger?.Info($"{Id:x} [logterm: {Log.LastTerm()}, index: {Log.LastIndex()}, vote: {Vote:x}] cast {m.Type} for {m.From:x} [logterm: {m.LogTerm}, index: {m.Index}] at term {Term}");
                    // The response carries the message's term (for a pre-vote, the future term).
                    Send(new Message { To = m.From, Term = m.Term, Type = VoteRespMsgType(m.Type) });
                    if (m.Type == MessageType.MsgVote)
                    {
                        ElectionElapsed = 0;
                        Vote = m.From;
                    }
                }
                else
                {
                    _logger?.Info($"{Id:x} [logterm: {Log.LastTerm()}, index: {Log.LastIndex()}, vote: {Vote:x}] rejected {m.Type} from {m.From:x} [logterm: {m.LogTerm}, index: {m.Index}] at term {Term}");
                    Send(new Message { To = m.From, Term = Term, Type = VoteRespMsgType(m.Type), Reject = true });
                }
                break;
            }

            default:
                switch (State)
                {
                    case StateType.Leader: StepLeader(m); break;
                    case StateType.Candidate:
                    case StateType.PreCandidate: StepCandidate(m); break;
                    default: StepFollower(m); break;
                }
                break;
        }
    }

    private void StepLeader(Message m)
    {
        switch (m.Type)
        {
            case MessageType.MsgBeat:
                BcastHeartbeat();
                return;
            case MessageType.MsgCheckQuorum:
                // The leader always counts itself as active.
                if (Prs.Progress.TryGetValue(Id, out var self)) self.RecentActive = true;
                if (!Prs.QuorumActive())
                {
                    _logger?.Warning($"{Id:x} stepped down to follower since quorum is not active");
                    BecomeFollower(Term, None);
                }
                // Mark everyone else inactive until they are heard from again.
                foreach (var (id, pr) in Prs.Progress)
                    if (id != Id) pr.RecentActive = false;
                return;
            case MessageType.MsgProp:
                StepLeaderProp(m);
                return;
            case MessageType.MsgReadIndex:
                // A single voter can answer immediately.
                if (Prs.IsSingleton)
                {
                    var resp = ResponseToReadIndexReq(m, Log.Committed);
                    if (resp is not null) Send(resp);
                    return;
                }
                // Until an entry of this term is committed the leader's commit index may be stale (thesis §6.4).
                if (!CommittedEntryInCurrentTerm())
                {
                    _pendingReadIndexMessages.Add(m);
                    return;
                }
                SendMsgReadIndexResponse(m);
                return;
        }

        // The remaining types all need the sender's progress.
        if (!Prs.Progress.TryGetValue(m.From, out var p))
        {
            _logger?.Debug($"{Id:x} no progress available for {m.From:x}");
            return;
        }
        switch (m.Type)
        {
            case MessageType.MsgAppResp:
                p.RecentActive = true;
                if (m.Reject)
                {
                    _logger?.Debug($"{Id:x} received MsgAppResp(MsgApp was rejected, lastindex: {m.RejectHint}) from {m.From:x} for index {m.Index}");
                    if (p.MaybeDecrTo(m.Index, m.RejectHint))
                    {
                        _logger?.Debug($"{Id:x} decreased progress of {m.From:x} to [{p}]");
                        if (p.State == ProgressState.Replicate) p.BecomeProbe();
                        SendAppend(m.From);
                    }
                }
                else
                {
                    bool oldPaused = p.IsPaused();
                    if (p.MaybeUpdate(m.Index))
                    {
                        if (p.State == ProgressState.Probe)
                            p.BecomeReplicate();
                        else if (p.State == ProgressState.Snapshot && p.Match >= p.PendingSnapshot)
                        {
                            _logger?.Debug($"{Id:x} recovered from needing snapshot, resumed sending replication messages to {m.From:x} [{p}]");
                            // Pass through probe so Next is recomputed from Match.
                            p.BecomeProbe();
                            p.BecomeReplicate();
                        }
                        else if (p.State == ProgressState.Replicate)
                            p.Inflights.FreeLE(m.Index);

                        if (MaybeCommit())
                        {
                            ReleasePendingReadIndexMessages();
                            BcastAppend();
                        }
                        else if (oldPaused)
                        {
                            // The follower was paused and may now be able to take more.
                            SendAppend(m.From);
                        }
                        // Send as many appends as flow control allows (large logs).
                        while (MaybeSendAppend(m.From, sendIfEmpty: false)) { }
                        if (m.From == LeadTransferee && p.Match == Log.LastIndex())
                        {
                            _logger?.Info($"{Id:x} sent MsgTimeoutNow to {m.From:x} after received MsgAppResp");
                            SendTimeoutNow(m.From);
                        }
                    }
                }
                break;

            case MessageType.MsgHeartbeatResp:
                p.RecentActive = true;
                p.ProbeSent = false;
                // Free one slot so a follower with a full window can make progress.
                if (p.State == ProgressState.Replicate && p.Inflights.Full) p.Inflights.FreeFirstOne();
                if (p.Match < Log.LastIndex()) SendAppend(m.From);
                if (_readOnly.Option != ReadOnlyOption.Safe || m.Context.Length == 0) return;
                var acks = _readOnly.RecvAck(m.From, m.Context);
                if (acks is null || Prs.VoteResultOf(acks) != VoteResult.Won) return;
                var rss = _readOnly.Advance(m);
                if (rss is null) return;
                foreach (var rs in rss)
                {
                    var resp = ResponseToReadIndexReq(rs.Req, rs.Index);
                    if (resp is not null) Send(resp);
                }
                break;

            case MessageType.MsgSnapStatus:
                if (p.State != ProgressState.Snapshot) return;
                if (!m.Reject)
                {
                    p.BecomeProbe();
                    _logger?.Debug($"{Id:x} snapshot succeeded, resumed sending replication messages to {m.From:x} [{p}]");
                }
                else
                {
                    // Forget the snapshot so the next probe does not assume it arrived.
                    p.PendingSnapshot = 0;
                    p.BecomeProbe();
                    _logger?.Debug($"{Id:x} snapshot failed, resumed sending replication messages to {m.From:x} [{p}]");
                }
                // Wait for the follower's MsgAppResp (or a heartbeat response) before probing again.
                p.ProbeSent = true;
                break;

            case MessageType.MsgUnreachable:
                // Optimistic replication likely lost messages: fall back to probing.
                if (p.State == ProgressState.Replicate) p.BecomeProbe();
                _logger?.Debug($"{Id:x} failed to send message to {m.From:x} because it is unreachable [{p}]");
                break;

            case MessageType.MsgTransferLeader:
            {
                if (p.IsLearner)
                {
                    _logger?.Debug($"{Id:x} is learner. Ignored transferring leadership");
                    return;
                }
                ulong transferee = m.From;
                ulong lastTransferee = LeadTransferee;
                if (lastTransferee != None)
                {
                    if (lastTransferee == transferee)
                    {
                        _logger?.Info($"{Id:x} [term {Term}] transfer leadership to {transferee:x} is in progress, ignores request to same node {transferee:x}");
                        return;
                    }
                    AbortLeaderTransfer();
                    _logger?.Info($"{Id:x} [term {Term}] abort previous transferring leadership to {lastTransferee:x}");
                }
                if (transferee == Id)
                {
                    _logger?.Debug($"{Id:x} is already leader. Ignored transferring leadership to self");
                    return;
                }
                _logger?.Info($"{Id:x} [term {Term}] starts to transfer leadership to {transferee:x}");
                // The transfer must finish within one election timeout.
                ElectionElapsed = 0;
                LeadTransferee = transferee;
                if (p.Match == Log.LastIndex())
                {
                    SendTimeoutNow(transferee);
                    _logger?.Info($"{Id:x} sends MsgTimeoutNow to {transferee:x} immediately as {transferee:x} already has up-to-date log");
                }
                else
                {
                    SendAppend(transferee);
                }
                break;
            }
        }
    }

    private void StepLeaderProp(Message m)
    {
        if (m.Entries.Count == 0) throw new InvalidOperationException($"{Id:x} stepped empty MsgProp");
        if (!Prs.Progress.ContainsKey(Id))
        {
            // We were removed from the configuration while leader: drop proposals.
            throw new RaftException(RaftErrorKind.ProposalDropped);
        }
        if (LeadTransferee != None)
        {
            _logger?.Debug($"{Id:x} [term {Term}] transfer leadership to {LeadTransferee:x} is in progress; dropping proposal");
            throw new RaftException(RaftErrorKind.ProposalDropped);
        }
        // Entries of a proposal from a peer are copied: the message object may be shared or redelivered.
        bool local = m.From == Id || m.From == None;
        IReadOnlyList<Entry> es = m.Entries;
        if (!local)
        {
            var copy = new Entry[m.Entries.Count];
            for (int i = 0; i < copy.Length; i++)
            {
                var e = m.Entries[i];
                copy[i] = RaftUtil.NewEntry(0, 0, e.Type, e.HasData ? e.Data : null);
            }
            es = copy;
        }
        Entry[]? replaced = null;
        for (int i = 0; i < es.Count; i++)
        {
            var e = es[i];
            ConfChangeV2? cc = null;
            if (e.Type == EntryType.EntryConfChange) cc = RaftUtil.AsV2(ConfChange.Parser.ParseFrom(e.Data));
            else if (e.Type == EntryType.EntryConfChangeV2) cc = ConfChangeV2.Parser.ParseFrom(e.Data);
            if (cc is null) continue;
            bool alreadyPending = PendingConfIndex > Log.Applied;
            bool alreadyJoint = Prs.Config.IsJoint;
            bool wantsLeaveJoint = cc.Changes.Count == 0;
            string? refused = null;
            if (alreadyPending)
                refused = $"possible unapplied conf change at index {PendingConfIndex} (applied to {Log.Applied})";
            else if (alreadyJoint && !wantsLeaveJoint)
                refused = "must transition out of joint config first";
            else if (!alreadyJoint && wantsLeaveJoint)
                refused = "not in joint state; refusing empty conf change";
            if (refused is not null)
            {
                _logger?.Info($"{Id:x} ignoring conf change {cc} at config {Prs.Config}: {refused}");
                replaced ??= es.ToArray();
                replaced[i] = RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, null);
            }
            else
            {
                PendingConfIndex = Log.LastIndex() + (ulong)i + 1;
            }
        }
        if (!AppendEntry(replaced ?? es)) throw new RaftException(RaftErrorKind.ProposalDropped);
        BcastAppend();
    }

    private void StepCandidate(Message m)
    {
        // Only answers to our own kind of vote request count.
        var myVoteRespType = State == StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
        switch (m.Type)
        {
            case MessageType.MsgProp:
                _logger?.Info($"{Id:x} no leader at term {Term}; dropping proposal");
                throw new RaftException(RaftErrorKind.ProposalDropped);
            case MessageType.MsgApp:
                BecomeFollower(m.Term, m.From); // m.Term == Term here
                HandleAppendEntries(m);
                break;
            case MessageType.MsgHeartbeat:
                BecomeFollower(m.Term, m.From);
                HandleHeartbeat(m);
                break;
            case MessageType.MsgSnap:
                BecomeFollower(m.Term, m.From);
                HandleSnapshot(m);
                break;
            case MessageType.MsgTimeoutNow:
                _logger?.Debug($"{Id:x} [term {Term} state {State}] ignored MsgTimeoutNow from {m.From:x}");
                break;
            default:
                if (m.Type != myVoteRespType) break;
                var (gr, rj, res) = Poll(m.From, m.Type, !m.Reject);
                _logger?.Info($"{Id:x} has received {gr} {m.Type} votes and {rj} vote rejections");
                if (res == VoteResult.Won)
                {
                    if (State == StateType.PreCandidate) Campaign(CampaignType.Election);
                    else
                    {
                        BecomeLeader();
                        BcastAppend();
                    }
                }
                else if (res == VoteResult.Lost)
                {
                    // A lost pre-vote or vote returns us to follower at our current term.
                    BecomeFollower(Term, None);
                }
                break;
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.MsgProp:
                if (Lead == None)
                {
                    _logger?.Info($"{Id:x} no leader at term {Term}; dropping proposal");
                    throw new RaftException(RaftErrorKind.ProposalDropped);
                }
                if (_disableProposalForwarding)
                {
                    _logger?.Info($"{Id:x} not forwarding to leader {Lead:x} at term {Term}; dropping proposal");
                    throw new RaftException(RaftErrorKind.ProposalDropped);
                }
                Send(Forward(m));
                break;
            case MessageType.MsgApp:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleAppendEntries(m);
                break;
            case MessageType.MsgHeartbeat:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleHeartbeat(m);
                break;
            case MessageType.MsgSnap:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleSnapshot(m);
                break;
            case MessageType.MsgTransferLeader:
                if (Lead == None)
                {
                    _logger?.Info($"{Id:x} no leader at term {Term}; dropping leader transfer msg");
                    return;
                }
                Send(Forward(m));
                break;
            case MessageType.MsgTimeoutNow:
                if (Promotable())
                {
                    _logger?.Info($"{Id:x} [term {Term}] received MsgTimeoutNow from {m.From:x} and starts an election to get leadership.");
                    // Leadership transfers never use pre-vote: we know we are up to date.
                    Campaign(CampaignType.Transfer);
                }
                else
                {
                    _logger?.Info($"{Id:x} received MsgTimeoutNow from {m.From:x} but is not promotable");
                }
                break;
            case MessageType.MsgReadIndex:
                if (Lead == None)
                {
                    _logger?.Info($"{Id:x} no leader at term {Term}; dropping index reading msg");
                    return;
                }
                Send(Forward(m));
                break;
            case MessageType.MsgReadIndexResp:
                if (m.Entries.Count != 1)
                {
                    _logger?.Error($"{Id:x} invalid format of MsgReadIndexResp from {m.From:x}, entries count: {m.Entries.Count}");
                    return;
                }
                ReadStates.Add(new ReadState(m.Index, m.Entries[0].Data.ToByteArray()));
                break;
        }
    }

    /// <summary>A copy of m addressed to the leader (the original may be shared with the caller).</summary>
    private Message Forward(Message m)
    {
        var f = m.Clone();
        f.To = Lead;
        // Send stamps our id as From, as etcd does (so a forwarded MsgTransferLeader names this node).
        return f;
    }

    private void HandleAppendEntries(Message m)
    {
        if (m.Index < Log.Committed)
        {
            Send(new Message { To = m.From, Type = MessageType.MsgAppResp, Index = Log.Committed });
            return;
        }
        if (Log.MaybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries, out ulong lastNew))
        {
            Send(new Message { To = m.From, Type = MessageType.MsgAppResp, Index = lastNew });
        }
        else
        {
            _logger?.Debug($"{Id:x} [logterm: {Log.ZeroTermOnErrCompacted(m.Index)}, index: {m.Index}] rejected MsgApp [logterm: {m.LogTerm}, index: {m.Index}] from {m.From:x}");
            Send(new Message { To = m.From, Type = MessageType.MsgAppResp, Index = m.Index, Reject = true, RejectHint = Log.LastIndex() });
        }
    }

    private void HandleHeartbeat(Message m)
    {
        Log.CommitTo(m.Commit);
        var resp = new Message { To = m.From, Type = MessageType.MsgHeartbeatResp };
        if (m.HasContext) resp.Context = m.Context;
        Send(resp);
    }

    private void HandleSnapshot(Message m)
    {
        var s = m.Snapshot ?? new Snapshot { Metadata = new SnapshotMetadata() };
        s.Metadata ??= new SnapshotMetadata();
        ulong sindex = s.Metadata.Index, sterm = s.Metadata.Term;
        if (Restore(s))
        {
            _logger?.Info($"{Id:x} [commit: {Log.Committed}] restored snapshot [index: {sindex}, term: {sterm}]");
            Send(new Message { To = m.From, Type = MessageType.MsgAppResp, Index = Log.LastIndex() });
        }
        else
        {
            _logger?.Info($"{Id:x} [commit: {Log.Committed}] ignored snapshot [index: {sindex}, term: {sterm}]");
            Send(new Message { To = m.From, Type = MessageType.MsgAppResp, Index = Log.Committed });
        }
    }

    /// <summary>Installs a snapshot from the leader; false when it is stale or merely fast-forwards the commit.</summary>
    private bool Restore(Snapshot s)
    {
        if (s.Metadata.Index <= Log.Committed) return false;
        if (State != StateType.Follower)
        {
            // Defensive: only followers may install snapshots.
            _logger?.Warning($"{Id:x} attempted to restore snapshot as leader; should never happen");
            BecomeFollower(Term + 1, None);
            return false;
        }
        var cs = s.Metadata.ConfState ?? new ConfState();
        bool found = cs.Voters.Contains(Id) || cs.Learners.Contains(Id);
        if (!found)
        {
            _logger?.Warning($"{Id:x} attempted to restore snapshot but it is not in the ConfState {cs}; should never happen");
            return false;
        }
        // If our log already contains the snapshot's last entry, just move the commit index.
        if (Log.MatchTerm(s.Metadata.Index, s.Metadata.Term))
        {
            _logger?.Info($"{Id:x} [commit: {Log.Committed}, lastindex: {Log.LastIndex()}, lastterm: {Log.LastTerm()}] fast-forwarded commit to snapshot [index: {s.Metadata.Index}, term: {s.Metadata.Term}]");
            Log.CommitTo(s.Metadata.Index);
            return false;
        }
        Log.Restore(s);
        Prs = new ProgressTracker(Prs.MaxInflight);
        var (cfg, prs) = ConfChanger.Restore(Prs, Log.LastIndex(), cs);
        SwitchToConfig(cfg, prs);
        var pr = Prs.Progress[Id];
        pr.MaybeUpdate(pr.Next - 1);
        _logger?.Info($"{Id:x} [commit: {Log.Committed}, lastindex: {Log.LastIndex()}, lastterm: {Log.LastTerm()}] restored snapshot [index: {s.Metadata.Index}, term: {s.Metadata.Term}]");
        return true;
    }

    /// <summary>Whether this node may become leader (it is a voter in the current configuration).</summary>
    public bool Promotable() => Prs.Progress.TryGetValue(Id, out var pr) && !pr.IsLearner;

    public ConfState ApplyConfChange(ConfChangeV2 cc)
    {
        var changer = new ConfChanger(Prs, Log.LastIndex());
        (TrackerConfig cfg, Dictionary<ulong, Progress> prs) r;
        if (RaftUtil.LeaveJoint(cc)) r = changer.LeaveJoint();
        else if (RaftUtil.EnterJoint(cc, out bool autoLeave)) r = changer.EnterJoint(autoLeave, cc.Changes);
        else r = changer.Simple(cc.Changes);
        return SwitchToConfig(r.cfg, r.prs);
    }

    /// <summary>Installs a new membership and reacts to it (commit may advance when the quorum shrank).</summary>
    private ConfState SwitchToConfig(TrackerConfig cfg, Dictionary<ulong, Progress> prs)
    {
        Prs.Set(cfg, prs);
        _logger?.Info($"{Id:x} switched to configuration {Prs.Config}");
        var cs = Prs.ToConfState();
        bool ok = Prs.Progress.TryGetValue(Id, out var pr);
        IsLearner = ok && pr!.IsLearner;

        // A leader removed or demoted keeps leading until it steps down via CheckQuorum or a new election;
        // it just stops committing (see etcd's TODO on leader removal).
        if ((!ok || IsLearner) && State == StateType.Leader) return cs;
        if (State != StateType.Leader || cs.Voters.Count == 0) return cs;

        if (MaybeCommit())
            BcastAppend();
        else
        {
            // Peers added by the change need probing right away.
            foreach (var id in Prs.Ids)
                MaybeSendAppend(id, sendIfEmpty: false);
        }
        // Abort a transfer to a node that is no longer a member.
        if (LeadTransferee != 0 && !Prs.Progress.ContainsKey(LeadTransferee)) AbortLeaderTransfer();
        return cs;
    }

    private void LoadState(HardState hs)
    {
        if (hs.Commit < Log.Committed || hs.Commit > Log.LastIndex())
            throw new InvalidOperationException($"{Id:x} state.commit {hs.Commit} is out of range [{Log.Committed}, {Log.LastIndex()}]");
        Log.Committed = hs.Commit;
        Term = hs.Term;
        Vote = hs.Vote;
    }

    private bool PastElectionTimeout() => ElectionElapsed >= RandomizedElectionTimeout;

    private void ResetRandomizedElectionTimeout() =>
        RandomizedElectionTimeout = ElectionTimeout + _random.Next(ElectionTimeout);

    private void SendTimeoutNow(ulong to) => Send(new Message { To = to, Type = MessageType.MsgTimeoutNow });

    private void AbortLeaderTransfer() => LeadTransferee = None;

    private bool CommittedEntryInCurrentTerm() => Log.ZeroTermOnErrCompacted(Log.Committed) == Term;

    /// <summary>Answers a ReadIndex request: locally as a ReadState, or a MsgReadIndexResp for a follower's request.</summary>
    private Message? ResponseToReadIndexReq(Message req, ulong readIndex)
    {
        if (req.From == None || req.From == Id)
        {
            ReadStates.Add(new ReadState(readIndex, req.Entries[0].Data.ToByteArray()));
            return null;
        }
        var m = new Message { Type = MessageType.MsgReadIndexResp, To = req.From, Index = readIndex };
        m.Entries.Add(req.Entries);
        return m;
    }

    private bool IncreaseUncommittedSize(IReadOnlyList<Entry> ents)
    {
        ulong s = 0;
        for (int i = 0; i < ents.Count; i++) s += RaftUtil.PayloadSize(ents[i]);
        // Always accept when nothing is outstanding, so one large entry cannot block forever.
        if (UncommittedSize > 0 && UncommittedSize + s > _maxUncommittedSize) return false;
        UncommittedSize += s;
        return true;
    }

    private void ReduceUncommittedSize(IReadOnlyList<Entry> ents)
    {
        if (UncommittedSize == 0) return;
        ulong s = 0;
        for (int i = 0; i < ents.Count; i++) s += RaftUtil.PayloadSize(ents[i]);
        // Committed entries may include ones proposed under a previous leader; clamp at zero.
        UncommittedSize = s > UncommittedSize ? 0 : UncommittedSize - s;
    }

    private static int NumOfPendingConf(IReadOnlyList<Entry> ents)
    {
        int n = 0;
        for (int i = 0; i < ents.Count; i++)
            if (ents[i].Type == EntryType.EntryConfChange) n++;
        return n;
    }

    private void ReleasePendingReadIndexMessages()
    {
        if (_pendingReadIndexMessages.Count == 0) return;
        if (!CommittedEntryInCurrentTerm())
        {
            _logger?.Error("pending MsgReadIndex should be released only after first commit in current term");
            return;
        }
        var msgs = _pendingReadIndexMessages;
        _pendingReadIndexMessages = new List<Message>();
        foreach (var m in msgs) SendMsgReadIndexResponse(m);
    }

    private void SendMsgReadIndexResponse(Message m)
    {
        switch (_readOnly.Option)
        {
            case ReadOnlyOption.Safe:
                // Confirm leadership with a heartbeat round carrying the request context.
                _readOnly.AddRequest(Log.Committed, m);
                _readOnly.RecvAck(Id, m.Entries[0].Data);
                BcastHeartbeatWithCtx(m.Entries[0].Data);
                break;
            case ReadOnlyOption.LeaseBased:
                var resp = ResponseToReadIndexReq(m, Log.Committed);
                if (resp is not null) Send(resp);
                break;
        }
    }
}
