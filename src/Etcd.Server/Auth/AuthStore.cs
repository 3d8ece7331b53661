using System.Buffers.Binary;
using System.Text;
using Authpb;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.Backend;
using Etcd.Storage.Schema;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Auth;

/// <summary>
/// etcd's auth store (<c>auth/store.go</c>): users, roles and their key permissions, whether auth is enabled, and
/// the auth revision, persisted in etcd's schema — bucket <c>auth</c> (<c>authEnabled</c> = one byte 1/0,
/// <c>authRevision</c> = 8-byte big-endian), <c>authUsers</c> (user name → marshalled authpb.User, bcrypt
/// password hash), <c>authRoles</c> (role name → marshalled authpb.Role, permissions sorted by key) — so a data
/// dir moves between etcd and us with the same users and passwords.
/// </summary>
/// <remarks>
/// Concurrency: every change runs on the apply thread (the methods named after the Auth RPCs); each change
/// writes the backend in one batch with the consistent index and then publishes a new immutable snapshot of
/// users, roles and merged permissions, which the permission checks read lock-free from any thread.
/// Passwords are hashed before proposals (<see cref="HashPassword"/>), never on the apply thread except for a
/// plain password found in an entry written by etcd 3.4 itself.
/// Errors are <see cref="EtcdException"/>s carrying etcd's strings (e.g. <c>etcdserver: user name already exists</c>).
/// </remarks>
public sealed class AuthStore
{
    /// <summary>The root user's and root role's name.</summary>
    public const string Root = "root";

    /// <summary>Key of the enabled flag in the <c>auth</c> bucket.</summary>
    public static readonly byte[] EnabledKey = "authEnabled"u8.ToArray();

    /// <summary>Key of the revision in the <c>auth</c> bucket.</summary>
    public static readonly byte[] RevisionKey = "authRevision"u8.ToArray();

    /// <summary>
    /// What an Authenticate gets for a user added with <c>no_password</c> (etcd's <c>ErrNoPasswordUser</c>, which
    /// etcd 3.4 does not map to a gRPC code: Unknown).
    /// </summary>
    public static readonly RpcException NoPasswordUser = new(StatusCode.Unknown, "auth: authentication failed, password was given for no password user");

    private readonly IBackend _backend;
    private readonly Action<IBatchTx>? _inSameBatch;
    private readonly ILogger _log;
    private volatile Snapshot _state = Snapshot.Empty;

    /// <summary>
    /// Opens the store in <paramref name="backend"/>: creates the three buckets, loads users and roles, and writes
    /// revision 1 when the backend has none (as etcd's <c>NewAuthStore</c>).
    /// </summary>
    /// <param name="backend">The member's backend.</param>
    /// <param name="tokens">The token provider (enabled here when auth is enabled in the backend).</param>
    /// <param name="bcryptCost">bcrypt cost for new hashes; outside 4..31 etcd's default 10 is used.</param>
    /// <param name="log">Where the store logs.</param>
    /// <param name="inSameBatch">Runs inside every batch that changes the store (the server saves the consistent index there).</param>
    public AuthStore(IBackend backend, ITokenProvider tokens, int bcryptCost, ILogger log, Action<IBatchTx>? inSameBatch = null)
    {
        _backend = backend;
        Tokens = tokens;
        _log = log;
        _inSameBatch = inSameBatch;
        if (bcryptCost < 4 || bcryptCost > 31)
        {
            _log.LogWarning("use default bcrypt cost instead of the invalid given cost {min-cost} {max-cost} {default-cost} {given-cost}", 4, 31, 10, bcryptCost);
            bcryptCost = 10;
        }

        BcryptCost = bcryptCost;
        var tx = backend.BatchTx;
        tx.Lock();
        try
        {
            tx.CreateBucket(Buckets.Auth);
            tx.CreateBucket(Buckets.AuthUsers);
            tx.CreateBucket(Buckets.AuthRoles);
            if (ReadRevision(tx) == 0)
            {
                WriteRevision(tx, 1);
            }
        }
        finally
        {
            tx.Unlock();
        }

        backend.ForceCommit();
        Recover();
    }

