using System.Globalization;
using System.Text;
using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Etcd.Ctl.Output;

/// <summary>etcdctl's <c>simple</c> format (printer_simple.go): keys and values as raw bytes (or <c>--hex</c>), one per line.</summary>
public sealed class SimplePrinter : Printer
{
    private readonly bool _hex;

    /// <summary>Creates the printer; <paramref name="hex"/> prints keys and values as <c>\xNN</c>.</summary>
    public SimplePrinter(CtlConsole console, bool hex)
        : base(console, "simple") => _hex = hex;

    /// <summary>Print only values (<c>get --print-value-only</c>).</summary>
    public bool ValueOnly { get; set; }

    private void Line(string s) => Console.Out(s + "\n");

    private void PrintKv(KeyValue kv)
    {
        if (!ValueOnly)
        {
            Raw(kv.Key);
        }

        Raw(kv.Value);
    }

    private void Raw(ByteString b)
    {
        if (_hex)
        {
            Line(GoFormat.HexEscaped(b.Span));
            return;
        }

        var bytes = new byte[b.Length + 1];
        b.Span.CopyTo(bytes);
        bytes[^1] = (byte)'\n';
        Console.Out(bytes);
    }

#pragma warning disable CS1591 // see Printer
    public override void Del(DeleteRangeResponse r)
    {
        Line(r.Deleted.ToString(CultureInfo.InvariantCulture));
        foreach (var kv in r.PrevKvs)
        {
            PrintKv(kv);
        }
    }

    public override void Get(RangeResponse r)
    {
        foreach (var kv in r.Kvs)
        {
            PrintKv(kv);
        }
    }

    public override void Put(PutResponse r)
    {
        Line("OK");
        if (r.PrevKv is not null)
        {
            PrintKv(r.PrevKv);
        }
    }

    public override void Txn(TxnResponse r)
    {
        Line(r.Succeeded ? "SUCCESS" : "FAILURE");
        foreach (var op in r.Responses)
        {
            Line(string.Empty);
            switch (op.ResponseCase)
            {
                case ResponseOp.ResponseOneofCase.ResponseDeleteRange: Del(op.ResponseDeleteRange); break;
                case ResponseOp.ResponseOneofCase.ResponsePut: Put(op.ResponsePut); break;
                case ResponseOp.ResponseOneofCase.ResponseRange: Get(op.ResponseRange); break;
                default: Line("unexpected response " + op); break;
            }
        }
    }

    public override void Watch(WatchResponse r)
    {
        foreach (var e in r.Events)
        {
            Line(e.Type == Event.Types.EventType.Put ? "PUT" : "DELETE");
            if (e.PrevKv is not null)
            {
                PrintKv(e.PrevKv);
            }

            PrintKv(e.Kv ?? new KeyValue());
        }
    }

    public override void Grant(LeaseGrantResponse r) => Line($"lease {r.ID:x16} granted with TTL({r.TTL}s)");

    public override void Revoke(long id, LeaseRevokeResponse r) => Line($"lease {id:x16} revoked");

    public override void KeepAlive(LeaseKeepAliveResponse r) => Line($"lease {r.ID:x16} keepalived with TTL({r.TTL})");

    public override void TimeToLive(LeaseTimeToLiveResponse r, bool keys)
    {
        if (r.GrantedTTL == 0 && r.TTL == -1)
        {
            Line($"lease {r.ID:x16} already expired");
            return;
        }

        var text = $"lease {r.ID:x16} granted with TTL({r.GrantedTTL}s), remaining({r.TTL}s)";
        var bytes = new List<byte>(Encoding.UTF8.GetBytes(text));
        if (keys)
        {
            bytes.AddRange(", attached keys(["u8.ToArray());
            for (var i = 0; i < r.Keys.Count; i++)
            {
                if (i > 0)
                {
                    bytes.Add((byte)' ');
                }

                bytes.AddRange(r.Keys[i].Span.ToArray());
            }

            bytes.AddRange("])"u8.ToArray());
        }

        bytes.Add((byte)'\n');
        Console.Out(bytes.ToArray());
    }

    public override void Leases(LeaseLeasesResponse r)
    {
        var sb = new StringBuilder($"found {r.Leases.Count} leases\n");
        foreach (var l in r.Leases)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{l.ID:x16}\n");
        }

