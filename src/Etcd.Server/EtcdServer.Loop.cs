using System.Buffers.Binary;
using Etcd.Raft;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

public sealed partial class EtcdServer
{
    /// <summary>How long a ReadIndex may stay unanswered before it is sent again (etcd: readIndexRetryTime).</summary>
    private static readonly TimeSpan ReadIndexRetry = TimeSpan.FromMilliseconds(500);

    private readonly ReadBatch _readBatch = new();
    private readonly List<RaftInput> _parked = [];

    /// <summary>Raft thread: proposals drained from the input queue, stepped into raft as one MsgProp.</summary>
    private readonly List<RaftInput> _proposals = [];
    private readonly List<byte[]> _proposalData = [];
    private readonly Dictionary<ulong, (TaskCompletionSource<ulong> Notifier, long SentTicks, byte[] Ctx)> _readsInFlight = new();

    private void RunLoop()
    {
        try
        {
            var reader = _inputs.Reader;
            while (!_stopRequested)
            {
                if (!reader.TryPeek(out _))
                {
                    if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                    {
                        break;
                    }
                }

                // Drain everything queued: proposals that arrived while we were persisting are batched into one Ready.
                var drained = 0;
                while (drained < 4096 && reader.TryRead(out var input))
                {
                    drained++;
                    if (input.Kind == RaftInputKind.Propose && Leader != 0)
                    {
                        _proposals.Add(input);
                        continue;
                    }

                    ProposeBatch();
                    HandleInput(input);
                }

                ProposeBatch();

                while (_node.HasReady() && !_stopRequested)
                {
                    ProcessReady(_node.GetReady());
                }
            }
        }
        catch (Exception e)
        {
            _log.LogCritical(e, "raft loop failed {error}", e.Message);
            _applier?.Stop();
            FailAll(e);
            _stopped.TrySetResult();
            return;
        }

        _applier?.Stop();
        FailAll(null);
        _wal.Dispose();
        _stopped.TrySetResult();
    }

    private void FailAll(Exception? cause)
    {
        _stopping.Cancel();
        foreach (var (_, w) in _waiters)
        {
            w.TrySetException(Api.EtcdErrors.Stopped.ToException());
        }

        foreach (var (_, r) in _readsInFlight)
        {
            r.Notifier.TrySetException(Api.EtcdErrors.Stopped.ToException());
        }

        _readBatch.FailAll(Api.EtcdErrors.Stopped.ToException());
        _appliedWaiters.FailAll(Api.EtcdErrors.Stopped.ToException());
        _ = cause;
    }

    private void HandleInput(RaftInput input)
    {
        switch (input.Kind)
        {
            case RaftInputKind.Tick:
                _node.Tick();
                RetryStaleReads();
                break;
            case RaftInputKind.Propose:
                if (Leader == 0)
                {
                    // No leader: raft would drop it. Park it until one is elected (etcd blocks such proposals
                    // until a leader appears or the request times out).
                    _parked.Add(input);
                    break;
                }

                try
                {
                    _node.Propose(input.Data!);
                }
                catch (RaftException e)
                {
                    if (_waiters.TryGetValue(input.Id, out var w))
                    {
                        w.TrySetException(IsLeaderless()
                            ? Api.EtcdErrors.NoLeader.ToException()
                            : new Api.Grpc.RpcException(Api.Grpc.StatusCode.Unknown, e.Message));
                    }
                }

                break;
            case RaftInputKind.Step:
                StepPeerMessage((Message)input.Payload!);
                break;
            case RaftInputKind.Unreachable:
                _node.ReportUnreachable(input.Id);
                break;
            case RaftInputKind.SnapshotStatus:
                _node.ReportSnapshot(input.Id, (SnapshotStatus)input.Payload!);
                break;
            case RaftInputKind.ProposeConfChange:
                if (Leader == 0)
                {
                    _parked.Add(input);
                    break;
                }

                try
                {
                    _node.ProposeConfChange((ConfChange)input.Payload!);
                }
                catch (RaftException e)
                {
                    if (_waiters.TryGetValue(input.Id, out var cw))
                    {
                        cw.TrySetException(new Api.Grpc.RpcException(Api.Grpc.StatusCode.Unknown, e.Message));
                    }
                }

                break;
            case RaftInputKind.Run:
                ((Action)input.Payload!)();
                break;
            case RaftInputKind.Stop:
                _stopRequested = true;
                break;
            case RaftInputKind.ReadRequested:
                var notifier = _readBatch.Take();
                if (notifier is not null)
                {
                    var id = _reqIds.Next();
                    var ctx = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(ctx, id);
                    _readsInFlight[id] = (notifier, Environment.TickCount64, ctx);
                    _node.ReadIndex(ctx);
                }

                break;
        }
    }

    private bool IsLeaderless() => Leader == 0;

    /// <summary>
    /// Raft thread: steps the proposals gathered while draining the queue into raft together (one MsgProp, one append
    /// per follower); a batch raft drops fails every proposer in it, as one by one would.
    /// </summary>
    private void ProposeBatch()
    {
        if (_proposals.Count == 0)
        {
            return;
        }

        if (_proposals.Count == 1)
        {
            HandleInput(_proposals[0]);
            _proposals.Clear();
            return;
        }

        foreach (var p in _proposals)
        {
            _proposalData.Add(p.Data!);
        }

        try
        {
            _node.Propose(_proposalData);
        }
        catch (RaftException e)
        {
            var error = IsLeaderless() ? Api.EtcdErrors.NoLeader.ToException() : new Api.Grpc.RpcException(Api.Grpc.StatusCode.Unknown, e.Message);
            foreach (var p in _proposals)
            {
                if (_waiters.TryGetValue(p.Id, out var w))
                {
                    w.TrySetException(error);
                }
            }
        }
        finally
        {
            _proposals.Clear();
            _proposalData.Clear();
        }
    }

