using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Tests;

public class SingleVoterTests
{
    private static TestNode Leader()
    {
        var n = TestNode.Bootstrapped(1, [1]);
        n.HandleReady();
        n.Node.Campaign();
        n.HandleReady();
        return n;
    }

    [Fact]
    public void Bootstrap_EmitsCommittedConfChangeAndHardState()
    {
        var n = TestNode.Bootstrapped(1, [1, 2, 3]);
        Assert.True(n.Node.HasReady());
        var rd = n.Node.GetReady();
        Assert.True(rd.HasHardState);
        Assert.Equal(1UL, rd.HardState.Term);
        Assert.Equal(3UL, rd.HardState.Commit);
        Assert.Equal(3, rd.Entries.Count);
        Assert.Equal(3, rd.CommittedEntries.Count);
        Assert.All(rd.Entries, e => Assert.Equal(EntryType.EntryConfChange, e.Type));
        Assert.Equal(new ulong[] { 1, 2, 3 }, rd.Entries.Select(e => ConfChange.Parser.ParseFrom(e.Data).NodeId));
        Assert.True(rd.MustSync);
        n.Storage.SetHardState(rd.HardState);
        n.Storage.Append(rd.Entries);
        n.Node.Advance(rd);
        Assert.False(n.Node.HasReady());
        Assert.Equal(new ulong[] { 1, 2, 3 }, n.Node.GetStatus().Config.Voters);
    }

    [Fact]
    public void Bootstrap_RejectsEmptyPeersAndNonEmptyStorage()
    {
        var n = new TestNode(1);
        var e1 = Assert.Throws<RaftException>(() => n.Node.Bootstrap([]));
        Assert.Equal("must provide at least one peer to Bootstrap", e1.Message);
        var b = TestNode.Bootstrapped(1, [1]);
        b.HandleReady();
        var again = new RawNode(new RaftConfig { Id = 1, Storage = b.Storage });
        var e2 = Assert.Throws<RaftException>(() => again.Bootstrap([new Peer(1)]));
        Assert.Equal("can't bootstrap a nonempty Storage", e2.Message);
    }

    [Fact]
    public void Campaign_SingleVoterBecomesLeaderImmediately()
    {
        var n = Leader();
        var st = n.Node.GetBasicStatus();
        Assert.Equal(StateType.Leader, st.RaftState);
        Assert.Equal(1UL, st.Lead);
        Assert.Equal(2UL, st.Term);
        Assert.Equal(new SoftState(1, StateType.Leader), n.SoftStates[^1]);
        // The leader's empty entry of term 2 (after the bootstrap entry) is committed and applied.
        Assert.Equal(2UL, st.Commit);
        Assert.Equal(2UL, st.Applied);
        Assert.Equal(2UL, n.Applied[^1].Term);
        Assert.True(n.Applied[^1].Data.IsEmpty);
    }

    [Fact]
    public void Propose_OnSingleVoter_IsInEntriesAndCommittedEntriesOfTheSameReady()
    {
        var n = Leader();
        n.Node.Propose(TestNode.B("hello"));
        Assert.True(n.Node.HasReady());
        var rd = n.Node.GetReady();
        var e = Assert.Single(rd.Entries);
        Assert.Equal("hello", e.Data.ToStringUtf8());
        Assert.Equal(3UL, e.Index);
        Assert.Equal(2UL, e.Term);
        // etcd 3.4: the leader counts its own (unpersisted) log for commitment.
        Assert.Same(e, Assert.Single(rd.CommittedEntries));
        Assert.Equal(3UL, rd.HardState.Commit);
        Assert.Empty(rd.Messages);
        n.Storage.Append(rd.Entries);
        n.Storage.SetHardState(rd.HardState);
        n.Node.Advance(rd);
        Assert.False(n.Node.HasReady());
        Assert.Equal(3UL, n.Node.GetBasicStatus().Applied);
        Assert.Equal(3UL, n.Storage.LastIndex());
    }

    [Fact]
    public void Propose_ManyEntries_AllAppliedInOrder()
    {
        var n = Leader();
        for (int i = 0; i < 100; i++)
        {
            n.Node.Propose(TestNode.B("v" + i));
            if (i % 7 == 0) n.HandleReady();
        }
        n.HandleReady();
        Assert.Equal(Enumerable.Range(0, 100).Select(i => "v" + i), n.AppliedData().Select(b => System.Text.Encoding.UTF8.GetString(b)));
        Assert.Equal(n.Applied.Select(e => e.Index), Enumerable.Range(1, n.Applied.Count).Select(i => (ulong)i));
    }