    /// <summary>The token provider.</summary>
    public ITokenProvider Tokens { get; }

    /// <summary>bcrypt cost of the hashes this member makes.</summary>
    public int BcryptCost { get; }

    /// <summary>Whether auth is enabled.</summary>
    public bool IsEnabled => _state.Enabled;

    /// <summary>The auth revision: raised by every change to users, roles or permissions, and by AuthDisable.</summary>
    public ulong Revision => _state.Revision;

    /// <summary>Reloads everything from the backend (start, or a backend replaced by a raft snapshot), as etcd's <c>Recover</c>.</summary>
    public void Recover()
    {
        using var tx = _backend.ConcurrentReadTx();
        var enabled = tx.Get(Buckets.Auth, EnabledKey) is [1];
        var revision = ReadRevision(tx);
        var users = new SortedDictionary<string, User>(StringComparer.Ordinal);
        tx.ForEach(Buckets.AuthUsers, (_, v) =>
        {
            var u = User.Parser.ParseFrom(v.ToArray());
            users[u.Name.ToStringUtf8()] = u;
            return true;
        });
        var roles = new SortedDictionary<string, Role>(StringComparer.Ordinal);
        tx.ForEach(Buckets.AuthRoles, (_, v) =>
        {
            var r = Role.Parser.ParseFrom(v.ToArray());
            roles[r.Name.ToStringUtf8()] = r;
            return true;
        });
        var wasEnabled = _state.Enabled;
        _state = Snapshot.Build(enabled, revision, users, roles);
        if (enabled && !wasEnabled)
        {
            Tokens.Enable();
        }
        else if (!enabled && wasEnabled)
        {
            Tokens.Disable();
        }
    }

    /// <summary>Hashes <paramref name="password"/> with bcrypt at <see cref="BcryptCost"/> (<c>$2a$</c>, as Go's bcrypt). Slow by design: call off the apply thread.</summary>
    public string HashPassword(string password) =>
        BCrypt.Net.BCrypt.HashPassword(password, BCrypt.Net.BCrypt.GenerateSalt(BcryptCost, 'a'));

    /// <summary>
    /// Checks a password (etcd's <c>CheckPassword</c>) and returns the auth revision it was checked at. Runs bcrypt:
    /// call off the apply thread. Errors: <c>etcdserver: authentication is not enabled</c>,
    /// <c>etcdserver: authentication failed, invalid user ID or password</c>, <see cref="NoPasswordUser"/>.
    /// </summary>
    public ulong CheckPassword(string username, string password)
    {
        var s = _state;
        if (!s.Enabled)
        {
            throw EtcdErrors.AuthNotEnabled.ToException();
        }

        if (!s.Users.TryGetValue(username, out var user))
        {
            throw EtcdErrors.AuthFailed.ToException();
        }

        if (user.Options?.NoPassword == true)
        {
            throw NoPasswordUser;
        }

        bool ok;
        try
        {
            ok = BCrypt.Net.BCrypt.Verify(password, user.Password.ToStringUtf8());
        }
        catch (BCrypt.Net.SaltParseException)
        {
            ok = false;
        }

        if (!ok)
        {
            _log.LogInformation("invalid password {user-name}", username);
            throw EtcdErrors.AuthFailed.ToException();
        }

        return s.Revision;
    }

    // ---- changes, apply thread only ----

    /// <summary>AuthEnable: needs user root with role root. Errors: root user does not exist / does not have root role.</summary>
    public void Enable()
    {
        var s = _state;
        if (s.Enabled)
        {
            _log.LogInformation("authentication is already enabled; ignored auth enable request");
            return;
        }

        if (!s.Users.TryGetValue(Root, out var root))
        {
            throw EtcdErrors.RootUserNotExist.ToException();
        }

        if (!root.Roles.Contains(Root))
        {
            throw EtcdErrors.RootRoleNotExist.ToException();
        }

        Write(tx => tx.Put(Buckets.Auth, EnabledKey, [1]), s with { Enabled = true }, commitRevision: false);
        Tokens.Enable();
        _log.LogInformation("enabled authentication");
    }

