using System.Globalization;
using System.Text;

namespace Etcd.Server.Metrics;

/// <summary>A monotonically increasing counter. Thread-safe.</summary>
public sealed class Counter
{
    private long _value;

    /// <summary>Adds one.</summary>
    public void Increment() => Interlocked.Increment(ref _value);

    /// <summary>Adds <paramref name="n"/> (non-negative).</summary>
    public void Add(long n) => Interlocked.Add(ref _value, n);

    /// <summary>The current value.</summary>
    public long Value => Interlocked.Read(ref _value);
}

/// <summary>A value that goes up and down. Thread-safe.</summary>
public sealed class Gauge
{
    private long _value;

    /// <summary>Adds one.</summary>
    public void Increment() => Interlocked.Increment(ref _value);

    /// <summary>Subtracts one.</summary>
    public void Decrement() => Interlocked.Decrement(ref _value);

    /// <summary>The current value.</summary>
    public long Value => Interlocked.Read(ref _value);
}

/// <summary>A Prometheus histogram over fixed bucket bounds (seconds). Thread-safe.</summary>
public sealed class Histogram
{
    private readonly double[] _bounds;
    private readonly long[] _counts;
    private long _count;
    private long _sumMicros;

    /// <summary>Creates a histogram with exponential buckets: <paramref name="start"/> × <paramref name="factor"/>^i.</summary>
    public Histogram(double start, double factor, int count)
    {
        _bounds = new double[count];
        for (var i = 0; i < count; i++)
        {
            _bounds[i] = start * Math.Pow(factor, i);
        }

        _counts = new long[count];
    }

    /// <summary>Records one observation in seconds.</summary>
    public void Observe(double seconds)
    {
        for (var i = 0; i < _bounds.Length; i++)
        {
            if (seconds <= _bounds[i])
            {
                Interlocked.Increment(ref _counts[i]);
                break;
            }
        }

        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumMicros, (long)(seconds * 1e6));
    }

    internal void Write(StringBuilder sb, string name)
    {
        long cumulative = 0;
        for (var i = 0; i < _bounds.Length; i++)
        {
            cumulative += Interlocked.Read(ref _counts[i]);
            sb.Append(name).Append("_bucket{le=\"").Append(_bounds[i].ToString(CultureInfo.InvariantCulture)).Append("\"} ").Append(cumulative).Append('\n');
        }

        var count = Interlocked.Read(ref _count);
        sb.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(count).Append('\n');
        sb.Append(name).Append("_sum ").Append((Interlocked.Read(ref _sumMicros) / 1e6).ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append(name).Append("_count ").Append(count).Append('\n');
    }
}

/// <summary>
/// The member's metrics under etcd's names (<c>etcdserver/metrics.go</c>, <c>wal/metrics.go</c>,
/// <c>mvcc/metrics.go</c>), written in the Prometheus text format on <c>/metrics</c>. Thread-safe.
/// </summary>
public sealed class EtcdMetrics
{
    /// <summary><c>etcd_server_leader_changes_seen_total</c>.</summary>
    public Counter LeaderChanges { get; } = new();

    /// <summary><c>etcd_server_proposals_applied_total</c>.</summary>
    public Counter ProposalsApplied { get; } = new();

    /// <summary><c>etcd_server_proposals_failed_total</c>.</summary>
    public Counter ProposalsFailed { get; } = new();

    /// <summary><c>etcd_server_proposals_pending</c>.</summary>
    public Gauge ProposalsPending { get; } = new();

    /// <summary><c>etcd_disk_wal_fsync_duration_seconds</c> (buckets 1 ms × 2^i, as etcd's).</summary>
    public Histogram WalFsyncSeconds { get; } = new(0.001, 2, 14);

    /// <summary>Writes every metric; <paramref name="server"/> supplies the live gauges.</summary>
    public string Render(EtcdServer server)
    {
        var sb = new StringBuilder(4096);
        void Line(string name, string type, string help, string value, string labels = "")
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            sb.Append(name).Append(labels).Append(' ').Append(value).Append('\n');
        }

        var committed = server.CommittedIndex.ToString(CultureInfo.InvariantCulture);
        Line("etcd_server_has_leader", "gauge", "Whether or not a leader exists. 1 is existence, 0 is not.", server.Leader != 0 ? "1" : "0");
        Line("etcd_server_is_leader", "gauge", "Whether or not this member is a leader. 1 if is, 0 otherwise.", server.IsLeader ? "1" : "0");
        Line("etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.", LeaderChanges.Value.ToString(CultureInfo.InvariantCulture));
        Line("etcd_server_proposals_committed_total", "gauge", "The total number of consensus proposals committed.", committed);
        Line("etcd_server_proposals_applied_total", "gauge", "The total number of consensus proposals applied.", server.AppliedIndex.ToString(CultureInfo.InvariantCulture));
        Line("etcd_server_proposals_pending", "gauge", "The current number of pending proposals to commit.", ProposalsPending.Value.ToString(CultureInfo.InvariantCulture));
        Line("etcd_server_proposals_failed_total", "counter", "The total number of failed proposals seen.", ProposalsFailed.Value.ToString(CultureInfo.InvariantCulture));
        Line("etcd_server_id", "gauge", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", "1", $"{{server_id=\"{Membership.Member.IdString(server.MemberId)}\"}}");
        Line("etcd_server_version", "gauge", "Which version is running. 1 for 'server_version' label with current version.", "1", $"{{server_version=\"{EtcdServer.Version}\"}}");
        if (server.Cluster.Version is { } cv)
        {
            Line("etcd_cluster_version", "gauge", "Which version is running. 1 for 'cluster_version' label with current cluster version", "1", $"{{cluster_version=\"{string.Join('.', cv.Split('.').Take(2))}\"}}");
        }

        Line("etcd_mvcc_db_total_size_in_bytes", "gauge", "Total size of the underlying database physically allocated in bytes.", server.Backend.Size.ToString(CultureInfo.InvariantCulture));
        Line("etcd_mvcc_db_total_size_in_use_in_bytes", "gauge", "Total size of the underlying database logically in use in bytes.", server.Backend.SizeInUse.ToString(CultureInfo.InvariantCulture));
        Line("etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.", server.Kv.CurrentRevision.ToString(CultureInfo.InvariantCulture));
        Line("etcd_debugging_mvcc_compact_revision", "gauge", "The revision of the last compaction in store.", server.Kv.CompactRevision.ToString(CultureInfo.InvariantCulture));
        sb.Append("# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.\n");
        sb.Append("# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n");
        WalFsyncSeconds.Write(sb, "etcd_disk_wal_fsync_duration_seconds");
        return sb.ToString();
    }
}
