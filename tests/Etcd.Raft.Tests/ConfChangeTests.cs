using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Membership changes: single-step ConfChange (§4.1), joint consensus ConfChangeV2 (§4.3), learners.</summary>
public class ConfChangeTests
{
    private static ConfChange Cc(ConfChangeType t, ulong id) => new() { Type = t, NodeId = id };

    private static ConfChangeV2 V2(ConfChangeTransition tr, params (ConfChangeType t, ulong id)[] changes)
    {
        var cc = new ConfChangeV2 { Transition = tr };
        foreach (var (t, id) in changes) cc.Changes.Add(new ConfChangeSingle { Type = t, NodeId = id });
        return cc;
    }

    private static string Voters(ConfState cs) => string.Join(",", cs.Voters);

    [Fact]
    public void AddVoter_NewNodeCatchesUpAndCountsForQuorum()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.AddEmpty(4);
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 4));
        c.Pump();
        foreach (var id in new ulong[] { 1, 2, 3 }) Assert.Equal("1,2,3,4", Voters(c[id].LastConfState!));
        c[1].Node.Propose(TestNode.B("x"));
        c.Pump();
        Assert.Equal("1,2,3,4", Voters(c[4].LastConfState!));
        Assert.Equal("x", System.Text.Encoding.UTF8.GetString(c[4].AppliedData()[^1]));
        // Four voters need three acks: with 3 and 4 down nothing commits.
        c.Down.Add(3);
        c.Down.Add(4);
        ulong commit = c[1].Node.GetBasicStatus().Commit;
        c[1].Node.Propose(TestNode.B("y"));
        c.Pump();
        Assert.Equal(commit, c[1].Node.GetBasicStatus().Commit);
        c.Down.Remove(4);
        c.Tick();
        Assert.Equal(commit + 1, c[1].Node.GetBasicStatus().Commit);
    }

    [Fact]
    public void RemoveFollower_ShrinksQuorum()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeRemoveNode, 3));
        c.Pump();
        Assert.Equal("1,2", Voters(c[1].LastConfState!));
        c.Down.Add(3);
        c.Down.Add(2);
        c[1].Node.Propose(TestNode.B("alone?"));
        c.Pump();
        Assert.NotEqual("alone?", System.Text.Encoding.UTF8.GetString(c[1].AppliedData().LastOrDefault() ?? []));
        c.Down.Remove(2);
        c.Tick();
        Assert.Equal("alone?", System.Text.Encoding.UTF8.GetString(c[1].AppliedData()[^1]));
    }

    [Fact]
    public void RemovingPendingVoterCommitsWhatTheRemainingQuorumHas()
    {
        // Leader 1 of {1,2}; 2 is unreachable so nothing commits; removing 2 lets 1 commit alone.
        var r = Net.NewRaft(1, [1, 2]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        r.Step(Net.Prop(1, "a"));
        Assert.Equal(0UL, r.Log.Committed);
        r.ApplyConfChange(RaftUtil.AsV2(Cc(ConfChangeType.ConfChangeRemoveNode, 2)));
        Assert.Equal(2UL, r.Log.Committed);
    }

    [Fact]
    public void RemoveLeader_ProposalsDroppedAndOthersElectNewLeader()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeRemoveNode, 1));
        c.Pump();
        Assert.Equal("2,3", Voters(c[1].LastConfState!));
        Assert.Equal("2,3", Voters(c[2].LastConfState!));
        var ex = Assert.Throws<RaftException>(() => c[1].Node.Propose(TestNode.B("x")));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        c.Down.Add(1);
        for (int i = 0; i < 40 && c.Leader() is 0 or 1; i++) c.Tick();
        Assert.Contains(c.Leader(), new ulong[] { 2, 3 });
        c[c.Leader()].Node.Propose(TestNode.B("after"));
        c.Pump();
        Assert.Equal("after", System.Text.Encoding.UTF8.GetString(c[2].AppliedData()[^1]));
    }

    [Fact]
    public void OnlyOneUnappliedConfChangeAtATime()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.Down.Add(2);
        c.Down.Add(3);
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 4));
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 5));
        var ents = c[1].Raft.Log.AllEntries();
        Assert.Equal(EntryType.EntryConfChange, ents[^2].Type);
        Assert.Equal(EntryType.EntryNormal, ents[^1].Type); // the second was replaced by an empty entry
        Assert.True(ents[^1].Data.IsEmpty);
        c.Down.Clear();
        c.Tick();
        Assert.Equal("1,2,3,4", Voters(c[1].LastConfState!));
        // Once applied, a new change is accepted.
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 5));
        Assert.Equal(EntryType.EntryConfChange, c[1].Raft.Log.AllEntries()[^1].Type);
    }

    [Fact]
    public void JointAuto_EntersAndLeavesAutomatically()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.AddEmpty(4);
        c[1].Node.ProposeConfChange(V2(ConfChangeTransition.Auto,
            (ConfChangeType.ConfChangeAddNode, 4), (ConfChangeType.ConfChangeRemoveNode, 3)));
        c.Pump();
        c.Tick(2); // the leave entry is replicated with the next heartbeat round
        var states = c[1].ConfStates;
        var joint = states[^2];
        Assert.Equal("1,2,4", Voters(joint));
        Assert.Equal(new ulong[] { 1, 2, 3 }, joint.VotersOutgoing);
        Assert.True(joint.AutoLeave);
        var final = states[^1];
        Assert.Equal("1,2,4", Voters(final));
        Assert.Empty(final.VotersOutgoing);
        Assert.False(final.AutoLeave);
        Assert.Equal("1,2,4", Voters(c[2].LastConfState!));
        Assert.Empty(c[2].LastConfState!.VotersOutgoing);
    }

    [Fact]
    public void JointExplicit_StaysJointUntilEmptyChange_AndRefusesOtherChanges()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.AddEmpty(4);
        c[1].Node.ProposeConfChange(V2(ConfChangeTransition.JointExplicit, (ConfChangeType.ConfChangeAddNode, 4)));
        c.Tick(3);
        var cs = c[1].LastConfState!;
        Assert.Equal(new ulong[] { 1, 2, 3 }, cs.VotersOutgoing);
        Assert.False(cs.AutoLeave);
        // Another change while joint is refused (replaced by an empty entry).
        int n = c[1].ConfStates.Count;
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 5));
        Assert.Equal(EntryType.EntryNormal, c[1].Raft.Log.AllEntries()[^1].Type);
        c.Pump();
        Assert.Equal(n, c[1].ConfStates.Count);
        c[1].Node.ProposeConfChange(new ConfChangeV2());
        c.Pump();
        cs = c[1].LastConfState!;
        Assert.Equal("1,2,3,4", Voters(cs));
        Assert.Empty(cs.VotersOutgoing);
    }

    [Fact]
    public void EmptyChangeOutsideJointIsRefused()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.ProposeConfChange(new ConfChangeV2());
        Assert.Equal(EntryType.EntryNormal, c[1].Raft.Log.AllEntries()[^1].Type);
    }

    [Fact]
    public void Learner_ReplicatesWithoutVotingAndCanBePromoted()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.AddEmpty(4);
        c[1].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddLearnerNode, 4));
        c.Pump();
        c[1].Node.Propose(TestNode.B("l"));
        c.Pump();
        Assert.Equal(new ulong[] { 4 }, c[4].LastConfState!.Learners);
        Assert.Equal("l", System.Text.Encoding.UTF8.GetString(c[4].AppliedData()[^1]));
        Assert.True(c[1].Node.GetStatus().Progress[4].IsLearner);
        // The learner never campaigns.
        c.Down.Add(1);
        for (int i = 0; i < 30; i++) { c[4].Node.Tick(); c.Pump(); }
        Assert.Equal(StateType.Follower, c[4].Node.GetBasicStatus().RaftState);
        c.Down.Remove(1);
        c.Pump();
        int leader = (int)c.Leader();
        if (leader == 0) { for (int i = 0; i < 40 && c.Leader() == 0; i++) c.Tick(); leader = (int)c.Leader(); }
        c[(ulong)leader].Node.ProposeConfChange(Cc(ConfChangeType.ConfChangeAddNode, 4));
        c.Pump();
        Assert.Equal("1,2,3,4", Voters(c[4].LastConfState!));
        Assert.Empty(c[4].LastConfState!.Learners);
    }

    [Fact]
    public void DemotingAVoterInJointConfig_UsesLearnersNext()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.ProposeConfChange(V2(ConfChangeTransition.JointExplicit, (ConfChangeType.ConfChangeAddLearnerNode, 3)));
        c.Pump();
        var cs = c[1].LastConfState!;
        Assert.Equal("1,2", Voters(cs));
        Assert.Equal(new ulong[] { 1, 2, 3 }, cs.VotersOutgoing);
        Assert.Equal(new ulong[] { 3 }, cs.LearnersNext);
        Assert.Empty(cs.Learners);
        c[1].Node.ProposeConfChange(new ConfChangeV2());
        c.Pump();
        cs = c[1].LastConfState!;
        Assert.Equal(new ulong[] { 3 }, cs.Learners);
        Assert.Empty(cs.LearnersNext);
        Assert.True(c[3].Raft.IsLearner);
    }

    [Fact]
    public void Changer_RejectsInvalidChanges()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        Assert.Equal("more than one voter changed without entering joint config",
            Assert.Throws<RaftException>(() => new ConfChanger(r.Prs, 0).Simple([
                new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = 4 },
                new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = 5 }])).Message);
        // Adding a learner and a voter at once is fine: only one voter changes.
        new ConfChanger(r.Prs, 0).Simple([
            new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = 4 },
            new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = 5 }]);
        var single = Net.NewRaft(1, [1]);
        Assert.Equal("removed all voters",
            Assert.Throws<RaftException>(() => single.ApplyConfChange(RaftUtil.AsV2(Cc(ConfChangeType.ConfChangeRemoveNode, 1)))).Message);
        Assert.Equal("can't leave a non-joint config",
            Assert.Throws<RaftException>(() => r.ApplyConfChange(new ConfChangeV2())).Message);
        r.ApplyConfChange(V2(ConfChangeTransition.JointExplicit, (ConfChangeType.ConfChangeAddNode, 4)));
        Assert.Equal("config is already joint",
            Assert.Throws<RaftException>(() => r.ApplyConfChange(V2(ConfChangeTransition.JointExplicit, (ConfChangeType.ConfChangeAddNode, 5)))).Message);
        Assert.Equal("can't apply simple config change in joint config",
            Assert.Throws<RaftException>(() => r.ApplyConfChange(RaftUtil.AsV2(Cc(ConfChangeType.ConfChangeAddNode, 5)))).Message);
    }

    [Theory]
    [InlineData("1,2,3", "", "", "", false)]
    [InlineData("1,2", "4", "", "", false)]
    [InlineData("1,2,4", "5", "1,2,3", "3", true)]
    [InlineData("4", "", "1,2,3", "", false)]
    public void Restore_RebuildsTheSameConfState(string voters, string learners, string outgoing, string learnersNext, bool autoLeave)
    {
        static IEnumerable<ulong> L(string s) => s.Length == 0 ? [] : s.Split(',').Select(ulong.Parse);
        var cs = new ConfState { AutoLeave = autoLeave };
        cs.Voters.AddRange(L(voters));
        cs.Learners.AddRange(L(learners));
        cs.VotersOutgoing.AddRange(L(outgoing));
        cs.LearnersNext.AddRange(L(learnersNext));
        var tracker = new ProgressTracker(10);
        var (cfg, prs) = ConfChanger.Restore(tracker, 10, cs);
        tracker.Set(cfg, prs);
        var back = tracker.ToConfState();
        Assert.Equal(cs.Voters.OrderBy(x => x), back.Voters);
        Assert.Equal(cs.Learners.OrderBy(x => x), back.Learners);
        Assert.Equal(cs.VotersOutgoing.OrderBy(x => x), back.VotersOutgoing);
        Assert.Equal(cs.LearnersNext.OrderBy(x => x), back.LearnersNext);
        Assert.Equal(autoLeave, back.AutoLeave);
    }

    [Fact]
    public void JointConfig_CommitNeedsBothMajorities()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        r.ApplyConfChange(V2(ConfChangeTransition.JointExplicit, (ConfChangeType.ConfChangeRemoveNode, 2), (ConfChangeType.ConfChangeRemoveNode, 3), (ConfChangeType.ConfChangeAddNode, 4), (ConfChangeType.ConfChangeAddNode, 5)));
        r.Step(Net.Prop(1, "x"));
        ulong last = r.Log.LastIndex();
        // Old majority {1,2} acks: not enough, the new config {1,4,5} has only 1.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = last });
        Assert.True(r.Log.Committed < last);
        r.Step(new Message { From = 4, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = last });
        Assert.Equal(last, r.Log.Committed);
    }

    [Fact]
    public void ZeroNodeIdAndUpdateNode_AreNoOpsReturningTheCurrentConfState()
    {
        // etcd's server applies a refused change with NodeID zeroed, and uses UpdateNode for member updates.
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        var n = c[1].Node;
        var cs = n.ApplyConfChange(new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = 0 });
        Assert.Equal("1,2,3", Voters(cs));
        cs = n.ApplyConfChange(new ConfChange { Type = ConfChangeType.ConfChangeUpdateNode, NodeId = 2 });
        Assert.Equal("1,2,3", Voters(cs));
        cs = n.ApplyConfChange(new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = 2 });
        Assert.Equal("1,2,3", Voters(cs));
        Assert.Equal(StateType.Leader, n.GetBasicStatus().RaftState);
    }
}
