using Etcd.Api.Grpc;
using Etcd.Server.Apply;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

public sealed partial class EtcdServer
{
    /// <summary>
    /// The last link of the applier chain (etcd's <c>applierV3backend</c>): writes a committed request to the
    /// state machine — MVCC (put, delete, txn, compaction, range), the lessor (grant, revoke, checkpoint), the
    /// alarms, the membership writes etcd 3.4 still carries as v2 requests (member attributes, cluster version)
    /// and the other v2 requests, which write the v2 store.
    /// Applier thread only.
    /// </summary>
    private sealed class BackendApplier(EtcdServer s) : IApplierV3
    {
        /// <inheritdoc/>
        public object? Apply(InternalRaftRequest req)
        {
            if (req.V2 is { } v2)
            {
                return s.ApplyV2(v2);
            }

            if (req.Put is { } put)
            {
                return s.Kv.Put(put);
            }

            if (req.DeleteRange is { } del)
            {
                return s.Kv.DeleteRange(del);
            }

            if (req.Txn is { } txn)
            {
                return s.Kv.Txn(txn);
            }

            if (req.Compaction is { } compaction)
            {
                // The removal from the backend goes on in the background (etcd's FIFO scheduler).
                var compacted = s.Kv.ScheduleCompaction(compaction, out var removed);
                return compaction.Physical ? new PhysicalCompaction(compacted, removed) : compacted;
            }

            if (req.Range is { } range)
            {
                return s.Kv.Range(range);
            }

            if (s.TryApplyLease(req, out var leaseResult))
            {
                return leaseResult;
            }

            if (req.Alarm is { } alarm)
            {
                return s.ApplyAlarm(alarm);
            }

            if (req.ClusterVersionSet is { } cv)
            {
                s.SetClusterVersion(cv.Ver);
                return null;
            }

            if (req.ClusterMemberAttrSet is { } attr)
            {
                s.Cluster.UpdateAttributes(attr.MemberID, attr.MemberAttributes?.Name, attr.MemberAttributes?.ClientUrls);
                s.PersistMember(attr.MemberID);
                s.V2MirrorAttributes(attr.MemberID);
                s.Metrics.Server.StoreWrite("set");
                return null;
            }

            return new RpcException(StatusCode.Unimplemented, "etcdserver: request not supported yet");
        }
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
}
