using System.Buffers.Binary;
using System.Text.Json;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Etcd.Storage.Wal;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

/// <summary>The replicated cluster: peer messages, raft snapshots, membership changes and leadership transfer.</summary>
public sealed partial class EtcdServer
{
    /// <summary>etcd's <c>ErrTimeoutLeaderTransfer</c>.</summary>
    private static readonly EtcdError TimeoutLeaderTransfer = new(Api.Grpc.StatusCode.Unavailable, "etcdserver: request timed out, leader transfer took too long");

    /// <summary>A learner may be promoted once its match index is within this share of the leader's (etcd's readyPercent).</summary>
    private const double LearnerReadyPercent = 0.9;

    private readonly TransportHandler _transportHandler;
    private readonly HashSet<ulong> _transportPeers = [];
    private readonly object _leaderSignalLock = new();
    private TaskCompletionSource _leaderChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _leaderChanges;
    private volatile bool _stopRequested;
    private ConfState _confState = new();
    private ulong _snapshotIndex;

    /// <summary>
    /// True once the member stopped because it was removed from the cluster (it applied its own removal, or a peer
    /// refused it as removed). etcd exits with status 0 then; <see cref="Stopped"/> completes.
    /// </summary>
    public bool RemovedFromCluster => Volatile.Read(ref _removedFromCluster);

    private bool _removedFromCluster;

    /// <summary>Whether this member is a learner.</summary>
    public bool IsLearner => Cluster.IsLearner(MemberId);

    /// <summary>Throws <see cref="EtcdErrors.NotSupportedForLearner"/> on a learner (etcd's v3rpc interceptor rule).</summary>
    public void ThrowIfLearner()
    {
        if (IsLearner)
        {
            throw EtcdErrors.NotSupportedForLearner.ToException();
        }
    }

    /// <summary>
    /// Adds a member (etcd's <c>MemberAdd</c>): its ID is derived from the peer URLs and the current time; with
    /// <c>--strict-reconfig-check</c> a voter is added only when the started voters keep quorum. Waits for the conf
    /// change to apply. Errors: <see cref="EtcdErrors.MemberBadUrls"/>, <see cref="EtcdErrors.PeerUrlExist"/>,
    /// <see cref="EtcdErrors.MemberExist"/>, <see cref="EtcdErrors.TooManyLearners"/>,
    /// <see cref="EtcdErrors.MemberNotEnoughStarted"/>, proposal errors.
    /// </summary>
    public async Task<MemberAddResponse> MemberAddAsync(MemberAddRequest request, CancellationToken cancellationToken)
    {
        var urls = ValidatePeerUrls(request.PeerURLs);
        var m = new Membership.Member
        {
            Id = Membership.Member.ComputeId(urls, "", DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
            PeerUrls = urls,
            IsLearner = request.IsLearner,
        };
        if (_options.StrictReconfigCheck && !m.IsLearner && !Cluster.IsReadyToAddVotingMember())
        {
            throw EtcdErrors.MemberNotEnoughStarted.ToException();
        }

        if (Cluster.PeerUrlsInUse(urls))
        {
            throw EtcdErrors.PeerUrlExist.ToException();
        }

        var cc = new ConfChange
        {
            Type = m.IsLearner ? ConfChangeType.ConfChangeAddLearnerNode : ConfChangeType.ConfChangeAddNode,
            NodeId = m.Id,
            Context = ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(m)),
        };
        await ProposeConfChangeAsync(cc, cancellationToken).ConfigureAwait(false);
        var resp = new MemberAddResponse { Header = new ResponseHeader(), Member = ToProto(m) };
        resp.Members.AddRange(Cluster.Members().Select(ToProto));
        FillHeader(resp.Header, withRevision: false);
        return resp;
    }

    /// <summary>
    /// Removes a member (etcd's <c>MemberRemove</c>). With <c>--strict-reconfig-check</c> a voter is removed only
    /// when the started voters left keep quorum and enough of them are connected. Errors:
    /// <see cref="EtcdErrors.MemberNotFound"/>, <see cref="EtcdErrors.MemberNotEnoughStarted"/>, <see cref="EtcdErrors.Unhealthy"/>.
    /// </summary>
    public async Task<MemberRemoveResponse> MemberRemoveAsync(MemberRemoveRequest request, CancellationToken cancellationToken)
    {
        MayRemoveMember(request.ID);
        await ProposeConfChangeAsync(new ConfChange { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = request.ID }, cancellationToken).ConfigureAwait(false);
        var resp = new MemberRemoveResponse { Header = new ResponseHeader() };
        resp.Members.AddRange(Cluster.Members().Select(ToProto));
        FillHeader(resp.Header, withRevision: false);
        return resp;
    }