    private void RetryStaleReads()
    {
        if (_readsInFlight.Count == 0)
        {
            return;
        }

        var now = Environment.TickCount64;
        foreach (var key in _readsInFlight.Keys.ToList())
        {
            var r = _readsInFlight[key];
            if (now - r.SentTicks >= (long)ReadIndexRetry.TotalMilliseconds)
            {
                _readsInFlight[key] = (r.Notifier, now, r.Ctx);
                _node.ReadIndex(r.Ctx);
            }
        }
    }

    private void ProcessReady(Ready rd)
    {
        if (rd.SoftState is { } ss)
        {
            var wasLeader = IsLeader;
            var previous = Leader;
            if (Leader != ss.Lead && ss.Lead != 0)
            {
                Metrics.Server.LeaderChanges.Inc();
            }

            if (previous != ss.Lead)
            {
                OnLeaderChanged(previous, ss.Lead);
            }

            Interlocked.Exchange(ref _leaderId, (long)ss.Lead);
            if (ss.Lead != 0 && _parked.Count > 0)
            {
                var parked = _parked.ToArray();
                _parked.Clear();
                foreach (var p in parked)
                {
                    if (_waiters.ContainsKey(p.Id))
                    {
                        _inputs.Writer.TryWrite(p);
                    }
                }
            }

            Volatile.Write(ref _isLeader, ss.RaftState == StateType.Leader ? 1 : 0);
            if (ss.RaftState == StateType.Leader)
            {
                V2ServerStats.BecomeLeader(MemberId);
            }
            DemoteLessorUnlessLeader();
            UpdateCompactorLeadership();
            SignalLeaderChange();
        }

        if (rd.Snapshot is { } snap && snap.Metadata is { Index: > 0 })
        {
            // The applier installs it once everything handed over before is applied; raft waits (etcd's applySnapshot
            // waits for the raft node the same way), so the state machine and raft's log move together.
            _applier!.RunAndWait(() => ApplySnapshot(snap));
        }

        foreach (var rs in rd.ReadStates)
        {
            if (rs.RequestCtx.Length == 8)
            {
                var id = BinaryPrimitives.ReadUInt64BigEndian(rs.RequestCtx);
                if (_readsInFlight.Remove(id, out var r))
                {
                    r.Notifier.TrySetResult(rs.Index);
                }
            }
        }

        // The leader sends before it persists: its followers write their logs while it writes its own (Raft thesis
        // §10.2.1; etcd's raftNode). A follower persists first: it must not acknowledge what it could still lose.
        var sentFirst = IsLeader;
        if (sentFirst && rd.Messages.Count > 0)
        {
            SendMessages(rd.Messages);
        }

        if (rd.HasHardState || rd.Entries.Count > 0)
        {
            Failpoints.Hit(Failpoint.RaftBeforeSave);
            _wal.Save(rd.HardState, rd.Entries);
            Failpoints.Hit(Failpoint.RaftAfterSave);
        }

        if (rd.HasHardState)
        {
            _raftStorage.SetHardState(rd.HardState);
            Interlocked.Exchange(ref _term, (long)rd.HardState.Term);
            if (rd.HardState.Commit > CommittedIndex)
            {
                Interlocked.Exchange(ref _committedIndex, (long)rd.HardState.Commit);
            }
        }

        if (rd.Entries.Count > 0)
        {
            _raftStorage.Append(rd.Entries);
        }

        if (!sentFirst && rd.Messages.Count > 0)
        {
            SendMessages(rd.Messages);
        }

        // Committed entries are in the local WAL now (the Ready's own entries were just saved): hand them to the
        // applier and go on without waiting, unless one changes raft's configuration: raft must see it applied
        // before it goes on (RawNode is this thread's, so the applier changes it while this thread waits).
        if (rd.CommittedEntries.Count > 0)
        {
            _applier!.Apply(rd.CommittedEntries);
            if (HasConfChange(rd.CommittedEntries))
            {
                _applier.WaitIdle();
            }
        }

        _node.Advance(rd);
        AfterAdvance();
    }

    private static bool HasConfChange(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            if (e.Type is EntryType.EntryConfChange or EntryType.EntryConfChangeV2)
            {
                return true;
            }
        }

        return false;
    }

    private void AfterAdvance()
    {
        // A member that is the only voter need not wait out an election timeout (once its log is applied).
        if (!_campaignedAfterReplay && Leader == 0)
        {
            var members = Cluster.Members();
            if (members.Count == 1 && members[0].Id == MemberId && AppliedIndex >= _raftStorage.LastIndex())
            {
                _campaignedAfterReplay = true;

                // Unless raft's own election timer already fired during a slow replay (a second campaign would
                // needlessly bump the term again).
                if (_node.GetBasicStatus().RaftState == StateType.Follower)
                {
                    _node.Campaign();
                }
            }
        }

        if (IsLeader && !_proposedClusterVersion && Cluster.Version is null)
        {
            _proposedClusterVersion = true;
            _ = SetClusterVersionAsync();
        }
    }

    private async Task SetClusterVersionAsync()
    {
        try
        {
            var req = new Etcdserverpb.InternalRaftRequest
            {
                V2 = new Etcdserverpb.Request { Method = "PUT", Path = "/0/version", Val = ClusterVersionValue },
            };
            await ProposeAsync(req, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or Api.Grpc.RpcException)
        {
            _proposedClusterVersion = false;
        }
    }

    private static string Hex(ulong id) => Membership.Member.IdString(id);
}
