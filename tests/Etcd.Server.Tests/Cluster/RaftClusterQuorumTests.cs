using Etcd.Server.Membership;

namespace Etcd.Server.Tests.Cluster;

/// <summary>
/// The strict reconfiguration checks (etcdserver/api/membership/cluster.go IsReadyTo*): a change is refused when the
/// started voters would fall below the quorum it leaves.
/// </summary>
public sealed class RaftClusterQuorumTests
{
    /// <summary>A cluster of <paramref name="started"/> started voters, <paramref name="unstarted"/> voters that never
    /// published a name, and <paramref name="learners"/> learners; ids 1.. in that order.</summary>
    private static RaftCluster Cluster(int started, int unstarted, int learners = 0)
    {
        var c = new RaftCluster(1, "t");
        ulong id = 1;
        for (var i = 0; i < started; i++, id++)
        {
            c.AddMember(new Member { Id = id, Name = "m" + id, PeerUrls = [$"http://127.0.0.1:{2380 + (int)id}"] });
        }

        for (var i = 0; i < unstarted; i++, id++)
        {
            c.AddMember(new Member { Id = id, PeerUrls = [$"http://127.0.0.1:{2380 + (int)id}"] });
        }

        for (var i = 0; i < learners; i++, id++)
        {
            c.AddMember(new Member { Id = id, Name = "l" + id, IsLearner = true, PeerUrls = [$"http://127.0.0.1:{2380 + (int)id}"] });
        }

        return c;
    }

    [Fact]
    public void AddVoter_KnownCases()
    {
        Assert.True(Cluster(1, 0).IsReadyToAddVotingMember());  // one started member may add a second
        Assert.False(Cluster(1, 1).IsReadyToAddVotingMember()); // 3 voters after, 1 started < 2
        Assert.False(Cluster(2, 1).IsReadyToAddVotingMember()); // 4 voters after, 2 started < 3
        Assert.True(Cluster(3, 0).IsReadyToAddVotingMember());  // 4 voters after, 3 started
        Assert.True(Cluster(3, 1).IsReadyToAddVotingMember());  // 5 voters after, 3 started
    }

    [Fact]
    public void RemoveVoter_CountsTheStartedThatRemain()
    {
        Assert.True(Cluster(1, 0).IsReadyToRemoveVotingMember(1));  // nothing left to reach quorum
        Assert.True(Cluster(3, 0).IsReadyToRemoveVotingMember(1));  // 2 of 2 started
        Assert.True(Cluster(2, 1).IsReadyToRemoveVotingMember(3));  // removing the unstarted one leaves 2 of 2
        Assert.False(Cluster(2, 1).IsReadyToRemoveVotingMember(1)); // 1 started of 2 left
    }

    [Fact]
    public void Promote_CountsTheLearnerAsStarted()
    {
        Assert.True(Cluster(1, 0, learners: 1).IsReadyToPromoteMember());  // 2 voters after, 2 started
        Assert.True(Cluster(1, 1, learners: 1).IsReadyToPromoteMember());  // 3 voters after, 2 started
        Assert.False(Cluster(1, 2, learners: 1).IsReadyToPromoteMember()); // 4 voters after, 2 started < 3
        Assert.True(Cluster(2, 1, learners: 1).IsReadyToPromoteMember());  // 4 voters after, 3 started
    }
}
