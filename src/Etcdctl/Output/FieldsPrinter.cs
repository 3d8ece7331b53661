using System.Globalization;
using System.Text;
using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;
using Mvccpb;

namespace Etcd.Ctl.Output;

/// <summary>etcdctl's <c>fields</c> format (printer_fields.go): <c>"Name" : value</c> lines, strings as Go's <c>%q</c>.</summary>
public sealed class FieldsPrinter : Printer
{
    private readonly StringBuilder _sb = new();

    /// <summary>Creates the printer.</summary>
    public FieldsPrinter(CtlConsole console)
        : base(console, "fields")
    {
    }

    private void L(string s) => _sb.Append(s).Append('\n');

    private void Flush()
    {
        Console.Out(_sb.ToString());
        _sb.Clear();
    }

    private void Kv(string pfx, KeyValue kv)
    {
        L($"\"{pfx}Key\" : {GoFormat.Quote(kv.Key.Span)}");
        L($"\"{pfx}CreateRevision\" : {kv.CreateRevision}");
        L($"\"{pfx}ModRevision\" : {kv.ModRevision}");
        L($"\"{pfx}Version\" : {kv.Version}");
        L($"\"{pfx}Value\" : {GoFormat.Quote(kv.Value.Span)}");
        L($"\"{pfx}Lease\" : {kv.Lease}");
    }

    private void Hdr(ResponseHeader? h)
    {
        h ??= new ResponseHeader();
        L($"\"ClusterID\" : {h.ClusterId}");
        L($"\"MemberID\" : {h.MemberId}");
        L($"\"Revision\" : {h.Revision}");
        L($"\"RaftTerm\" : {h.RaftTerm}");
    }

    private static string B(bool b) => b ? "true" : "false";

#pragma warning disable CS1591 // see Printer
    public override void Del(DeleteRangeResponse r)
    {
        DelBody(r);
        Flush();
    }

    private void DelBody(DeleteRangeResponse r)
    {
        Hdr(r.Header);
        L($"\"Deleted\" : {r.Deleted}");
        foreach (var kv in r.PrevKvs)
        {
            Kv("Prev", kv);
        }
    }

    public override void Get(RangeResponse r)
    {
        GetBody(r);
        Flush();
    }

    private void GetBody(RangeResponse r)
    {
        Hdr(r.Header);
        foreach (var kv in r.Kvs)
        {
            Kv(string.Empty, kv);
        }

        L($"\"More\" : {B(r.More)}");
        L($"\"Count\" : {r.Count}");
    }

    public override void Put(PutResponse r)
    {
        PutBody(r);
        Flush();
    }

    private void PutBody(PutResponse r)
    {
        Hdr(r.Header);
        if (r.PrevKv is not null)
        {
            Kv("Prev", r.PrevKv);
        }
    }

    public override void Txn(TxnResponse r)
    {
        Hdr(r.Header);
        L($"\"Succeeded\" : {B(r.Succeeded)}");
        foreach (var op in r.Responses)
        {
            switch (op.ResponseCase)
            {
                case ResponseOp.ResponseOneofCase.ResponseDeleteRange: DelBody(op.ResponseDeleteRange); break;
                case ResponseOp.ResponseOneofCase.ResponsePut: PutBody(op.ResponsePut); break;
                case ResponseOp.ResponseOneofCase.ResponseRange: GetBody(op.ResponseRange); break;
            }
        }

        Flush();
    }

    public override void Watch(WatchResponse r)
    {
        Hdr(r.Header);
        foreach (var e in r.Events)
        {
            L($"\"Type\" : {(e.Type == Event.Types.EventType.Put ? "PUT" : "DELETE")}");
            if (e.PrevKv is not null)
            {
                Kv("Prev", e.PrevKv);
            }

            Kv(string.Empty, e.Kv ?? new KeyValue());
        }

        Flush();
    }

    public override void Grant(LeaseGrantResponse r)
    {
        Hdr(r.Header);
        L($"\"ID\" : {r.ID}");
        L($"\"TTL\" : {r.TTL}");
        Flush();
    }

    public override void Revoke(long id, LeaseRevokeResponse r)
    {
        Hdr(r.Header);
        Flush();
    }

    public override void KeepAlive(LeaseKeepAliveResponse r)
    {
        Hdr(r.Header);
        L($"\"ID\" : {r.ID}");
        L($"\"TTL\" : {r.TTL}");
        Flush();
    }

    public override void TimeToLive(LeaseTimeToLiveResponse r, bool keys)
    {
        Hdr(r.Header);
        L($"\"ID\" : {r.ID}");
        L($"\"TTL\" : {r.TTL}");
        L($"\"GrantedTTL\" : {r.GrantedTTL}");
        foreach (var k in r.Keys)
        {
            L($"\"Key\" : {GoFormat.Quote(k.Span)}");
        }

        Flush();
    }

