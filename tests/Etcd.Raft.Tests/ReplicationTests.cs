using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Log replication and commitment (Raft §5.3, §5.4, Figures 7 and 8) and flow control.</summary>
public class ReplicationTests
{
    private static Entry E(ulong index, ulong term, string? data = null) =>
        RaftUtil.NewEntry(term, index, EntryType.EntryNormal, data is null ? null : ByteString.CopyFromUtf8(data));

    private static Entry[] Terms(params ulong[] terms) => terms.Select((t, i) => E((ulong)i + 1, t)).ToArray();

    private static string Sig(Raft r) => Net.Describe(r);

    [Fact]
    public void Proposal_ReplicatedAndCommittedEverywhere()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Propose(1, "a");
        net.Propose(1, "b");
        Assert.All(net.Peers.Values, r => Assert.Equal(["a", "b"], Net.LogData(r)));
        // The leader broadcasts an append whenever its commit index moves, so followers know it too.
        Assert.All(net.Peers.Values, r => Assert.Equal(3UL, r.Log.Committed));
    }

    [Fact]
    public void Commit_NeedsMajority()
    {
        var net = new Net(1, 2, 3, 4, 5);
        net.Campaign(1);
        net.Isolate(3);
        net.Isolate(4);
        net.Isolate(5);
        net.Propose(1, "a");
        Assert.Equal(1UL, net[1].Log.Committed);
        net.Recover();
        net.Isolate(4);
        net.Isolate(5);
        net.Heartbeat(1); // 3 catches up via the heartbeat response path
        Assert.Equal(2UL, net[1].Log.Committed);
    }

    [Fact]
    public void Follower_RejectsAppendWithMismatchedPrevEntry_WithHint()
    {
        var r = Net.NewRaft(2, [1, 2]);
        r.Log.Append(Terms(1, 1, 2));
        r.Term = 3;
        var app = new Message { Type = MessageType.MsgApp, From = 1, To = 2, Term = 3, Index = 5, LogTerm = 3 };
        r.Step(app);
        var resp = Assert.Single(Net.Take(r));
        Assert.True(resp.Reject);
        Assert.Equal(5UL, resp.Index);
        Assert.Equal(3UL, resp.RejectHint); // our last index
    }

    [Fact]
    public void Follower_TruncatesConflictingSuffixAndAppends()
    {
        var r = Net.NewRaft(2, [1, 2]);
        r.Log.Append(Terms(1, 1, 2, 2, 2));
        r.Term = 3;
        var app = new Message { Type = MessageType.MsgApp, From = 1, To = 2, Term = 3, Index = 2, LogTerm = 1, Commit = 3 };
        app.Entries.Add(E(3, 3));
        app.Entries.Add(E(4, 3));
        r.Step(app);
        var resp = Assert.Single(Net.Take(r));
        Assert.False(resp.Reject);
        Assert.Equal(4UL, resp.Index);
        Assert.Equal("1@1,2@1,3@3,4@3", Sig(r));
        Assert.Equal(3UL, r.Log.Committed);
    }

    [Fact]
    public void Follower_IgnoresAlreadyPresentEntries_AndCommitIsBoundedByLastNewEntry()
    {
        var r = Net.NewRaft(2, [1, 2]);
        r.Log.Append(Terms(1, 1, 1, 1));
        r.Term = 1;
        var app = new Message { Type = MessageType.MsgApp, From = 1, To = 2, Term = 1, Index = 1, LogTerm = 1, Commit = 4 };
        app.Entries.Add(E(2, 1));
        r.Step(app);
        Assert.Equal("1@1,2@1,3@1,4@1", Sig(r)); // no truncation of matching entries
        Assert.Equal(2UL, r.Log.Committed); // min(leader commit, index of last new entry)
    }

    [Fact]
    public void Follower_AnswersStaleAppendBelowCommitWithItsCommitIndex()
    {
        var r = Net.NewRaft(2, [1, 2]);
        r.Log.Append(Terms(1, 1, 1));
        r.Log.CommitTo(3);
        r.Term = 1;
        r.Step(new Message { Type = MessageType.MsgApp, From = 1, To = 2, Term = 1, Index = 1, LogTerm = 1 });
        var resp = Assert.Single(Net.Take(r));
        Assert.False(resp.Reject);
        Assert.Equal(3UL, resp.Index);
    }

    public static TheoryData<ulong[]> Figure7Followers => new()
    {
        // The follower logs (a)-(f) of Figure 7 of the Raft paper, as term lists.
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6 },
        new ulong[] { 1, 1, 1, 4 },
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6 },
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7 },
        new ulong[] { 1, 1, 1, 4, 4, 4, 4 },
        new ulong[] { 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3 },
        new ulong[] { },
    };

    [Theory]
    [MemberData(nameof(Figure7Followers))]
    public void Figure7_NewLeaderBringsAnyFollowerLogInLineWithItsOwn(ulong[] followerTerms)
    {
        var leaderTerms = new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6 };
        var net = new Net(1, 2, 3);
        var ls = new MemoryStorage();
        ls.Append(Terms(leaderTerms));
        ls.SetHardState(new HardState { Term = 7, Commit = 0 });
        net.Peers[1] = Net.NewRaft(1, [1, 2, 3], ls);
        var fs = new MemoryStorage();
        fs.Append(Terms(followerTerms));
        fs.SetHardState(new HardState { Term = 6 });
        net.Peers[2] = Net.NewRaft(2, [1, 2, 3], fs);
        net.Peers.Remove(3); // 3 only votes, through the message injected below
        net.Campaign(1);
        net.Send(new Message { Type = MessageType.MsgVoteResp, From = 3, To = 1, Term = 8 });
        Assert.Equal(StateType.Leader, net[1].State);
        net.Propose(1, "x");
        Assert.Equal(Sig(net[1]), Sig(net[2]));
        Assert.Equal(12UL, net[2].Log.LastIndex());
        Assert.Equal(12UL, net[1].Log.Committed);
    }

    [Fact]
    public void Leader_CommitsOnlyEntriesOfItsOwnTermByCounting()
    {
        var st = new MemoryStorage();
        st.Append(Terms(1, 2));
        st.SetHardState(new HardState { Term = 3 });
        var r = Net.NewRaft(1, [1, 2, 3, 4, 5], st);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 4 });
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgVoteResp, Term = 4 });
        Assert.Equal(StateType.Leader, r.State);
        Assert.Equal("1@1,2@2,3@4", Sig(r));
        // A majority (1, 2, 3) stores index 2 — from term 2 — which must not be committed by counting.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 4, Index = 2 });
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgAppResp, Term = 4, Index = 2 });
        Assert.Equal(0UL, r.Log.Committed);
        // Once the term-4 entry is on a majority, it and everything before it commits.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 4, Index = 3 });
        Assert.Equal(0UL, r.Log.Committed);
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgAppResp, Term = 4, Index = 3 });
        Assert.Equal(3UL, r.Log.Committed);
    }

    [Fact]
    public void Figure8_OldTermEntryOnMajorityCanStillBeOverwritten()
    {
        var net = new Net(1, 2, 3, 4, 5);
        net.Campaign(1);                                  // S1 leads term 1, 1@1 committed everywhere
        net.Isolate(3); net.Isolate(4); net.Isolate(5);
        net.Propose(1, "old");                            // 2@1 on S1, S2 only
        net.Recover();
        net.Isolate(1); net.Isolate(2);
        net.Ignore(MessageType.MsgApp);
        net.Campaign(5);                                  // S5 leads term 2 with votes of S3, S4
        Assert.Equal(StateType.Leader, net[5].State);
        Assert.Equal("1@1,2@2", Sig(net[5]));             // its empty entry stays local
        net.Recover();
        net.Isolate(5);
        net[1].BecomeFollower(net[1].Term, 0); // S1 crashed meanwhile and restarts as a follower
        // S1 comes back and wins term 3; its appends are trimmed so only old entries travel.
        net.Filter = m =>
        {
            if (m.Type == MessageType.MsgApp)
            {
                var keep = m.Entries.Where(e => e.Term != 3).ToList();
                m.Entries.Clear();
                m.Entries.AddRange(keep);
            }
            return true;
        };
        net.Campaign(1);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(3UL, net[1].Term);
        Assert.Equal(2UL, net[3].Log.LastIndex());
        Assert.Equal(1UL, net[3].Log.ZeroTermOnErrCompacted(2)); // 2@1 now on S1, S2, S3 (a majority)...
        Assert.Equal(1UL, net[1].Log.Committed);                  // ...but not committed: it is not from term 3
        // S1 crashes; S5 (last entry 2@2 is more up to date than 2@1) wins and overwrites index 2.
        net.Recover();
        net.Isolate(1);
        net[5].BecomeFollower(net[5].Term, 0); // S5 restarts after its crash
        net.Campaign(5);
        net.Campaign(5);
        Assert.Equal(StateType.Leader, net[5].State);
        net.Propose(5, "new");
        foreach (var id in new ulong[] { 2, 3, 4 })
        {
            Assert.Equal(2UL, net[id].Log.ZeroTermOnErrCompacted(2));
            Assert.Equal(["new"], Net.LogData(net[id]));
        }
    }

    [Fact]
    public void RejectHint_LetsLeaderSkipBackToFollowersLastIndex()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        for (int i = 0; i < 20; i++) net.Propose(1, "e" + i);
        net.Recover();
        int appsTo3 = 0, rejects = 0;
        net.Filter = m =>
        {
            if (m.To == 3 && m.Type == MessageType.MsgApp && m.Entries.Count > 0) appsTo3++;
            if (m.From == 3 && m.Reject) rejects++;
            return true;
        };
        net.Propose(1, "last");
        Assert.Equal(Sig(net[1]), Sig(net[3]));
        // One optimistic append is rejected, the next one (from the hint) carries everything missing.
        Assert.InRange(rejects, 1, 2); // a commit-carrying empty append may be rejected too (and ignored)
        Assert.Equal(2, appsTo3);
    }

    [Fact]
    public void Progress_ProbeThenReplicate()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        var st = net[1].Prs.Progress[2];
        Assert.Equal(ProgressState.Replicate, st.State);
        Assert.Equal(1UL, st.Match);
        Assert.Equal(2UL, st.Next);
        net.Send(new Message { From = 2, To = 1, Type = MessageType.MsgUnreachable });
        Assert.Equal(ProgressState.Probe, net[1].Prs.Progress[2].State);
        net.Propose(1, "a");
        Assert.Equal(ProgressState.Replicate, net[1].Prs.Progress[2].State);
        Assert.Equal(2UL, net[1].Prs.Progress[2].Match);
    }

    [Fact]
    public void Probe_SendsOneAppendUntilAcked()
    {
        var r = Net.NewRaft(1, [1, 2]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        Net.Take(r);
        Assert.Equal(ProgressState.Probe, r.Prs.Progress[2].State);
        for (int i = 0; i < 5; i++) r.Step(Net.Prop(1, "p" + i));
        // Leader's initial append was the probe; proposals while probing send nothing more.
        Assert.DoesNotContain(Net.Take(r), m => m.Type == MessageType.MsgApp);
        Assert.True(r.Prs.Progress[2].ProbeSent);
        // A heartbeat response unpauses the probe.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgHeartbeatResp, Term = 1 });
        var app = Assert.Single(Net.Take(r), m => m.Type == MessageType.MsgApp);
        Assert.Equal(6, app.Entries.Count);
    }

    [Fact]
    public void Replicate_InflightWindowLimitsOutstandingAppends()
    {
        var r = Net.NewRaft(1, [1, 2], configure: c => c.MaxInflightMsgs = 3);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        Net.Take(r);
        Assert.Equal(ProgressState.Replicate, r.Prs.Progress[2].State);
        for (int i = 0; i < 10; i++) r.Step(Net.Prop(1, "p" + i));
        Assert.Equal(3, Net.Take(r).Count(m => m.Type == MessageType.MsgApp));
        Assert.True(r.Prs.Progress[2].IsPaused());
        // Acking the first frees one slot; the next proposal's append goes out.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 2 });
        var apps = Net.Take(r).Where(m => m.Type == MessageType.MsgApp).ToList();
        Assert.Single(apps);
        Assert.Equal(7, apps[0].Entries.Count); // all remaining entries in one message
        // Full window: a heartbeat response frees one slot as well.
        Assert.True(r.Prs.Progress[2].Inflights.Full);
        r.Step(Net.Prop(1, "x"));
        r.Step(Net.Prop(1, "y"));
        Assert.DoesNotContain(Net.Take(r), m => m.Type == MessageType.MsgApp);
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgHeartbeatResp, Term = 1 });
        Assert.Equal(2, Assert.Single(Net.Take(r), m => m.Type == MessageType.MsgApp).Entries.Count);
    }

    [Fact]
    public void MaxSizePerMsg_SplitsAppendsButAlwaysSendsOneEntry()
    {
        var net = new Net(c => c.MaxSizePerMsg = 100, 1, 2);
        net.Campaign(1);
        net.Isolate(2);
        for (int i = 0; i < 10; i++) net.Propose(1, new string('x', 40));
        net.Recover();
        var sizes = new List<int>();
        net.Filter = m => { if (m.Type == MessageType.MsgApp && m.Entries.Count > 0) sizes.Add(m.Entries.Count); return true; };
        net.Heartbeat(1);
        Assert.Equal(Sig(net[1]), Sig(net[2]));
        Assert.All(sizes, n => Assert.InRange(n, 1, 2)); // each entry is ~48 bytes
        Assert.True(sizes.Count >= 5);

        var one = new Net(c => c.MaxSizePerMsg = 1, 1, 2);
        one.Campaign(1);
        one.Isolate(2);
        one.Propose(1, "aa");
        one.Propose(1, "bb");
        one.Recover();
        var counts = new List<int>();
        one.Filter = m => { if (m.Type == MessageType.MsgApp && m.Entries.Count > 0) counts.Add(m.Entries.Count); return true; };
        one.Heartbeat(1);
        Assert.All(counts, n => Assert.Equal(1, n));
        Assert.Equal(Sig(one[1]), Sig(one[2]));
    }

    [Fact]
    public void MaxUncommittedEntriesSize_DropsProposalsUntilCommitted()
    {
        var net = new Net(c => c.MaxUncommittedEntriesSize = 10, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(2);
        net.Isolate(3);
        net.Propose(1, "12345");
        net.Propose(1, "12345");
        Assert.Throws<RaftException>(() => net[1].Step(Net.Prop(1, "1")));
        // A single oversized entry is accepted when nothing is outstanding.
        Assert.Equal(10UL, net[1].UncommittedSize);
        // Commit (through the RawNode Advance path) releases the budget.
        net.Recover();
        net.Heartbeat(1);
        Assert.Equal(3UL, net[1].Log.Committed);
        net[1].Advance(new Ready { CommittedEntries = net[1].Log.NextEnts() });
        Assert.Equal(0UL, net[1].UncommittedSize);
        net[1].Step(Net.Prop(1, "1"));
        var big = new Net(c => c.MaxUncommittedEntriesSize = 4, 1, 2);
        big.Campaign(1);
        big.Isolate(2);
        big[1].Step(Net.Prop(1, "way more than four bytes"));
        Assert.Throws<RaftException>(() => big[1].Step(Net.Prop(1, "x")));
    }

    [Fact]
    public void Proposal_ForwardedByFollowerToLeader()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Propose(2, "via-2");
        Assert.All(net.Peers.Values, r => Assert.Equal(["via-2"], Net.LogData(r)));
    }

    [Fact]
    public void Proposal_DroppedWhenForwardingDisabledOrNoLeader()
    {
        var net = new Net(c => c.DisableProposalForwarding = true, 1, 2, 3);
        var ex = Assert.Throws<RaftException>(() => net[2].Step(Net.Prop(2, "x")));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        net.Campaign(1);
        ex = Assert.Throws<RaftException>(() => net[2].Step(Net.Prop(2, "x")));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        net[1].Step(Net.Prop(1, "ok"));
        // A candidate drops proposals too.
        var c = Net.NewRaft(1, [1, 2, 3]);
        c.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(StateType.Candidate, c.State);
        Assert.Throws<RaftException>(() => c.Step(Net.Prop(1, "x")));
    }

    [Fact]
    public void RemoteProposalEntriesAreCopied_SoRedeliveryCannotCorruptTheLog()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        var prop = Net.Prop(2, "dup");
        prop.To = 1;
        net.Send(prop);
        net.Send(prop);
        Assert.Equal(["dup", "dup"], Net.LogData(net[1]));
        var ents = net[1].Log.AllEntries();
        Assert.Equal(ents.Select(e => e.Index), Enumerable.Range(1, ents.Count).Select(i => (ulong)i));
    }

    [Fact]
    public void StaleAppendResponses_DoNotMoveProgressBackwards()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Propose(1, "a");
        var pr = net[1].Prs.Progress[2];
        ulong match = pr.Match;
        net[1].Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        net[1].Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1, Reject = true, RejectHint = 0 });
        Assert.Equal(match, net[1].Prs.Progress[2].Match);
        Assert.Equal(ProgressState.Replicate, net[1].Prs.Progress[2].State);
    }
}
