using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Multi-node scenarios around check quorum, pre-vote, removal and pending configuration.</summary>
public class ScenarioTests
{
    [Fact]
    public void CheckQuorum_StuckCandidateWithHigherTermIsFreedAfterHealing()
    {
        var net = new Net(c => c.CheckQuorum = true, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(1);
        // 1 is cut off; 2 and 3 elect 2 (their lease must expire first).
        for (int i = 0; i < 20; i++) { net.Tick(2); net.Tick(3); }
        var leader = net[2].State == StateType.Leader ? 2UL : 3UL;
        Assert.Equal(StateType.Leader, net[leader].State);
        // Meanwhile 1 steps down for lack of quorum, then campaigns repeatedly and runs its term up.
        for (int i = 0; i < 20; i++) net.Tick(1);
        Assert.NotEqual(StateType.Leader, net[1].State);
        for (int i = 0; i < 5; i++) net.Campaign(1);
        Assert.True(net[1].Term > net[leader].Term);
        net.Recover();
        // The leader's heartbeat reaches the stuck candidate, whose reply carries its higher term.
        net.Heartbeat(leader);
        Assert.Equal(StateType.Follower, net[leader].State);
        Assert.Equal(net[1].Term, net[leader].Term);
        // A new election at the higher term then succeeds (1's log is behind, so 1 cannot win it).
        net.Campaign(leader);
        Assert.Equal(StateType.Leader, net[leader].State);
    }

    [Fact]
    public void PreVoteWithCheckQuorum_RejoiningNodeDoesNotDisturbTheLeader()
    {
        var net = new Net(c => { c.PreVote = true; c.CheckQuorum = true; }, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        for (int i = 0; i < 40; i++) net.Tick(3);
        Assert.Equal(1UL, net[3].Term);
        net.Recover();
        for (int i = 0; i < 3; i++) net.Tick(1);
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(1UL, net[1].Term);
        Assert.Equal(1UL, net[3].Lead);
    }

    [Fact]
    public void PreVote_NodeWithSmallerTermCanStillWinWhenLogIsUpToDate()
    {
        var net = new Net(c => c.PreVote = true, 1, 2, 3);
        net.Campaign(1);
        net.Propose(1, "x");
        // 3 is cut off and its pre-votes fail, so it stays at term 1 while 1 and 2 move to term 3.
        net.Isolate(3);
        net.Campaign(2);
        net.Cut(1, 2);
        net[2].BecomeFollower(net[2].Term, 0);
        net.Campaign(1);
        Assert.True(net[1].Term > net[3].Term);
        // With 1 gone, 3 (term 1 but an up-to-date log) and 2 can elect a leader.
        net.Recover();
        net.Isolate(1);
        net[2].BecomeFollower(net[2].Term, 0);
        net.Campaign(3);
        net.Campaign(2);
        Assert.True(net[2].State == StateType.Leader || net[3].State == StateType.Leader);
    }

    [Fact]
    public void RemovingAFollower_CommitsEntriesPendingOnIt()
    {
        var r = Net.NewRaft(1, [1, 2]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        var cc = new ConfChange { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = 2 };
        var prop = new Message { From = 1, To = 1, Type = MessageType.MsgProp };
        prop.Entries.Add(new Entry { Type = EntryType.EntryConfChange, Data = cc.ToByteString() });
        r.Step(prop);
        r.Step(Net.Prop(1, "pending"));
        // 2 acknowledges the conf change but not the normal entry.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 2 });
        Assert.Equal(2UL, r.Log.Committed);
        r.Log.AppliedTo(2);
        r.ApplyConfChange(RaftUtil.AsV2(cc));
        // Now 1 alone is the quorum: the pending entry commits.
        Assert.Equal(3UL, r.Log.Committed);
    }

    [Fact]
    public void NewLeader_RefusesConfChangeUntilItHasAppliedItsOwnLog()
    {
        var r = Net.NewRaft(1, [1]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(StateType.Leader, r.State);
        // Pending conf index is the last index at election: nothing applied yet, so a change is replaced.
        var prop = new Message { From = 1, To = 1, Type = MessageType.MsgProp };
        prop.Entries.Add(new Entry { Type = EntryType.EntryConfChange, Data = new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = 2 }.ToByteString() });
        Assert.Equal(0UL, r.PendingConfIndex);
        r.Step(prop);
        Assert.Equal(EntryType.EntryConfChange, r.Log.AllEntries()[^1].Type); // last index 0 at election: allowed
        var r2 = Net.NewRaft(1, [1], new MemoryStorage());
        r2.Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null)]);
        r2.Log.CommitTo(1);
        r2.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(1UL, r2.PendingConfIndex);
        var prop2 = prop.Clone();
        r2.Step(prop2);
        Assert.Equal(EntryType.EntryNormal, r2.Log.AllEntries()[^1].Type);
        r2.Log.AppliedTo(r2.Log.Committed);
        r2.Step(prop.Clone());
        Assert.Equal(EntryType.EntryConfChange, r2.Log.AllEntries()[^1].Type);
    }

