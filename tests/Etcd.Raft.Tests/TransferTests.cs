using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Leadership transfer (thesis §3.10): MsgTransferLeader, catch-up, MsgTimeoutNow, abort on timeout.</summary>
public class TransferTests
{
    private static void Transfer(Net net, ulong leader, ulong to) =>
        net.Send(new Message { From = to, To = leader, Type = MessageType.MsgTransferLeader });

    [Fact]
    public void ToUpToDateFollower_HappensImmediately()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        Transfer(net, 1, 2);
        Assert.Equal(StateType.Leader, net[2].State);
        Assert.Equal(StateType.Follower, net[1].State);
        Assert.Equal(2UL, net[1].Lead);
        Assert.Equal(2UL, net[2].Term);
        Assert.Contains(net.Delivered, m => m.Type == MessageType.MsgTimeoutNow && m.To == 2);
    }

    [Fact]
    public void ToLaggingFollower_CatchesItUpFirst()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        for (int i = 0; i < 5; i++) net.Propose(1, "p" + i);
        net.Recover();
        Transfer(net, 1, 3);
        Assert.Equal(StateType.Leader, net[3].State);
        Assert.Equal(5, Net.LogData(net[3]).Length);
    }

    [Fact]
    public void WorksDespiteCheckQuorumLease()
    {
        var net = new Net(c => c.CheckQuorum = true, 1, 2, 3);
        net.Campaign(1);
        Transfer(net, 1, 3);
        Assert.Equal(StateType.Leader, net[3].State);
    }

    [Fact]
    public void AbortedAfterElectionTimeout_AndProposalsDroppedMeanwhile()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        Transfer(net, 1, 3);
        Assert.Equal(3UL, net[1].LeadTransferee);
        var ex = Assert.Throws<RaftException>(() => net[1].Step(Net.Prop(1, "x")));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        for (int i = 0; i < 9; i++) net.Tick(1);
        Assert.Equal(3UL, net[1].LeadTransferee);
        net.Tick(1);
        Assert.Equal(0UL, net[1].LeadTransferee);
        Assert.Equal(StateType.Leader, net[1].State);
        net.Propose(1, "ok");
        Assert.Equal(["ok"], Net.LogData(net[2]));
    }

    [Fact]
    public void ToSelf_NonMember_AndLearner_AreIgnored()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        Transfer(net, 1, 1);
        Assert.Equal(0UL, net[1].LeadTransferee);
        Transfer(net, 1, 9);
        Assert.Equal(0UL, net[1].LeadTransferee);
        Assert.Equal(StateType.Leader, net[1].State);

        var l = new Net(1, 2);
        l.Peers[2] = Net.NewRaft(2, [1], learners: [2]);
        l.Peers[1] = Net.NewRaft(1, [1], learners: [2]);
        l.Campaign(1);
        Transfer(l, 1, 2);
        Assert.Equal(0UL, l[1].LeadTransferee);
        Assert.Equal(StateType.Leader, l[1].State);
    }

    [Fact]
    public void SecondRequest_SameTargetIgnored_OtherTargetReplacesIt()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        net.Isolate(2);
        Transfer(net, 1, 3);
        net[1].Step(new Message { From = 3, To = 1, Type = MessageType.MsgTransferLeader });
        Assert.Equal(3UL, net[1].LeadTransferee);
        net[1].Step(new Message { From = 2, To = 1, Type = MessageType.MsgTransferLeader });
        Assert.Equal(2UL, net[1].LeadTransferee);
        net.Recover();
        net.Send(Net.Take(net[1]).ToArray());
        Assert.Equal(StateType.Leader, net[2].State);
    }

    [Fact]
    public void FollowerForwardsRequestToLeader()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        // As in etcd, a follower forwards the request naming itself.
        net.Send(new Message { From = 3, To = 3, Type = MessageType.MsgTransferLeader });
        Assert.Equal(StateType.Leader, net[3].State);
    }

    [Fact]
    public void RemovedTransfereeAbortsTransfer()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        Transfer(net, 1, 3);
        Assert.Equal(3UL, net[1].LeadTransferee);
        net[1].ApplyConfChange(RaftUtil.AsV2(new ConfChange { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = 3 }));
        Assert.Equal(0UL, net[1].LeadTransferee);
    }

    [Fact]
    public void RawNode_TransferLeaderApi()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.TransferLeader(2);
        c.Pump();
        Assert.Equal(2UL, c.Leader());
        Assert.Equal(2UL, c[3].Node.GetBasicStatus().Lead);
    }

    [Fact]
    public void TransferBackToLeaderItself_AbortsThePendingTransfer()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        Transfer(net, 1, 3);
        Assert.Equal(3UL, net[1].LeadTransferee);
        Transfer(net, 1, 1);
        Assert.Equal(0UL, net[1].LeadTransferee);
        net.Propose(1, "accepted again");
        Assert.Equal(["accepted again"], Net.LogData(net[2]));
    }

    [Fact]
    public void Learner_IgnoresTimeoutNow_ButStillGrantsVotes()
    {
        var l = Net.NewRaft(2, [1], learners: [2]);
        l.Step(new Message { From = 1, To = 2, Type = MessageType.MsgTimeoutNow, Term = 0 });
        Assert.Equal(StateType.Follower, l.State);
        Assert.Empty(Net.Take(l));
        // A learner answers vote requests (its vote just is not counted by the candidate).
        l.Step(new Message { From = 1, To = 2, Type = MessageType.MsgVote, Term = 2, Index = 11, LogTerm = 11 });
        var resp = Assert.Single(Net.Take(l));
        Assert.Equal(MessageType.MsgVoteResp, resp.Type);
        Assert.False(resp.Reject);
    }

    [Fact]
    public void NonMember_IgnoresTimeoutNow()
    {
        var r = Net.NewRaft(4, [1, 2, 3]);
        r.Step(new Message { From = 1, To = 4, Type = MessageType.MsgTimeoutNow, Term = 0 });
        Assert.Equal(StateType.Follower, r.State);
        Assert.Empty(Net.Take(r));
    }
}
