using Etcd.Ctl.Cli;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Output;

/// <summary>
/// etcdctl's <c>protobuf</c> format (printer_protobuf.go): the response message's wire bytes, no newline. clientv3's
/// lease structs embed the response header, whose marshaller Go promotes, so they print the header's bytes only;
/// a watch prints a WatchResponse of header, events, compact revision, canceled and created.
/// </summary>
public sealed class ProtobufPrinter : Printer
{
    /// <summary>Creates the printer.</summary>
    public ProtobufPrinter(CtlConsole console)
        : base(console, "protobuf")
    {
    }

    private void P(IMessage? m) => Console.Out(m is null ? [] : m.ToByteArray());

#pragma warning disable CS1591 // see Printer
    public override void Del(DeleteRangeResponse r) => P(r);

    public override void Get(RangeResponse r) => P(r);

    public override void Put(PutResponse r) => P(r);

    public override void Txn(TxnResponse r) => P(r);

    public override void Watch(WatchResponse r)
    {
        var w = new WatchResponse { Header = r.Header, CompactRevision = r.CompactRevision, Canceled = r.Canceled, Created = r.Created };
        w.Events.Add(r.Events);
        P(w);
    }

    public override void Grant(LeaseGrantResponse r) => P(r.Header);

    public override void Revoke(long id, LeaseRevokeResponse r) =>
        throw new ExitException(ExitException.ExitBadFeature, "marshal unsupported for type clientv3.LeaseRevokeResponse");

    public override void KeepAlive(LeaseKeepAliveResponse r) => P(r.Header);

    public override void TimeToLive(LeaseTimeToLiveResponse r, bool keys) => P(r.Header);

    public override void Leases(LeaseLeasesResponse r) => P(r.Header);

    public override void MemberAdd(MemberAddResponse r) => P(r);

    public override void MemberRemove(ulong id, MemberRemoveResponse r) => P(r);

    public override void MemberUpdate(ulong id, MemberUpdateResponse r) => P(r);

    public override void MemberList(MemberListResponse r) => P(r);

    public override void Alarm(AlarmResponse r) => P(r);

    public override void MoveLeader(ulong leader, ulong target, MoveLeaderResponse r) => P(r);

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