    /// <summary>Changes a member's peer URLs (etcd's <c>MemberUpdate</c>). Errors: <see cref="EtcdErrors.MemberNotFound"/>, <see cref="EtcdErrors.PeerUrlExist"/>.</summary>
    public async Task<MemberUpdateResponse> MemberUpdateAsync(MemberUpdateRequest request, CancellationToken cancellationToken)
    {
        var urls = ValidatePeerUrls(request.PeerURLs);
        var m = new Membership.Member { Id = request.ID, PeerUrls = urls };
        var cc = new ConfChange
        {
            Type = ConfChangeType.ConfChangeUpdateNode,
            NodeId = request.ID,
            Context = ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(m)),
        };
        await ProposeConfChangeAsync(cc, cancellationToken).ConfigureAwait(false);
        var resp = new MemberUpdateResponse { Header = new ResponseHeader() };
        resp.Members.AddRange(Cluster.Members().Select(ToProto));
        FillHeader(resp.Header, withRevision: false);
        return resp;
    }

    /// <summary>
    /// Promotes a learner to voter (etcd's <c>MemberPromote</c>). Only the leader knows whether the learner is in
    /// sync (its match index at least 90% of the leader's); a follower forwards the request to the leader over the
    /// peer transport, as etcd does over peer HTTP. Errors: <see cref="EtcdErrors.NoLeader"/>,
    /// <see cref="EtcdErrors.MemberNotFound"/>, <see cref="EtcdErrors.MemberNotLearner"/>, <see cref="EtcdErrors.LearnerNotReady"/>.
    /// </summary>
    public async Task<MemberPromoteResponse> MemberPromoteAsync(MemberPromoteRequest request, CancellationToken cancellationToken)
    {
        EtcdError? error;
        if (IsLeader)
        {
            error = await PromoteAsLeaderAsync(request.ID, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var m = Cluster.Find(request.ID) ?? throw EtcdErrors.MemberNotFound.ToException();
            if (!m.IsLearner)
            {
                throw EtcdErrors.MemberNotLearner.ToException();
            }

            var leader = Leader;
            if (leader == 0)
            {
                throw EtcdErrors.NoLeader.ToException();
            }

            try
            {
                error = await Transport.ForwardPromoteAsync(leader, request.ID, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                throw EtcdErrors.Timeout.ToException();
            }

            if (error is null)
            {
                // Answer with the membership after the promotion, as the leader would.
                await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        if (error is not null)
        {
            throw error.ToException();
        }

        var resp = new MemberPromoteResponse { Header = new ResponseHeader() };
        resp.Members.AddRange(Cluster.Members().Select(ToProto));
        FillHeader(resp.Header, withRevision: false);
        return resp;
    }

    /// <summary>The leader's half of MemberPromote: the learner-in-sync and strict checks, then the conf change.</summary>
    private async Task<EtcdError?> PromoteAsLeaderAsync(ulong learnerId, CancellationToken cancellationToken)
    {
        try
        {
            var m = Cluster.Find(learnerId) ?? throw EtcdErrors.MemberNotFound.ToException();
            if (!m.IsLearner)
            {
                throw EtcdErrors.MemberNotLearner.ToException();
            }

            if (!IsLeader)
            {
                throw EtcdErrors.NotLeader.ToException();
            }

            var status = await OnLoopAsync(() => _node.GetStatus(), cancellationToken).ConfigureAwait(false);
            if (!status.Progress.TryGetValue(MemberId, out var leader) || !status.Progress.TryGetValue(learnerId, out var learner)
                || learner.Match < leader.Match * LearnerReadyPercent)
            {
                Metrics.Server.LearnerPromoteFailed(EtcdErrors.LearnerNotReady.Message);
                throw EtcdErrors.LearnerNotReady.ToException();
            }

            if (_options.StrictReconfigCheck && !Cluster.IsReadyToPromoteMember())
            {
                throw EtcdErrors.MemberNotEnoughStarted.ToException();
            }

            var ctxJson = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
            {
                ["id"] = learnerId,
                ["peerURLs"] = null,
                ["isPromote"] = true,
            });
            await ProposeConfChangeAsync(
                new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = learnerId, Context = ByteString.CopyFrom(ctxJson) },
                cancellationToken).ConfigureAwait(false);
            Metrics.Server.LearnerPromoteSuccesses.Inc();
            return null;
        }
        catch (EtcdException e)
        {
            return e.Error;
        }
    }

    /// <summary>
    /// Hands leadership to <paramref name="transferee"/> and waits until it leads (etcd's <c>MoveLeader</c>).
    /// Errors: <see cref="EtcdErrors.NotLeader"/> on a non-leader, <see cref="EtcdErrors.BadLeaderTransferee"/> for an
    /// unknown member or a learner, "etcdserver: request timed out, leader transfer took too long".
    /// </summary>
    public async Task<MoveLeaderResponse> MoveLeaderAsync(ulong transferee, CancellationToken cancellationToken)
    {
        if (!IsLeader)
        {
            throw EtcdErrors.NotLeader.ToException();
        }

        var m = Cluster.Find(transferee);
        if (m is null || m.IsLearner)
        {
            throw EtcdErrors.BadLeaderTransferee.ToException();
        }

        _log.LogInformation("leadership transfer starting {local-member-id} {current-leader-member-id} {transferee-member-id}", Hex(MemberId), Hex(Leader), Hex(transferee));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_requestTimeout);
        try
        {
            while (Leader != transferee)
            {
                var changed = LeaderChangedTask();
                await OnLoopAsync(() => { _node.TransferLeader(transferee); return true; }, timeout.Token).ConfigureAwait(false);
                if (Leader == transferee)
                {
                    break;
                }

                // Re-ask after each election timeout: raft aborts a transfer that does not finish within one.
                await changed.WaitAsync(TimeSpan.FromMilliseconds(_options.ElectionTimeoutMs), timeout.Token)
                    .ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
                timeout.Token.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw (_stopping.IsCancellationRequested ? EtcdErrors.Stopped : TimeoutLeaderTransfer).ToException();
        }

        _log.LogInformation("leadership transfer finished {local-member-id} {old-leader-member-id} {new-leader-member-id}", Hex(MemberId), Hex(MemberId), Hex(transferee));
        var resp = new MoveLeaderResponse { Header = new ResponseHeader() };
        FillHeader(resp.Header);
        return resp;
    }

    /// <summary>The member list as etcd's Cluster.MemberList answers it (after a linearizable barrier when asked).</summary>
    public async Task<MemberListResponse> MemberListAsync(bool linearizable, CancellationToken cancellationToken)
    {
        if (linearizable)
        {
            await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
        }

        var resp = new MemberListResponse { Header = new ResponseHeader() };
        resp.Members.AddRange(Cluster.Members().Select(ToProto));
        FillHeader(resp.Header, withRevision: false);
        return resp;
    }

    /// <summary>A member in the wire form.</summary>
    public static Etcdserverpb.Member ToProto(Membership.Member m)
    {
        var pm = new Etcdserverpb.Member { ID = m.Id, Name = m.Name ?? "", IsLearner = m.IsLearner };
        pm.PeerURLs.AddRange(m.PeerUrls);
        if (m.ClientUrls is not null)
        {
            pm.ClientURLs.AddRange(m.ClientUrls);
        }

        return pm;
    }

    private static List<string> ValidatePeerUrls(IEnumerable<string> urls)
    {
        var list = new List<string>();
        foreach (var u in urls)
        {
            if (!Uri.TryCreate(u, UriKind.Absolute, out var parsed) || (parsed.Scheme != "http" && parsed.Scheme != "https")
                || parsed.AbsolutePath is not ("/" or "") || u.Contains('?') || u.Contains('#'))
            {
                throw EtcdErrors.MemberBadUrls.ToException();
            }

            list.Add(u.TrimEnd('/'));
        }

        if (list.Count == 0)
        {
            throw EtcdErrors.MemberBadUrls.ToException();
        }

        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private void MayRemoveMember(ulong id)
    {
        if (!_options.StrictReconfigCheck)
        {
            return;
        }

        var m = Cluster.Find(id);
        if (m is null || m.IsLearner)
        {
            return;
        }

        if (!Cluster.IsReadyToRemoveVotingMember(id))
        {
            throw EtcdErrors.MemberNotEnoughStarted.ToException();
        }

        // Removing a member must leave a connected quorum (etcd's numConnectedSince over the voters; 5 s health interval).
        if (id == MemberId)
        {
            return;
        }

        var voters = Cluster.Members().Where(x => !x.IsLearner).ToList();
        var since = DateTimeOffset.UtcNow.AddSeconds(-5);
        var active = voters.Count(v => v.Id == MemberId || (Transport.ActiveSince(v.Id) is { } t && t <= since));
        var remaining = voters.Count - 1;
        var activeAfter = active - (voters.Any(v => v.Id == id && v.Id != MemberId && Transport.ActiveSince(v.Id) is { } t && t <= since) ? 1 : 0);
        if (activeAfter < remaining / 2 + 1)
        {
            throw EtcdErrors.Unhealthy.ToException();
        }
    }

    /// <summary>Proposes a conf change and waits for it to apply; the apply's validation error, if any, is thrown.</summary>
    private async Task ProposeConfChangeAsync(ConfChange cc, CancellationToken cancellationToken)
    {
        var id = _reqIds.Next();
        cc.Id = id;
        var tcs = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters[id] = tcs;
        var started = Interlocked.Read(ref _leaderChanges);
        try
        {
            if (!_inputs.Writer.TryWrite(RaftInput.ProposeConfChange(id, cc)))
            {
                throw EtcdErrors.Stopped.ToException();
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            timeout.CancelAfter(_requestTimeout);
            try
            {
                await tcs.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw ProposeTimeoutError(started).ToException();
            }
        }
        finally
        {
            _waiters.TryRemove(id, out _);
        }
    }

    /// <summary>Runs <paramref name="f"/> on the raft loop thread and returns its result.</summary>
    private async Task<T> OnLoopAsync<T>(Func<T> f, CancellationToken cancellationToken)
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_inputs.Writer.TryWrite(RaftInput.Run(() =>
        {
            try
            {
                tcs.TrySetResult(f());
            }
            catch (Exception e)
            {
                tcs.TrySetException(e);
            }
        })))
        {
            throw EtcdErrors.Stopped.ToException();
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        return await tcs.Task.WaitAsync(linked.Token).ConfigureAwait(false);
    }

    /// <summary>The error for a proposal that timed out: leader changed meanwhile, stopped, or plain timeout (etcd's parseProposeCtxErr).</summary>
    private EtcdError ProposeTimeoutError(long leaderChangesAtStart)
    {
        if (_stopping.IsCancellationRequested)
        {
            return EtcdErrors.Stopped;
        }

        if (Interlocked.Read(ref _leaderChanges) != leaderChangesAtStart)
        {
            return EtcdErrors.LeaderChanged;
        }

        return Leader == 0 ? EtcdErrors.TimeoutDueToConnectionLost : EtcdErrors.Timeout;
    }

    /// <summary>A task completing at the next leader change (any thread).</summary>
    internal Task LeaderChangedTask()
    {
        lock (_leaderSignalLock)
        {
            return _leaderChanged.Task;
        }
    }

    private void SignalLeaderChange()
    {
        TaskCompletionSource old;
        lock (_leaderSignalLock)
        {
            old = _leaderChanged;
            _leaderChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        old.TrySetResult();
    }

    /// <summary>Raft thread: the leader changed from <paramref name="previous"/> to <paramref name="lead"/>.</summary>
    private void OnLeaderChanged(ulong previous, ulong lead)
    {
        Interlocked.Increment(ref _leaderChanges);
        LogLeaderChange(previous, lead);
        if (previous != 0)
        {
            // etcd's read loop: pending ReadIndex requests were meant for the old leader.
            foreach (var (_, r) in _readsInFlight)
            {
                r.Notifier.TrySetException(EtcdErrors.LeaderChanged.ToException());
            }

            _readsInFlight.Clear();
        }

        if (lead == 0)
        {
            _log.LogInformation("raft lost leader {local-member-id} {lost-leader-id}", Hex(MemberId), Hex(previous));
        }
    }

    /// <summary>Raft thread: hands a peer's message to raft (messages from removed members are ignored).</summary>
    private void StepPeerMessage(Message m)
    {
        if (Cluster.IsRemoved(m.From))
        {
            return;
        }

        try
        {
            _node.Step(m);
        }
        catch (RaftException)
        {
            // A response from a peer raft no longer tracks: drop it, as etcd does.
        }
    }

    /// <summary>
    /// Raft thread: sends a Ready's messages. A MsgSnap goes to the applier instead, which fills in the state machine
    /// at its applied index between two batches (etcd's <c>msgSnapC</c>) and sends it from there.
    /// </summary>
    private void SendMessages(IReadOnlyList<Message> messages)
    {
        List<Message>? outgoing = null;
        foreach (var m in messages)
        {
            if (Cluster.IsRemoved(m.To))
            {
                continue;
            }

            ObserveHeartbeat(m);
            if (m.Type == MessageType.MsgSnap)
            {
                _applier!.Post(() => SendMergedSnapshot(m));
                continue;
            }

            if (m.Type == MessageType.MsgApp)
            {
                V2ServerStats.SendAppendReq(MemberId, m.CalculateSize());
            }

            (outgoing ??= new List<Message>(messages.Count)).Add(m);
        }

        if (outgoing is not null)
        {
            Transport.Send(outgoing);
        }
    }

    /// <summary>Applier thread: sends <paramref name="m"/> (a MsgSnap) carrying the state machine as applied now.</summary>
    private void SendMergedSnapshot(Message m)
    {
        if (Transport.SendsSnapshotDb)
        {
            Transport.SendSnapshot(OutgoingMergedSnapshot(m));
            return;
        }

        var send = m.Clone();
        send.Snapshot = MergedSnapshot();
        _log.LogInformation("sending merged snapshot {from} {to} {snapshot-index}", Hex(MemberId), Hex(m.To), send.Snapshot.Metadata.Index);
        Transport.Send([send]);
    }

    /// <summary>Applier thread: a raft snapshot of the applied state (membership JSON + the bbolt db), etcd's createMergedSnapshotMessage.</summary>
    private Snapshot MergedSnapshot()
    {
        var applied = AppliedIndex;
        return new Snapshot
        {
            Metadata = new SnapshotMetadata { Index = applied, Term = _raftStorage.Term(applied), ConfState = _confState.Clone() },
            Data = UnsafeByteOperations.UnsafeWrap(MergedSnapshotData()),
        };
    }

    /// <summary>
    /// Applier thread, with the raft thread waiting: persists a received snapshot as etcd does (the db as <c>%016x.snap.db</c>, then the snap
    /// file and its WAL record) and restores the state machine from it (the db renamed to <c>member/snap/db</c>).
    /// </summary>
    private void ApplySnapshot(Snapshot snap)
    {
        var index = snap.Metadata.Index;
        if (index <= AppliedIndex)
        {
            return;
        }

        _log.LogInformation("applying snapshot {local-member-id} {incoming-leader-snapshot-index} {incoming-leader-snapshot-term}", Hex(MemberId), index, snap.Metadata.Term);
        Metrics.Server.SnapshotApplyInProgress.Set(1);
        try
        {
            ApplySnapshotCore(snap, index);
        }
        finally
        {
            Metrics.Server.SnapshotApplyInProgress.Set(0);
        }

        _log.LogInformation("applied snapshot {local-member-id} {applied-index}", Hex(MemberId), index);
    }

    private void ApplySnapshotCore(Snapshot snap, ulong index)
    {
        var (membership, db) = SplitSnapshotData(snap.Data.Memory);
        var snapshotter = new Storage.Snap.Snapshotter(_options.SnapDir, Metrics.Storage);
        Snapshot onDisk;
        if (db.IsEmpty)
        {
            // etcd's wire form: the peer transport saved the database that followed the message; the data is the v2 store.
            if (!File.Exists(snapshotter.DBFilePath(index)))
            {
                throw new InvalidDataException("raft snapshot carries no database");
            }

            onDisk = new Snapshot { Metadata = snap.Metadata.Clone(), Data = snap.Data };
        }
        else
        {
            using (var dbStream = new MemoryStream(db.ToArray(), writable: false))
            {
                snapshotter.SaveDBFromAsync(dbStream, index).GetAwaiter().GetResult();
            }

            RecoverV2FromMerged(membership.Span);
            onDisk = new Snapshot { Metadata = snap.Metadata.Clone(), Data = UnsafeByteOperations.UnsafeWrap(V2StoreWithMembership(MembershipAsV2Store(membership.Span))) };
        }

        snapshotter.SaveSnap(onDisk);
        _wal.SaveSnapshot(new Walpb.Snapshot { Index = index, Term = snap.Metadata.Term });
        Failpoints.Hit(Failpoint.RaftAfterSaveSnap);
        _raftStorage.ApplySnapshot(onDisk);
        RestoreStateMachine(onDisk, snapshotter.DBFilePath(index));
    }

    /// <summary>
    /// Applier thread (or before the threads start): replaces membership with the snapshot's and, when <paramref name="dbPath"/>
    /// is given, swaps in that db and rebuilds the state machine from it.
    /// </summary>
    private void RestoreStateMachine(Snapshot snap, string? dbPath)
    {
        var (membership, _) = SplitSnapshotData(snap.Data.Memory);
        Cluster.RestoreState(membership.Span);
        RecoverV2Store(snap.Data.Memory);
        if (Cluster.Version is { } version)
        {
            // etcd's cluster.Recover(api.UpdateCapability) announces the recovered version.
            _log.LogInformation("enabled capabilities for version {cluster-version}", string.Join('.', version.Split('.').Take(2)));
        }

        if (dbPath is not null)
        {
            RestoreBackend(dbPath, snap.Metadata.Index);
        }

        _confState = snap.Metadata.ConfState?.Clone() ?? new ConfState();
        _snapshotIndex = snap.Metadata.Index;
        Interlocked.Exchange(ref _appliedIndex, (long)snap.Metadata.Index);
        if (snap.Metadata.Index > CommittedIndex)
        {
            Interlocked.Exchange(ref _committedIndex, (long)snap.Metadata.Index);
        }

        SyncTransportPeers();
        _appliedWaiters.Trigger(AppliedIndex);
    }

    /// <summary>Applier thread: makes the transport's peers match the membership.</summary>
    private void SyncTransportPeers()
    {
        var members = Cluster.Members().Where(m => m.Id != MemberId).ToDictionary(m => m.Id);
        foreach (var id in _transportPeers.ToList())
        {
            if (!members.ContainsKey(id))
            {
                Transport.RemovePeer(id);
                _transportPeers.Remove(id);
            }
        }

        foreach (var (id, m) in members)
        {
            if (_transportPeers.Add(id))
            {
                Transport.AddPeer(id, m.PeerUrls);
            }
        }
    }

    /// <summary>
    /// Applier thread: every <c>--snapshot-count</c> applied entries, etcd's <c>triggerSnapshot</c>: commits the
    /// backend with the consistent index, writes a snap file (<c>%016x-%016x.snap</c>, the membership as v2 store
    /// JSON) and its WAL record, releases the WAL segments before it, and compacts the in-memory raft log to
    /// <see cref="SnapshotCatchUpEntries"/> behind it (so far-behind members get a MsgSnap).
    /// </summary>
    private void MaybeSnapshot()
    {
        var applied = AppliedIndex;
        if (applied - _snapshotIndex <= _options.SnapshotCount)
        {
            return;
        }

        _log.LogInformation("triggering snapshot {local-member-id} {local-member-applied-index} {local-member-snapshot-index} {local-member-snapshot-count}", Hex(MemberId), applied, _snapshotIndex, _options.SnapshotCount);
        Snapshot snap;
        try
        {
            Kv.Commit();
            snap = _raftStorage.CreateSnapshot(applied, _confState, V2StoreWithMembership(MembershipAsV2Store(Cluster.ExportState())));
        }
        catch (RaftException)
        {
            // Already snapshotted that far (a received snapshot).
            _snapshotIndex = applied;
            return;
        }

        _snapshotIndex = applied;
        var snapshotter = new Storage.Snap.Snapshotter(_options.SnapDir, Metrics.Storage);
        Failpoints.Hit(Failpoint.RaftBeforeSaveSnap);
        snapshotter.SaveSnap(snap);
        _wal.SaveSnapshot(new Walpb.Snapshot { Index = snap.Metadata.Index, Term = snap.Metadata.Term });
        _log.LogInformation("saved snapshot {snapshot-index}", snap.Metadata.Index);
        Failpoints.Hit(Failpoint.RaftAfterSaveSnap);
        _wal.ReleaseLockTo(snap.Metadata.Index);
        Failpoints.Hit(Failpoint.RaftAfterWalRelease);
        snapshotter.ReleaseSnapDBs(snap);

        var compactTo = applied > SnapshotCatchUpEntries ? applied - SnapshotCatchUpEntries : 1;
        try
        {
            if (compactTo >= _raftStorage.FirstIndex())
            {
                _raftStorage.Compact(compactTo);
                _log.LogInformation("compacted Raft logs {compact-index}", compactTo);
            }
        }
        catch (RaftException)
        {
            // Already compacted that far.
        }
    }

    /// <summary>
    /// <c>--initial-cluster-state existing</c>: asks the other members of <c>--initial-cluster</c> for the running
    /// cluster and takes its ID and our member ID from it (matched by peer URLs), as etcd's
    /// <c>ValidateClusterAndAssignIDs</c>.
    /// </summary>
    private static (Membership.RaftCluster Cluster, ulong MemberId, IReadOnlyList<Membership.Member> Peers) JoinExisting(
        EtcdOptions options, Membership.RaftCluster initial, Membership.Member self, IRaftTransport transport, ILogger log)
    {
        var urls = initial.Members().Where(m => m.Id != self.Id).SelectMany(m => m.PeerUrls).ToList();
        static bool IsSelf(Membership.Member m, Membership.Member self) =>
            m.PeerUrls.Select(u => u.TrimEnd('/')).OrderBy(u => u, StringComparer.Ordinal).SequenceEqual(self.PeerUrls.Select(u => u.TrimEnd('/')));

        // Ask each peer in turn; a peer that has not applied our MemberAdd yet does not know us, so keep asking
        // (bounded) until one does.
        RemoteCluster? remote = null;
        RemoteCluster? withoutUs = null;
        var deadline = DateTime.UtcNow.AddSeconds(Math.Max(5, 2 * options.ElectionTimeoutMs / 1000.0));
        while (remote is null && DateTime.UtcNow < deadline)
        {
            foreach (var url in urls)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                var answer = transport.FetchClusterAsync([url], cts.Token).GetAwaiter().GetResult();
                if (answer is not null && answer.Members.Any(m => IsSelf(m, self)))
                {
                    remote = answer;
                    break;
                }

                withoutUs ??= answer;
            }

            if (remote is null)
            {
                Thread.Sleep(100);
            }
        }

        if (remote is null && withoutUs is null)
        {
            throw new EtcdStartException("cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs");
        }

        var me = remote?.Members.First(m => IsSelf(m, self))
            ?? throw new EtcdStartException($"error validating peerURLs {{ClusterID:{Membership.Member.IdString(withoutUs!.ClusterId)}}}: member count is unequal");
        // The membership itself is rebuilt by replaying the cluster's log (or from a snapshot); the remote list only
        // tells the transport whom to answer until then.
        var cluster = new Membership.RaftCluster(remote.ClusterId, options.InitialClusterToken);
        log.LogInformation("joining existing cluster {cluster-id} {local-member-id}", Membership.Member.IdString(remote.ClusterId), Membership.Member.IdString(me.Id));
        return (cluster, me.Id, remote.Members);
    }

    /// <summary>
    /// <c>--force-new-cluster</c>: drops uncommitted entries and commits conf changes removing every other member
    /// known from the log, so this member restarts as a one-member cluster with its data (etcd's
    /// <c>restartAsStandaloneNode</c>). The members are those of the snapshot's conf state plus the log's conf changes;
    /// when this member is not among them (a data dir from <c>etcdctl backup</c>, which gives it a new ID), it is added
    /// with etcd's placeholder peer URL <c>http://localhost:2380</c>.
    /// </summary>
    private static (IReadOnlyList<Entry> Entries, HardState State) ForceNewClusterEntries(ulong self, IReadOnlyList<Entry> entries, HardState state, IEnumerable<ulong>? snapshotVoters = null)
    {
        var kept = entries.Where(e => e.Index <= state.Commit).ToList();
        var ids = new HashSet<ulong>(snapshotVoters ?? []);
        foreach (var e in kept)
        {
            if (e.Type == EntryType.EntryConfChange)
            {
                var cc = ConfChange.Parser.ParseFrom(e.Data);
                switch (cc.Type)
                {
                    case ConfChangeType.ConfChangeAddNode:
                    case ConfChangeType.ConfChangeAddLearnerNode:
                        ids.Add(cc.NodeId);
                        break;
                    case ConfChangeType.ConfChangeRemoveNode:
                        ids.Remove(cc.NodeId);
                        break;
                }
            }
        }

        var last = kept.Count > 0 ? kept[^1] : new Entry { Index = state.Commit, Term = state.Term };
        var next = last.Index + 1;
        if (!ids.Contains(self))
        {
            var placeholder = new Membership.Member { Id = self, PeerUrls = ["http://localhost:2380"] };
            var cc = new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = self, Context = ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(placeholder)) };
            kept.Add(new Entry { Type = EntryType.EntryConfChange, Term = state.Term, Index = next++, Data = cc.ToByteString() });
        }

        // Self first, then the removals: raft refuses a configuration without voters.
        foreach (var id in ids.Where(i => i != self).Order())
        {
            var cc = new ConfChange { Type = ConfChangeType.ConfChangeRemoveNode, NodeId = id };
            kept.Add(new Entry { Type = EntryType.EntryConfChange, Term = state.Term, Index = next++, Data = cc.ToByteString() });
        }

        var hs = new HardState { Term = state.Term, Vote = state.Vote, Commit = next - 1 };
        return (kept, hs);
    }

    /// <summary>The member as seen by its transport: hands peer traffic to the raft loop. Thread-safe.</summary>
    private sealed class TransportHandler(EtcdServer server) : IRaftTransportHandler
    {
        public ulong MemberId => server.MemberId;

        public ulong ClusterId => server.Cluster.ClusterId;

        public bool Process(Message message)
        {
            if (server._stopping.IsCancellationRequested)
            {
                return false;
            }

            if (message.Type == MessageType.MsgApp)
            {
                server.V2ServerStats.RecvAppendReq(message.From, message.CalculateSize());
            }

            return server._inputs.Writer.TryWrite(RaftInput.Step(message));
        }

        public void ReportAppendSent(ulong to, TimeSpan elapsed, bool succeeded)
        {
            var f = server.V2LeaderStats.Follower(to);
            if (succeeded)
            {
                f.Succ(elapsed);
            }
            else
            {
                f.Fail();
            }
        }

        public void ReportUnreachable(ulong id) => server._inputs.Writer.TryWrite(RaftInput.Unreachable(id));

        public void ReportSnapshot(ulong id, SnapshotStatus status) => server._inputs.Writer.TryWrite(RaftInput.SnapshotReport(id, status));

        public bool IsRemoved(ulong id) => server.Cluster.IsRemoved(id);

        public void OnRemovedByPeer()
        {
            if (!server._stopRequested)
            {
                Volatile.Write(ref server._removedFromCluster, true);
                server._log.LogWarning("the member has been permanently removed from the cluster");
                server._inputs.Writer.TryWrite(new RaftInput(RaftInputKind.Stop, 0, null));
            }
        }

        public RemoteCluster DescribeCluster() => new(server.Cluster.ClusterId, server.Cluster.Members());

        public Task<EtcdError?> PromoteAsLeaderAsync(ulong learnerId, CancellationToken cancellationToken) => server.PromoteAsLeaderAsync(learnerId, cancellationToken);

        public Task<byte[]> ServeLeaseAsync(byte[] request, CancellationToken cancellationToken) => server.ServeForwardedLeaseAsync(request, cancellationToken);

        public Task<HashKVResponse> ServeHashKvAsync(long revision, CancellationToken cancellationToken) => Task.FromResult(server.PeerHashKv(revision));

        public Task<long> SaveSnapshotDbAsync(Stream db, ulong index, CancellationToken cancellationToken)
            => new Storage.Snap.Snapshotter(server._options.SnapDir, server.Metrics.Storage).SaveDBFromAsync(db, index, cancellationToken);

        public string? ClusterVersion => server.Cluster.Version;
    }
}
