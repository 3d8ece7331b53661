using Raftpb;

namespace Etcd.Raft;

/// <summary>Sliding window of in-flight append messages, keyed by the last index each carried (tracker/inflights.go).</summary>
internal sealed class Inflights
{
    private int _start;
    private int _count;
    private readonly int _size;
    private ulong[] _buffer = [];

    public Inflights(int size) => _size = size;

    public Inflights Clone()
    {
        var c = new Inflights(_size) { _start = _start, _count = _count, _buffer = (ulong[])_buffer.Clone() };
        return c;
    }

    public int Count => _count;
    public bool Full => _count == _size;

    public void Add(ulong inflight)
    {
        if (Full) throw new InvalidOperationException("cannot add into a Full inflights");
        int next = _start + _count;
        if (next >= _size) next -= _size;
        if (next >= _buffer.Length) Grow();
        _buffer[next] = inflight;
        _count++;
    }

    private void Grow()
    {
        int newSize = _buffer.Length * 2;
        if (newSize == 0) newSize = 1;
        else if (newSize > _size) newSize = _size;
        var nb = new ulong[newSize];
        Array.Copy(_buffer, nb, _buffer.Length);
        _buffer = nb;
    }

    /// <summary>Frees all in-flight messages whose index is ≤ to.</summary>
    public void FreeLE(ulong to)
    {
        if (_count == 0 || to < _buffer[_start]) return;
        int idx = _start;
        int i;
        for (i = 0; i < _count; i++)
        {
            if (to < _buffer[idx]) break;
            if (++idx >= _size) idx -= _size;
        }
        _count -= i;
        _start = idx;
        if (_count == 0) _start = 0;
    }

    public void FreeFirstOne() => FreeLE(_buffer[_start]);

    public void Reset()
    {
        _count = 0;
        _start = 0;
    }
}

/// <summary>The leader's view of one follower (tracker/progress.go).</summary>
internal sealed class Progress
{
    public ulong Match, Next;
    public ProgressState State;
    public ulong PendingSnapshot;
    public bool RecentActive;
    public bool ProbeSent;
    public Inflights Inflights = null!;
    public bool IsLearner;

    public Progress ShallowCopy() => (Progress)MemberwiseClone();

    public void ResetState(ProgressState state)
    {
        ProbeSent = false;
        PendingSnapshot = 0;
        State = state;
        Inflights.Reset();
    }

    public void BecomeProbe()
    {
        if (State == ProgressState.Snapshot)
        {
            ulong pending = PendingSnapshot;
            ResetState(ProgressState.Probe);
            Next = Math.Max(Match + 1, pending + 1);
        }
        else
        {
            ResetState(ProgressState.Probe);
            Next = Match + 1;
        }
    }

    public void BecomeReplicate()
    {
        ResetState(ProgressState.Replicate);
        Next = Match + 1;
    }

    public void BecomeSnapshot(ulong snapshotIndex)
    {
        ResetState(ProgressState.Snapshot);
        PendingSnapshot = snapshotIndex;
    }

    /// <summary>Records an acknowledgement up to n; true when Match moved.</summary>
    public bool MaybeUpdate(ulong n)
    {
        bool updated = false;
        if (Match < n)
        {
            Match = n;
            updated = true;
            ProbeSent = false;
        }
        if (Next < n + 1) Next = n + 1;
        return updated;
    }

    public void OptimisticUpdate(ulong n) => Next = n + 1;

    /// <summary>Handles a rejected append at index <paramref name="rejected"/> with the follower's last index as hint.</summary>
    public bool MaybeDecrTo(ulong rejected, ulong last)
    {
        if (State == ProgressState.Replicate)
        {
            // Stale rejection: the follower already has everything up to Match.
            if (rejected <= Match) return false;
            Next = Match + 1;
            return true;
        }
        // In probe state only the rejection of the last probe counts.
        if (Next - 1 != rejected) return false;
        Next = Math.Min(rejected, last + 1);
        if (Next < 1) Next = 1;
        ProbeSent = false;
        return true;
    }

    public bool IsPaused() => State switch
    {
        ProgressState.Probe => ProbeSent,
        ProgressState.Replicate => Inflights.Full,
        _ => true,
    };

    public ProgressStatus ToStatus() => new(Match, Next, State, PendingSnapshot, RecentActive, ProbeSent, IsLearner, Inflights.Count);

    public override string ToString() =>
        $"{State} match={Match} next={Next}{(IsLearner ? " learner" : "")}{(IsPaused() ? " paused" : "")}" +
        $"{(PendingSnapshot > 0 ? $" pendingSnap={PendingSnapshot}" : "")}{(RecentActive ? "" : " inactive")}" +
        $"{(Inflights.Count > 0 ? $" inflight={Inflights.Count}{(Inflights.Full ? "[full]" : "")}" : "")}";
}

/// <summary>Outcome of a vote count (quorum/quorum.go VoteResult).</summary>
internal enum VoteResult { Pending = 1, Lost, Won }

/// <summary>Quorum arithmetic over a majority configuration (a set of voter ids) (quorum/majority.go).</summary>
internal static class Majority
{
    /// <summary>The largest index acknowledged by a majority; ulong.MaxValue for an empty config.</summary>
    public static ulong CommittedIndex(HashSet<ulong>? c, Dictionary<ulong, Progress> prs)
    {
        int n = c?.Count ?? 0;
        if (n == 0) return ulong.MaxValue;
        Span<ulong> srt = n <= 16 ? stackalloc ulong[16] : new ulong[n];
        srt = srt[..n];
        srt.Clear();
        int i = n - 1;
        foreach (var id in c!)
            if (prs.TryGetValue(id, out var pr)) srt[i--] = pr.Match;
        srt.Sort();
        return srt[n - (n / 2 + 1)];
    }