    [Fact]
    public void LearnerVotes_AreNotCounted()
    {
        var r = Net.NewRaft(1, [1, 2], learners: [3]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        var votes = Net.Take(r);
        Assert.Equal(new ulong[] { 2 }, votes.Select(v => v.To)); // learners are not asked
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        Assert.Equal(StateType.Candidate, r.State);
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        Assert.Equal(StateType.Leader, r.State);
    }

    [Fact]
    public void Learner_CatchesUpFromSnapshot()
    {
        var st = new MemoryStorage();
        var cs = new ConfState { Voters = { 1 }, Learners = { 2 } };
        st.ApplySnapshot(new Snapshot { Data = ByteString.CopyFromUtf8("s"), Metadata = new SnapshotMetadata { Index = 10, Term = 3, ConfState = cs } });
        st.SetHardState(new HardState { Term = 3, Commit = 10 });
        var net = new Net(1, 2);
        net.Peers[1] = Net.NewRaft(1, [1], st);
        net.Peers[2] = Net.NewRaft(2, [1], learners: [2]);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, net[1].State);
        net.Heartbeat(1);
        Assert.Equal(11UL, net[2].Log.Committed);
        Assert.NotNull(net[2].Log.Unstable.Snapshot);
        Assert.True(net[2].IsLearner);
    }

    [Fact]
    public void ReadOnly_ForgetsServedRequests()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        for (int i = 0; i < 10; i++)
        {
            var m = new Message { From = 1, To = 1, Type = MessageType.MsgReadIndex };
            m.Entries.Add(new Entry { Data = ByteString.CopyFromUtf8("ctx" + i) });
            net.Send(m);
        }
        Assert.Equal(10, net[1].ReadStates.Count);
        // Once served, nothing is pending: heartbeats carry no context any more.
        net.Delivered.Clear();
        net.Heartbeat(1);
        Assert.All(net.Delivered.Where(m => m.Type == MessageType.MsgHeartbeat), m => Assert.True(m.Context.IsEmpty));
    }

    [Fact]
    public void OldTermMessages_AreIgnored()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Campaign(2);
        net.Campaign(1);
        Assert.Equal(3UL, net[1].Term);
        // An append from term 2's leader arrives late.
        var stale = new Message { Type = MessageType.MsgApp, From = 2, To = 1, Term = 2, Index = 3, LogTerm = 2, Commit = 3 };
        stale.Entries.Add(RaftUtil.NewEntry(2, 4, EntryType.EntryNormal, ByteString.CopyFromUtf8("stale")));
        net.Send(stale);
        Assert.DoesNotContain("stale", Net.LogData(net[1]));
        Assert.Equal(StateType.Leader, net[1].State);
    }

    [Fact]
    public void CampaignWhileLeader_IsANoOp()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        ulong term = net[1].Term;
        net.Campaign(1);
        Assert.Equal(term, net[1].Term);
        Assert.Equal(StateType.Leader, net[1].State);
    }
}
