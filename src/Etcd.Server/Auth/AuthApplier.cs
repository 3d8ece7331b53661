using Etcd.Api;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Auth;

/// <summary>
/// etcd's auth applier (<c>etcdserver/apply_auth.go</c>), the outermost link of the apply chain: checks every
/// committed request against the user and auth revision in its header (Put, DeleteRange, Txn with every compare
/// and every op of both branches, nested txns included, LeaseRevoke and puts with a lease against the lease's
/// keys, admin-only auth requests), then applies the auth requests themselves to the <see cref="AuthStore"/>.
/// Runs on the apply thread only.
/// </summary>
/// <param name="store">The auth store.</param>
/// <param name="leaseKeys">The keys attached to a lease, or null when it does not exist.</param>
public sealed class AuthApplier(AuthStore store, Func<long, IReadOnlyList<byte[]>?> leaseKeys)
{
    /// <summary>
    /// Checks <paramref name="request"/> and applies it when it is an auth request. Returns true with the response
    /// (header to be filled by the caller) for an auth request; false for any other permitted request, which the
    /// rest of the chain applies. Throws the <see cref="EtcdException"/> a refused request gets.
    /// </summary>
    /// <param name="request">The committed request.</param>
    /// <param name="index">Its raft index (simple tokens carry the Authenticate entry's index).</param>
    /// <param name="response">The auth response, or null.</param>
    public bool Apply(InternalRaftRequest request, ulong index, out IMessage? response)
    {
        ArgumentNullException.ThrowIfNull(request);
        AuthInfo? ai = request.Header is { } h && (h.Username.Length > 0 || h.AuthRevision > 0)
            ? new AuthInfo(h.Username, h.AuthRevision)
            : null;
        if (NeedsAdmin(request))
        {
            store.CheckAdmin(ai);
        }

        CheckKv(request, ai);
        response = ApplyAuth(request, ai, index);
        return response is not null;
    }

    private void CheckKv(InternalRaftRequest r, AuthInfo? ai)
    {
        if (!store.IsEnabled)
        {
            return;
        }

        if (r.Put is { } put)
        {
            CheckPut(put, ai);
        }
        else if (r.DeleteRange is { } del)
        {
            CheckDelete(del, ai);
        }
        else if (r.Txn is { } txn)
        {
            CheckTxn(store, txn, ai);
        }
        else if (r.Range is { } range)
        {
            store.CheckRange(ai, range.Key, range.RangeEnd);
        }
        else if (r.LeaseRevoke is { } revoke)
        {
            CheckLeasePuts(revoke.ID, ai);
        }
    }

    private void CheckPut(PutRequest put, AuthInfo? ai)
    {
        store.CheckPut(ai, put.Key.Span);
        CheckLeasePuts(put.Lease, ai);
        if (put.PrevKv)
        {
            store.CheckRange(ai, put.Key, ByteString.Empty);
        }
    }

    private void CheckDelete(DeleteRangeRequest del, AuthInfo? ai)
    {
        store.CheckDeleteRange(ai, del.Key, del.RangeEnd);
        if (del.PrevKv)
        {
            store.CheckRange(ai, del.Key, del.RangeEnd);
        }
    }

    private void CheckLeasePuts(long lease, AuthInfo? ai)
    {
        if (lease == 0 || leaseKeys(lease) is not { } keys)
        {
            return;
        }

        foreach (var key in keys)
        {
            store.CheckPut(ai, key);
        }
    }

    /// <summary>
    /// Every compare and every op of both branches of <paramref name="txn"/> (etcd's <c>checkTxnAuth</c>), and the
    /// ops of nested txns, which etcd 3.4 leaves unchecked.
    /// </summary>
    public static void CheckTxn(AuthStore store, TxnRequest txn, AuthInfo? ai)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(txn);
        foreach (var c in txn.Compare)
        {
            store.CheckRange(ai, c.Key, c.RangeEnd);
        }

