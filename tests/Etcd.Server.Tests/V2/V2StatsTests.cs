using System.Text;
using System.Text.Json;
using Etcd.Server.V2;
using Microsoft.Extensions.Time.Testing;

namespace Etcd.Server.Tests.V2;

/// <summary>The figures of <c>/v2/stats/self</c> and <c>/v2/stats/leader</c> (etcd's v2stats) and Go's float format.</summary>
public sealed class V2StatsTests
{
    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Storage.V2Store.V2Json.WriterOptions))
        {
            write(w);
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    // Expected texts are Go's json.Marshal output for the same float64 values.
    [Theory]
    [InlineData(0d, "0")]
    [InlineData(9223372036854775808d, "9223372036854776000")]
    [InlineData(0.123456789, "0.123456789")]
    [InlineData(1e21, "1e+21")]
    [InlineData(1e-7, "1e-7")]
    [InlineData(123.5, "123.5")]
    [InlineData(0.000001, "0.000001")]
    [InlineData(1.5e-10, "1.5e-10")]
    [InlineData(2.5e22, "2.5e+22")]
    [InlineData(1234567.125, "1234567.125")]
    [InlineData(-3.25, "-3.25")]
    [InlineData(100d, "100")]
    public void GoFloat_FormatsAsGo(double value, string expected) => Assert.Equal(expected, GoFloat.Format(value));

    [Fact]
    public void FollowerStats_LatencyAndCounts()
    {
        var leader = new V2LeaderStats();
        leader.Follower(0x2);
        Assert.Equal(
            """{"leader":"1","followers":{"2":{"latency":{"current":0,"average":0,"standardDeviation":0,"minimum":9223372036854776000,"maximum":0},"counts":{"fail":0,"success":0}}}}""",
            Json(w => leader.WriteJson(w, 0x1)));

        var f = leader.Follower(0x2);
        f.Succ(TimeSpan.FromMilliseconds(1));
        f.Succ(TimeSpan.FromMilliseconds(3));
        f.Fail();
        leader.Follower(0x10).Succ(TimeSpan.FromMilliseconds(0.5));
        Assert.Equal(
            """{"leader":"1","followers":{"10":{"latency":{"current":0.5,"average":0.5,"standardDeviation":0,"minimum":0.5,"maximum":0.5},"counts":{"fail":0,"success":1}},"""
            + """ "2":{"latency":{"current":3,"average":2,"standardDeviation":1,"minimum":1,"maximum":3},"counts":{"fail":1,"success":2}}}}""".TrimStart(),
            Json(w => leader.WriteJson(w, 0x1)));

        leader.RemoveAllExcept(new HashSet<ulong> { 0x10 });
        Assert.DoesNotContain("\"2\"", Json(w => leader.WriteJson(w, 0x1)));
    }

    [Fact]
    public void ServerStats_CountsRatesAndLeader()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var stats = new V2ServerStats(time);
        var doc = JsonDocument.Parse(Json(w => stats.WriteJson(w, "m1", 0xa)));
        Assert.Equal("StateFollower", doc.RootElement.GetProperty("state").GetString());
        Assert.Equal("", doc.RootElement.GetProperty("leaderInfo").GetProperty("leader").GetString());
        Assert.Equal("2026-01-02T03:04:05Z", doc.RootElement.GetProperty("startTime").GetString());

        // Followed leader b: 11 appends of 100 bytes over 100 ms.
        for (var i = 0; i <= 10; i++)
        {
            stats.RecvAppendReq(0xb, 100);
            time.Advance(TimeSpan.FromMilliseconds(10));
        }

        doc = JsonDocument.Parse(Json(w => stats.WriteJson(w, "m1", 0xa)));
        var root = doc.RootElement;
        Assert.Equal("b", root.GetProperty("leaderInfo").GetProperty("leader").GetString());
        Assert.Equal("110ms", root.GetProperty("leaderInfo").GetProperty("uptime").GetString());
        Assert.Equal(11UL, root.GetProperty("recvAppendRequestCnt").GetUInt64());
        Assert.Equal(110, root.GetProperty("recvPkgRate").GetDouble(), 6);
        Assert.Equal(11_000, root.GetProperty("recvBandwidthRate").GetDouble(), 6);
        Assert.False(root.TryGetProperty("sendPkgRate", out _));

        // More than a second after the last append the rates are gone (omitted, as etcd's omitempty).
        time.Advance(TimeSpan.FromSeconds(2));
        root = JsonDocument.Parse(Json(w => stats.WriteJson(w, "m1", 0xa))).RootElement;
        Assert.False(root.TryGetProperty("recvPkgRate", out _));

        // Leading: sends count, state and leader change.
        stats.SendAppendReq(0xa, 50);
        root = JsonDocument.Parse(Json(w => stats.WriteJson(w, "m1", 0xa))).RootElement;
        Assert.Equal("StateLeader", root.GetProperty("state").GetString());
        Assert.Equal("a", root.GetProperty("leaderInfo").GetProperty("leader").GetString());
        Assert.Equal(1UL, root.GetProperty("sendAppendRequestCnt").GetUInt64());
        Assert.StartsWith("""{"name":"m1","id":"a","state":"StateLeader",""", Json(w => stats.WriteJson(w, "m1", 0xa)), StringComparison.Ordinal);
    }
}
