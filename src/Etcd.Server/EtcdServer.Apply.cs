using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

public sealed partial class EtcdServer
{
    /// <summary>
    /// Applies committed entries in order on the raft loop thread (etcd's <c>applyEntries</c>): normal
    /// entries carry an <see cref="InternalRaftRequest"/> whose result (response or error) goes to the
    /// proposer's waiter; conf-change entries change raft's configuration and the membership.
    /// </summary>
    private void ApplyEntries(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            if (e.Index <= AppliedIndex)
            {
                continue;
            }

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
            ApplyRequest(req);
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

        object? result = CorruptError(req) ?? CappedError(req);
        if (result is null)
        {
            var fits = QuotaAvailable(req);
            var start = SlowStart();
            try
            {
                result = ApplyRequest(req);
            }
            catch (RpcException ex)
            {
                result = ex;
            }

            WarnIfSlowApply(start, req, result);

            if (!fits && result is not Exception)
            {
                result = EtcdErrors.NoSpace.ToException();
            }
        }

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

    private object? ApplyRequest(InternalRaftRequest req)
    {
        if (req.V2 is { } v2)
        {
            return ApplyV2(v2);
        }

        if (req.Put is { } put)
        {
            return Kv.Put(put);
        }

        if (req.DeleteRange is { } del)
        {
            return Kv.DeleteRange(del);
        }

        if (req.Txn is { } txn)
        {
            return Kv.Txn(txn);
        }

        if (req.Compaction is { } compaction)
        {
            // The removal from the backend goes on in the background (etcd's FIFO scheduler).
            var compacted = Kv.ScheduleCompaction(compaction, out var removed);
            return compaction.Physical ? new PhysicalCompaction(compacted, removed) : compacted;
        }

        if (req.Range is { } range)
        {
            return Kv.Range(range);
        }

        if (TryApplyLease(req, out var leaseResult))
        {
            return leaseResult;
        }

        if (req.Alarm is { } alarm)
        {
            return ApplyAlarm(alarm);
        }

        if (req.ClusterVersionSet is { } cv)
        {
            SetClusterVersion(cv.Ver);
            return null;
        }

        if (req.ClusterMemberAttrSet is { } attr)
        {
            Cluster.UpdateAttributes(attr.MemberID, attr.MemberAttributes?.Name, attr.MemberAttributes?.ClientUrls);
            PersistMember(attr.MemberID);
            V2MirrorAttributes(attr.MemberID);
            Metrics.Server.StoreWrite("set");
            return null;
        }

        return new RpcException(StatusCode.Unimplemented, "etcdserver: request not supported yet");
    }

    /// <summary>
    /// Alarm GET / ACTIVATE / DEACTIVATE as etcd's applier: GET lists the raised alarms (all, or of one
    /// type), ACTIVATE raises one for a member, DEACTIVATE clears it and answers with what was cleared.
    /// </summary>
    private AlarmResponse ApplyAlarm(AlarmRequest r)
    {
        var resp = new AlarmResponse { Header = new ResponseHeader() };
        switch (r.Action)
        {
            case AlarmRequest.Types.AlarmAction.Get:
                resp.Alarms.AddRange(Alarms.Get(r.Alarm));
                break;
            case AlarmRequest.Types.AlarmAction.Activate:
                if (r.Alarm != AlarmType.None && Alarms.Activate(r.MemberID, r.Alarm) is { } added)
                {
                    resp.Alarms.Add(added);
                    _log.LogWarning("alarm raised by peer {alarm} {from}", r.Alarm.ToString().ToUpperInvariant(), Hex(r.MemberID));
                }

                break;
            case AlarmRequest.Types.AlarmAction.Deactivate:
                if (Alarms.Deactivate(r.MemberID, r.Alarm) is { } removed)
                {
                    resp.Alarms.Add(removed);
                    _log.LogWarning("alarm disarmed {alarm} {from}", r.Alarm.ToString().ToUpperInvariant(), Hex(r.MemberID));
                }

                break;
        }

        return resp;
    }

    /// <summary>
    /// A v2 request: the two membership writes etcd 3.4 still makes through it (member attributes and the cluster
    /// version) change the membership; everything else goes to the v2 store (<see cref="ApplyV2Store"/>).
    /// </summary>
    private object? ApplyV2(Request r)
    {
        if (r.Method != "PUT" || r.HasPrevExist || r.PrevIndex != 0 || r.PrevValue.Length != 0)
        {
            return ApplyV2Store(r);
        }

        if (r.Path == "/0/version")
        {
            SetClusterVersion(r.Val);
            return null;
        }

        const string prefix = "/0/members/";
        if (r.Path.StartsWith(prefix, StringComparison.Ordinal) && r.Path.EndsWith("/attributes", StringComparison.Ordinal))
        {
            var idText = r.Path[prefix.Length..^"/attributes".Length];
            if (ulong.TryParse(idText, System.Globalization.NumberStyles.HexNumber, null, out var id))
            {
                using var doc = System.Text.Json.JsonDocument.Parse(r.Val);
                var name = doc.RootElement.TryGetProperty("name", out var n) ? n.GetString() : null;
                var urls = doc.RootElement.TryGetProperty("clientURLs", out var c) && c.ValueKind == System.Text.Json.JsonValueKind.Array
                    ? c.EnumerateArray().Select(x => x.GetString() ?? "").ToList()
                    : [];
                Cluster.UpdateAttributes(id, name, urls);
                PersistMember(id);
                V2MirrorAttributes(id);
                Metrics.Server.StoreWrite("set");
                return null;
            }
        }

        return ApplyV2Store(r);
    }

    private void SetClusterVersion(string version)
    {
        var first = Cluster.Version is null;
        Cluster.SetVersion(version);
        PersistClusterVersion(version);
        V2MirrorVersion(version);
        Metrics.Server.StoreWrite("set");
        var majorMinor = string.Join('.', version.Split('.').Take(2));
        if (first)
        {
            _log.LogInformation("set initial cluster version {cluster-id} {local-member-id} {cluster-version}", Hex(Cluster.ClusterId), Hex(MemberId), majorMinor);
        }

        _log.LogInformation("enabled capabilities for version {cluster-version}", majorMinor);
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
