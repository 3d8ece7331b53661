using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Leader election (Raft §5.2, §9.6 pre-vote, §6.2 CheckQuorum/leader lease).</summary>
public class ElectionTests
{
    private static Message Msg(MessageType t, ulong from, ulong to, ulong term = 0, ulong index = 0, ulong logTerm = 0) =>
        new() { Type = t, From = from, To = to, Term = term, Index = index, LogTerm = logTerm };

    [Fact]
    public void ThreeNodes_CampaignElectsLeaderAndOthersFollow()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(StateType.Follower, net[2].State);
        Assert.Equal(1UL, net[2].Lead);
        Assert.Equal(1UL, net[3].Lead);
        Assert.All(net.Peers.Values, r => Assert.Equal(1UL, r.Term));
        // The leader's empty entry was replicated and committed everywhere.
        Assert.All(net.Peers.Values, r => Assert.Equal(1UL, r.Log.Committed));
    }

    [Theory]
    [InlineData(new[] { true, true, true }, StateType.Leader)]
    [InlineData(new[] { true, true, false }, StateType.Leader)]
    [InlineData(new[] { true, false, false }, StateType.Candidate)]
    [InlineData(new[] { true, false, false, true }, StateType.Candidate)]
    [InlineData(new[] { true, false, false, true, true }, StateType.Leader)]
    public void Election_NeedsMajorityOfReachableVoters(bool[] up, StateType expected)
    {
        var ids = Enumerable.Range(1, up.Length).Select(i => (ulong)i).ToArray();
        var net = new Net(ids);
        for (int i = 0; i < up.Length; i++) if (!up[i]) net.Isolate(ids[i]);
        net.Campaign(1);
        Assert.Equal(expected, net[1].State);
        Assert.Equal(1UL, net[1].Term);
    }

    [Fact]
    public void Candidate_LosesWhenMajorityRejects_AndReturnsToFollower()
    {
        var net = new Net(1, 2, 3);
        // 2 and 3 have a longer log at a higher term.
        foreach (var id in new ulong[] { 2, 3 })
        {
            net[id].Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null), RaftUtil.NewEntry(1, 2, EntryType.EntryNormal, null)]);
            net[id].Term = 1;
        }
        net.Campaign(1);
        // Both reject at term 1 (the candidate's log is behind); the candidate returns to follower in that term.
        Assert.Equal(StateType.Follower, net[1].State);
        Assert.Equal(1UL, net[1].Term);
        Assert.Equal(1UL, net[1].Vote);
        Assert.Equal(0UL, net[2].Vote);
    }

    [Fact]
    public void Vote_OnlyOncePerTerm_ButRepeatableForSameCandidate()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        r.Step(Msg(MessageType.MsgVote, 2, 1, term: 1));
        var resp = Assert.Single(Net.Take(r));
        Assert.Equal(MessageType.MsgVoteResp, resp.Type);
        Assert.False(resp.Reject);
        Assert.Equal(2UL, r.Vote);
        r.Step(Msg(MessageType.MsgVote, 3, 1, term: 1));
        Assert.True(Assert.Single(Net.Take(r)).Reject);
        // Duplicate request from the same candidate is granted again.
        r.Step(Msg(MessageType.MsgVote, 2, 1, term: 1));
        Assert.False(Assert.Single(Net.Take(r)).Reject);
    }

    [Theory]
    // our log: (1@1,2@2); candidate's last (index, term)
    [InlineData(2UL, 2UL, true)]
    [InlineData(3UL, 2UL, true)]
    [InlineData(1UL, 2UL, false)]
    [InlineData(5UL, 1UL, false)]
    [InlineData(1UL, 3UL, true)]
    public void Vote_RequiresCandidateLogAtLeastAsUpToDate(ulong index, ulong logTerm, bool granted)
    {
        var r = Net.NewRaft(1, [1, 2]);
        r.Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null), RaftUtil.NewEntry(2, 2, EntryType.EntryNormal, null)]);
        r.Term = 2;
        r.Step(Msg(MessageType.MsgVote, 2, 1, term: 3, index: index, logTerm: logTerm));
        var resp = Assert.Single(Net.Take(r));
        Assert.Equal(!granted, resp.Reject);
        Assert.Equal(3UL, r.Term);
    }

    [Fact]
    public void RandomizedElectionTimeout_IsWithinElectionTickAndTwiceIt()
    {
        var r = Net.NewRaft(1, [1, 2, 3], configure: c => c.Random = new Random(42));
        var seen = new HashSet<int>();
        for (int i = 0; i < 500; i++)
        {
            r.BecomeFollower(r.Term + 1, 0);
            Assert.InRange(r.RandomizedElectionTimeout, 10, 19);
            seen.Add(r.RandomizedElectionTimeout);
        }
        Assert.True(seen.Count > 5, "timeouts should actually vary");
    }

    [Fact]
    public void Follower_CampaignsAfterRandomizedTimeoutOfTicks()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        int timeout = r.RandomizedElectionTimeout;
        for (int i = 0; i < timeout - 1; i++) r.Tick();
        Assert.Equal(StateType.Follower, r.State);
        r.Tick();
        Assert.Equal(StateType.Candidate, r.State);
        var votes = Net.Take(r);
        Assert.Equal(2, votes.Count);
        Assert.All(votes, m => Assert.Equal(MessageType.MsgVote, m.Type));
    }

    [Fact]
    public void Leader_StepsDownOnHigherTermMessage()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(1);
        net.Campaign(2);
        Assert.Equal(StateType.Leader, net[2].State);
        Assert.Equal(2UL, net[2].Term);
        net.Recover();
        // The old leader hears a heartbeat at term 2 and steps down.
        net.Heartbeat(2);
        Assert.Equal(StateType.Follower, net[1].State);
        Assert.Equal(2UL, net[1].Lead);
        Assert.Equal(2UL, net[1].Term);
    }

    [Fact]
    public void Learner_DoesNotCampaign()
    {
        var r = Net.NewRaft(2, [1], learners: [2]);
        for (int i = 0; i < 50; i++) r.Tick();
        Assert.Equal(StateType.Follower, r.State);
        Assert.Empty(Net.Take(r));
        Assert.True(r.IsLearner);
    }

    [Fact]
    public void PreVote_PartitionedNodeDoesNotInflateTerm()
    {
        var net = new Net(c => c.PreVote = true, 1, 2, 3);
        net.Campaign(1);
        Assert.Equal(1UL, net[3].Term);
        net.Isolate(3);
        for (int i = 0; i < 5; i++) net.Campaign(3);
        Assert.Equal(1UL, net[3].Term);
        Assert.Equal(StateType.PreCandidate, net[3].State);
        net.Recover();
        net.Heartbeat(1);
        // Rejoining does not disturb the leader.
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(1UL, net[1].Term);
        Assert.Equal(StateType.Follower, net[3].State);
        Assert.Equal(1UL, net[3].Lead);
    }

    [Fact]
    public void WithoutPreVote_PartitionedNodeDisruptsOnRejoin()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        for (int i = 0; i < 3; i++) net.Campaign(3);
        Assert.Equal(4UL, net[3].Term);
        net.Recover();
        // Its next campaign, at term 5, forces the healthy leader to step down.
        net.Campaign(3);
        Assert.Equal(StateType.Follower, net[1].State);
        Assert.Equal(5UL, net[1].Term);
        Assert.Equal(StateType.Leader, net[3].State);
    }

    [Fact]
    public void PreVote_WonThenRealElection()
    {
        var net = new Net(c => c.PreVote = true, 1, 2, 3);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(1UL, net[1].Term);
        var types = net.Delivered.Select(m => m.Type).ToList();
        Assert.True(types.IndexOf(MessageType.MsgPreVote) < types.IndexOf(MessageType.MsgVote));
        // Pre-vote responses carry the future term without changing the voters' terms until the real vote.
        Assert.Contains(net.Delivered, m => m.Type == MessageType.MsgPreVoteResp && m.Term == 1 && !m.Reject);
    }

    [Fact]
    public void PreVote_RejectedWhenCandidateLogIsBehind()
    {
        var net = new Net(c => c.PreVote = true, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        net.Propose(1, "x");
        net.Recover();
        // Leader goes away; 3 (missing "x") cannot win even a pre-vote.
        net.Isolate(1);
        net.Campaign(3);
        // 2 refuses the pre-vote; with 1 unreachable the pre-election stays pending and no term is spent.
        Assert.Equal(StateType.PreCandidate, net[3].State);
        Assert.Equal(1UL, net[3].Term);
        Assert.Equal(1UL, net[2].Term);
        net.Campaign(2);
        Assert.Equal(StateType.Leader, net[2].State);
        Assert.Equal(2UL, net[2].Term);
    }

    [Fact]
    public void CheckQuorum_LeaderStepsDownWithoutActiveQuorum()
    {
        var net = new Net(c => c.CheckQuorum = true, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(1);
        // The first check only clears the recent-active flags; the second finds no quorum.
        for (int i = 0; i < 2 * 10; i++) net.Tick(1);
        Assert.Equal(StateType.Follower, net[1].State);
        Assert.Equal(0UL, net[1].Lead);
    }

    [Fact]
    public void CheckQuorum_LeaderStaysWithActiveQuorum()
    {
        var net = new Net(c => c.CheckQuorum = true, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        for (int i = 0; i < 5 * 10; i++) net.Tick(1);
        Assert.Equal(StateType.Leader, net[1].State);
    }

    [Fact]
    public void CheckQuorum_LeaderLeaseIgnoresVotesWhileLeaderIsFresh()
    {
        var net = new Net(c => c.CheckQuorum = true, 1, 2, 3);
        net.Campaign(1);
        net.Isolate(3);
        // 3 times out and campaigns at term 2; 2 heard from the leader recently and ignores it.
        net.Recover();
        net.Cut(1, 3);
        net.Campaign(3);
        Assert.Equal(StateType.Candidate, net[3].State);
        Assert.Equal(1UL, net[2].Term);
        Assert.Equal(StateType.Leader, net[1].State);
        // Once 2's lease expires (no leader contact for an election timeout) it grants the vote.
        net.Isolate(1);
        for (int i = 0; i < 10; i++) net.Tick(2);
        net.Recover();
        net.Cut(1, 3);
        net.Cut(1, 2);
        net.Campaign(3);
        Assert.Equal(StateType.Leader, net[3].State);
    }

    [Fact]
    public void CheckQuorum_StaleLeaderMessageGetsHigherTermResponse()
    {
        var r = Net.NewRaft(1, [1, 2, 3], configure: c => c.CheckQuorum = true);
        r.BecomeFollower(5, 0);
        r.Step(Msg(MessageType.MsgHeartbeat, 2, 1, term: 3));
        var resp = Assert.Single(Net.Take(r));
        Assert.Equal(MessageType.MsgAppResp, resp.Type);
        Assert.Equal(5UL, resp.Term);
    }

    [Fact]
    public void LowerTermMessage_IgnoredWithoutCheckQuorumOrPreVote()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        r.BecomeFollower(5, 0);
        r.Step(Msg(MessageType.MsgHeartbeat, 2, 1, term: 3));
        Assert.Empty(Net.Take(r));
    }

    [Fact]
    public void CampaignRefused_WhilePendingConfChangeIsUnapplied()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        var cc = new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = 4 };
        r.Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryConfChange, Google.Protobuf.MessageExtensions.ToByteString(cc))]);
        r.Log.CommitTo(1);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(StateType.Follower, r.State);
        r.Log.AppliedTo(1);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(StateType.Candidate, r.State);
    }

    [Fact]
    public void DuelingCandidates_EventuallyOneLeader()
    {
        var net = new Net(1, 2, 3);
        net.Cut(1, 3);
        net.Campaign(1);
        net.Campaign(3);
        // 2 voted for 1 in term 1; 3 cannot win.
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(StateType.Candidate, net[3].State);
        net.Recover();
        net.Campaign(3);
        // 3's log lacks the leader's entry, so it loses even at a higher term; 1 steps down to follower.
        Assert.Equal(StateType.Follower, net[3].State);
        Assert.Equal(2UL, net[3].Term);
        Assert.Equal(StateType.Follower, net[1].State);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, net[1].State);
        Assert.Equal(3UL, net[1].Term);
    }
}