    /// <summary>AuthDisable: raises the revision; every token becomes invalid.</summary>
    public void Disable()
    {
        var s = _state;
        if (!s.Enabled)
        {
            return;
        }

        Write(tx => tx.Put(Buckets.Auth, EnabledKey, [0]), s with { Enabled = false }, commitRevision: true);
        Tokens.Disable();
        _log.LogInformation("disabled authentication");
    }

    /// <summary>Authenticate (the password was checked before the proposal): issues the token.</summary>
    public AuthenticateResponse Authenticate(string username, string simpleTokenPrefix, ulong index)
    {
        var s = _state;
        if (!s.Enabled)
        {
            throw EtcdErrors.AuthNotEnabled.ToException();
        }

        if (!s.Users.TryGetValue(username, out var user) || user.Options?.NoPassword == true)
        {
            throw EtcdErrors.AuthFailed.ToException();
        }

        var token = Tokens.Assign(username, s.Revision, simpleTokenPrefix, index);
        _log.LogDebug("authenticated a user {user-name} {token}", username, token);
        return new AuthenticateResponse { Token = token };
    }

    /// <summary>UserAdd with <paramref name="hashedPassword"/> already made (empty for a no-password user).</summary>
    public void UserAdd(string name, string hashedPassword, UserAddOptions? options)
    {
        if (name.Length == 0)
        {
            throw EtcdErrors.UserEmpty.ToException();
        }

        var s = _state;
        if (s.Users.ContainsKey(name))
        {
            throw EtcdErrors.UserAlreadyExist.ToException();
        }

        var user = new User
        {
            Name = ByteString.CopyFromUtf8(name),
            Password = options?.NoPassword == true ? ByteString.Empty : ByteString.CopyFromUtf8(hashedPassword),
            Options = options ?? new UserAddOptions(),
        };
        PutUser(s, user);
        _log.LogInformation("added a user {user-name}", name);
    }

    /// <summary>UserDelete; root cannot be deleted while auth is enabled ("invalid auth management").</summary>
    public void UserDelete(string name)
    {
        var s = _state;
        if (s.Enabled && name == Root)
        {
            _log.LogWarning("cannot delete 'root' user {user-name}", name);
            throw EtcdErrors.InvalidAuthMgmt.ToException();
        }

        if (!s.Users.ContainsKey(name))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        var users = new SortedDictionary<string, User>(s.Users.ToDictionary(), StringComparer.Ordinal);
        users.Remove(name);
        Write(tx => tx.Delete(Buckets.AuthUsers, Encoding.UTF8.GetBytes(name)), s.With(users, s.Roles), commitRevision: true);
        Tokens.InvalidateUser(name);
        _log.LogInformation("deleted a user {user-name}", name);
    }

    /// <summary>UserChangePassword with the new hash already made.</summary>
    public void UserChangePassword(string name, string hashedPassword)
    {
        var s = _state;
        if (!s.Users.TryGetValue(name, out var user))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        var updated = user.Clone();
        updated.Password = ByteString.CopyFromUtf8(hashedPassword);
        PutUser(s, updated);
        Tokens.InvalidateUser(name);
        _log.LogInformation("changed a password of a user {user-name}", name);
    }

    /// <summary>UserGrantRole; role root needs no role entry. Granting a held role changes nothing.</summary>
    public void UserGrantRole(string name, string role)
    {
        var s = _state;
        if (!s.Users.TryGetValue(name, out var user))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        if (role != Root && !s.Roles.ContainsKey(role))
        {
            throw EtcdErrors.RoleNotFound.ToException();
        }

        if (user.Roles.Contains(role))
        {
            _log.LogWarning("ignored grant role request to a user {user-name} {user-roles} {requested-role-name}", name, user.Roles.ToArray(), role);
            return;
        }

        var updated = user.Clone();
        var roles = updated.Roles.Append(role).OrderBy(r => r, StringComparer.Ordinal).ToList();
        updated.Roles.Clear();
        updated.Roles.AddRange(roles);
        PutUser(s, updated);
        _log.LogInformation("granted a role to a user {user-name} {user-roles} {added-role-name}", name, roles.ToArray(), role);
    }