    [Fact]
    public void Propose_WithoutLeader_ThrowsProposalDropped()
    {
        var n = TestNode.Bootstrapped(1, [1, 2, 3]);
        n.HandleReady();
        var ex = Assert.Throws<RaftException>(() => n.Node.Propose(TestNode.B("x")));
        Assert.Equal(RaftErrorKind.ProposalDropped, ex.Kind);
        Assert.Equal("raft proposal dropped", ex.Message);
    }

    [Fact]
    public void ReadIndex_OnSingleVoterLeader_ReturnsReadStateAtCommitImmediately()
    {
        var n = Leader();
        n.Node.Propose(TestNode.B("a"));
        n.HandleReady();
        n.Node.ReadIndex(TestNode.B("req-1"));
        Assert.True(n.Node.HasReady());
        var rd = n.Node.GetReady();
        var rs = Assert.Single(rd.ReadStates);
        Assert.Equal(3UL, rs.Index);
        Assert.Equal("req-1", System.Text.Encoding.UTF8.GetString(rs.RequestCtx));
        n.Node.Advance(rd);
        Assert.False(n.Node.HasReady());
    }

    [Fact]
    public void Restart_FromPersistedState_ResumesAndReelectsItself()
    {
        var n = Leader();
        n.Node.Propose(TestNode.B("a"));
        n.Node.Propose(TestNode.B("b"));
        n.HandleReady();
        var before = n.Node.GetBasicStatus();
        n.Restart();
        var st = n.Node.GetBasicStatus();
        Assert.Equal(StateType.Follower, st.RaftState);
        Assert.Equal(before.Term, st.Term);
        Assert.Equal(before.Commit, st.Commit);
        // Without a snapshot the membership comes back by replaying the committed log (Applied = 0).
        var rd = n.Node.GetReady();
        Assert.Equal(before.Commit, (ulong)rd.CommittedEntries.Count);
        Assert.Empty(rd.Entries);
        n.Node.ApplyConfChange(ConfChange.Parser.ParseFrom(rd.CommittedEntries[0].Data));
        n.Node.Advance(rd);
        n.Node.Campaign();
        n.HandleReady();
        st = n.Node.GetBasicStatus();
        Assert.Equal(StateType.Leader, st.RaftState);
        Assert.Equal(before.Term + 1, st.Term);
        n.Node.Propose(TestNode.B("c"));
        n.HandleReady();
        Assert.Equal(["a", "b", "c"], n.AppliedData().Select(b => System.Text.Encoding.UTF8.GetString(b)));
    }

    [Fact]
    public void Restart_WithUnappliedCommittedEntries_RedeliversThem()
    {
        var n = Leader();
        n.Node.Propose(TestNode.B("a"));
        var rd = n.Node.GetReady();
        // Persist but crash before applying.
        n.Storage.Append(rd.Entries);
        n.Storage.SetHardState(rd.HardState);
        var cfg = new RaftConfig { Id = 1, Storage = n.Storage, Applied = 2, Random = new Random(1) };
        var node = new RawNode(cfg);
        var rd2 = node.GetReady();
        var e = Assert.Single(rd2.CommittedEntries);
        Assert.Equal("a", e.Data.ToStringUtf8());
    }

    [Fact]
    public void Restart_FromSnapshotWithApplied_KeepsMembershipAndElectsItself()
    {
        var n = Leader();
        n.Node.Propose(TestNode.B("a"));
        n.HandleReady();
        var cs = n.LastConfState!;
        n.Storage.CreateSnapshot(3, cs, TestNode.B("state"));
        n.Storage.Compact(3);
        var node = new RawNode(new RaftConfig { Id = 1, Storage = n.Storage, Applied = 3, Random = new Random(3) });
        Assert.False(node.HasReady());
        Assert.Equal(new ulong[] { 1 }, node.GetStatus().Config.Voters);
        node.Campaign();
        var rd = node.GetReady();
        Assert.Equal(StateType.Leader, rd.SoftState!.RaftState);
        Assert.Equal(3UL, rd.HardState.Term);
        var e = Assert.Single(rd.Entries);
        Assert.Equal(4UL, e.Index);
        Assert.Equal(4UL, Assert.Single(rd.CommittedEntries).Index);
    }

    [Fact]
    public void SingleVoter_ElectsItselfByTicking()
    {
        var n = TestNode.Bootstrapped(1, [1]);
        n.HandleReady();
        for (int i = 0; i < 20 && n.Node.GetBasicStatus().RaftState != StateType.Leader; i++)
        {
            n.Node.Tick();
            n.HandleReady();
        }
        Assert.Equal(StateType.Leader, n.Node.GetBasicStatus().RaftState);
    }
}
