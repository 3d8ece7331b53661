using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Server.Apply;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

/// <summary>
/// The applier's side of the member (etcd's <c>applyAll</c> / <c>applyEntries</c> / <c>applyEntryNormal</c> /
/// <c>applyConfChange</c>): runs on the applier thread (<see cref="ApplierThread"/>) and owns the applied index, the
/// consistent index, the raft snapshot trigger and the completion of proposers' waiters.
/// </summary>
public sealed partial class EtcdServer
{
    private ApplierThread? _applier;
    private IApplierV3? _applyV3;
    private IApplierV3? _applyV3Base;

    /// <summary>The applier chain (corrupt → capped → [auth] → quota → backend), built on first use.</summary>
    private IApplierV3 ApplyV3 => _applyV3 ??= ApplierChain.Build(ApplyV3Base, Alarms, QuotaCost, QuotaAvailable, auth: next => new AuthLink(next, ApplyAuth));

    /// <summary>The backend link alone (what replayed membership entries go through).</summary>
    private IApplierV3 ApplyV3Base => _applyV3Base ??= new BackendApplier(this);

    /// <summary>
    /// Creates the applier thread (started by <see cref="StartLoop"/>): a failed apply is fatal to the member, as a
    /// panic in etcd's apply is; the raft node is asked to stop, and fails every pending request as it ends.
    /// </summary>
    private ApplierThread CreateApplier() => new("etcd-applier", ApplyBatch, e =>
    {
        _log.LogCritical(e, "apply failed {error}", e.Message);
        _inputs.Writer.TryWrite(new RaftInput(RaftInputKind.Stop, 0, null));
    });

    /// <summary>Test hook: completes once the member's stop has reached the applier (jobs not started are dropped).</summary>
    internal Task ApplierStopRequestedForTests => _applier?.StopRequested ?? Task.CompletedTask;

    /// <summary>Test hook: runs on the applier thread before each entry is applied (a slow applier in tests).</summary>
    internal Action<Entry>? BeforeApplyEntryForTests { get; set; }

    /// <summary>
    /// Applier thread: one batch handed over by the raft node — committed entries already persisted in the local WAL —
    /// applied in order; then waiters of the applied index are released and a raft snapshot is taken every
    /// <c>--snapshot-count</c> entries.
    /// </summary>
    private void ApplyBatch(IReadOnlyList<Entry> entries)
    {
        ApplyEntries(entries);
        Failpoints.Hit(Failpoint.RaftAfterApply);
        MaybeSnapshot();
        if (!Volatile.Read(ref _campaignedAfterReplay) && Leader == 0)
        {
            // A lone voter campaigns once its log is applied (the raft node checks; it may be idle otherwise).
            _inputs.Writer.TryWrite(RaftInput.Run(AfterAdvance));
        }
    }

    /// <summary>
    /// Applies committed entries in order (etcd's <c>applyEntries</c>): normal entries carry an
    /// <see cref="InternalRaftRequest"/> that goes through the applier chain and whose result (response or error)
    /// goes to the proposer's waiter; conf-change entries change raft's configuration and the membership (the raft
    /// node waits meanwhile, so raft's configuration is changed with its thread parked).
    /// </summary>
    private void ApplyEntries(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            if (e.Index <= AppliedIndex)
            {
                continue;
            }

            BeforeApplyEntryForTests?.Invoke(e);

            // The backend saves this index with whatever the entry writes (same batch); entries the backend
            // already covers (replay after a restart) change only in-memory state that is not in it.
            _ci.Applying = e.Index;
            switch (e.Type)
            {
                case EntryType.EntryNormal when e.Index <= _ci.Floor:
                    ReplayNormal(e);
                    break;
                case EntryType.EntryNormal:
                    var applyStart = System.Diagnostics.Stopwatch.GetTimestamp();
                    ApplyNormal(e);
                    ObserveApply(applyStart);
                    break;
                case EntryType.EntryConfChange:
                    Failpoints.Hit(Failpoint.BeforeApplyOneConfChange);
                    ApplyConfChange(ConfChange.Parser.ParseFrom(e.Data));
                    Failpoints.Hit(Failpoint.AfterApplyOneConfChange);
                    break;
                case EntryType.EntryConfChangeV2:
                    _confState = _node.ApplyConfChange(ConfChangeV2.Parser.ParseFrom(e.Data));
                    break;
            }

            Interlocked.Exchange(ref _appliedIndex, (long)e.Index);
            if (e.Index > CommittedIndex)
            {
                Interlocked.Exchange(ref _committedIndex, (long)e.Index);
            }
        }