        foreach (var op in txn.Success.Concat(txn.Failure))
        {
            switch (op.RequestCase)
            {
                case RequestOp.RequestOneofCase.RequestRange:
                    store.CheckRange(ai, op.RequestRange.Key, op.RequestRange.RangeEnd);
                    break;
                case RequestOp.RequestOneofCase.RequestPut:
                    store.CheckPut(ai, op.RequestPut.Key.Span);
                    if (op.RequestPut.PrevKv)
                    {
                        store.CheckRange(ai, op.RequestPut.Key, ByteString.Empty);
                    }

                    break;
                case RequestOp.RequestOneofCase.RequestDeleteRange:
                    if (op.RequestDeleteRange.PrevKv)
                    {
                        store.CheckRange(ai, op.RequestDeleteRange.Key, op.RequestDeleteRange.RangeEnd);
                    }

                    store.CheckDeleteRange(ai, op.RequestDeleteRange.Key, op.RequestDeleteRange.RangeEnd);
                    break;
                case RequestOp.RequestOneofCase.RequestTxn:
                    CheckTxn(store, op.RequestTxn, ai);
                    break;
            }
        }
    }

    private IMessage? ApplyAuth(InternalRaftRequest r, AuthInfo? ai, ulong index)
    {
        if (r.AuthEnable is not null)
        {
            store.Enable();
            return new AuthEnableResponse { Header = new ResponseHeader() };
        }

        if (r.AuthDisable is not null)
        {
            store.Disable();
            return new AuthDisableResponse { Header = new ResponseHeader() };
        }

        if (r.AuthStatus is not null)
        {
            return new AuthStatusResponse { Header = new ResponseHeader(), Enabled = store.IsEnabled, AuthRevision = store.Revision };
        }

        if (r.Authenticate is { } a)
        {
            var resp = store.Authenticate(a.Name, a.SimpleToken, index);
            resp.Header = new ResponseHeader();
            return resp;
        }

        if (r.AuthUserAdd is { } ua)
        {
            var noPassword = ua.Options?.NoPassword == true;
            // Proposals carry the hash (made before proposing); an entry written by etcd 3.4 carries the password.
            var hash = noPassword ? string.Empty : ua.HashedPassword.Length > 0 ? ua.HashedPassword : store.HashPassword(ua.Password);
            store.UserAdd(ua.Name, hash, ua.Options);
            return new AuthUserAddResponse { Header = new ResponseHeader() };
        }

        if (r.AuthUserDelete is { } ud)
        {
            store.UserDelete(ud.Name);
            return new AuthUserDeleteResponse { Header = new ResponseHeader() };
        }

        if (r.AuthUserChangePassword is { } cp)
        {
            store.UserChangePassword(cp.Name, cp.HashedPassword.Length > 0 ? cp.HashedPassword : store.HashPassword(cp.Password));
            return new AuthUserChangePasswordResponse { Header = new ResponseHeader() };
        }

        if (r.AuthUserGrantRole is { } ug)
        {
            store.UserGrantRole(ug.User, ug.Role);
            return new AuthUserGrantRoleResponse { Header = new ResponseHeader() };
        }

        if (r.AuthUserRevokeRole is { } ur)
        {
            store.UserRevokeRole(ur.Name, ur.Role);
            return new AuthUserRevokeRoleResponse { Header = new ResponseHeader() };
        }

        if (r.AuthUserGet is { } ugt)
        {
            // A user may read itself without role root.
            if (!(ai is { } who && who.Username == ugt.Name && who.Username.Length > 0))
            {
                store.CheckAdmin(ai);
            }

            var resp = store.UserGet(ugt.Name);
            resp.Header = new ResponseHeader();
            return resp;
        }

        if (r.AuthUserList is not null)
        {
            var resp = store.UserList();
            resp.Header = new ResponseHeader();
            return resp;
        }

        if (r.AuthRoleAdd is { } ra)
        {
            store.RoleAdd(ra.Name);
            return new AuthRoleAddResponse { Header = new ResponseHeader() };
        }

        if (r.AuthRoleGet is { } rg)
        {
            // A user may read the roles it holds without role root.
            if (!(ai is { } who && store.HasRole(who.Username, rg.Role)))
            {
                store.CheckAdmin(ai);
            }

            var resp = store.RoleGet(rg.Role);
            resp.Header = new ResponseHeader();
            return resp;
        }

        if (r.AuthRoleList is not null)
        {
            var resp = store.RoleList();
            resp.Header = new ResponseHeader();
            return resp;
        }

        if (r.AuthRoleDelete is { } rd)
        {
            store.RoleDelete(rd.Role);
            return new AuthRoleDeleteResponse { Header = new ResponseHeader() };
        }

        if (r.AuthRoleGrantPermission is { } gp)
        {
            store.RoleGrantPermission(gp.Name, gp.Perm ?? new Authpb.Permission());
            return new AuthRoleGrantPermissionResponse { Header = new ResponseHeader() };
        }

        if (r.AuthRoleRevokePermission is { } rp)
        {
            store.RoleRevokePermission(rp.Role, rp.Key, rp.RangeEnd);
            return new AuthRoleRevokePermissionResponse { Header = new ResponseHeader() };
        }

        return null;
    }

    /// <summary>Auth requests only root may make while auth is enabled (etcd's <c>needAdminPermission</c>).</summary>
    private static bool NeedsAdmin(InternalRaftRequest r) =>
        r.AuthEnable is not null || r.AuthDisable is not null || r.AuthUserAdd is not null || r.AuthUserDelete is not null ||
        r.AuthUserChangePassword is not null || r.AuthUserGrantRole is not null || r.AuthUserRevokeRole is not null ||
        r.AuthRoleAdd is not null || r.AuthRoleGrantPermission is not null || r.AuthRoleRevokePermission is not null ||
        r.AuthRoleDelete is not null || r.AuthUserList is not null || r.AuthRoleList is not null;
}
