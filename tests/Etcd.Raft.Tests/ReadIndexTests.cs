using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Linearizable reads through ReadIndex (thesis §6.4): safe and lease-based, local and forwarded.</summary>
public class ReadIndexTests
{
    private static Message ReadReq(ulong from, ulong to, string ctx)
    {
        var m = new Message { From = from, To = to, Type = MessageType.MsgReadIndex };
        m.Entries.Add(new Entry { Data = ByteString.CopyFromUtf8(ctx) });
        return m;
    }

    [Theory]
    [InlineData(ReadOnlyOption.Safe)]
    [InlineData(ReadOnlyOption.LeaseBased)]
    public void Leader_AnswersWithCommitIndex(ReadOnlyOption opt)
    {
        var net = new Net(c => { c.ReadOnlyOption = opt; c.CheckQuorum = true; }, 1, 2, 3);
        net.Campaign(1);
        net.Propose(1, "a");
        int before = net.Delivered.Count(m => m.Type == MessageType.MsgHeartbeat);
        net.Send(ReadReq(1, 1, "r1"));
        var rs = Assert.Single(net[1].ReadStates);
        Assert.Equal(2UL, rs.Index);
        Assert.Equal("r1", System.Text.Encoding.UTF8.GetString(rs.RequestCtx));
        int hb = net.Delivered.Count(m => m.Type == MessageType.MsgHeartbeat) - before;
        // Safe reads confirm leadership with a heartbeat round; lease-based reads do not.
        Assert.Equal(opt == ReadOnlyOption.Safe ? 2 : 0, hb);
    }

    [Fact]
    public void Safe_NotAnsweredWithoutQuorumOfHeartbeatAcks()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(2);
        net.Isolate(3);
        net.Send(ReadReq(1, 1, "r"));
        Assert.Empty(net[1].ReadStates);
        net.Recover();
        net.Heartbeat(1); // the next heartbeat carries the pending request's context
        Assert.Single(net[1].ReadStates);
    }

    [Fact]
    public void Safe_LaterAckConfirmsAllEarlierRequests()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Isolate(2);
        net.Isolate(3);
        net.Send(ReadReq(1, 1, "a"));
        net.Send(ReadReq(1, 1, "b"));
        net.Send(ReadReq(1, 1, "c"));
        net.Recover();
        net.Heartbeat(1);
        Assert.Equal(["a", "b", "c"], net[1].ReadStates.Select(r => System.Text.Encoding.UTF8.GetString(r.RequestCtx)));
    }

    [Fact]
    public void Follower_ForwardsToLeaderAndGetsReadState()
    {
        var net = new Net(1, 2, 3);
        net.Campaign(1);
        net.Propose(1, "a");
        net.Send(ReadReq(2, 2, "from-2"));
        Assert.Empty(net[1].ReadStates);
        var rs = Assert.Single(net[2].ReadStates);
        Assert.Equal(2UL, rs.Index);
        Assert.Contains(net.Delivered, m => m.Type == MessageType.MsgReadIndexResp && m.To == 2);
    }

    [Fact]
    public void Follower_WithoutLeaderDropsRequest()
    {
        var r = Net.NewRaft(2, [1, 2, 3]);
        r.Step(ReadReq(2, 2, "x"));
        Assert.Empty(Net.Take(r));
        Assert.Empty(r.ReadStates);
    }

    [Fact]
    public void NewLeader_DefersReadsUntilItCommitsInItsTerm()
    {
        var r = Net.NewRaft(1, [1, 2, 3]);
        r.Step(new Message { From = 1, To = 1, Type = MessageType.MsgHup });
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgVoteResp, Term = 1 });
        Net.Take(r);
        r.Step(ReadReq(1, 1, "early"));
        Assert.DoesNotContain(Net.Take(r), m => m.Type == MessageType.MsgHeartbeat);
        // Committing the leader's empty entry releases the read (as a heartbeat round in Safe mode).
        r.Step(new Message { From = 2, To = 1, Type = MessageType.MsgAppResp, Term = 1, Index = 1 });
        var hbs = Net.Take(r).Where(m => m.Type == MessageType.MsgHeartbeat).ToList();
        Assert.Equal(2, hbs.Count);
        Assert.All(hbs, h => Assert.Equal("early", h.Context.ToStringUtf8()));
        r.Step(new Message { From = 3, To = 1, Type = MessageType.MsgHeartbeatResp, Term = 1, Context = ByteString.CopyFromUtf8("early") });
        Assert.Equal(1UL, Assert.Single(r.ReadStates).Index);
    }

    [Fact]
    public void LeaseBased_RequiresCheckQuorum()
    {
        var ex = Assert.Throws<RaftException>(() => Net.NewRaft(1, [1], configure: c => c.ReadOnlyOption = ReadOnlyOption.LeaseBased));
        Assert.Equal("CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased", ex.Message);
    }

    [Fact]
    public void RawCluster_ReadIndexOnFollowerSurfacesInReady()
    {
        var c = new RawCluster([1, 2, 3]);
        c.ElectLeader(1);
        c[1].Node.Propose(TestNode.B("x"));
        c.Pump();
        c[3].Node.ReadIndex(TestNode.B("q"));
        c.Pump();
        var rs = Assert.Single(c[3].ReadStates);
        Assert.Equal(c[1].Node.GetBasicStatus().Commit, rs.Index);
    }
}