        _appliedWaiters.Trigger(AppliedIndex);
    }

    /// <summary>
    /// An entry the backend already holds (index ≤ the consistent index found at start): as etcd 3.4, only the
    /// v2 membership requests are applied again (membership is rebuilt by replay); KV, lease and alarm
    /// requests are not.
    /// </summary>
    private void ReplayNormal(Entry e)
    {
        if (e.Data.IsEmpty)
        {
            return;
        }

        if (!TryParseEntry(e.Data.Span, out var req))
        {
            return;
        }

        if (req.V2 is not null || req.ClusterVersionSet is not null || req.ClusterMemberAttrSet is not null)
        {
            ApplyV3Base.Apply(req);
        }
    }

    private void ApplyNormal(Entry e)
    {
        if (e.Data.IsEmpty)
        {
            // The empty entry a new leader appends to commit entries of earlier terms.
            PromoteLessorIfLeader();
            return;
        }

        if (!TryParseEntry(e.Data.Span, out var req))
        {
            _log.LogError("failed to unmarshal raft entry {index} {error}", e.Index, "neither an InternalRaftRequest nor a v2 Request");
            return;
        }

        var id = req.Header?.ID ?? 0;
        if (id == 0)
        {
            id = req.ID;
        }

        var start = SlowStart();
        object? result;
        try
        {
            result = ApplyV3.Apply(req);
        }
        catch (RpcException ex)
        {
            result = ex;
        }

        WarnIfSlowApply(start, req, result);

        if (result is EtcdException { Error: var err } && ReferenceEquals(err, EtcdErrors.NoSpace) && Alarms.Get(AlarmType.Nospace).Count == 0)
        {
            // etcd raises the NOSPACE alarm through raft, then answers the request.
            _log.LogWarning("message exceeded backend quota; raising alarm {quota-size-bytes}", QuotaBackendBytes);
            var pending = id != 0 && _waiters.TryGetValue(id, out var pw) ? pw : null;
            var error = (Exception)result;
            _ = Task.Run(async () =>
            {
                await RaiseNoSpaceAlarmAsync(_stopping.Token).ConfigureAwait(false);
                pending?.TrySetException(error);
            });
            return;
        }

        if (id != 0 && _waiters.TryGetValue(id, out var w))
        {
            if (result is Exception ex)
            {
                w.TrySetException(ex);
            }
            else
            {
                w.TrySetResult(result);
            }
        }
    }

    private void ApplyConfChange(ConfChange cc)
    {
        Membership.Member? m = null;
        var isPromote = false;
        if (cc.HasContext && !cc.Context.IsEmpty && cc.Type != ConfChangeType.ConfChangeRemoveNode)
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(cc.Context.Memory);
                isPromote = doc.RootElement.TryGetProperty("isPromote", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.True;
                m = System.Text.Json.JsonSerializer.Deserialize<Membership.Member>(doc.RootElement);
            }
            catch (System.Text.Json.JsonException e)
            {
                _log.LogError("failed to unmarshal conf change context {error}", e.Message);
            }
        }

        V2ReadMembershipAsValidationDoes();

        // Bootstrap entries (ID 0) describe members the cluster was built with; everything else is validated as etcd does.
        var error = cc.Id == 0 && cc.Type is ConfChangeType.ConfChangeAddNode or ConfChangeType.ConfChangeAddLearnerNode && Cluster.Find(cc.NodeId) is not null
            ? null
            : Cluster.Validate(cc.Type, cc.NodeId, m, isPromote);
        if (error is not null)
        {
            // Apply a no-op to raft so that its pending-conf-change bookkeeping moves on.
            var noop = cc.Clone();
            noop.NodeId = 0;
            _confState = _node.ApplyConfChange(noop);
            if (cc.Id != 0 && _waiters.TryGetValue(cc.Id, out var ew))
            {
                ew.TrySetException(error.ToException());
            }

            return;
        }

        _confState = _node.ApplyConfChange(cc);
        switch (cc.Type)
        {
            case ConfChangeType.ConfChangeAddNode when isPromote:
                Cluster.Promote(cc.NodeId);
                PersistMember(cc.NodeId);
                V2MirrorRaftAttributes(cc.NodeId);
                Metrics.Server.StoreWrite("update");
                _log.LogInformation("promote member {cluster-id} {local-member-id} {promoted-member-id}", Hex(Cluster.ClusterId), Hex(MemberId), Hex(cc.NodeId));
                break;
            case ConfChangeType.ConfChangeAddNode:
            case ConfChangeType.ConfChangeAddLearnerNode:
                if (m is not null)
                {
                    m.IsLearner = cc.Type == ConfChangeType.ConfChangeAddLearnerNode;
                    Cluster.AddMember(m);
                    PersistMember(m.Id);
                    V2MirrorMemberAdded(m.Id);
                    Metrics.Server.StoreWrite("create");
                    _log.LogInformation("added member {cluster-id} {local-member-id} {added-peer-id} {added-peer-peer-urls}", Hex(Cluster.ClusterId), Hex(MemberId), Hex(m.Id), m.PeerUrls.ToArray());
                    if (m.Id != MemberId && _transportPeers.Add(m.Id))
                    {
                        Transport.AddPeer(m.Id, m.PeerUrls);
                    }
                }

                break;
            case ConfChangeType.ConfChangeRemoveNode:
                Cluster.RemoveMember(cc.NodeId);
                PersistMemberRemoved(cc.NodeId);
                V2MirrorMemberRemoved(cc.NodeId);
                Metrics.Server.StoreWrite("delete");
                _log.LogInformation("removed member {cluster-id} {local-member-id} {removed-remote-peer-id}", Hex(Cluster.ClusterId), Hex(MemberId), Hex(cc.NodeId));
                if (cc.NodeId == MemberId)
                {
                    // etcd stops a removed member after a short delay, so the leader sees the removal committed.
                    Volatile.Write(ref _removedFromCluster, true);
                    _log.LogWarning("the member has been permanently removed from the cluster");
                    _ = Task.Delay(TimeSpan.FromMilliseconds(10 * _options.HeartbeatIntervalMs))
                        .ContinueWith(_ => _inputs.Writer.TryWrite(new RaftInput(RaftInputKind.Stop, 0, null)), TaskScheduler.Default);
                }
                else if (_transportPeers.Remove(cc.NodeId))
                {
                    Transport.RemovePeer(cc.NodeId);
                }

                break;
            case ConfChangeType.ConfChangeUpdateNode:
                if (m is not null)
                {
                    Cluster.UpdatePeerUrls(cc.NodeId, m.PeerUrls);
                    PersistMember(cc.NodeId);
                    V2MirrorRaftAttributes(cc.NodeId);
                    Metrics.Server.StoreWrite("update");
                    _log.LogInformation("updated member {cluster-id} {local-member-id} {updated-remote-peer-id} {updated-remote-peer-urls}", Hex(Cluster.ClusterId), Hex(MemberId), Hex(cc.NodeId), string.Join(",", m.PeerUrls));
                    if (cc.NodeId != MemberId)
                    {
                        Transport.UpdatePeer(cc.NodeId, m.PeerUrls);
                    }
                }

                break;
        }

        if (cc.Id != 0 && _waiters.TryGetValue(cc.Id, out var w))
        {
            w.TrySetResult(null);
        }
    }
}
