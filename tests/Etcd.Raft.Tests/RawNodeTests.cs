using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>The RawNode API contract: Ready contents, Advance, errors, status.</summary>
public class RawNodeTests
{
    [Fact]
    public void Step_RejectsLocalMessagesAndResponsesFromUnknownPeers()
    {
        var n = TestNode.Bootstrapped(1, [1, 2]);
        n.HandleReady();
        foreach (var t in new[] { MessageType.MsgHup, MessageType.MsgBeat, MessageType.MsgUnreachable, MessageType.MsgSnapStatus, MessageType.MsgCheckQuorum })
            Assert.Equal(RaftErrorKind.StepLocalMsg, Assert.Throws<RaftException>(() => n.Node.Step(new Message { Type = t, From = 2 })).Kind);
        var ex = Assert.Throws<RaftException>(() => n.Node.Step(new Message { Type = MessageType.MsgAppResp, From = 9, Term = 1 }));
        Assert.Equal(RaftErrorKind.StepPeerNotFound, ex.Kind);
        Assert.Equal("raft: cannot step as peer not found", ex.Message);
        // Non-responses from unknown peers are accepted (e.g. a new leader that added us).
        n.Node.Step(new Message { Type = MessageType.MsgHeartbeat, From = 9, Term = 2 });
        Assert.Equal(9UL, n.Node.GetBasicStatus().Lead);
    }

    [Fact]
    public void ProposeBatch_LeaderSendsOneAppendPerFollower_FollowerForwardsOneMessage_AllApplyInOrder()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].HandleReady();
        c[1].Node.Propose([TestNode.B("a"), TestNode.B("b"), TestNode.B("c")]);
        var rd = c[1].Node.GetReady();
        Assert.Equal(3, rd.Entries.Count);
        Assert.Equal([rd.Entries[0].Index, rd.Entries[0].Index + 1, rd.Entries[0].Index + 2], rd.Entries.Select(e => e.Index));
        var apps = rd.Messages.Where(m => m.Type == MessageType.MsgApp).ToList();
        Assert.Equal([2UL, 3UL], apps.Select(m => m.To).Order());
        Assert.All(apps, m => Assert.Equal(3, m.Entries.Count));
        c[1].Storage.Append(rd.Entries);
        c[1].Node.Advance(rd);
        foreach (var m in rd.Messages)
        {
            c[m.To].Node.Step(m);
        }

        c.Pump();

        // A follower forwards a batch to the leader as one MsgProp.
        c[2].Node.Propose([TestNode.B("d"), TestNode.B("e")]);
        var frd = c[2].Node.GetReady();
        var prop = Assert.Single(frd.Messages, m => m.Type == MessageType.MsgProp);
        Assert.Equal(1UL, prop.To);
        Assert.Equal(2, prop.Entries.Count);
        c[2].Node.Advance(frd);
        c[1].Node.Step(prop);
        c.Pump();

        foreach (var id in new ulong[] { 1, 2, 3 })
        {
            Assert.Equal(["a", "b", "c", "d", "e"], c[id].AppliedData().Select(System.Text.Encoding.UTF8.GetString));
        }
    }

    [Fact]
    public void ProposeBatch_WithoutLeader_DropsTheWholeBatch()
    {
        var c = new RawCluster([1, 2, 3]);
        var ex = Assert.Throws<RaftException>(() => c[2].Node.Propose([TestNode.B("a"), TestNode.B("b")]));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        Assert.Empty(c[2].Node.GetReady().Entries);
    }

    [Fact]
    public void Ready_MustSyncOnlyForTermVoteOrEntries()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        var f = c[2].Node;
        // A heartbeat only moves the commit index: no fsync needed.
        f.Step(new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2, Term = 2, Commit = c[1].Node.GetBasicStatus().Commit });
        var rd = f.GetReady();
        Assert.False(rd.MustSync);
        f.Advance(rd);
        f.Step(new Message { Type = MessageType.MsgVote, From = 3, To = 2, Term = 5, Index = 100, LogTerm = 100 });
        rd = f.GetReady();
        Assert.True(rd.MustSync);
        Assert.Equal(5UL, rd.HardState.Term);
        Assert.Equal(3UL, rd.HardState.Vote);
        Assert.Equal(new SoftState(0, StateType.Follower), rd.SoftState);
    }

    [Fact]
    public void Ready_UnchangedHardStateIsEmpty_AndSoftStateOnlyOnChange()
    {
        var n = TestNode.Bootstrapped(1, [1]);
        n.HandleReady();
        n.Node.Campaign();
        var rd = n.Node.GetReady();
        Assert.NotNull(rd.SoftState);
        n.Storage.Append(rd.Entries);
        n.Node.Advance(rd);
        n.Node.Propose(TestNode.B("a"));
        rd = n.Node.GetReady();
        Assert.Null(rd.SoftState);
        Assert.True(rd.HasHardState); // commit moved
        n.Storage.Append(rd.Entries);
        n.Node.Advance(rd);
        n.Node.Tick();
        Assert.False(n.Node.HasReady());
        Assert.True(n.Node.GetReady().IsEmpty);
    }

    [Fact]
    public void MaxCommittedSizePerReady_SpreadsCommittedEntriesOverSeveralReadies()
    {
        var n = TestNode.Bootstrapped(1, [1], c => c.MaxCommittedSizePerReady = 64);
        n.HandleReady();
        n.Node.Campaign();
        n.HandleReady();
        for (int i = 0; i < 10; i++) n.Node.Propose(new byte[30]);
        int readies = 0;
        var applied = new List<ulong>();
        while (n.Node.HasReady() && readies < 50)
        {
            var rd = n.Node.GetReady();
            readies++;
            Assert.InRange(rd.CommittedEntries.Count, 0, 2);
            applied.AddRange(rd.CommittedEntries.Select(e => e.Index));
            n.Storage.Append(rd.Entries);
            n.Node.Advance(rd);
        }
        Assert.Equal(Enumerable.Range(3, 10).Select(i => (ulong)i), applied);
        Assert.True(readies >= 5);
    }

    [Fact]
    public void Status_LeaderHasProgress_FollowerDoesNot()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        var s = c[1].Node.GetStatus();
        Assert.Equal(1UL, s.Id);
        Assert.Equal(StateType.Leader, s.RaftState);
        Assert.Equal(3, s.Progress.Count);
        Assert.Equal(ProgressState.Replicate, s.Progress[2].State);
        Assert.Equal(s.Commit, s.Progress[2].Match);
        Assert.Equal(new ulong[] { 1, 2, 3 }, s.Config.Voters);
        var fs = c[2].Node.GetStatus();
        Assert.Empty(fs.Progress);
        Assert.Equal(1UL, fs.Lead);
        Assert.Equal(fs.Commit, fs.Applied);
        var b = c[3].Node.GetBasicStatus();
        Assert.Equal(3UL, b.Id);
        Assert.Equal(s.Term, b.Term);
    }

    [Fact]
    public void ReportUnreachable_AndReportSnapshot_AreSafeFromAnyState()
    {
        var n = TestNode.Bootstrapped(1, [1, 2]);
        n.HandleReady();
        n.Node.ReportUnreachable(2);
        n.Node.ReportSnapshot(2, SnapshotStatus.Failure);
        n.Node.ReportUnreachable(42);
        Assert.Equal(StateType.Follower, n.Node.GetBasicStatus().RaftState);
    }

    [Fact]
    public void TickQuiesced_AdvancesElectionClockWithoutCampaigning()
    {
        var n = TestNode.Bootstrapped(1, [1, 2, 3]);
        n.HandleReady();
        for (int i = 0; i < 100; i++) n.Node.TickQuiesced();
        Assert.Equal(StateType.Follower, n.Node.GetBasicStatus().RaftState);
        n.Node.Tick();
        Assert.Equal(StateType.Candidate, n.Node.GetBasicStatus().RaftState);
    }

    [Fact]
    public void ProposeConfChange_EncodesEntryTypes()
    {
        var n = TestNode.Bootstrapped(1, [1]);
        n.HandleReady();
        n.Node.Campaign();
        n.HandleReady();
        n.Node.ProposeConfChange(new ConfChange { Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = 2, Context = ByteString.CopyFromUtf8("m2") });
        var rd = n.Node.GetReady();
        var e = Assert.Single(rd.Entries);
        Assert.Equal(EntryType.EntryConfChange, e.Type);
        var cc = ConfChange.Parser.ParseFrom(e.Data);
        Assert.Equal(2UL, cc.NodeId);
        Assert.Equal("m2", cc.Context.ToStringUtf8());
        var cs = n.Node.ApplyConfChange(cc);
        Assert.Equal(new ulong[] { 2 }, cs.Learners);
        n.Storage.Append(rd.Entries);
        n.Node.Advance(rd);
        n.Node.ProposeConfChange(new ConfChangeV2 { Changes = { new ConfChangeSingle { Type = ConfChangeType.ConfChangeAddNode, NodeId = 2 } } });
        Assert.Equal(EntryType.EntryConfChangeV2, Assert.Single(n.Node.GetReady().Entries).Type);
    }
}

