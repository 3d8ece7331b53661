using System.Buffers.Binary;
using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests.Simulation;

/// <summary>Thrown when a safety or liveness check fails; carries the seed and a trace tail for replay.</summary>
internal sealed class SimulationFailure(string message) : Exception(message);

/// <summary>
/// A deterministic whole-cluster simulation driven by one seed: nodes with durable "disks" (MemoryStorage),
/// a lossy, reordering, duplicating network with partitions, crash/restart, proposals, membership changes
/// (single-step and joint), leader transfers, ReadIndex and log compaction. After every step it checks Raft's
/// safety properties; at the end it heals everything and checks that the cluster makes progress again.
/// </summary>
internal sealed class ClusterSimulator
{
    private sealed class SimNode
    {
        public required ulong Id;
        public required MemoryStorage Disk;
        public RawNode Node = null!;
        public bool Up = true;
        public bool Dead; // removed from the cluster and shut down, as etcd stops removed members
        // State machine: applied index and a hash chain over applied entries.
        public ulong SmIndex;
        public ulong SmHash;
        public ConfState ConfState = new();
        public ulong LastCommit;
        public ulong LastTerm;
        public ulong LastVote;
    }

    private readonly record struct InFlight(Message Msg, long DeliverAfter);

    private readonly int _seed;
    private readonly Random _rng;
    private readonly SortedDictionary<ulong, SimNode> _nodes = new();
    private readonly List<InFlight> _net = new();
    private readonly HashSet<(ulong, ulong)> _cut = new();
    private readonly Dictionary<ulong, ulong> _leaderOfTerm = new();
    private readonly Dictionary<ulong, (ulong term, ulong hash)> _committed = new();
    private ulong _maxApplied;
    private readonly Dictionary<string, ulong> _reads = new();
    private readonly Queue<string> _trace = new();
    private readonly bool _preVote, _checkQuorum;
    private readonly ulong _maxSizePerMsg;
    private ulong _nextId;
    private long _step;
    private int _proposalSeq, _readSeq;

    public int Proposed { get; private set; }
    public ulong MaxApplied => _maxApplied;
    public int LeaderChanges { get; private set; }
    public int SnapshotsInstalled { get; private set; }
    public int ReadsAnswered { get; private set; }
    public int ConfChangesApplied { get; private set; }
    public int Restarts { get; private set; }

    public ClusterSimulator(int seed)
    {
        _seed = seed;
        _rng = new Random(seed);
        int n = new[] { 3, 5, 7 }[_rng.Next(3)];
        _preVote = _rng.Next(2) == 0;
        _checkQuorum = _rng.Next(2) == 0;
        _maxSizePerMsg = _rng.Next(3) switch { 0 => 0, 1 => 256, _ => 1024 * 1024 };
        var ids = Enumerable.Range(1, n).Select(i => (ulong)i).ToArray();
        _nextId = (ulong)n + 1;
        foreach (var id in ids)
        {
            var sn = new SimNode { Id = id, Disk = new MemoryStorage() };
            sn.Node = NewRawNode(sn, 0);
            sn.Node.Bootstrap(ids.Select(i => new Peer(i)).ToArray());
            _nodes[id] = sn;
        }
        Trace($"start n={n} preVote={_preVote} checkQuorum={_checkQuorum} maxSizePerMsg={_maxSizePerMsg}");
    }

    private RawNode NewRawNode(SimNode sn, ulong applied) => new(new RaftConfig
    {
        Id = sn.Id,
        ElectionTick = 10,
        HeartbeatTick = 1,
        Storage = sn.Disk,
        Applied = applied,
        MaxSizePerMsg = _maxSizePerMsg,
        MaxInflightMsgs = 8,
        PreVote = _preVote,
        CheckQuorum = _checkQuorum,
        ReadOnlyOption = ReadOnlyOption.Safe,
        Random = new Random(_seed * 31 + (int)sn.Id * 7 + (int)_step),
    });

    private void Trace(string s)
    {
        _trace.Enqueue($"[{_step}] {s}");
        while (_trace.Count > 60) _trace.Dequeue();
    }

    private SimulationFailure Fail(string what) => new(
        $"raft simulation seed {_seed} failed at step {_step}: {what}\n" +
        $"replay: RAFT_SIM_SEED={_seed} dotnet test tests/Etcd.Raft.Tests --filter FullyQualifiedName~SimulationTests\n" +
        "last events:\n  " + string.Join("\n  ", _trace));

