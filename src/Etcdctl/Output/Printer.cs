using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;

namespace Etcd.Ctl.Output;

/// <summary>An endpoint's health as <c>endpoint health</c> reports it (etcdctl's epHealth).</summary>
/// <param name="Endpoint">The endpoint as given.</param>
/// <param name="Health">Whether the health read succeeded (or was refused for permission).</param>
/// <param name="Took">Go's duration text of the read.</param>
/// <param name="Error">The error text, empty when healthy.</param>
public sealed record EndpointHealthResult(string Endpoint, bool Health, string Took, string Error);

/// <summary>An endpoint's status (etcdctl's epStatus).</summary>
/// <param name="Endpoint">The endpoint.</param>
/// <param name="Status">Its Status response.</param>
public sealed record EndpointStatusResult(string Endpoint, StatusResponse Status);

/// <summary>An endpoint's KV hash (etcdctl's epHashKV).</summary>
/// <param name="Endpoint">The endpoint.</param>
/// <param name="HashKV">Its HashKV response.</param>
public sealed record EndpointHashKVResult(string Endpoint, HashKVResponse HashKV);

/// <summary>
/// etcdctl's printer interface (etcdctl/ctlv3/command/printer.go): one method per result. This base is Go's
/// <c>printerUnsupported</c>: every method ends the command with <c>Error: FORMAT not supported as output format</c>
/// (exit 4); each format overrides what it prints. Output goes to the run's console.
/// </summary>
public abstract class Printer
{
    /// <summary>Creates a printer writing to <paramref name="console"/>.</summary>
    protected Printer(CtlConsole console, string format)
    {
        Console = console;
        Format = format;
    }

    /// <summary>Where output goes.</summary>
    protected CtlConsole Console { get; }

    /// <summary>The format name (<c>simple</c>, <c>json</c>, ...).</summary>
    public string Format { get; }

    /// <summary>The printer for <c>-w FORMAT</c>, or null for an unknown format.</summary>
    public static Printer? Create(string format, bool hex, CtlConsole console) => format switch
    {
        "simple" => new SimplePrinter(console, hex),
        "fields" => new FieldsPrinter(console),
        "json" => new JsonPrinter(console),
        "protobuf" => new ProtobufPrinter(console),
        "table" => new TablePrinter(console),
        _ => null,
    };

