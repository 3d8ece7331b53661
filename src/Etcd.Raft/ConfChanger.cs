using Raftpb;

namespace Etcd.Raft;

/// <summary>
/// Computes a new membership from the current one and a configuration change, enforcing the joint-consensus
/// rules (confchange/confchange.go, restore.go). Never mutates the tracker it was given; failures throw
/// <see cref="RaftException"/> (Kind Other) with etcd's message.
/// </summary>
internal readonly struct ConfChanger
{
    private readonly ProgressTracker _tracker;
    private readonly TrackerConfig _baseConfig;
    private readonly Dictionary<ulong, Progress> _baseProgress;
    private readonly ulong _lastIndex;

    public ConfChanger(ProgressTracker tracker, ulong lastIndex) : this(tracker, tracker.Config, tracker.Progress, lastIndex) { }

    private ConfChanger(ProgressTracker tracker, TrackerConfig cfg, Dictionary<ulong, Progress> prs, ulong lastIndex)
    {
        _tracker = tracker;
        _baseConfig = cfg;
        _baseProgress = prs;
        _lastIndex = lastIndex;
    }

    private ConfChanger With(TrackerConfig cfg, Dictionary<ulong, Progress> prs) => new(_tracker, cfg, prs, _lastIndex);

    private static RaftException Err(string msg) => new(RaftErrorKind.Other, msg);

    /// <summary>Enters a joint configuration: the current voters become the outgoing set, the changes apply to the incoming set.</summary>
    public (TrackerConfig, Dictionary<ulong, Progress>) EnterJoint(bool autoLeave, IReadOnlyList<ConfChangeSingle> ccs)
    {
        var (cfg, prs) = CheckAndCopy();
        if (cfg.IsJoint) throw Err("config is already joint");
        if (cfg.Incoming.Count == 0) throw Err("can't make a zero-voter config joint");
        cfg.Outgoing = new HashSet<ulong>(cfg.Incoming);
        Apply(cfg, prs, ccs);
        cfg.AutoLeave = autoLeave;
        CheckInvariants(cfg, prs);
        return (cfg, prs);
    }

    /// <summary>Leaves a joint configuration: outgoing voters not kept are removed, LearnersNext become learners.</summary>
    public (TrackerConfig, Dictionary<ulong, Progress>) LeaveJoint()
    {
        var (cfg, prs) = CheckAndCopy();
        if (!cfg.IsJoint) throw Err("can't leave a non-joint config");
        if (cfg.LearnersNext is not null)
        {
            foreach (var id in cfg.LearnersNext)
            {
                (cfg.Learners ??= new()).Add(id);
                prs[id].IsLearner = true;
            }
        }
        cfg.LearnersNext = null;
        foreach (var id in cfg.Outgoing!)
        {
            bool isVoter = cfg.Incoming.Contains(id);
            bool isLearner = cfg.Learners?.Contains(id) == true;
            if (!isVoter && !isLearner) prs.Remove(id);
        }
        cfg.Outgoing = null;
        cfg.AutoLeave = false;
        CheckInvariants(cfg, prs);
        return (cfg, prs);
    }

    /// <summary>Applies changes that alter at most one voter, without a joint phase.</summary>
    public (TrackerConfig, Dictionary<ulong, Progress>) Simple(IReadOnlyList<ConfChangeSingle> ccs)
    {
        var (cfg, prs) = CheckAndCopy();
        if (cfg.IsJoint) throw Err("can't apply simple config change in joint config");
        Apply(cfg, prs, ccs);
        if (SymDiff(_baseConfig.Incoming, cfg.Incoming) > 1)
            throw Err("more than one voter changed without entering joint config");
        CheckInvariants(cfg, prs);
        return (cfg, prs);
    }

    private void Apply(TrackerConfig cfg, Dictionary<ulong, Progress> prs, IReadOnlyList<ConfChangeSingle> ccs)
    {
        for (int i = 0; i < ccs.Count; i++)
        {
            var cc = ccs[i];
            if (cc.NodeId == 0) continue; // etcd replaces refused changes with zero entries; ignore them
            switch (cc.Type)
            {
                case ConfChangeType.ConfChangeAddNode: MakeVoter(cfg, prs, cc.NodeId); break;
                case ConfChangeType.ConfChangeAddLearnerNode: MakeLearner(cfg, prs, cc.NodeId); break;
                case ConfChangeType.ConfChangeRemoveNode: Remove(cfg, prs, cc.NodeId); break;
                case ConfChangeType.ConfChangeUpdateNode: break;
                default: throw Err($"unexpected conf type {(int)cc.Type}");
            }
        }
        if (cfg.Incoming.Count == 0) throw Err("removed all voters");
    }

    private void MakeVoter(TrackerConfig cfg, Dictionary<ulong, Progress> prs, ulong id)
    {
        if (!prs.TryGetValue(id, out var pr))
        {
            InitProgress(cfg, prs, id, isLearner: false);
            return;
        }
        pr.IsLearner = false;
        NilAwareDelete(ref cfg.Learners, id);
        NilAwareDelete(ref cfg.LearnersNext, id);
        cfg.Incoming.Add(id);
    }

    private void MakeLearner(TrackerConfig cfg, Dictionary<ulong, Progress> prs, ulong id)
    {
        if (!prs.TryGetValue(id, out var pr))
        {
            InitProgress(cfg, prs, id, isLearner: true);
            return;
        }
        if (pr.IsLearner) return;
        // Remove as a voter first, but keep the progress.
        Remove(cfg, prs, id);
        prs[id] = pr;
        // A voter still in the outgoing config only becomes a learner when the joint config is left.
        if (cfg.Outgoing?.Contains(id) == true)
            (cfg.LearnersNext ??= new()).Add(id);
        else
        {
            pr.IsLearner = true;
            (cfg.Learners ??= new()).Add(id);
        }
    }

    private static void Remove(TrackerConfig cfg, Dictionary<ulong, Progress> prs, ulong id)
    {
        if (!prs.ContainsKey(id)) return;
        cfg.Incoming.Remove(id);
        NilAwareDelete(ref cfg.Learners, id);
        NilAwareDelete(ref cfg.LearnersNext, id);
        // Keep the progress while the node is still an outgoing voter.
        if (cfg.Outgoing?.Contains(id) != true) prs.Remove(id);
    }

    private void InitProgress(TrackerConfig cfg, Dictionary<ulong, Progress> prs, ulong id, bool isLearner)
    {
        if (!isLearner) cfg.Incoming.Add(id);
        else (cfg.Learners ??= new()).Add(id);
        prs[id] = new Progress
        {
            // etcd starts the new peer's Next at the leader's last index (it probes from there).
            Next = _lastIndex,
            Match = 0,
            Inflights = new Inflights(_tracker.MaxInflight),
            IsLearner = isLearner,
            // Count a new node as active so CheckQuorum does not depose the leader right after adding it.
            RecentActive = true,
        };
    }

    private static void CheckInvariants(TrackerConfig cfg, Dictionary<ulong, Progress> prs)
    {
        foreach (var id in cfg.VoterIds()) if (!prs.ContainsKey(id)) throw Err($"no progress for {id}");
        if (cfg.Learners is not null) foreach (var id in cfg.Learners) if (!prs.ContainsKey(id)) throw Err($"no progress for {id}");
        if (cfg.LearnersNext is not null)
        {
            foreach (var id in cfg.LearnersNext)
            {
                if (!prs.ContainsKey(id)) throw Err($"no progress for {id}");
                if (cfg.Outgoing?.Contains(id) != true) throw Err($"{id} is in LearnersNext, but not Voters[1]");
                if (prs[id].IsLearner) throw Err($"{id} is in LearnersNext, but is already marked as learner");
            }
        }
        if (cfg.Learners is not null)
        {
            foreach (var id in cfg.Learners)
            {
                if (cfg.Outgoing?.Contains(id) == true) throw Err($"{id} is in Learners and Voters[1]");
                if (cfg.Incoming.Contains(id)) throw Err($"{id} is in Learners and Voters[0]");
                if (!prs[id].IsLearner) throw Err($"{id} is in Learners, but is not marked as learner");
            }
        }
        if (!cfg.IsJoint)
        {
            if (cfg.Outgoing is { Count: > 0 }) throw Err("Voters[1] must be nil when not joint");
            cfg.Outgoing = null;
            if (cfg.LearnersNext is not null) throw Err("LearnersNext must be nil when not joint");
            if (cfg.AutoLeave) throw Err("AutoLeave must be false when not joint");
        }
    }

    private (TrackerConfig, Dictionary<ulong, Progress>) CheckAndCopy()
    {
        var cfg = _baseConfig.Clone();
        var prs = new Dictionary<ulong, Progress>(_baseProgress.Count + 1);
        foreach (var (id, pr) in _baseProgress) prs[id] = pr.ShallowCopy();
        CheckInvariants(cfg, prs);
        return (cfg, prs);
    }

    private static void NilAwareDelete(ref HashSet<ulong>? set, ulong id)
    {
        if (set is null) return;
        set.Remove(id);
        if (set.Count == 0) set = null;
    }

    private static int SymDiff(HashSet<ulong> l, HashSet<ulong> r)
    {
        int n = 0;
        foreach (var id in l) if (!r.Contains(id)) n++;
        foreach (var id in r) if (!l.Contains(id)) n++;
        return n;
    }

    /// <summary>
    /// Rebuilds the tracker state described by a ConfState (confchange/restore.go): the outgoing config is built
    /// first by simple additions, then the joint config is entered with the incoming changes.
    /// </summary>
    public static (TrackerConfig, Dictionary<ulong, Progress>) Restore(ProgressTracker tracker, ulong lastIndex, ConfState cs)
    {
        var outgoing = new List<ConfChangeSingle>();
        var incoming = new List<ConfChangeSingle>();
        foreach (var id in cs.VotersOutgoing) outgoing.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = id });
        // Removing the outgoing voters first and re-adding the incoming ones yields exactly the incoming set.
        foreach (var id in cs.VotersOutgoing) incoming.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = id });
        foreach (var id in cs.Voters) incoming.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = id });
        foreach (var id in cs.Learners) incoming.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = id });
        foreach (var id in cs.LearnersNext) incoming.Add(new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = id });

        var chg = new ConfChanger(tracker, lastIndex);
        if (outgoing.Count == 0)
        {
            foreach (var cc in incoming)
            {
                var (c, p) = chg.Simple([cc]);
                chg = chg.With(c, p);
            }
        }
        else
        {
            foreach (var cc in outgoing)
            {
                var (c, p) = chg.Simple([cc]);
                chg = chg.With(c, p);
            }
            var (c2, p2) = chg.EnterJoint(cs.AutoLeave, incoming);
            chg = chg.With(c2, p2);
        }
        return (chg._baseConfig, chg._baseProgress);
    }
}