    /// <summary>Runs <paramref name="steps"/> random steps with checks, then the liveness phase.</summary>
    public void Run(int steps)
    {
        try
        {
            for (_step = 0; _step < steps; _step++)
            {
                RandomAction();
                ProcessAllReady();
                CheckLeaders();
                if (_step % 25 == 0) CheckLogMatching();
            }
            Liveness();
        }
        catch (Exception e) when (e is not SimulationFailure)
        {
            throw Fail("unexpected exception: " + e);
        }
    }

    private SimNode[] LiveNodes() => _nodes.Values.Where(n => n.Up && !n.Dead).ToArray();

    private SimNode? Leader()
    {
        SimNode? best = null;
        ulong bestTerm = 0;
        foreach (var n in LiveNodes())
        {
            var st = n.Node.GetBasicStatus();
            if (st.RaftState == StateType.Leader && st.Term >= bestTerm) { best = n; bestTerm = st.Term; }
        }
        return best;
    }

    private void RandomAction()
    {
        int roll = _rng.Next(1000);
        var live = LiveNodes();
        if (roll < 330)
        {
            if (live.Length > 0) { var n = live[_rng.Next(live.Length)]; n.Node.Tick(); }
        }
        else if (roll < 700) DeliverOne();
        else if (roll < 720) { if (_net.Count > 0) { int i = _rng.Next(_net.Count); var m = _net[i].Msg; Trace($"drop {Describe(m)}"); _net.RemoveAt(i); Lost(m); } }
        else if (roll < 735) { if (_net.Count > 0) { var f = _net[_rng.Next(_net.Count)]; _net.Add(f with { Msg = f.Msg.Clone() }); Trace($"dup {Describe(f.Msg)}"); } }
        else if (roll < 750) Partition();
        else if (roll < 760) CrashOrRestart();
        else if (roll < 880) Propose(live);
        else if (roll < 900) ConfChangeAction();
        else if (roll < 910) TransferLeader(live);
        else if (roll < 950) ReadIndex(live);
        else if (roll < 965) Compact(live);
        else if (roll < 975) { if (live.Length > 0) { var n = live[_rng.Next(live.Length)]; n.Node.Campaign(); Trace($"campaign {n.Id}"); } }
        else if (roll < 985) { if (live.Length > 0) { var n = live[_rng.Next(live.Length)]; var to = _nodes.Keys.ElementAt(_rng.Next(_nodes.Count)); n.Node.ReportUnreachable(to); } }
        else DeliverOne();
    }

    private static string Describe(Message m) => $"{m.Type} {m.From}->{m.To} t{m.Term} i{m.Index} lt{m.LogTerm} c{m.Commit} n{m.Entries.Count}{(m.Reject ? " rej" : "")}";

    private void DeliverOne()
    {
        if (_net.Count == 0) return;
        // Mostly the oldest messages, sometimes any (reordering).
        int i = _rng.Next(4) == 0 ? _rng.Next(_net.Count) : _rng.Next(Math.Min(3, _net.Count));
        var f = _net[i];
        _net.RemoveAt(i);
        Deliver(f.Msg);
    }

    /// <summary>The transport tells the sender when a snapshot could not be delivered (etcd reports SnapshotFailure).</summary>
    private void Lost(Message m)
    {
        if (m.Type == MessageType.MsgSnap && _nodes.TryGetValue(m.From, out var from) && from.Up && !from.Dead)
            from.Node.ReportSnapshot(m.To, SnapshotStatus.Failure);
    }

    private void Deliver(Message m)
    {
        if (!_nodes.TryGetValue(m.To, out var to) || !to.Up || to.Dead || _cut.Contains((m.From, m.To)))
        {
            Lost(m);
            return;
        }
        try { to.Node.Step(m); }
        catch (RaftException) { }
        if (m.Type == MessageType.MsgSnap && _nodes.TryGetValue(m.From, out var from) && from.Up && !from.Dead)
        {
            // The transport reports snapshot delivery back to the sender.
            from.Node.ReportSnapshot(m.To, SnapshotStatus.Finish);
        }
    }