    public static VoteResult Vote(HashSet<ulong>? c, Dictionary<ulong, bool> votes)
    {
        if (c is null || c.Count == 0) return VoteResult.Won;
        int yes = 0, no = 0, missing = 0;
        foreach (var id in c)
        {
            if (!votes.TryGetValue(id, out bool v)) missing++;
            else if (v) yes++;
            else no++;
        }
        int q = c.Count / 2 + 1;
        if (yes >= q) return VoteResult.Won;
        if (yes + missing >= q) return VoteResult.Pending;
        return VoteResult.Lost;
    }

    public static VoteResult Joint(VoteResult r1, VoteResult r2)
    {
        if (r1 == r2) return r1;
        if (r1 == VoteResult.Lost || r2 == VoteResult.Lost) return VoteResult.Lost;
        return VoteResult.Pending;
    }

    public static ulong[] Sorted(HashSet<ulong>? c)
    {
        if (c is null || c.Count == 0) return [];
        var a = c.ToArray();
        Array.Sort(a);
        return a;
    }

    public static string Describe(HashSet<ulong>? c) => "(" + string.Join(" ", Sorted(c)) + ")";
}

/// <summary>Membership: the (possibly joint) voter sets and the learners (tracker/tracker.go Config).</summary>
internal sealed class TrackerConfig
{
    /// <summary>Voters[0]: the incoming (or only) voter set.</summary>
    public HashSet<ulong> Incoming = new();
    /// <summary>Voters[1]: the outgoing voter set; null or empty when not joint.</summary>
    public HashSet<ulong>? Outgoing;
    public bool AutoLeave;
    public HashSet<ulong>? Learners;
    public HashSet<ulong>? LearnersNext;

    public bool IsJoint => Outgoing is { Count: > 0 };

    public TrackerConfig Clone() => new()
    {
        Incoming = new HashSet<ulong>(Incoming),
        Outgoing = Outgoing is null ? null : new HashSet<ulong>(Outgoing),
        AutoLeave = AutoLeave,
        Learners = Learners is null ? null : new HashSet<ulong>(Learners),
        LearnersNext = LearnersNext is null ? null : new HashSet<ulong>(LearnersNext),
    };

    public HashSet<ulong> VoterIds()
    {
        var m = new HashSet<ulong>(Incoming);
        if (Outgoing is not null) m.UnionWith(Outgoing);
        return m;
    }

    public override string ToString()
    {
        var s = "voters=" + Majority.Describe(Incoming) + (IsJoint ? "&&" + Majority.Describe(Outgoing) : "");
        if (Learners is not null) s += " learners=" + Majority.Describe(Learners);
        if (LearnersNext is not null) s += " learners_next=" + Majority.Describe(LearnersNext);
        if (AutoLeave) s += " autoleave";
        return s;
    }
}

/// <summary>Tracks membership, per-peer progress and votes (tracker/tracker.go ProgressTracker).</summary>
internal sealed class ProgressTracker
{
    public TrackerConfig Config = new();
    public Dictionary<ulong, Progress> Progress = new();
    public readonly Dictionary<ulong, bool> Votes = new();
    public readonly int MaxInflight;
    private ulong[] _sortedIds = [];

    public ProgressTracker(int maxInflight) => MaxInflight = maxInflight;

    public void Set(TrackerConfig cfg, Dictionary<ulong, Progress> prs)
    {
        Config = cfg;
        Progress = prs;
        _sortedIds = prs.Keys.ToArray();
        Array.Sort(_sortedIds);
    }

    /// <summary>Peer ids with progress, ascending (stable while iterating as long as the config is not switched).</summary>
    public ulong[] Ids => _sortedIds;

    public ConfState ToConfState()
    {
        var cs = new ConfState { AutoLeave = Config.AutoLeave };
        cs.Voters.AddRange(Majority.Sorted(Config.Incoming));
        cs.VotersOutgoing.AddRange(Majority.Sorted(Config.Outgoing));
        cs.Learners.AddRange(Majority.Sorted(Config.Learners));
        cs.LearnersNext.AddRange(Majority.Sorted(Config.LearnersNext));
        return cs;
    }

    public bool IsSingleton => Config.Incoming.Count == 1 && !Config.IsJoint;

    public ulong Committed()
    {
        ulong a = Majority.CommittedIndex(Config.Incoming, Progress);
        ulong b = Majority.CommittedIndex(Config.Outgoing, Progress);
        return Math.Min(a, b);
    }

    public bool QuorumActive()
    {
        var votes = new Dictionary<ulong, bool>(Progress.Count);
        foreach (var (id, pr) in Progress)
            if (!pr.IsLearner) votes[id] = pr.RecentActive;
        return VoteResultOf(votes) == VoteResult.Won;
    }

    public VoteResult VoteResultOf(Dictionary<ulong, bool> votes) =>
        Majority.Joint(Majority.Vote(Config.Incoming, votes), Majority.Vote(Config.Outgoing, votes));

    public ulong[] VoterNodes() => Majority.Sorted(Config.VoterIds());

    public ulong[] LearnerNodes() => Majority.Sorted(Config.Learners);

    public void ResetVotes() => Votes.Clear();

    public void RecordVote(ulong id, bool v) => Votes.TryAdd(id, v);

    public (int granted, int rejected, VoteResult result) TallyVotes()
    {
        int granted = 0, rejected = 0;
        foreach (var (id, pr) in Progress)
        {
            if (pr.IsLearner) continue;
            if (!Votes.TryGetValue(id, out bool v)) continue;
            if (v) granted++; else rejected++;
        }
        return (granted, rejected, VoteResultOf(Votes));
    }
}