    /// <summary>UserRevokeRole; root keeps role root while auth is enabled ("invalid auth management").</summary>
    public void UserRevokeRole(string name, string role)
    {
        var s = _state;
        if (s.Enabled && name == Root && role == Root)
        {
            _log.LogWarning("'root' user cannot revoke 'root' role {user-name}", name);
            throw EtcdErrors.InvalidAuthMgmt.ToException();
        }

        if (!s.Users.TryGetValue(name, out var user))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        if (!user.Roles.Contains(role))
        {
            throw EtcdErrors.RoleNotGranted.ToException();
        }

        var updated = user.Clone();
        var roles = user.Roles.Where(r => r != role).ToList();
        updated.Roles.Clear();
        updated.Roles.AddRange(roles);
        PutUser(s, updated);
        _log.LogInformation("revoked a role from a user {user-name} {old-user-roles} {new-user-roles} {revoked-role-name}", name, user.Roles.ToArray(), roles.ToArray(), role);
    }

    /// <summary>UserGet: the user's roles. Error: user name not found.</summary>
    public AuthUserGetResponse UserGet(string name)
    {
        if (!_state.Users.TryGetValue(name, out var user))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        var resp = new AuthUserGetResponse();
        resp.Roles.AddRange(user.Roles);
        return resp;
    }

    /// <summary>UserList: every user name in key order.</summary>
    public AuthUserListResponse UserList()
    {
        var resp = new AuthUserListResponse();
        resp.Users.AddRange(_state.Users.Keys);
        return resp;
    }

    /// <summary>RoleAdd. Errors: role name is empty / already exists.</summary>
    public void RoleAdd(string name)
    {
        if (name.Length == 0)
        {
            throw EtcdErrors.RoleEmpty.ToException();
        }

        var s = _state;
        if (s.Roles.ContainsKey(name))
        {
            throw EtcdErrors.RoleAlreadyExist.ToException();
        }

        PutRole(s, new Role { Name = ByteString.CopyFromUtf8(name) });
        _log.LogInformation("created a role {role-name}", name);
    }

    /// <summary>RoleGet: the role's permissions. Error: role name not found.</summary>
    public AuthRoleGetResponse RoleGet(string name)
    {
        var resp = new AuthRoleGetResponse();
        if (!_state.Roles.TryGetValue(name, out var role))
        {
            throw EtcdErrors.RoleNotFound.ToException();
        }

        resp.Perm.AddRange(role.KeyPermission.Select(p => p.Clone()));
        return resp;
    }

    /// <summary>RoleList: every role name in key order.</summary>
    public AuthRoleListResponse RoleList()
    {
        var resp = new AuthRoleListResponse();
        resp.Roles.AddRange(_state.Roles.Keys);
        return resp;
    }

    /// <summary>RoleDelete: also revokes the role from every user. Role root cannot go while auth is enabled.</summary>
    public void RoleDelete(string name)
    {
        var s = _state;
        if (s.Enabled && name == Root)
        {
            _log.LogWarning("cannot delete 'root' role {role-name}", name);
            throw EtcdErrors.InvalidAuthMgmt.ToException();
        }

        if (!s.Roles.ContainsKey(name))
        {
            throw EtcdErrors.RoleNotFound.ToException();
        }

        var roles = new SortedDictionary<string, Role>(s.Roles.ToDictionary(), StringComparer.Ordinal);
        roles.Remove(name);
        var users = new SortedDictionary<string, User>(s.Users.ToDictionary(), StringComparer.Ordinal);
        var changed = new List<User>();
        foreach (var (userName, user) in s.Users)
        {
            if (user.Roles.Contains(name))
            {
                var updated = user.Clone();
                var kept = user.Roles.Where(r => r != name).ToList();
                updated.Roles.Clear();
                updated.Roles.AddRange(kept);
                users[userName] = updated;
                changed.Add(updated);
            }
        }

        Write(
            tx =>
            {
                tx.Delete(Buckets.AuthRoles, Encoding.UTF8.GetBytes(name));
                foreach (var u in changed)
                {
                    tx.Put(Buckets.AuthUsers, u.Name.Span, u.ToByteArray());
                }
            },
            s.With(users, roles),
            commitRevision: true);
        _log.LogInformation("deleted a role {role-name}", name);
    }

