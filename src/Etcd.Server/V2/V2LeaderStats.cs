using System.Collections.Concurrent;
using System.Text.Json;

namespace Etcd.Server.V2;

/// <summary>
/// The leader's view of its followers as <c>/v2/stats/leader</c> reports it (etcd's <c>v2stats.LeaderStats</c>):
/// per follower, the latency of sending it appends (ms: current, average, standard deviation, minimum, maximum) and
/// how many sends succeeded and failed. A follower is listed from the moment its peer is added to the transport,
/// with etcd's initial minimum of 2^63 until its first success.
/// </summary>
/// <remarks>Thread-safe: the transport reports from its own threads; each follower's figures have their own lock.</remarks>
public sealed class V2LeaderStats
{
    private readonly ConcurrentDictionary<ulong, FollowerStats> _followers = new();

    /// <summary>The figures of follower <paramref name="id"/>, created on first use.</summary>
    public FollowerStats Follower(ulong id) => _followers.GetOrAdd(id, static _ => new FollowerStats());

    /// <summary>Forgets every follower not in <paramref name="members"/> (their peers were removed).</summary>
    public void RemoveAllExcept(IReadOnlySet<ulong> members)
    {
        foreach (var id in _followers.Keys.Where(id => !members.Contains(id)))
        {
            _followers.TryRemove(id, out _);
        }
    }

    /// <summary>Writes the <c>/v2/stats/leader</c> object: <c>{"leader":ID,"followers":{ID:{"latency":{...},"counts":{...}}}}</c>.</summary>
    public void WriteJson(Utf8JsonWriter w, ulong leaderId)
    {
        w.WriteStartObject();
        w.WriteString("leader", Membership.Member.IdString(leaderId));
        w.WritePropertyName("followers");
        w.WriteStartObject();

        // Go's encoding/json writes map keys sorted.
        foreach (var (id, f) in _followers.Select(kv => (Membership.Member.IdString(kv.Key), kv.Value)).OrderBy(p => p.Item1, StringComparer.Ordinal))
        {
            w.WritePropertyName(id);
            f.WriteJson(w);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>One follower's send latency (ms) and counts (etcd's <c>FollowerStats</c>).</summary>
    public sealed class FollowerStats
    {
        private readonly object _gate = new();
        private double _current;
        private double _average;
        private double _averageSquare;
        private double _standardDeviation;
        private double _minimum = 9223372036854775808d;
        private double _maximum;
        private ulong _fail;
        private ulong _success;

        /// <summary>A send to the follower succeeded and took <paramref name="elapsed"/>.</summary>
        public void Succ(TimeSpan elapsed)
        {
            lock (_gate)
            {
                var total = _success * _average;
                var totalSquare = _success * _averageSquare;
                _success++;
                _current = elapsed.Ticks / (double)TimeSpan.TicksPerMillisecond;
                _maximum = Math.Max(_maximum, _current);
                _minimum = Math.Min(_minimum, _current);
                _average = (total + _current) / _success;
                _averageSquare = (totalSquare + (_current * _current)) / _success;
                _standardDeviation = Math.Sqrt(_averageSquare - (_average * _average));
            }
        }

        /// <summary>A send to the follower failed.</summary>
        public void Fail()
        {
            lock (_gate)
            {
                _fail++;
            }
        }

        internal void WriteJson(Utf8JsonWriter w)
        {
            double current, average, sd, min, max;
            ulong fail, success;
            lock (_gate)
            {
                (current, average, sd, min, max, fail, success) = (_current, _average, _standardDeviation, _minimum, _maximum, _fail, _success);
            }

            w.WriteStartObject();
            w.WritePropertyName("latency");
            w.WriteStartObject();
            Write(w, "current", current);
            Write(w, "average", average);
            Write(w, "standardDeviation", double.IsNaN(sd) ? 0 : sd);
            Write(w, "minimum", min);
            Write(w, "maximum", max);
            w.WriteEndObject();
            w.WritePropertyName("counts");
            w.WriteStartObject();
            w.WriteNumber("fail", fail);
            w.WriteNumber("success", success);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        private static void Write(Utf8JsonWriter w, string name, double value)
        {
            w.WritePropertyName(name);
            w.WriteRawValue(GoFloat.Format(value));
        }
    }
}
