using System.Net;
using System.Text.Json;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Harness;

namespace Etcd.Cluster.Tests;

/// <summary>
/// <c>/v2/stats/self</c> and <c>/v2/stats/leader</c> of a 3-member cluster with <c>--enable-v2</c> after real append
/// traffic, for the executable under test and for real etcd 3.4.23 with the same assertions: the leader counts the
/// appends it sent and times them per follower, followers count what they received from that leader, and
/// <c>/v2/stats/leader</c> on a follower is 403 "not current leader".
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class V2StatsTests
{
    private const string RealEtcd = "/usr/bin/etcd";

    [Theory]
    [InlineData("under-test")]
    [InlineData("etcd-3.4.23")]
    public async Task StatsAfterAppends_LeaderTimesFollowers_FollowersCountAppends(string which)
    {
        string binary;
        if (which == "under-test")
        {
            binary = ClusterEnvironment.RequireUnderTest();
        }
        else
        {
            Assert.True(File.Exists(RealEtcd), $"{RealEtcd} is missing: run scripts/setup.sh");
            binary = RealEtcd;
        }

        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { Binary = binary, ExtraArgs = ["--enable-v2"] });
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var call = new CallOptions { Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; i < 20; i++)
        {
            await leader.Client.Kv.PutAsync($"stats/{i}", "v", call);
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var leaderHex = leader.MemberId.ToString("x");

        using var leaderStats = JsonDocument.Parse(await http.GetStringAsync($"{leader.ClientUrl}/v2/stats/leader"));
        Assert.Equal(leaderHex, leaderStats.RootElement.GetProperty("leader").GetString());
        var followers = leaderStats.RootElement.GetProperty("followers").EnumerateObject().ToList();
        Assert.Equal(cluster.Followers(leader).Select(f => f.MemberId.ToString("x")).Order(), followers.Select(f => f.Name).Order());
        foreach (var f in followers)
        {
            var counts = f.Value.GetProperty("counts");
            var latency = f.Value.GetProperty("latency");
            Assert.True(counts.GetProperty("success").GetUInt64() >= 20, $"{f.Name}: {f.Value}");
            Assert.True(latency.GetProperty("maximum").GetDouble() >= latency.GetProperty("minimum").GetDouble(), $"{f.Name}: {f.Value}");
            Assert.True(latency.GetProperty("average").GetDouble() > 0, $"{f.Name}: {f.Value}");
        }

        using var self = JsonDocument.Parse(await http.GetStringAsync($"{leader.ClientUrl}/v2/stats/self"));
        Assert.Equal("StateLeader", self.RootElement.GetProperty("state").GetString());
        Assert.Equal(leaderHex, self.RootElement.GetProperty("leaderInfo").GetProperty("leader").GetString());
        Assert.True(self.RootElement.GetProperty("sendAppendRequestCnt").GetUInt64() >= 40, self.RootElement.ToString());

        foreach (var follower in cluster.Followers(leader))
        {
            using var fs = JsonDocument.Parse(await http.GetStringAsync($"{follower.ClientUrl}/v2/stats/self"));
            Assert.Equal("StateFollower", fs.RootElement.GetProperty("state").GetString());
            Assert.Equal(leaderHex, fs.RootElement.GetProperty("leaderInfo").GetProperty("leader").GetString());
            Assert.True(fs.RootElement.GetProperty("recvAppendRequestCnt").GetUInt64() >= 20, fs.RootElement.ToString());
            Assert.Equal(0UL, fs.RootElement.GetProperty("sendAppendRequestCnt").GetUInt64());

            using var r = await http.GetAsync($"{follower.ClientUrl}/v2/stats/leader");
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Equal("{\"message\":\"not current leader\"}", (await r.Content.ReadAsStringAsync()).TrimEnd('\n'));
        }
    }
}