    private void Partition()
    {
        if (_cut.Count > 0 && _rng.Next(2) == 0) { _cut.Clear(); Trace("heal"); return; }
        _cut.Clear();
        var ids = _nodes.Keys.ToArray();
        var side = ids.Where(_ => _rng.Next(2) == 0).ToHashSet();
        foreach (var a in ids)
            foreach (var b in ids)
                if (side.Contains(a) != side.Contains(b)) _cut.Add((a, b));
        Trace($"partition [{string.Join(",", side)}] | rest");
    }

    private void CrashOrRestart()
    {
        var candidates = _nodes.Values.Where(n => !n.Dead).ToArray();
        if (candidates.Length == 0) return;
        var n = candidates[_rng.Next(candidates.Length)];
        if (n.Up)
        {
            n.Up = false;
            Trace($"crash {n.Id}");
        }
        else Restart(n);
    }

    private void Restart(SimNode n)
    {
        // Volatile state is gone: the state machine comes back from the last snapshot, raft from the disk.
        var snap = n.Disk.Snapshot();
        ulong applied = snap.Metadata.Index;
        if (applied > 0)
        {
            (n.SmIndex, n.SmHash) = DecodeSnap(snap.Data);
            n.ConfState = snap.Metadata.ConfState.Clone();
        }
        else
        {
            n.SmIndex = 0;
            n.SmHash = 0;
            n.ConfState = new ConfState();
        }
        n.Node = NewRawNode(n, applied);
        n.Up = true;
        Restarts++;
        var hs = n.Node.GetBasicStatus().HardState;
        if (hs.Term < n.LastTerm || hs.Commit < n.LastCommit) throw Fail($"node {n.Id} lost persisted hard state");
        Trace($"restart {n.Id} applied={applied} term={hs.Term} commit={hs.Commit}");
    }

    private void Propose(SimNode[] live)
    {
        if (live.Length == 0) return;
        var n = live[_rng.Next(live.Length)];
        int size = _rng.Next(4) == 0 ? _rng.Next(200, 600) : _rng.Next(4, 32);
        var data = new byte[size];
        _rng.NextBytes(data);
        BinaryPrimitives.WriteInt32LittleEndian(data, ++_proposalSeq);
        try
        {
            n.Node.Propose(data);
            Proposed++;
        }
        catch (RaftException e) when (e.Kind == RaftErrorKind.ProposalDropped) { }
    }

