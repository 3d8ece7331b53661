using System.Text.Json;
using Etcd.Storage.V2Store;

namespace Etcd.Server.V2;

/// <summary>
/// The bodies of <c>/v2/stats/self</c> and <c>/v2/stats/leader</c> (etcd's <c>v2stats.ServerStats</c> and
/// <c>LeaderStats</c>) with etcd's field names. The member's name, ID, raft state, start time and leader are live;
/// the leader's uptime counts from when this member first saw that leader here; per-follower latencies and
/// append counts are not measured by our transport and are 0.
/// </summary>
internal static class V2Stats
{
    private static readonly long StartTime = V2Json.Now(TimeProvider.System);
    private static long s_leaderSince = StartTime;
    private static ulong s_leader;

    public static void WriteSelf(Utf8JsonWriter w, EtcdServer server)
    {
        var now = V2Json.Now(TimeProvider.System);
        var leader = server.Leader;
        if (leader != Interlocked.Exchange(ref s_leader, leader))
        {
            Interlocked.Exchange(ref s_leaderSince, now);
        }

        var since = Interlocked.Read(ref s_leaderSince);
        w.WriteStartObject();
        w.WriteString("name", server.Options.Name);
        w.WriteString("id", Membership.Member.IdString(server.MemberId));
        w.WriteString("state", server.IsLeader ? "StateLeader" : "StateFollower");
        w.WriteString("startTime", V2Json.FormatTime(StartTime));
        w.WritePropertyName("leaderInfo");
        w.WriteStartObject();
        w.WriteString("leader", Membership.Member.IdString(leader));
        w.WriteString("uptime", GoDuration(TimeSpan.FromTicks((now - since) / 100)));
        w.WriteString("startTime", V2Json.FormatTime(since));
        w.WriteEndObject();
        w.WriteNumber("recvAppendRequestCnt", 0);
        w.WriteNumber("sendAppendRequestCnt", 0);
        w.WriteEndObject();
    }

    public static void WriteLeader(Utf8JsonWriter w, EtcdServer server)
    {
        w.WriteStartObject();
        w.WriteString("leader", Membership.Member.IdString(server.MemberId));
        w.WritePropertyName("followers");
        w.WriteStartObject();
        foreach (var m in server.Cluster.Members().Where(m => m.Id != server.MemberId))
        {
            w.WritePropertyName(Membership.Member.IdString(m.Id));
            w.WriteStartObject();
            w.WritePropertyName("latency");
            w.WriteStartObject();
            foreach (var f in new[] { "current", "average", "standardDeviation", "minimum", "maximum" })
            {
                w.WriteNumber(f, 0);
            }

            w.WriteEndObject();
            w.WritePropertyName("counts");
            w.WriteStartObject();
            w.WriteNumber("fail", 0);
            w.WriteNumber("success", 0);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Go's <c>time.Duration.String</c> for durations of a second or more (e.g. <c>1h2m3.5s</c>), else in ms/µs.</summary>
    private static string GoDuration(TimeSpan d) => Logging.GoDuration.Format(d);
}
