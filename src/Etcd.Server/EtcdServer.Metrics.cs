using Raftpb;

namespace Etcd.Server;

/// <summary>The raft loop's and applier's own measurements (etcd's heartbeat contention detector and slow-apply count).</summary>
public sealed partial class EtcdServer
{
    /// <summary>Raft thread only: when each peer was last sent a heartbeat (Stopwatch timestamps).</summary>
    private readonly Dictionary<ulong, long> _lastHeartbeatSent = [];

    /// <summary>
    /// Raft thread: etcd's timeout detector on leader heartbeats. A heartbeat to a peer sent more than two heartbeat
    /// intervals after the previous one means the leader could not send on time (likely a slow disk):
    /// <c>etcd_server_heartbeat_send_failures_total</c> goes up, as etcd's raft loop counts it.
    /// </summary>
    private void ObserveHeartbeat(Message m)
    {
        if (m.Type != MessageType.MsgHeartbeat)
        {
            return;
        }

        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_lastHeartbeatSent.TryGetValue(m.To, out var last)
            && System.Diagnostics.Stopwatch.GetElapsedTime(last, now) > TimeSpan.FromMilliseconds(2 * _options.HeartbeatIntervalMs))
        {
            Metrics.Server.HeartbeatSendFailures.Inc();
        }

        _lastHeartbeatSent[m.To] = now;
    }

    /// <summary>Applier thread: an entry whose apply started at <paramref name="startTimestamp"/> took longer than etcd's apply warning duration.</summary>
    private void ObserveApply(long startTimestamp)
    {
        if (System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp) > _options.ExperimentalWarningApplyDuration)
        {
            Metrics.Server.SlowApplies.Inc();
        }
    }
}
