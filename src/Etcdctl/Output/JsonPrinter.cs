using System.Globalization;
using System.Text;
using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Output;

/// <summary>
/// etcdctl's <c>json</c> format (printer_json.go): Go's encoding/json of the response structs, one line each. RPC
/// responses print as their messages (<see cref="GoJson"/>); clientv3's own lease and watch structs keep their Go
/// shapes (header fields inlined, <c>"ID"</c>/<c>"TTL"</c>, <c>"granted-ttl"</c>, <c>"Header"</c>/<c>"Events"</c>).
/// </summary>
public sealed class JsonPrinter : Printer
{
    /// <summary>Creates the printer.</summary>
    public JsonPrinter(CtlConsole console)
        : base(console, "json")
    {
    }

    private void P(IMessage m) => Console.Out(GoJson.Marshal(m) + "\n");

    private void P(StringBuilder sb) => Console.Out(sb.Append('\n').ToString());

    private static void Num(StringBuilder sb, ref bool first, string name, long v)
    {
        GoJson.Comma(sb, ref first);
        sb.Append('"').Append(name).Append("\":").Append(v.ToString(CultureInfo.InvariantCulture));
    }

#pragma warning disable CS1591 // see Printer
    public override void Del(DeleteRangeResponse r) => P(r);

    public override void Get(RangeResponse r) => P(r);

    public override void Put(PutResponse r) => P(r);

    public override void Txn(TxnResponse r) => P(r);

    public override void Watch(WatchResponse r)
    {
        var sb = new StringBuilder("{\"Header\":");
        GoJson.Write(sb, r.Header ?? new ResponseHeader());
        sb.Append(",\"Events\":");
        if (r.Events.Count == 0)
        {
            sb.Append("null");
        }
        else
        {
            sb.Append('[');
            var first = true;
            foreach (var e in r.Events)
            {
                GoJson.Comma(sb, ref first);
                GoJson.Write(sb, e);
            }

            sb.Append(']');
        }

        sb.Append(CultureInfo.InvariantCulture, $",\"CompactRevision\":{r.CompactRevision},\"Canceled\":{(r.Canceled ? "true" : "false")},\"Created\":{(r.Created ? "true" : "false")}}}");
        P(sb);
    }

    public override void Grant(LeaseGrantResponse r)
    {
        var sb = new StringBuilder("{");
        var first = GoJson.WriteFields(sb, r.Header, true);
        Num(sb, ref first, "ID", r.ID);
        Num(sb, ref first, "TTL", r.TTL);
        sb.Append(",\"Error\":");
        GoFormat.JsonString(sb, r.Error);
        P(sb.Append('}'));
    }

    public override void Revoke(long id, LeaseRevokeResponse r) => P(r);

    public override void KeepAlive(LeaseKeepAliveResponse r)
    {
        var sb = new StringBuilder("{");
        var first = GoJson.WriteFields(sb, r.Header, true);
        Num(sb, ref first, "ID", r.ID);
        Num(sb, ref first, "TTL", r.TTL);
        P(sb.Append('}'));
    }

    public override void TimeToLive(LeaseTimeToLiveResponse r, bool keys)
    {
        var sb = new StringBuilder("{");
        var first = GoJson.WriteFields(sb, r.Header, true);
        Num(sb, ref first, "id", r.ID);
        Num(sb, ref first, "ttl", r.TTL);
        Num(sb, ref first, "granted-ttl", r.GrantedTTL);
        GoJson.Comma(sb, ref first);
        sb.Append("\"keys\":");
        if (r.Keys.Count == 0)
        {
            sb.Append("null");
        }
        else
        {
            sb.Append('[');
            var firstKey = true;
            foreach (var k in r.Keys)
            {
                GoJson.Comma(sb, ref firstKey);
                GoJson.Bytes(sb, k);
            }

            sb.Append(']');
        }

        P(sb.Append('}'));
    }