    public override void Leases(LeaseLeasesResponse r)
    {
        Hdr(r.Header);
        foreach (var l in r.Leases)
        {
            L($"\"ID\" : {l.ID}");
        }

        Flush();
    }

    public override void MemberList(MemberListResponse r)
    {
        Hdr(r.Header);
        foreach (var m in r.Members)
        {
            L($"\"ID\" : {m.ID}");
            L($"\"Name\" : {GoFormat.Quote(m.Name)}");
            foreach (var u in m.PeerURLs)
            {
                L($"\"PeerURL\" : {GoFormat.Quote(u)}");
            }

            foreach (var u in m.ClientURLs)
            {
                L($"\"ClientURL\" : {GoFormat.Quote(u)}");
            }

            L($"\"IsLearner\" : {B(m.IsLearner)}");
            L(string.Empty);
        }

        Flush();
    }

    public override void EndpointHealth(IReadOnlyList<EndpointHealthResult> r)
    {
        foreach (var h in r)
        {
            L($"\"Endpoint\" : {GoFormat.Quote(h.Endpoint)}");
            L($"\"Health\" : {B(h.Health)}");
            L($"\"Took\" : {h.Took}");
            L($"\"Error\" : {h.Error}");
            L(string.Empty);
        }

        Flush();
    }

    public override void EndpointStatus(IReadOnlyList<EndpointStatusResult> r)
    {
        foreach (var ep in r)
        {
            var s = ep.Status;
            Hdr(s.Header);
            L($"\"Version\" : {GoFormat.Quote(s.Version)}");
            L($"\"DBSize\" : {s.DbSize}");
            L($"\"Leader\" : {s.Leader}");
            L($"\"IsLearner\" : {B(s.IsLearner)}");
            L($"\"RaftIndex\" : {s.RaftIndex}");
            L($"\"RaftTerm\" : {s.RaftTerm}");
            L($"\"RaftAppliedIndex\" : {s.RaftAppliedIndex}");
            L($"\"Errors\" : [{string.Join(' ', s.Errors)}]");
            L($"\"Endpoint\" : {GoFormat.Quote(ep.Endpoint)}");
            L(string.Empty);
        }

        Flush();
    }

    public override void EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r)
    {
        foreach (var h in r)
        {
            Hdr(h.HashKV.Header);
            L($"\"Endpoint\" : {GoFormat.Quote(h.Endpoint)}");
            L($"\"Hash\" : {h.HashKV.Hash}");
            L(string.Empty);
        }

        Flush();
    }

    public override void Alarm(AlarmResponse r)
    {
        Hdr(r.Header);
        foreach (var a in r.Alarms)
        {
            L($"\"MemberID\" : {a.MemberID}");
            L($"\"AlarmType\" : {SimplePrinter.AlarmName(a.Alarm)}");
            L(string.Empty);
        }

        Flush();
    }

    public override void DBStatus(SnapshotStatusResult r) => Console.Out(Printers.DbStatus("fields", r)!);

    public override void RoleAdd(string role, AuthRoleAddResponse r) => HdrOnly(r.Header);

    public override void RoleGet(string role, AuthRoleGetResponse r)
    {
        Hdr(r.Header);
        foreach (var p in r.Perm)
        {
            L($"\"PermType\" :  {p.PermType.ToString().ToUpperInvariant()}");
            L($"\"Key\" : {GoFormat.Quote(p.Key.Span)}");
            L($"\"RangeEnd\" : {GoFormat.Quote(p.RangeEnd.Span)}");
        }

        Flush();
    }

    public override void RoleDelete(string role, AuthRoleDeleteResponse r) => HdrOnly(r.Header);

    public override void RoleList(AuthRoleListResponse r)
    {
        Hdr(r.Header);
        _sb.Append("\"Roles\" :");
        foreach (var x in r.Roles)
        {
            _sb.Append(' ').Append(GoFormat.Quote(x));
        }

        L(string.Empty);
        Flush();
    }

    public override void RoleGrantPermission(string role, AuthRoleGrantPermissionResponse r) => HdrOnly(r.Header);

    public override void RoleRevokePermission(string role, string key, string end, AuthRoleRevokePermissionResponse r) => HdrOnly(r.Header);

    public override void UserAdd(string user, AuthUserAddResponse r) => HdrOnly(r.Header);

    public override void UserChangePassword(AuthUserChangePasswordResponse r) => HdrOnly(r.Header);

    public override void UserGrantRole(string user, string role, AuthUserGrantRoleResponse r) => HdrOnly(r.Header);

    public override void UserRevokeRole(string user, string role, AuthUserRevokeRoleResponse r) => HdrOnly(r.Header);

    public override void UserDelete(string user, AuthUserDeleteResponse r) => HdrOnly(r.Header);
#pragma warning restore CS1591

    private void HdrOnly(ResponseHeader? h)
    {
        Hdr(h);
        Flush();
    }
}
