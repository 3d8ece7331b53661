using System.Collections.Concurrent;
using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// The peer transport's families (etcd's <c>etcdserver/api/rafthttp/metrics.go</c>), labelled by peer ID in hex
/// (<c>To</c>, <c>From</c>, <c>Local</c>/<c>Remote</c>). The transport asks <see cref="For"/> once per peer and keeps
/// the returned children, so a message costs one counter add. Thread-safe.
/// </summary>
public sealed class PeerMetrics
{
    private readonly Gauge _activePeers;
    private readonly Counter _disconnectedPeers;
    private readonly Counter _sentBytes;
    private readonly Counter _receivedBytes;
    private readonly Counter _sentFailures;
    private readonly Counter _receivedFailures;
    private readonly Histogram _roundTrip;
    private readonly Counter _snapshotSendSuccess;
    private readonly Gauge _snapshotSendInflight;
    private readonly Counter _snapshotSendFailures;
    private readonly Histogram _snapshotSendDuration;
    private readonly Counter _snapshotReceiveSuccess;
    private readonly Gauge _snapshotReceiveInflight;
    private readonly Counter _snapshotReceiveFailures;
    private readonly Histogram _snapshotReceiveDuration;
    private readonly ConcurrentDictionary<(ulong Local, ulong Remote), Peer> _peers = new();