    public override void Leases(LeaseLeasesResponse r)
    {
        var sb = new StringBuilder("{");
        var first = GoJson.WriteFields(sb, r.Header, true);
        GoJson.Comma(sb, ref first);
        sb.Append("\"leases\":[");
        var firstLease = true;
        foreach (var l in r.Leases)
        {
            GoJson.Comma(sb, ref firstLease);
            sb.Append(CultureInfo.InvariantCulture, $"{{\"id\":{l.ID}}}");
        }

        P(sb.Append("]}"));
    }

    public override void MemberAdd(MemberAddResponse r) => P(r);

    public override void MemberRemove(ulong id, MemberRemoveResponse r) => P(r);

    public override void MemberUpdate(ulong id, MemberUpdateResponse r) => P(r);

    public override void MemberPromote(ulong id, MemberPromoteResponse r) => P(r);

    public override void MemberList(MemberListResponse r) => P(r);

    public override void EndpointHealth(IReadOnlyList<EndpointHealthResult> r)
    {
        var sb = new StringBuilder("[");
        var first = true;
        foreach (var h in r)
        {
            GoJson.Comma(sb, ref first);
            sb.Append("{\"endpoint\":");
            GoFormat.JsonString(sb, h.Endpoint);
            sb.Append(",\"health\":").Append(h.Health ? "true" : "false").Append(",\"took\":");
            GoFormat.JsonString(sb, h.Took);
            if (h.Error.Length > 0)
            {
                sb.Append(",\"error\":");
                GoFormat.JsonString(sb, h.Error);
            }

            sb.Append('}');
        }

        P(sb.Append(']'));
    }

    public override void EndpointStatus(IReadOnlyList<EndpointStatusResult> r)
    {
        var sb = new StringBuilder("[");
        var first = true;
        foreach (var s in r)
        {
            GoJson.Comma(sb, ref first);
            sb.Append("{\"Endpoint\":");
            GoFormat.JsonString(sb, s.Endpoint);
            sb.Append(",\"Status\":");
            GoJson.Write(sb, s.Status);
            sb.Append('}');
        }

        P(sb.Append(']'));
    }

    public override void EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r)
    {
        var sb = new StringBuilder("[");
        var first = true;
        foreach (var h in r)
        {
            GoJson.Comma(sb, ref first);
            sb.Append("{\"Endpoint\":");
            GoFormat.JsonString(sb, h.Endpoint);
            sb.Append(",\"HashKV\":");
            GoJson.Write(sb, h.HashKV);
            sb.Append('}');
        }

        P(sb.Append(']'));
    }

    public override void MoveLeader(ulong leader, ulong target, MoveLeaderResponse r) => P(r);

    public override void Alarm(AlarmResponse r) => P(r);

    public override void DBStatus(SnapshotStatusResult r) => Console.Out(Printers.DbStatus("json", r)!);

    public override void RoleAdd(string role, AuthRoleAddResponse r) => P(r);

    public override void RoleGet(string role, AuthRoleGetResponse r) => P(r);

    public override void RoleDelete(string role, AuthRoleDeleteResponse r) => P(r);

    public override void RoleList(AuthRoleListResponse r) => P(r);

    public override void RoleGrantPermission(string role, AuthRoleGrantPermissionResponse r) => P(r);

    public override void RoleRevokePermission(string role, string key, string end, AuthRoleRevokePermissionResponse r) => P(r);

    public override void UserAdd(string user, AuthUserAddResponse r) => P(r);

    public override void UserGet(string user, AuthUserGetResponse r) => P(r);

    public override void UserList(AuthUserListResponse r) => P(r);

    public override void UserChangePassword(AuthUserChangePasswordResponse r) => P(r);

    public override void UserGrantRole(string user, string role, AuthUserGrantRoleResponse r) => P(r);

    public override void UserRevokeRole(string user, string role, AuthUserRevokeRoleResponse r) => P(r);

    public override void UserDelete(string user, AuthUserDeleteResponse r) => P(r);
#pragma warning restore CS1591
}
