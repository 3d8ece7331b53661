using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Rules of Raft §5.1–5.3 stated in the paper, each checked on a single node driven by hand.</summary>
public class PaperTests
{
    private static Raft LeaderOf3(ulong id = 1)
    {
        var r = Net.NewRaft(id, [1, 2, 3]);
        r.Step(new Message { From = id, To = id, Type = MessageType.MsgHup });
        r.Step(new Message { From = id == 1 ? 2UL : 1UL, To = id, Type = MessageType.MsgVoteResp, Term = r.Term });
        Assert.Equal(StateType.Leader, r.State);
        Net.Take(r);
        return r;
    }

    [Theory]
    [InlineData(StateType.Follower)]
    [InlineData(StateType.Candidate)]
    [InlineData(StateType.Leader)]
    public void AnyRole_AdoptsHigherTermAndBecomesFollower(StateType role)
    {
        var r = role == StateType.Leader ? LeaderOf3() : Net.NewRaft(1, [1, 2, 3]);
        if (role == StateType.Candidate) r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        ulong term = r.Term + 5;
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgApp, Term = term });
        Assert.Equal(StateType.Follower, r.State);
        Assert.Equal(term, r.Term);
        Assert.Equal(2UL, r.Lead);
        Assert.Equal(0UL, r.Vote);
    }

    [Fact]
    public void Candidate_StepsDownOnAppendFromLeaderOfSameTerm()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(StateType.Candidate, r.State);
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgHeartbeat, Term = r.Term });
        Assert.Equal(StateType.Follower, r.State);
        Assert.Equal(3UL, r.Lead);
        Assert.Equal(1UL, r.Term);
    }

    [Fact]
    public void Candidate_VotesForItselfAndRequestsVotesWithLastLogPosition()
    {
        var st = new MemoryStorage();
        st.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null), RaftUtil.NewEntry(2, 2, EntryType.EntryNormal, null)]);
        st.SetHardState(new HardState { Term = 2 });
        var r = Net.NewRaft(1, [1, 2, 3], st);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        Assert.Equal(3UL, r.Term);
        Assert.Equal(1UL, r.Vote);
        var reqs = Net.Take(r).OrderBy(m => m.To).ToList();
        Assert.Equal(new ulong[] { 2, 3 }, reqs.Select(m => m.To));
        Assert.All(reqs, m =>
        {
            Assert.Equal(MessageType.MsgVote, m.Type);
            Assert.Equal(3UL, m.Term);
            Assert.Equal(2UL, m.Index);
            Assert.Equal(2UL, m.LogTerm);
        });
    }

    [Fact]
    public void Leader_HeartbeatsEveryHeartbeatTick_WithCommitCappedByMatch()
    {
        var r = LeaderOf3();
        r.Step(Net.Prop(1, "a"));
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 2 });
        Assert.Equal(2UL, r.Log.Committed);
        Net.Take(r);
        r.Tick();
        var hbs = Net.Take(r).Where(m => m.Type == MessageType.MsgHeartbeat).OrderBy(m => m.To).ToList();
        Assert.Equal(2, hbs.Count);
        Assert.Equal(2UL, hbs[0].Commit); // node 2 has everything
        Assert.Equal(0UL, hbs[1].Commit); // node 3 has nothing acknowledged: never ask it to commit past its match
    }

    [Fact]
    public void Leader_DoesNotCampaignOnElectionTimeout()
    {
        var r = LeaderOf3();
        ulong term = r.Term;
        for (int i = 0; i < 100; i++) r.Tick();
        Assert.Equal(StateType.Leader, r.State);
        Assert.Equal(term, r.Term);
    }

    [Fact]
    public void Follower_HeartbeatAdvancesCommitAndResetsElectionClock()
    {
        var r = Net.NewRaft(2, [1, 2, 3]);
        r.Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null), RaftUtil.NewEntry(1, 2, EntryType.EntryNormal, null)]);
        r.BecomeFollower(1, 1);
        for (int i = 0; i < 5; i++) r.Tick();
        r.Step(new Message { From = 1, To = 2, Type = MessageType.MsgHeartbeat, Term = 1, Commit = 2 });
        Assert.Equal(2UL, r.Log.Committed);
        Assert.Equal(0, r.ElectionElapsed);
        Assert.Equal(MessageType.MsgHeartbeatResp, Assert.Single(Net.Take(r)).Type);
    }

    [Fact]
    public void LeaderAppend_IsAcknowledgedWithLastNewIndex_AndLeaderCommitsOnMajority()
    {
        var r = LeaderOf3();
        // While probing, nothing more is sent until the followers answer the leader's first append.
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        Assert.Equal(1UL, r.Log.Committed);
        Net.Take(r);
        r.Step(Net.Prop(1, "x"));
        var apps = Net.Take(r).Where(m => m.Type == MessageType.MsgApp).ToList();
        Assert.Equal(2, apps.Count);
        Assert.All(apps, m => { Assert.Equal(1UL, m.Index); Assert.Equal(1UL, m.LogTerm); Assert.Equal(2UL, m.Entries[0].Index); });
        Assert.Equal(1UL, r.Log.Committed);
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 2 });
        Assert.Equal(2UL, r.Log.Committed);
        // The commit is announced right away.
        Assert.All(Net.Take(r).Where(m => m.Type == MessageType.MsgApp), m => Assert.Equal(2UL, m.Commit));
    }
}