    internal PeerMetrics(IMetricFactory f)
    {
        _activePeers = f.CreateGauge("etcd_network_active_peers", "The current number of active peer connections.", ["Local", "Remote"]);
        _disconnectedPeers = f.CreateCounter("etcd_network_disconnected_peers_total", "The total number of disconnected peers.", ["Local", "Remote"]);
        _sentBytes = f.CreateCounter("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", ["To"]);
        _receivedBytes = f.CreateCounter("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", ["From"]);
        _sentFailures = f.CreateCounter("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", ["To"]);
        _receivedFailures = f.CreateCounter("etcd_network_peer_received_failures_total", "The total number of receive failures from peers.", ["From"]);
        _snapshotSendSuccess = f.CreateCounter("etcd_network_snapshot_send_success", "Total number of successful snapshot sends", ["To"]);
        _snapshotSendInflight = f.CreateGauge("etcd_network_snapshot_send_inflights_total", "Total number of inflight snapshot sends", ["To"]);
        _snapshotSendFailures = f.CreateCounter("etcd_network_snapshot_send_failures", "Total number of snapshot send failures", ["To"]);
        _snapshotSendDuration = f.CreateHistogram("etcd_network_snapshot_send_total_duration_seconds", "Total latency distributions of v3 snapshot sends", new HistogramConfiguration { LabelNames = ["To"], Buckets = Histogram.ExponentialBuckets(0.1, 2, 10) });
        _snapshotReceiveSuccess = f.CreateCounter("etcd_network_snapshot_receive_success", "Total number of successful snapshot receives", ["From"]);
        _snapshotReceiveInflight = f.CreateGauge("etcd_network_snapshot_receive_inflights_total", "Total number of inflight snapshot receives", ["From"]);
        _snapshotReceiveFailures = f.CreateCounter("etcd_network_snapshot_receive_failures", "Total number of snapshot receive failures", ["From"]);
        _snapshotReceiveDuration = f.CreateHistogram("etcd_network_snapshot_receive_total_duration_seconds", "Total latency distributions of v3 snapshot receives", new HistogramConfiguration { LabelNames = ["From"], Buckets = Histogram.ExponentialBuckets(0.1, 2, 10) });
        _roundTrip = f.CreateHistogram("etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers", new HistogramConfiguration { LabelNames = ["To"], Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16) });
    }

    /// <summary>The children for traffic between this member (<paramref name="local"/>) and <paramref name="remote"/>.</summary>
    public Peer For(ulong local, ulong remote) => _peers.GetOrAdd((local, remote), static (k, m) => new Peer(m, k.Local, k.Remote), this);

    /// <summary>One peer's children. Thread-safe.</summary>
    public sealed class Peer
    {
        private readonly Gauge.Child _active;
        private readonly Counter.Child _disconnected;
        private readonly Gauge.Child _snapshotSendInflight;
        private readonly Counter.Child _snapshotSendSuccess;
        private readonly Counter.Child _snapshotSendFailures;
        private readonly Histogram.Child _snapshotSendDuration;
        private readonly Gauge.Child _snapshotReceiveInflight;
        private readonly Counter.Child _snapshotReceiveSuccess;
        private readonly Counter.Child _snapshotReceiveFailures;
        private readonly Histogram.Child _snapshotReceiveDuration;

        internal Peer(PeerMetrics m, ulong local, ulong remote)
        {
            var l = Membership.Member.IdString(local);
            var r = Membership.Member.IdString(remote);
            _active = m._activePeers.WithLabels(l, r);
            _disconnected = m._disconnectedPeers.WithLabels(l, r);
            SentBytes = m._sentBytes.WithLabels(r);
            ReceivedBytes = m._receivedBytes.WithLabels(r);
            SentFailures = m._sentFailures.WithLabels(r);
            ReceivedFailures = m._receivedFailures.WithLabels(r);
            RoundTrip = m._roundTrip.WithLabels(r);
            _snapshotSendInflight = m._snapshotSendInflight.WithLabels(r);
            _snapshotSendSuccess = m._snapshotSendSuccess.WithLabels(r);
            _snapshotSendFailures = m._snapshotSendFailures.WithLabels(r);
            _snapshotSendDuration = m._snapshotSendDuration.WithLabels(r);
            _snapshotReceiveInflight = m._snapshotReceiveInflight.WithLabels(r);
            _snapshotReceiveSuccess = m._snapshotReceiveSuccess.WithLabels(r);
            _snapshotReceiveFailures = m._snapshotReceiveFailures.WithLabels(r);
            _snapshotReceiveDuration = m._snapshotReceiveDuration.WithLabels(r);
        }

        /// <summary><c>etcd_network_peer_sent_bytes_total{To}</c>.</summary>
        public Counter.Child SentBytes { get; }

        /// <summary><c>etcd_network_peer_received_bytes_total{From}</c>.</summary>
        public Counter.Child ReceivedBytes { get; }

        /// <summary><c>etcd_network_peer_sent_failures_total{To}</c>: messages dropped (full queue, lost connection).</summary>
        public Counter.Child SentFailures { get; }

        /// <summary><c>etcd_network_peer_received_failures_total{From}</c>: streams from the peer that broke.</summary>
        public Counter.Child ReceivedFailures { get; }

        /// <summary><c>etcd_network_peer_round_trip_time_seconds{To}</c>.</summary>
        public Histogram.Child RoundTrip { get; }

        /// <summary>The connection to the peer came up.</summary>
        public void Activated() => _active.Inc();

        /// <summary>The connection to the peer went down.</summary>
        public void Deactivated()
        {
            _active.Dec();
            _disconnected.Inc();
        }

        /// <summary>A snapshot send started; the returned timestamp goes to <see cref="SnapshotSendEnded"/>.</summary>
        public long SnapshotSendStarted()
        {
            _snapshotSendInflight.Inc();
            return System.Diagnostics.Stopwatch.GetTimestamp();
        }

        /// <summary>A snapshot send started at <paramref name="started"/> ended.</summary>
        public void SnapshotSendEnded(long started, bool ok)
        {
            _snapshotSendInflight.Dec();
            if (ok)
            {
                _snapshotSendSuccess.Inc();
                _snapshotSendDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            else
            {
                _snapshotSendFailures.Inc();
            }
        }

        /// <summary>A snapshot receive started; the returned timestamp goes to <see cref="SnapshotReceiveEnded"/>.</summary>
        public long SnapshotReceiveStarted()
        {
            _snapshotReceiveInflight.Inc();
            return System.Diagnostics.Stopwatch.GetTimestamp();
        }

        /// <summary>A snapshot receive started at <paramref name="started"/> ended.</summary>
        public void SnapshotReceiveEnded(long started, bool ok)
        {
            _snapshotReceiveInflight.Dec();
            if (ok)
            {
                _snapshotReceiveSuccess.Inc();
                _snapshotReceiveDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            else
            {
                _snapshotReceiveFailures.Inc();
            }
        }
    }
}
