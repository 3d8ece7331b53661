using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Snapshots sent to lagging followers (§7) and snapshot status reporting.</summary>
public class SnapshotTests
{
    private static Snapshot Snap(ulong index, ulong term, params ulong[] voters)
    {
        var cs = new ConfState();
        cs.Voters.AddRange(voters);
        return new Snapshot { Data = ByteString.CopyFromUtf8("state"), Metadata = new SnapshotMetadata { Index = index, Term = term, ConfState = cs } };
    }

    private static Net LeaderWithCompactedLog(out Raft leader)
    {
        var st = new MemoryStorage();
        st.ApplySnapshot(Snap(11, 11, 1, 2));
        st.SetHardState(new HardState { Term = 11, Commit = 11 });
        var net = new Net(1, 2);
        net.Peers[1] = leader = Net.NewRaft(1, [1, 2], st);
        return net;
    }

    [Fact]
    public void LaggingFollower_GetsSnapshotThenEntries()
    {
        var net = LeaderWithCompactedLog(out var leader);
        net.Campaign(1);
        Assert.Equal(StateType.Leader, leader.State);
        Assert.Contains(net.Delivered, m => m.Type == MessageType.MsgSnap && m.To == 2);
        var f = net[2];
        Assert.Equal(12UL, f.Log.LastIndex());
        Assert.Equal(12UL, f.Log.Committed);
        Assert.NotNull(f.Log.Unstable.Snapshot);
        Assert.Equal(ProgressState.Replicate, leader.Prs.Progress[2].State);
        net.Propose(1, "after");
        Assert.Equal(["after"], Net.LogData(f));
    }

    [Fact]
    public void SnapshotStatus_FailureAndFinishReturnToProbe()
    {
        var net = LeaderWithCompactedLog(out var leader);
        net.Ignore(MessageType.MsgSnap);
        net.Campaign(1);
        var pr = leader.Prs.Progress[2];
        Assert.Equal(ProgressState.Snapshot, pr.State);
        Assert.Equal(11UL, pr.PendingSnapshot);
        Assert.True(pr.IsPaused());
        // Proposals do not reach a follower waiting for a snapshot.
        leader.Step(Net.Prop(1, "x"));
        Assert.DoesNotContain(Net.Take(leader), m => m.To == 2);

        leader.Step(new Message { From = 2, To = 1, Type = MessageType.MsgSnapStatus, Reject = true });
        pr = leader.Prs.Progress[2];
        Assert.Equal(ProgressState.Probe, pr.State);
        Assert.Equal(0UL, pr.PendingSnapshot);
        Assert.Equal(1UL, pr.Next);
        Assert.True(pr.ProbeSent);

        var net2 = LeaderWithCompactedLog(out var leader2);
        net2.Ignore(MessageType.MsgSnap);
        net2.Campaign(1);
        leader2.Step(new Message { From = 2, To = 1, Type = MessageType.MsgSnapStatus });
        pr = leader2.Prs.Progress[2];
        Assert.Equal(ProgressState.Probe, pr.State);
        Assert.Equal(12UL, pr.Next); // past the snapshot
        Assert.True(pr.ProbeSent);
    }