    private void ConfChangeAction()
    {
        var leader = Leader();
        if (leader is null) return;
        var cfg = leader.Node.GetStatus().Config;
        var voters = cfg.Voters.ToList();
        var learners = cfg.Learners.ToList();
        if (cfg.VotersOutgoing.Count > 0) return; // auto-leave will follow
        int kind = _rng.Next(5);
        try
        {
            switch (kind)
            {
                case 0 when voters.Count < 7:
                case 1 when learners.Count < 2:
                {
                    ulong id = _nextId++;
                    _nodes[id] = new SimNode { Id = id, Disk = new MemoryStorage() };
                    _nodes[id].Node = NewRawNode(_nodes[id], 0);
                    var t = kind == 0 ? ConfChangeType.ConfChangeAddNode : ConfChangeType.ConfChangeAddLearnerNode;
                    leader.Node.ProposeConfChange(new ConfChange { Type = t, NodeId = id });
                    Trace($"propose {t} {id} at {leader.Id}");
                    break;
                }
                case 2 when voters.Count > 3:
                {
                    ulong id = voters[_rng.Next(voters.Count)];
                    leader.Node.ProposeConfChange(new ConfChange { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = id });
                    Trace($"propose remove {id} at {leader.Id}");
                    break;
                }
                case 3 when learners.Count > 0:
                {
                    ulong id = learners[_rng.Next(learners.Count)];
                    leader.Node.ProposeConfChange(new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = id });
                    Trace($"propose promote {id} at {leader.Id}");
                    break;
                }
                case 4 when voters.Count >= 3 && voters.Count < 7:
                {
                    // Joint consensus: swap one voter for a new one in a single ConfChangeV2.
                    ulong add = _nextId++;
                    _nodes[add] = new SimNode { Id = add, Disk = new MemoryStorage() };
                    _nodes[add].Node = NewRawNode(_nodes[add], 0);
                    ulong remove = voters[_rng.Next(voters.Count)];
                    var cc = new ConfChangeV2 { Transition = _rng.Next(2) == 0 ? ConfChangeTransition.Auto : ConfChangeTransition.JointImplicit };
                    cc.Changes.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = add });
                    cc.Changes.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = remove });
                    leader.Node.ProposeConfChange(cc);
                    Trace($"propose joint +{add} -{remove} at {leader.Id}");
                    break;
                }
            }
        }
        catch (RaftException e) when (e.Kind == RaftErrorKind.ProposalDropped) { }
    }

    private void TransferLeader(SimNode[] live)
    {
        var leader = Leader();
        if (leader is null) return;
        var voters = leader.Node.GetStatus().Config.Voters;
        if (voters.Count == 0) return;
        ulong to = voters[_rng.Next(voters.Count)];
        leader.Node.TransferLeader(to);
        Trace($"transfer {leader.Id} -> {to}");
    }

    private void ReadIndex(SimNode[] live)
    {
        if (live.Length == 0) return;
        var n = live[_rng.Next(live.Length)];
        string ctx = $"r{++_readSeq}";
        // Anything committed (as any node knows it) or applied anywhere before the request must be visible
        // at the returned index.
        ulong known = _maxApplied;
        foreach (var sn in _nodes.Values)
        {
            if (sn.LastCommit > known) known = sn.LastCommit;
        }

        _reads[ctx] = known;
        n.Node.ReadIndex(System.Text.Encoding.ASCII.GetBytes(ctx));
    }

    private void Compact(SimNode[] live)
    {
        if (live.Length == 0) return;
        var n = live[_rng.Next(live.Length)];
        ulong applied = n.Node.GetBasicStatus().Applied;
        if (applied <= n.Disk.Snapshot().Metadata.Index || applied != n.SmIndex) return;
        n.Disk.CreateSnapshot(applied, n.ConfState, EncodeSnap(n.SmIndex, n.SmHash));
        // Keep a few entries behind the snapshot sometimes, like etcd's SnapshotCatchUpEntries.
        ulong compactTo = _rng.Next(2) == 0 ? applied : Math.Max(n.Disk.FirstIndex(), applied > 5 ? applied - 5 : 1);
        if (compactTo > n.Disk.FirstIndex() - 1) n.Disk.Compact(compactTo);
        Trace($"compact {n.Id} at {applied}");
    }

    private static byte[] EncodeSnap(ulong index, ulong hash)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, index);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), hash);
        return b;
    }

    private static (ulong, ulong) DecodeSnap(ByteString data)
    {
        var s = data.Span;
        return (BinaryPrimitives.ReadUInt64LittleEndian(s), BinaryPrimitives.ReadUInt64LittleEndian(s[8..]));
    }

    private static ulong Mix(ulong h, ulong term, EntryType type, ReadOnlySpan<byte> data)
    {
        ulong x = h ^ (term * 0x9E3779B97F4A7C15UL) ^ ((ulong)type << 56);
        foreach (var b in data) x = (x ^ b) * 0x100000001B3UL;
        return (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9UL;
    }

    private void ProcessAllReady()
    {
        foreach (var n in _nodes.Values)
        {
            if (!n.Up || n.Dead) continue;
            for (int guard = 0; guard < 16 && n.Node.HasReady(); guard++) HandleReady(n);
        }
    }

    private void HandleReady(SimNode n)
    {
        var rd = n.Node.GetReady();
        // 1. Persist.
        if (rd.HasHardState)
        {
            var hs = rd.HardState;
            if (hs.Term < n.LastTerm) throw Fail($"node {n.Id} term went back {n.LastTerm} -> {hs.Term}");
            if (hs.Term == n.LastTerm && n.LastVote != 0 && hs.Vote != n.LastVote)
                throw Fail($"node {n.Id} changed its vote in term {hs.Term}: {n.LastVote} -> {hs.Vote}");
            if (hs.Commit < n.LastCommit) throw Fail($"node {n.Id} commit went back {n.LastCommit} -> {hs.Commit}");
            n.LastTerm = hs.Term; n.LastVote = hs.Vote; n.LastCommit = hs.Commit;
            n.Disk.SetHardState(hs);
        }
        if (rd.Snapshot is not null)
        {
            SnapshotsInstalled++;
            n.Disk.ApplySnapshot(rd.Snapshot);
            var (idx, hash) = DecodeSnap(rd.Snapshot.Data);
            if (idx != rd.Snapshot.Metadata.Index) throw Fail("snapshot data/index mismatch");
            if (_committed.TryGetValue(idx, out var c) && c.hash != hash) throw Fail($"node {n.Id} got a snapshot at {idx} with a divergent state");
            n.SmIndex = idx;
            n.SmHash = hash;
            n.ConfState = rd.Snapshot.Metadata.ConfState.Clone();
        }
        n.Disk.Append(rd.Entries);
        if (rd.SoftState is { RaftState: StateType.Leader }) OnNewLeader(n);
        // 2. Send (clone: the wire does not share objects).
        foreach (var m in rd.Messages)
            _net.Add(new InFlight(m.Clone(), _step));
        // 3. Apply.
        foreach (var e in rd.CommittedEntries)
        {
            if (e.Index <= n.SmIndex) continue; // already in the state machine (restored from a snapshot)
            if (e.Index != n.SmIndex + 1) throw Fail($"node {n.Id} applied {e.Index} after {n.SmIndex}");
            n.SmHash = Mix(n.SmHash, e.Term, e.Type, e.Data.Span);
            n.SmIndex = e.Index;
            if (_committed.TryGetValue(e.Index, out var c))
            {
                if (c.term != e.Term || c.hash != n.SmHash)
                    throw Fail($"state machine safety: node {n.Id} applied index {e.Index} term {e.Term}, others applied term {c.term} (or a different history)");
            }
            else _committed[e.Index] = (e.Term, n.SmHash);
            if (e.Index > _maxApplied) _maxApplied = e.Index;
            ApplyConfEntry(n, e);
        }
        // The apply loop above may skip entries restored from a snapshot, but conf changes after the snapshot
        // are still applied to raft (ApplyConfEntry) because their indexes are above SmIndex at restart.
        foreach (var rs in rd.ReadStates)
        {
            string ctx = System.Text.Encoding.ASCII.GetString(rs.RequestCtx);
            ReadsAnswered++;
            if (_reads.TryGetValue(ctx, out var min) && rs.Index < min)
                throw Fail($"read {ctx} at {n.Id} got index {rs.Index} below {min}, which was committed before the request");
        }
        n.Node.Advance(rd);
    }

    private void ApplyConfEntry(SimNode n, Entry e)
    {
        ConfChangeV2? cc = e.Type switch
        {
            EntryType.EntryConfChange => RaftUtil.AsV2(ConfChange.Parser.ParseFrom(e.Data)),
            EntryType.EntryConfChangeV2 => ConfChangeV2.Parser.ParseFrom(e.Data),
            _ => null,
        };
        if (cc is null) return;
        Trace($"node {n.Id} applies conf change at {e.Index}: {cc.Transition} [{string.Join(" ", cc.Changes.Select(c => $"{c.Type}({c.NodeId})"))}]");
        ConfChangesApplied++;
        var before = Members(n.ConfState);
        n.ConfState = n.Node.ApplyConfChange(cc);
        // Snapshot right after every membership change so a snapshot sent to a new member includes it
        // (otherwise the member refuses it, as etcd's raft does, and can never catch up from a compacted log).
        if (e.Index > n.Disk.Snapshot().Metadata.Index && e.Index <= n.Disk.LastIndex())
            n.Disk.CreateSnapshot(e.Index, n.ConfState, EncodeSnap(n.SmIndex, n.SmHash));
        // A member that this committed change took out of the configuration is shut down, as etcd stops
        // removed members. (Within a joint config the outgoing voters are still members.)
        var after = Members(n.ConfState);
        foreach (var id in before)
        {
            if (!after.Contains(id) && _nodes.TryGetValue(id, out var gone) && !gone.Dead)
            {
                gone.Dead = true;
                Trace($"node {id} removed (seen by {n.Id} at {e.Index}) and shut down");
            }
        }
    }

    private static HashSet<ulong> Members(ConfState cs) =>
        cs.Voters.Concat(cs.VotersOutgoing).Concat(cs.Learners).Concat(cs.LearnersNext).ToHashSet();

    private void OnNewLeader(SimNode n)
    {
        LeaderChanges++;
        ulong term = n.Node.GetBasicStatus().Term;
        // Leader completeness: the new leader's log holds every entry applied anywhere.
        var log = n.Node.Raft.Log;
        ulong first = log.FirstIndex(), last = log.LastIndex();
        foreach (var (idx, c) in _committed)
        {
            if (idx < first) continue;
            if (idx > last) throw Fail($"leader completeness: leader {n.Id} term {term} lacks committed index {idx} (last {last})");
            if (log.ZeroTermOnErrCompacted(idx) != c.term)
                throw Fail($"leader completeness: leader {n.Id} term {term} has a different entry at committed index {idx}");
        }
        Trace($"leader {n.Id} term {term}");
    }

    /// <summary>Log Matching: if two logs hold an entry with the same index and term, they agree on every entry
    /// up to it (checked over the range both logs still hold).</summary>
    private void CheckLogMatching()
    {
        var live = LiveNodes();
        for (int a = 0; a < live.Length; a++)
        {
            var la = live[a].Node.Raft.Log;
            for (int b = a + 1; b < live.Length; b++)
            {
                var lb = live[b].Node.Raft.Log;
                ulong lo = Math.Max(la.FirstIndex(), lb.FirstIndex());
                ulong hi = Math.Min(la.LastIndex(), lb.LastIndex());
                if (hi < lo) continue;
                ulong k = hi;
                while (k >= lo && la.ZeroTermOnErrCompacted(k) != lb.ZeroTermOnErrCompacted(k)) k--;
                if (k < lo) continue;
                for (ulong j = lo; j <= k; j++)
                {
                    if (la.ZeroTermOnErrCompacted(j) != lb.ZeroTermOnErrCompacted(j))
                        throw Fail($"log matching: nodes {live[a].Id} and {live[b].Id} agree at index {k} but differ at {j}");
                }
            }
        }
    }

    private void CheckLeaders()
    {
        foreach (var n in LiveNodes())
        {
            var st = n.Node.GetBasicStatus();
            if (st.RaftState != StateType.Leader) continue;
            if (_leaderOfTerm.TryGetValue(st.Term, out var other) && other != n.Id)
                throw Fail($"election safety: {other} and {n.Id} both leader in term {st.Term}");
            _leaderOfTerm[st.Term] = n.Id;
        }
    }

    private void Liveness()
    {
        _cut.Clear();
        foreach (var n in _nodes.Values)
            if (!n.Dead && !n.Up) Restart(n);
        Trace("liveness phase");
        byte[] marker = System.Text.Encoding.ASCII.GetBytes($"final-{_seed}");
        bool proposed = false;
        ulong markerIndex = 0;
        for (int round = 0; round < 2000; round++, _step++)
        {
            foreach (var n in LiveNodes()) n.Node.Tick();
            ProcessAllReady();
            for (int k = 0; k < 50 && _net.Count > 0; k++)
            {
                var batch = _net.ToArray();
                _net.Clear();
                foreach (var f in batch) Deliver(f.Msg);
                ProcessAllReady();
                CheckLeaders();
            }
            var leader = Leader();
            if (leader is null) continue;
            var cfg = leader.Node.GetStatus().Config;
            if (!proposed || round % 50 == 0)
            {
                try { leader.Node.Propose(marker); proposed = true; }
                catch (RaftException) { }
                ProcessAllReady();
            }
            if (markerIndex == 0) markerIndex = FindMarker(leader, marker);
            if (markerIndex != 0 && cfg.VotersOutgoing.Count == 0 &&
                cfg.Voters.All(v => _nodes.TryGetValue(v, out var vn) && vn.SmIndex >= markerIndex))
                return;
        }
        var dump = string.Join("\n  ", _nodes.Values.Select(n =>
        {
            var st = n.Node.GetStatus();
            return $"node {n.Id} up={n.Up} dead={n.Dead} {st.RaftState} term={st.Term} lead={st.Lead} commit={st.Commit} applied={st.Applied} sm={n.SmIndex} " +
                   $"voters=[{string.Join(",", st.Config.Voters)}] out=[{string.Join(",", st.Config.VotersOutgoing)}] learners=[{string.Join(",", st.Config.Learners)}] " +
                   string.Join(" ", st.Progress.Select(p => $"{p.Key}:{p.Value}"));
        }));
        throw Fail($"liveness: the healed cluster did not commit a new proposal on all voters (marker index {markerIndex})\n  {dump}");
    }

    private static ulong FindMarker(SimNode leader, byte[] marker)
    {
        var log = leader.Node.Raft.Log;
        ulong commit = log.Committed;
        ulong first = log.FirstIndex();
        if (commit < first) return 0;
        var ents = log.Slice(first, commit + 1, ulong.MaxValue, out bool compacted);
        if (compacted) return 0;
        foreach (var e in ents)
            if (e.Data.Span.SequenceEqual(marker)) return e.Index;
        return 0;
    }
}