    /// <summary>Ends the command: this format cannot print that result.</summary>
    protected ExitException Unsupported() => new(ExitException.ExitBadFeature, Format + " not supported as output format");

#pragma warning disable CS1591 // one method per etcdctl printer method; see printer.go
    public virtual void Del(DeleteRangeResponse r) => throw Unsupported();
    public virtual void Get(RangeResponse r) => throw Unsupported();
    public virtual void Put(PutResponse r) => throw Unsupported();
    public virtual void Txn(TxnResponse r) => throw Unsupported();
    public virtual void Watch(WatchResponse r) => throw Unsupported();
    public virtual void Grant(LeaseGrantResponse r) => throw Unsupported();
    public virtual void Revoke(long id, LeaseRevokeResponse r) => throw Unsupported();
    public virtual void KeepAlive(LeaseKeepAliveResponse r) => throw Unsupported();
    public virtual void TimeToLive(LeaseTimeToLiveResponse r, bool keys) => throw Unsupported();
    public virtual void Leases(LeaseLeasesResponse r) => throw Unsupported();
    public virtual void MemberAdd(MemberAddResponse r) => throw Unsupported();
    public virtual void MemberRemove(ulong id, MemberRemoveResponse r) => throw Unsupported();
    public virtual void MemberUpdate(ulong id, MemberUpdateResponse r) => throw Unsupported();
    public virtual void MemberPromote(ulong id, MemberPromoteResponse r) => throw Unsupported();
    public virtual void MemberList(MemberListResponse r) => throw Unsupported();
    public virtual void EndpointHealth(IReadOnlyList<EndpointHealthResult> r) => throw Unsupported();
    public virtual void EndpointStatus(IReadOnlyList<EndpointStatusResult> r) => throw Unsupported();
    public virtual void EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r) => throw Unsupported();
    public virtual void MoveLeader(ulong leader, ulong target, MoveLeaderResponse r) => throw Unsupported();
    public virtual void Alarm(AlarmResponse r) => throw Unsupported();
    public virtual void DBStatus(SnapshotStatusResult r) => throw Unsupported();
    public virtual void RoleAdd(string role, AuthRoleAddResponse r) => throw Unsupported();
    public virtual void RoleGet(string role, AuthRoleGetResponse r) => throw Unsupported();
    public virtual void RoleDelete(string role, AuthRoleDeleteResponse r) => throw Unsupported();
    public virtual void RoleList(AuthRoleListResponse r) => throw Unsupported();
    public virtual void RoleGrantPermission(string role, AuthRoleGrantPermissionResponse r) => throw Unsupported();
    public virtual void RoleRevokePermission(string role, string key, string end, AuthRoleRevokePermissionResponse r) => throw Unsupported();
    public virtual void UserAdd(string user, AuthUserAddResponse r) => throw Unsupported();
    public virtual void UserGet(string user, AuthUserGetResponse r) => throw Unsupported();
    public virtual void UserList(AuthUserListResponse r) => throw Unsupported();
    public virtual void UserChangePassword(AuthUserChangePasswordResponse r) => throw Unsupported();
    public virtual void UserGrantRole(string user, string role, AuthUserGrantRoleResponse r) => throw Unsupported();
    public virtual void UserRevokeRole(string user, string role, AuthUserRevokeRoleResponse r) => throw Unsupported();
    public virtual void UserDelete(string user, AuthUserDeleteResponse r) => throw Unsupported();
#pragma warning restore CS1591

    /// <summary>The rows shared by simple and table output (printer.go's make*Table).</summary>
    public static class Tables
    {
        /// <summary>Member list: ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.</summary>
        public static (string[] Header, List<string[]> Rows) MemberList(MemberListResponse r) =>
            (["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"],
             r.Members.Select(m => new[]
             {
                 m.ID.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                 m.Name.Length == 0 ? "unstarted" : "started",
                 m.Name,
                 string.Join(',', m.PeerURLs),
                 string.Join(',', m.ClientURLs),
                 m.IsLearner ? "true" : "false",
             }).ToList());

        /// <summary>Endpoint health: endpoint, health, took, error.</summary>
        public static (string[] Header, List<string[]> Rows) EndpointHealth(IReadOnlyList<EndpointHealthResult> r) =>
            (["endpoint", "health", "took", "error"], r.Select(h => new[] { h.Endpoint, h.Health ? "true" : "false", h.Took, h.Error }).ToList());

        /// <summary>Endpoint status columns.</summary>
        public static (string[] Header, List<string[]> Rows) EndpointStatus(IReadOnlyList<EndpointStatusResult> r) =>
            (["endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term", "raft index", "raft applied index", "errors"],
             r.Select(s => new[]
             {
                 s.Endpoint,
                 (s.Status.Header?.MemberId ?? 0).ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                 s.Status.Version,
                 Humanize.Bytes((ulong)s.Status.DbSize),
                 (s.Status.Leader == (s.Status.Header?.MemberId ?? 0)) ? "true" : "false",
                 s.Status.IsLearner ? "true" : "false",
                 s.Status.RaftTerm.ToString(System.Globalization.CultureInfo.InvariantCulture),
                 s.Status.RaftIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
                 s.Status.RaftAppliedIndex.ToString(System.Globalization.CultureInfo.InvariantCulture),
                 string.Join(", ", s.Status.Errors),
             }).ToList());

        /// <summary>Endpoint hashkv: endpoint, hash.</summary>
        public static (string[] Header, List<string[]> Rows) EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r) =>
            (["endpoint", "hash"], r.Select(h => new[] { h.Endpoint, h.HashKV.Hash.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToList());
    }
}