    [Fact]
    public void SnapshotNotSentToInactiveFollower()
    {
        var st = new MemoryStorage();
        st.ApplySnapshot(Snap(11, 11, 1, 2, 3));
        st.SetHardState(new HardState { Term = 11, Commit = 11 });
        var r = Net.NewRaft(1, [1, 2, 3], st);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 12 });
        Net.Take(r);
        // 3 has not been heard from since the election and needs entries that were compacted away.
        var pr3 = r.Prs.Progress[3];
        pr3.Next = 5;
        pr3.ProbeSent = false;
        Assert.False(pr3.RecentActive);
        r.Step(Net.Prop(1, "x"));
        Assert.DoesNotContain(Net.Take(r), m => m.To == 3);
        Assert.Equal(ProgressState.Probe, pr3.State);
        // Once it is known to be alive, the snapshot goes out.
        pr3.RecentActive = true;
        r.Step(Net.Prop(1, "y"));
        var snap = Assert.Single(Net.Take(r), m => m.To == 3);
        Assert.Equal(MessageType.MsgSnap, snap.Type);
        Assert.Equal(ProgressState.Snapshot, pr3.State);
    }

    [Fact]
    public void Follower_IgnoresStaleSnapshot_AndFastForwardsMatchingOne()
    {
        var r = Net.NewRaft(2, [1, 2]);
        r.Log.Append([RaftUtil.NewEntry(1, 1, EntryType.EntryNormal, null), RaftUtil.NewEntry(1, 2, EntryType.EntryNormal, null), RaftUtil.NewEntry(1, 3, EntryType.EntryNormal, null)]);
        r.Log.CommitTo(2);
        r.Term = 1;
        r.Step(new Message { From = 1, To = 2, Type = MessageType.MsgSnap, Term = 1, Snapshot = Snap(2, 1, 1, 2) });
        Assert.Equal(2UL, Assert.Single(Net.Take(r)).Index);
        Assert.Null(r.Log.Unstable.Snapshot);
        r.Step(new Message { From = 1, To = 2, Type = MessageType.MsgSnap, Term = 1, Snapshot = Snap(3, 1, 1, 2) });
        Assert.Equal(3UL, r.Log.Committed);
        Assert.Null(r.Log.Unstable.Snapshot); // our log already had it: only the commit moved
        Assert.Equal(3UL, Assert.Single(Net.Take(r)).Index);
    }

    [Fact]
    public void RawNode_SnapshotAppearsInReady_AndAdvanceMakesItStable()
    {
        var st = new MemoryStorage();
        var node = new RawNode(new RaftConfig { Id = 2, Storage = st, Random = new Random(2) });
        node.Step(new Message { From = 1, To = 2, Type = MessageType.MsgSnap, Term = 5, Snapshot = Snap(20, 4, 1, 2) });
        var rd = node.GetReady();
        Assert.NotNull(rd.Snapshot);
        Assert.Equal(20UL, rd.Snapshot!.Metadata.Index);
        Assert.Equal(20UL, rd.HardState.Commit);
        Assert.Empty(rd.CommittedEntries);
        var resp = Assert.Single(rd.Messages);
        Assert.Equal(MessageType.MsgAppResp, resp.Type);
        Assert.Equal(20UL, resp.Index);
        st.ApplySnapshot(rd.Snapshot);
        st.SetHardState(rd.HardState);
        node.Advance(rd);
        Assert.False(node.HasReady());
        Assert.Equal(20UL, node.GetBasicStatus().Applied);
        Assert.Equal(new ulong[] { 1, 2 }, node.GetStatus().Config.Voters);
    }

    [Fact]
    public void RawCluster_CompactedLeaderCatchesUpRestartedFollowerBySnapshot()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c.Down.Add(3);
        for (int i = 0; i < 30; i++) { c[1].Node.Propose(TestNode.B("v" + i)); c.Pump(); }
        var leader = c[1];
        ulong applied = leader.Node.GetBasicStatus().Applied;
        leader.Storage.CreateSnapshot(applied, leader.LastConfState, TestNode.B("sm@" + applied));
        leader.Storage.Compact(applied);
        c.Down.Remove(3);
        c.Tick(2);
        Assert.Equal(applied, c[3].Storage.Snapshot().Metadata.Index);
        Assert.Equal(leader.Node.GetBasicStatus().Commit, c[3].Node.GetBasicStatus().Commit);
        c[1].Node.Propose(TestNode.B("after"));
        c.Pump();
        Assert.Equal("after", c[3].AppliedData()[^1] is var b ? System.Text.Encoding.UTF8.GetString(b) : null);
    }
}
