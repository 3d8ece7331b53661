using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// etcd's initial election tick advance (<c>adjustTicks</c> in <c>etcdserver/server.go</c>), run once when the loop
/// starts: a single-member cluster fast-forwards its election clock by election ticks − 1; a larger one, when
/// <see cref="EtcdOptions.InitialElectionTickAdvance"/> is on, waits up to 5 s (every 50 ms) for connections to more
/// than one remote peer and then fast-forwards by election ticks − 2, so that a restarted member campaigns soon
/// instead of after a whole election timeout; when off it waits out the full timeout. The ticks go through the
/// loop's input queue, so they are applied on the raft thread.
/// </summary>
public sealed partial class EtcdServer
{
    private static readonly TimeSpan TickAdvanceWait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan TickAdvancePoll = TimeSpan.FromMilliseconds(50);

    private async Task AdjustTicksAsync()
    {
        var log = _loggerFactory.CreateLogger("etcdserver/server.go");
        var tickMs = Math.Max(1, _options.HeartbeatIntervalMs);
        var electionTicks = Math.Max(1, _options.ElectionTimeoutMs / tickMs);
        string Dur(int ticks) => GoDuration.Format(TimeSpan.FromMilliseconds((long)ticks * tickMs));
        var id = Membership.Member.IdString(MemberId);
        if (Cluster.Members().Count == 1)
        {
            var ticks = electionTicks - 1;
            log.LogEtcd(
                LogLevel.Information,
                "etcdserver/server.go:682",
                "started as single-node; fast-forwarding election ticks",
                $"{id} as single-node; fast-forwarding {ticks} ticks (election ticks {electionTicks})",
                ("local-member-id", id),
                ("forward-ticks", ticks),
                ("forward-duration", Dur(ticks)),
                ("election-ticks", electionTicks),
                ("election-timeout", Dur(electionTicks)));
            AdvanceTicks(ticks);
            return;
        }

        if (!_options.InitialElectionTickAdvance)
        {
            // etcd logs this under zap only (an empty capnslog text).
            log.LogEtcd(LogLevel.Information, "etcdserver/server.go:699", "skipping initial election tick advance", "", ("election-ticks", electionTicks));
            return;
        }

        log.LogEtcd(LogLevel.Information, "etcdserver/server.go:704", "starting initial election tick advance", "", ("election-ticks", electionTicks));

        for (var i = 0; i < TickAdvanceWait / TickAdvancePoll; i++)
        {
            try
            {
                await Task.Delay(TickAdvancePoll, _options.Time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var peers = Cluster.Members().Count(m => m.Id != MemberId && Transport.ActiveSince(m.Id) is not null);
            if (peers > 1)
            {
                var ticks = electionTicks - 2;
                log.LogEtcd(
                    LogLevel.Information,
                    "etcdserver/server.go:729",
                    "initialized peer connections; fast-forwarding election ticks",
                    $"{id} initialized peer connection; fast-forwarding {ticks} ticks (election ticks {electionTicks}) with {peers} active peer(s)",
                    ("local-member-id", id),
                    ("forward-ticks", ticks),
                    ("forward-duration", Dur(ticks)),
                    ("election-ticks", electionTicks),
                    ("election-timeout", Dur(electionTicks)),
                    ("active-remote-members", peers));
                AdvanceTicks(ticks);
                return;
            }
        }
    }

    /// <summary>
    /// Tests: completes once the raft thread has handled every input queued before this call (ticks from the
    /// <see cref="EtcdOptions.Time"/> timer included), so a test that advances a fake clock knows the ticks were stepped.
    /// </summary>
    internal Task RaftInputsDrainedForTests()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _inputs.Writer.TryWrite(RaftInput.Run(done.SetResult));
        return done.Task;
    }

    private void AdvanceTicks(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            _inputs.Writer.TryWrite(RaftInput.TickInput);
        }
    }

    /// <summary>Raft thread: etcd's raft node lines for a leader change ("raft.node: … elected leader … at term …").</summary>
    private void LogLeaderChange(ulong previous, ulong lead)
    {
        var term = _node.GetBasicStatus().HardState.Term;
        var id = Hex(MemberId);
        var text = lead == 0
            ? $"raft.node: {id} lost leader {Hex(previous)} at term {term}"
            : previous == 0
                ? $"raft.node: {id} elected leader {Hex(lead)} at term {term}"
                : $"raft.node: {id} changed leader from {Hex(previous)} to {Hex(lead)} at term {term}";
        new RaftLogger(_loggerFactory.CreateLogger("raft")).Info(text);
    }
}