        Console.Out(sb.ToString());
    }

    public override void Alarm(AlarmResponse r)
    {
        foreach (var a in r.Alarms)
        {
            var sb = new StringBuilder();
            if (a.MemberID != 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"memberID:{a.MemberID} ");
            }

            if (a.Alarm != AlarmType.None)
            {
                sb.Append(CultureInfo.InvariantCulture, $"alarm:{AlarmName(a.Alarm)} ");
            }

            Line(sb.ToString());
        }
    }

    public override void MemberAdd(MemberAddResponse r) => Line($"Member {Hex16(r.Member?.ID ?? 0)} added to cluster {Hex16(r.Header?.ClusterId ?? 0)}");

    public override void MemberRemove(ulong id, MemberRemoveResponse r) => Line($"Member {Hex16(id)} removed from cluster {Hex16(r.Header?.ClusterId ?? 0)}");

    public override void MemberUpdate(ulong id, MemberUpdateResponse r) => Line($"Member {Hex16(id)} updated in cluster {Hex16(r.Header?.ClusterId ?? 0)}");

    public override void MemberPromote(ulong id, MemberPromoteResponse r) => Line($"Member {Hex16(id)} promoted in cluster {Hex16(r.Header?.ClusterId ?? 0)}");

    public override void MemberList(MemberListResponse r) => Rows(Tables.MemberList(r).Rows);

    public override void EndpointHealth(IReadOnlyList<EndpointHealthResult> r)
    {
        foreach (var h in r)
        {
            Console.Err(h.Error.Length == 0
                ? $"{h.Endpoint} is healthy: successfully committed proposal: took = {h.Took}\n"
                : $"{h.Endpoint} is unhealthy: failed to commit proposal: {h.Error}\n");
        }
    }

    public override void EndpointStatus(IReadOnlyList<EndpointStatusResult> r) => Rows(Tables.EndpointStatus(r).Rows);

    public override void EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r) => Rows(Tables.EndpointHashKV(r).Rows);

    public override void DBStatus(SnapshotStatusResult r) => Console.Out(Printers.DbStatus("simple", r)!);

    public override void MoveLeader(ulong leader, ulong target, MoveLeaderResponse r) => Line($"Leadership transferred from {leader:x} to {target:x}");

    public override void RoleAdd(string role, AuthRoleAddResponse r) => Line($"Role {role} created");

    public override void RoleGet(string role, AuthRoleGetResponse r)
    {
        var sb = new List<byte>();
        void Text(string s) => sb.AddRange(Encoding.UTF8.GetBytes(s));
        void Bytes(ByteString b) => sb.AddRange(b.ToByteArray());
        void PrintPerm(Authpb.Permission p)
        {
            if (p.RangeEnd.IsEmpty)
            {
                Text("\t");
                Bytes(p.Key);
                Text("\n");
                return;
            }

            if (!(p.RangeEnd.Length == 1 && p.RangeEnd[0] == 0))
            {
                Text("\t[");
                Bytes(p.Key);
                Text(", ");
                Bytes(p.RangeEnd);
                Text(")");
            }
            else
            {
                Text("\t[");
                Bytes(p.Key);
                Text(", <open ended>");
            }

            if (PrefixEnd(p.Key.ToByteArray()).AsSpan().SequenceEqual(p.RangeEnd.Span))
            {
                Text(" (prefix ");
                Bytes(p.Key);
                Text(")");
            }

            Text("\n");
        }

        Text($"Role {role}\nKV Read:\n");
        foreach (var p in r.Perm.Where(p => p.PermType is Authpb.Permission.Types.Type.Read or Authpb.Permission.Types.Type.Readwrite))
        {
            PrintPerm(p);
        }

        Text("KV Write:\n");
        foreach (var p in r.Perm.Where(p => p.PermType is Authpb.Permission.Types.Type.Write or Authpb.Permission.Types.Type.Readwrite))
        {
            PrintPerm(p);
        }

        Console.Out(sb.ToArray());
    }

    public override void RoleList(AuthRoleListResponse r) => Console.Out(string.Concat(r.Roles.Select(x => x + "\n")));

    public override void RoleDelete(string role, AuthRoleDeleteResponse r) => Line($"Role {role} deleted");

    public override void RoleGrantPermission(string role, AuthRoleGrantPermissionResponse r) => Line($"Role {role} updated");

    public override void RoleRevokePermission(string role, string key, string end, AuthRoleRevokePermissionResponse r)
    {
        if (end.Length == 0)
        {
            Line($"Permission of key {key} is revoked from role {role}");
        }
        else if (end != "\0")
        {
            Line($"Permission of range [{key}, {end}) is revoked from role {role}");
        }
        else
        {
            Line($"Permission of range [{key}, <open ended> is revoked from role {role}");
        }
    }

    public override void UserAdd(string user, AuthUserAddResponse r) => Line($"User {user} created");

    public override void UserGet(string user, AuthUserGetResponse r) => Console.Out($"User: {user}\nRoles:{string.Concat(r.Roles.Select(x => " " + x))}\n");

    public override void UserChangePassword(AuthUserChangePasswordResponse r) => Line("Password updated");

    public override void UserGrantRole(string user, string role, AuthUserGrantRoleResponse r) => Line($"Role {role} is granted to user {user}");

    public override void UserRevokeRole(string user, string role, AuthUserRevokeRoleResponse r) => Line($"Role {role} is revoked from user {user}");

    public override void UserDelete(string user, AuthUserDeleteResponse r) => Line($"User {user} deleted");

    public override void UserList(AuthUserListResponse r) => Console.Out(string.Concat(r.Users.Select(x => x + "\n")));
#pragma warning restore CS1591

    /// <summary>The name Go prints for an alarm type.</summary>
    public static string AlarmName(AlarmType t) => t switch
    {
        AlarmType.None => "NONE",
        AlarmType.Nospace => "NOSPACE",
        AlarmType.Corrupt => "CORRUPT",
        _ => ((int)t).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>clientv3's GetPrefixRangeEnd: the key with its last byte below 0xff incremented (<c>\0</c> when none).</summary>
    public static byte[] PrefixEnd(byte[] key)
    {
        var end = (byte[])key.Clone();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }

        return [0];
    }

    private static string Hex16(ulong v) => v.ToString("x", CultureInfo.InvariantCulture).PadLeft(16);

    private void Rows(List<string[]> rows) => Console.Out(string.Concat(rows.Select(r => string.Join(", ", r) + "\n")));
}
