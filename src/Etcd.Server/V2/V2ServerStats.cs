using System.Text.Json;
using Etcd.Storage.V2Store;

namespace Etcd.Server.V2;

/// <summary>
/// The member's own raft traffic as <c>/v2/stats/self</c> reports it (etcd's <c>v2stats.ServerStats</c>): state and
/// leader as last seen through append traffic, when that leader was first seen, how many MsgApp this member sent
/// (as leader) and received (as follower), and the packet and byte rates over the last 200 of each within the last
/// second (fields left out when 0, as etcd's <c>omitempty</c>).
/// </summary>
/// <remarks>
/// Fed by the raft thread (<see cref="SendAppendReq"/>, <see cref="BecomeLeader"/>) and by transport threads
/// (<see cref="RecvAppendReq"/>); every member is thread-safe (one lock, held for a few field updates).
/// </remarks>
public sealed class V2ServerStats
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly long _startTime;
    private readonly RateQueue _sent = new();
    private readonly RateQueue _received = new();
    private bool _leader;
    private ulong _leaderId;
    private long _leaderSince;
    private ulong _sendCount;
    private ulong _recvCount;

    /// <summary>Starts the stats now (the member's <c>startTime</c>).</summary>
    public V2ServerStats(TimeProvider time)
    {
        _time = time;
        _startTime = V2Json.Now(time);
        _leaderSince = _startTime;
    }

    /// <summary>A MsgApp of <paramref name="size"/> bytes arrived from <paramref name="leader"/>: this member follows it.</summary>
    public void RecvAppendReq(ulong leader, int size)
    {
        var now = V2Json.Now(_time);
        lock (_gate)
        {
            _leader = false;
            if (leader != _leaderId)
            {
                _leaderId = leader;
                _leaderSince = now;
            }

            _received.Insert(now, size);
            _recvCount++;
        }
    }

    /// <summary>This member, as leader, sent a MsgApp of <paramref name="size"/> bytes.</summary>
    /// <param name="memberId">This member's ID (it becomes the recorded leader if it was not).</param>
    /// <param name="size">The encoded message size, bytes.</param>
    public void SendAppendReq(ulong memberId, int size)
    {
        var now = V2Json.Now(_time);
        lock (_gate)
        {
            BecomeLeaderLocked(memberId, now);
            _sent.Insert(now, size);
            _sendCount++;
        }
    }

    /// <summary>This member became leader (etcd calls this on every leadership change it sees as leader).</summary>
    public void BecomeLeader(ulong memberId)
    {
        var now = V2Json.Now(_time);
        lock (_gate)
        {
            BecomeLeaderLocked(memberId, now);
        }
    }

    /// <summary>Writes the <c>/v2/stats/self</c> object with etcd's field names and order.</summary>
    /// <param name="w">The writer.</param>
    /// <param name="name">The member's name.</param>
    /// <param name="memberId">The member's ID.</param>
    public void WriteJson(Utf8JsonWriter w, string name, ulong memberId)
    {
        var now = V2Json.Now(_time);
        bool leader;
        ulong leaderId, sendCount, recvCount;
        long since;
        (double Packets, double Bytes) sendRate, recvRate;
        lock (_gate)
        {
            (leader, leaderId, since, sendCount, recvCount) = (_leader, _leaderId, _leaderSince, _sendCount, _recvCount);
            sendRate = _sent.Rate(now);
            recvRate = _received.Rate(now);
        }

        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("id", Membership.Member.IdString(memberId));
        w.WriteString("state", leader ? "StateLeader" : "StateFollower");
        w.WriteString("startTime", V2Json.FormatTime(_startTime));
        w.WritePropertyName("leaderInfo");
        w.WriteStartObject();
        w.WriteString("leader", leaderId == 0 ? "" : Membership.Member.IdString(leaderId));
        w.WriteString("uptime", Logging.GoDuration.Format(TimeSpan.FromTicks((now - since) / 100)));
        w.WriteString("startTime", V2Json.FormatTime(since));
        w.WriteEndObject();
        w.WriteNumber("recvAppendRequestCnt", recvCount);
        WriteRate(w, "recvPkgRate", recvRate.Packets);
        WriteRate(w, "recvBandwidthRate", recvRate.Bytes);
        w.WriteNumber("sendAppendRequestCnt", sendCount);
        WriteRate(w, "sendPkgRate", sendRate.Packets);
        WriteRate(w, "sendBandwidthRate", sendRate.Bytes);
        w.WriteEndObject();
    }

    private static void WriteRate(Utf8JsonWriter w, string name, double value)
    {
        if (value != 0)
        {
            w.WritePropertyName(name);
            w.WriteRawValue(GoFloat.Format(value));
        }
    }

    private void BecomeLeaderLocked(ulong memberId, long now)
    {
        if (!_leader)
        {
            _leader = true;
            _leaderId = memberId;
            _leaderSince = now;
        }
    }

    /// <summary>The last 200 requests (etcd's <c>statsQueue</c>): their rate over the span they cover, 0 once the newest is over 1 s old.</summary>
    private sealed class RateQueue
    {
        private const int Capacity = 200;
        private readonly (long Time, int Size)[] _items = new (long, int)[Capacity];
        private int _front;
        private int _back = -1;
        private int _count;
        private long _totalSize;

        public void Insert(long now, int size)
        {
            _back = (_back + 1) % Capacity;
            if (_count == Capacity)
            {
                _totalSize -= _items[_front].Size;
                _front = (_back + 1) % Capacity;
            }
            else
            {
                _count++;
            }

            _items[_back] = (now, size);
            _totalSize += size;
        }

        public (double Packets, double Bytes) Rate(long now)
        {
            if (_count == 0)
            {
                return (0, 0);
            }

            if (now - _items[_back].Time > 1_000_000_000L)
            {
                (_front, _back, _count, _totalSize) = (0, -1, 0, 0);
                return (0, 0);
            }

            // As etcd: a single sample spans 0 ns, which gives +Inf (Go's JSON encoder then fails; we report 0).
            double span = _items[_back].Time - _items[_front].Time;
            return span <= 0 ? (0, 0) : (_count / span * 1e9, _totalSize / span * 1e9);
        }
    }
}