    /// <summary>RoleGrantPermission: adds the permission (kept sorted by key) or changes the type of the same range.</summary>
    public void RoleGrantPermission(string name, Permission perm)
    {
        var s = _state;
        if (!s.Roles.TryGetValue(name, out var role))
        {
            throw EtcdErrors.RoleNotFound.ToException();
        }

        var updated = role.Clone();
        var existing = updated.KeyPermission.FirstOrDefault(p => p.Key == perm.Key && p.RangeEnd == perm.RangeEnd);
        if (existing is not null)
        {
            existing.PermType = perm.PermType;
        }
        else
        {
            var list = updated.KeyPermission.Append(new Permission { Key = perm.Key, RangeEnd = perm.RangeEnd, PermType = perm.PermType })
                .OrderBy(p => p.Key.ToByteArray(), ByteArrayComparer.Instance).ToList();
            updated.KeyPermission.Clear();
            updated.KeyPermission.AddRange(list);
        }

        PutRole(s, updated);
        _log.LogInformation("granted/updated a permission to a user {user-name} {permission-name} {permission-type}", name, perm.Key.ToStringUtf8(), perm.PermType.ToString().ToUpperInvariant());
    }

    /// <summary>RoleRevokePermission: removes the permission of exactly [key, range_end). Error: permission is not granted to the role.</summary>
    public void RoleRevokePermission(string name, ByteString key, ByteString rangeEnd)
    {
        var s = _state;
        if (!s.Roles.TryGetValue(name, out var role))
        {
            throw EtcdErrors.RoleNotFound.ToException();
        }

        var kept = role.KeyPermission.Where(p => p.Key != key || p.RangeEnd != rangeEnd).ToList();
        if (kept.Count == role.KeyPermission.Count)
        {
            throw EtcdErrors.PermissionNotGranted.ToException();
        }

        var updated = new Role { Name = role.Name };
        updated.KeyPermission.AddRange(kept);
        PutRole(s, updated);
        _log.LogInformation("revoked a permission on range {role-name} {key} {range-end}", name, key.ToStringUtf8(), rangeEnd.ToStringUtf8());
    }

    // ---- checks, any thread ----

    /// <summary>Read permission on [key, rangeEnd) (etcd's <c>IsRangePermitted</c>). Errors: user name is empty, revision of auth store is old, permission denied.</summary>
    public void CheckRange(AuthInfo? info, ByteString key, ByteString rangeEnd) => CheckOp(info, key.Span, rangeEnd.Span, write: false);

    /// <summary>Write permission on one key (etcd's <c>IsPutPermitted</c>).</summary>
    public void CheckPut(AuthInfo? info, ReadOnlySpan<byte> key) => CheckOp(info, key, [], write: true);

    /// <summary>Write permission on [key, rangeEnd) (etcd's <c>IsDeleteRangePermitted</c>).</summary>
    public void CheckDeleteRange(AuthInfo? info, ByteString key, ByteString rangeEnd) => CheckOp(info, key.Span, rangeEnd.Span, write: true);

    /// <summary>
    /// The user has role root (etcd's <c>IsAdminPermitted</c>); nothing to check while auth is disabled.
    /// Errors: user name is empty, user name not found, permission denied.
    /// </summary>
    public void CheckAdmin(AuthInfo? info)
    {
        var s = _state;
        if (!s.Enabled)
        {
            return;
        }

        if (info is not { Username.Length: > 0 } ai)
        {
            throw EtcdErrors.UserEmpty.ToException();
        }

        if (!s.Users.TryGetValue(ai.Username, out var user))
        {
            throw EtcdErrors.UserNotFound.ToException();
        }

        if (!user.Roles.Contains(Root))
        {
            throw EtcdErrors.PermissionDenied.ToException();
        }
    }