public class ClusterRestartTests
{
    [Fact]
    public void WholeClusterRestartsFromDisk_KeepsCommittedDataAndContinues()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        for (int i = 0; i < 10; i++) c[1].Node.Propose(TestNode.B("v" + i));
        c.Pump();
        var before = c.Nodes.Values.Select(n => n.Node.GetBasicStatus()).ToList();
        foreach (var n in c.Nodes.Values) n.Restart();
        foreach (var (n, b) in c.Nodes.Values.Zip(before))
        {
            var st = n.Node.GetBasicStatus();
            Assert.Equal(StateType.Follower, st.RaftState);
            Assert.Equal(b.Term, st.Term);
            Assert.Equal(b.Commit, st.Commit);
            Assert.Equal(b.HardState.Vote, st.HardState.Vote);
        }
        c.Pump(); // replays committed entries (conf changes rebuild the membership)
        for (int i = 0; i < 40 && c.Leader() == 0; i++) c.Tick();
        ulong leader = c.Leader();
        Assert.NotEqual(0UL, leader);
        c[leader].Node.Propose(TestNode.B("after-restart"));
        c.Pump();
        foreach (var n in c.Nodes.Values)
        {
            var data = n.AppliedData().Select(b => System.Text.Encoding.UTF8.GetString(b)).ToList();
            Assert.Equal(Enumerable.Range(0, 10).Select(i => "v" + i).Append("after-restart"), data);
        }
    }

    [Fact]
    public void FollowerRestartWhileOthersProgress_CatchesUpByLog()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.Down.Add(3);
        for (int i = 0; i < 5; i++) c[1].Node.Propose(TestNode.B("x" + i));
        c.Pump();
        c[3].Restart();
        c.Down.Remove(3);
        c.Tick(2);
        Assert.Equal(c[1].Node.GetBasicStatus().Commit, c[3].Node.GetBasicStatus().Commit);
        Assert.Equal(5, c[3].AppliedData().Count);
    }
}