    /// <summary>Whether <paramref name="user"/> exists and holds <paramref name="role"/>.</summary>
    public bool HasRole(string user, string role) => _state.Users.TryGetValue(user, out var u) && u.Roles.Contains(role);

    private void CheckOp(AuthInfo? info, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, bool write)
    {
        var s = _state;
        if (!s.Enabled)
        {
            return;
        }

        if (info is not { Revision: > 0 } ai)
        {
            throw EtcdErrors.UserEmpty.ToException();
        }

        if (ai.Revision < s.Revision)
        {
            _log.LogWarning("request auth revision is less than current node auth revision {current-revision} {request-revision} {request-key} {error}", s.Revision, ai.Revision, Encoding.UTF8.GetString(key), "auth: revision in header is old");
            throw EtcdErrors.AuthOldRevision.ToException();
        }

        if (!s.Users.TryGetValue(ai.Username, out var user))
        {
            throw EtcdErrors.PermissionDenied.ToException();
        }

        if (user.Roles.Contains(Root))
        {
            return;
        }

        if (s.Permissions.TryGetValue(ai.Username, out var perms) && perms.Permits(key, rangeEnd, write))
        {
            return;
        }

        throw EtcdErrors.PermissionDenied.ToException();
    }

    private void PutUser(Snapshot s, User user)
    {
        var users = new SortedDictionary<string, User>(s.Users.ToDictionary(), StringComparer.Ordinal) { [user.Name.ToStringUtf8()] = user };
        Write(tx => tx.Put(Buckets.AuthUsers, user.Name.Span, user.ToByteArray()), s.With(users, s.Roles), commitRevision: true);
    }

    private void PutRole(Snapshot s, Role role)
    {
        var roles = new SortedDictionary<string, Role>(s.Roles.ToDictionary(), StringComparer.Ordinal) { [role.Name.ToStringUtf8()] = role };
        Write(tx => tx.Put(Buckets.AuthRoles, role.Name.Span, role.ToByteArray()), s.With(s.Users, roles), commitRevision: true);
    }

    private void Write(Action<IBatchTx> change, Snapshot next, bool commitRevision)
    {
        if (commitRevision)
        {
            next = next with { Revision = next.Revision + 1 };
        }

        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            change(tx);
            if (commitRevision)
            {
                WriteRevision(tx, next.Revision);
            }

            _inSameBatch?.Invoke(tx);
        }
        finally
        {
            tx.Unlock();
        }

        _state = next;
    }

    private static ulong ReadRevision(IBucketReader tx) =>
        tx.Get(Buckets.Auth, RevisionKey) is { Length: 8 } v ? BinaryPrimitives.ReadUInt64BigEndian(v) : 0;

    private static void WriteRevision(IBatchTx tx, ulong revision)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, revision);
        tx.Put(Buckets.Auth, RevisionKey, b);
    }

    /// <summary>An immutable view of the store: what the checks read.</summary>
    private sealed record Snapshot(
        bool Enabled,
        ulong Revision,
        IReadOnlyDictionary<string, User> Users,
        IReadOnlyDictionary<string, Role> Roles,
        IReadOnlyDictionary<string, RangePermissions> Permissions)
    {
        public static readonly Snapshot Empty = Build(false, 0, new SortedDictionary<string, User>(StringComparer.Ordinal), new SortedDictionary<string, Role>(StringComparer.Ordinal));

        public static Snapshot Build(bool enabled, ulong revision, IReadOnlyDictionary<string, User> users, IReadOnlyDictionary<string, Role> roles)
        {
            var perms = new Dictionary<string, RangePermissions>(StringComparer.Ordinal);
            foreach (var (name, user) in users)
            {
                perms[name] = RangePermissions.Merge(user.Roles.Select(r => roles.GetValueOrDefault(r)).OfType<Role>());
            }

            return new Snapshot(enabled, revision, users, roles, perms);
        }

        public Snapshot With(IReadOnlyDictionary<string, User> users, IReadOnlyDictionary<string, Role> roles) =>
            Build(Enabled, Revision, users, roles);
    }

    private sealed class ByteArrayComparer : IComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
