using System.Text;
using System.Text.Json;
using Etcd.Storage.V2Store;
using Etcdserverpb;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.V2;

/// <summary>
/// etcd's v2 auth store (<c>etcdserver/api/v2auth</c>): users under <c>/2/users/NAME</c> and roles under
/// <c>/2/roles/NAME</c> as JSON values of the v2 store, and <c>/2/enabled</c> (<c>true</c>/<c>false</c>), all written
/// through raft as v2 requests. Passwords are bcrypt hashes (cost 10, as Go's <c>bcrypt.DefaultCost</c>). The role
/// <c>root</c> is built in (all keys); the user <c>root</c> always has it; enabling auth needs the root user and
/// creates the role <c>guest</c> (all keys) for requests without credentials unless it exists. Errors are
/// <see cref="V2AuthError"/> with etcd's statuses and messages, or the <see cref="V2Error"/> of the store.
/// Thread-safe.
/// </summary>
public sealed class V2AuthStore
{
    /// <summary>The namespace of v2 auth in the store.</summary>
    public const string PermsPrefix = "/2";

    /// <summary>The built-in role with access to everything.</summary>
    public const string RootRoleName = "root";

    /// <summary>The role of requests without credentials while auth is on.</summary>
    public const string GuestRoleName = "guest";

    private static readonly V2Role RootRole = new(RootRoleName, new V2RwPermission(["/*"], ["/*"]));
    private static readonly V2Role GuestRole = new(GuestRoleName, new V2RwPermission(["/*"], ["/*"]));

    private readonly EtcdServer _server;
    private volatile bool _ensured;

    /// <summary>The auth store of <paramref name="server"/>'s v2 store.</summary>
    public V2AuthStore(EtcdServer server) => _server = server;

    /// <summary>True when <c>/2/enabled</c> holds <c>true</c>.</summary>
    public bool AuthEnabled
    {
        get
        {
            try
            {
                var e = _server.V2Store.Get(PermsPrefix + "/enabled", false, false);
                return e.Node?.Value == "true";
            }
            catch (V2Error)
            {
                return false;
            }
        }
    }

    /// <summary>User names, sorted.</summary>
    public List<string> AllUsers() => List("/users");

    /// <summary>Role names with <c>root</c>, sorted.</summary>
    public List<string> AllRoles()
    {
        var names = List("/roles");
        names.Add(RootRoleName);
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>The user (local read); 404 "User NAME does not exist." when missing.</summary>
    public V2User GetUser(string name) => ParseUser(Read("/users/" + name, () => new V2AuthError(404, $"User {name} does not exist.")));

    /// <summary>The role (local read); <c>root</c> is built in; 404 "Role NAME does not exist." when missing.</summary>
    public V2Role GetRole(string name)
        => name == RootRoleName ? RootRole : V2Role.Read(Parse(Read("/roles/" + name, () => new V2AuthError(404, $"Role {name} does not exist."))));

    /// <summary>Creates a user (the password hashed; <c>root</c> gets the root role). 400 without a password, 409 when it exists.</summary>
    public async Task<V2User> CreateUserAsync(V2User user, CancellationToken ct)
    {
        if (user.User == RootRoleName)
        {
            user = AttachRootRole(user);
        }

        if (string.IsNullOrEmpty(user.Password))
        {
            throw new V2AuthError(400, $"Cannot create user {user.User} with an empty password");
        }

        user = user with { Password = BCrypt.Net.BCrypt.HashPassword(user.Password, 10) };
        try
        {
            await SetAsync("/users/" + user.User, V2AuthJson.Serialize(user.Write), prevExist: false, ct).ConfigureAwait(false);
        }
        catch (V2Error e) when (e.Code == V2Error.NodeExist)
        {
            throw new V2AuthError(409, $"User {user.User} already exists.");
        }

        return user;
    }

    /// <summary>Updates the user when it exists (quorum read), else creates it; returns the user and whether it was created.</summary>
    public async Task<(V2User User, bool Created)> CreateOrUpdateUserAsync(V2User user, CancellationToken ct)
    {
        try
        {
            await GetUserQuorumAsync(user.User, ct).ConfigureAwait(false);
        }
        catch (V2AuthError)
        {
            return (await CreateUserAsync(user, ct).ConfigureAwait(false), true);
        }

        return (await UpdateUserAsync(user, ct).ConfigureAwait(false), false);
    }

    /// <summary>Merges password/grant/revoke into the user. 404 when missing, 409 on a duplicate grant or a revoke of an ungranted role, 400 when nothing changes.</summary>
    public async Task<V2User> UpdateUserAsync(V2User user, CancellationToken ct)
    {
        // etcd's UpdateUser maps a missing user to "doesn't exist.", but its getUser has already turned it into
        // "does not exist.", which is what clients see.
        var old = await GetUserQuorumAsync(user.User, ct).ConfigureAwait(false);

        var roles = new HashSet<string>(old.Roles ?? [], StringComparer.Ordinal);
        foreach (var g in user.Grant ?? [])
        {
            if (!roles.Add(g))
            {
                throw new V2AuthError(409, $"Granting duplicate role {g} for user {user.User}");
            }
        }

        foreach (var r in user.Revoke ?? [])
        {
            if (!roles.Remove(r))
            {
                throw new V2AuthError(409, $"Revoking ungranted role {r} for user {user.User}");
            }
        }

        var password = string.IsNullOrEmpty(user.Password) ? old.Password : BCrypt.Net.BCrypt.HashPassword(user.Password, 10);
        var updated = new V2User(old.User, password, roles.Count == 0 ? null : roles.Order(StringComparer.Ordinal).ToList());
        if (updated.Password == old.Password && SameList(updated.Roles, old.Roles))
        {
            throw new V2AuthError(400, "User not updated. Use grant/revoke/password to update the user.");
        }

        await SetAsync("/users/" + user.User, V2AuthJson.Serialize(updated.Write), prevExist: true, ct).ConfigureAwait(false);
        return updated;
    }

    /// <summary>Deletes a user. 403 for root while auth is on, 404 when missing.</summary>
    public async Task DeleteUserAsync(string name, CancellationToken ct)
    {
        if (AuthEnabled && name == RootRoleName)
        {
            throw new V2AuthError(403, "Cannot delete root user while auth is enabled.");
        }

        try
        {
            await DeleteAsync("/users/" + name, ct).ConfigureAwait(false);
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            throw new V2AuthError(404, $"User {name} does not exist");
        }
    }

    /// <summary>Creates a role. 403 for root, 409 when it exists.</summary>
    public async Task CreateRoleAsync(V2Role role, CancellationToken ct)
    {
        if (role.Role == RootRoleName)
        {
            throw new V2AuthError(403, $"Cannot modify role {role.Role}: is root role.");
        }

        try
        {
            await SetAsync("/roles/" + role.Role, V2AuthJson.Serialize(role.Write), prevExist: false, ct).ConfigureAwait(false);
        }
        catch (V2Error e) when (e.Code == V2Error.NodeExist)
        {
            throw new V2AuthError(409, $"Role {role.Role} already exists.");
        }
    }

    /// <summary>Deletes a role. 403 for root, 404 when missing.</summary>
    public async Task DeleteRoleAsync(string name, CancellationToken ct)
    {
        if (name == RootRoleName)
        {
            throw new V2AuthError(403, $"Cannot modify role {name}: is root role.");
        }

        try
        {
            await DeleteAsync("/roles/" + name, ct).ConfigureAwait(false);
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            throw new V2AuthError(404, $"Role {name} doesn't exist.");
        }
    }

    /// <summary>Applies the role's grant and revoke. 403 for root, 404 when missing, 409 on a duplicate grant, 400 when nothing changes.</summary>
    public async Task<V2Role> UpdateRoleAsync(V2Role role, CancellationToken ct)
    {
        if (role.Role == RootRoleName)
        {
            throw new V2AuthError(403, $"Cannot modify role {role.Role}: is root role.");
        }

        V2Role old;
        try
        {
            old = V2Role.Read(Parse(await ReadQuorumAsync("/roles/" + role.Role, ct).ConfigureAwait(false)));
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            // As etcd's UpdateRole: its getRole has already worded the miss as "does not exist.".
            throw new V2AuthError(404, $"Role {role.Role} does not exist.");
        }

        var perms = old.Permissions;
        if (role.Grant is { } g)
        {
            perms = new V2RwPermission(GrantList(perms.Read, g.Read, "read"), GrantList(perms.Write, g.Write, "write"));
        }

        if (role.Revoke is { } r)
        {
            perms = new V2RwPermission(RevokeList(perms.Read, r.Read), RevokeList(perms.Write, r.Write));
        }

        if (SameList(perms.Read, old.Permissions.Read) && SameList(perms.Write, old.Permissions.Write))
        {
            throw new V2AuthError(400, "Role not updated. Use grant/revoke to update the role.");
        }

        var updated = new V2Role(old.Role, perms);
        await SetAsync("/roles/" + role.Role, V2AuthJson.Serialize(updated.Write), prevExist: true, ct).ConfigureAwait(false);
        return updated;
    }

    /// <summary>Turns auth on: 409 "already enabled", 409 without a root user; creates the guest role when missing.</summary>
    public async Task EnableAuthAsync(CancellationToken ct)
    {
        if (AuthEnabled)
        {
            throw new V2AuthError(409, "already enabled");
        }

        try
        {
            await GetUserQuorumAsync(RootRoleName, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is V2AuthError or V2Error)
        {
            throw new V2AuthError(409, "No root user available, please create one");
        }

        try
        {
            await ReadQuorumAsync("/roles/" + GuestRoleName, ct).ConfigureAwait(false);
        }
        catch (V2Error)
        {
            await CreateRoleAsync(GuestRole, ct).ConfigureAwait(false);
        }

        await SetAsync("/enabled", "true", prevExist: true, ct).ConfigureAwait(false);
    }

    /// <summary>Turns auth off: 409 "already disabled".</summary>
    public async Task DisableAuthAsync(CancellationToken ct)
    {
        if (!AuthEnabled)
        {
            throw new V2AuthError(409, "already disabled");
        }

        await SetAsync("/enabled", "false", prevExist: true, ct).ConfigureAwait(false);
    }

    /// <summary>True when <paramref name="password"/> matches the user's bcrypt hash.</summary>
    public static bool CheckPassword(V2User user, string password)
    {
        try
        {
            return !string.IsNullOrEmpty(user.Password) && BCrypt.Net.BCrypt.Verify(password, user.Password);
        }
        catch (BCrypt.Net.SaltParseException)
        {
            return false;
        }
    }

    /// <summary>etcd's <c>hasWriteRootAccess</c>: reads are open; other methods need root.</summary>
    public bool HasWriteRootAccess(HttpContext http)
        => http.Request.Method is "GET" or "HEAD" || HasRootAccess(http);

    /// <summary>etcd's <c>hasRootAccess</c>: auth off, or a user with the root role (basic auth, or the client certificate's CN with <c>--client-cert-auth</c>).</summary>
    public bool HasRootAccess(HttpContext http)
    {
        if (!AuthEnabled)
        {
            return true;
        }

        var user = http.Request.Headers.Authorization.Count == 0 && _server.Options.ClientTls.ClientCertAuth ? UserFromClientCertificate(http) : UserFromBasicAuth(http);
        return user?.Roles?.Contains(RootRoleName) ?? false;
    }

    /// <summary>etcd's <c>hasKeyPrefixAccess</c>: auth off, or a role of the user (or, without credentials, the guest role) grants access to <paramref name="key"/>.</summary>
    public bool HasKeyPrefixAccess(HttpContext http, string key, bool recursive)
    {
        if (!AuthEnabled)
        {
            return true;
        }

        var write = http.Request.Method is not ("GET" or "HEAD");
        V2User? user;
        if (http.Request.Headers.Authorization.Count == 0)
        {
            user = _server.Options.ClientTls.ClientCertAuth ? UserFromClientCertificate(http) : null;
            if (user is null)
            {
                try
                {
                    return GetRole(GuestRoleName).HasKeyAccess(key, write);
                }
                catch (Exception e) when (e is V2AuthError or V2Error or JsonException)
                {
                    return false;
                }
            }
        }
        else
        {
            user = UserFromBasicAuth(http);
            if (user is null)
            {
                return false;
            }
        }

        foreach (var roleName in user.Roles ?? [])
        {
            V2Role role;
            try
            {
                role = GetRole(roleName);
            }
            catch (Exception e) when (e is V2AuthError or V2Error or JsonException)
            {
                continue;
            }

            if (recursive ? role.HasRecursiveAccess(key, write) : role.HasKeyAccess(key, write))
            {
                return true;
            }
        }

        return false;
    }

    private V2User? UserFromBasicAuth(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
        }
        catch (FormatException)
        {
            return null;
        }

        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return null;
        }

        try
        {
            var user = GetUser(decoded[..colon]);
            return CheckPassword(user, decoded[(colon + 1)..]) ? user : null;
        }
        catch (Exception e) when (e is V2AuthError or V2Error or JsonException)
        {
            return null;
        }
    }

    private V2User? UserFromClientCertificate(HttpContext http)
    {
        var cert = http.Connection.ClientCertificate;
        var cn = cert?.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, forIssuer: false);
        if (string.IsNullOrEmpty(cn))
        {
            return null;
        }

        try
        {
            return GetUser(cn);
        }
        catch (Exception e) when (e is V2AuthError or V2Error or JsonException)
        {
            return null;
        }
    }

    private async Task<V2User> GetUserQuorumAsync(string name, CancellationToken ct)
    {
        try
        {
            return ParseUser(await ReadQuorumAsync("/users/" + name, ct).ConfigureAwait(false));
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            throw new V2AuthError(404, $"User {name} does not exist.");
        }
    }

    private static V2User ParseUser(string json)
    {
        var u = V2User.Read(Parse(json));
        return u.User == RootRoleName ? AttachRootRole(u) : u;
    }

    private static V2User AttachRootRole(V2User u)
        => u.Roles?.Contains(RootRoleName) == true ? u : u with { Roles = [.. u.Roles ?? [], RootRoleName] };

    private static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    private List<string> List(string dir)
    {
        try
        {
            var e = _server.V2Store.Get(PermsPrefix + dir, false, false);
            return (e.Node?.Nodes ?? []).Select(n => n.Key[(n.Key.LastIndexOf('/') + 1)..]).Order(StringComparer.Ordinal).ToList();
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            return [];
        }
    }

    private string Read(string res, Func<Exception> notFound)
    {
        try
        {
            return _server.V2Store.Get(PermsPrefix + res, false, false).Node?.Value ?? "";
        }
        catch (V2Error e) when (e.Code == V2Error.KeyNotFound)
        {
            throw notFound();
        }
    }

    private async Task<string> ReadQuorumAsync(string res, CancellationToken ct)
    {
        var resp = await _server.DoV2Async(new Request { Method = "QGET", Path = PermsPrefix + res }, ct).ConfigureAwait(false);
        return resp.Event?.Node?.Value ?? "";
    }

    /// <summary>etcd's <c>ensureAuthDirectories</c>: <c>/2</c>, <c>/2/users</c>, <c>/2/roles</c> and <c>/2/enabled=false</c>, created once.</summary>
    private async Task EnsureAuthDirectoriesAsync(CancellationToken ct)
    {
        if (_ensured)
        {
            return;
        }

        foreach (var res in new[] { PermsPrefix, PermsPrefix + "/users", PermsPrefix + "/roles" })
        {
            try
            {
                await _server.DoV2Async(new Request { Method = "PUT", Path = res, Dir = true, PrevExist = false }, ct).ConfigureAwait(false);
            }
            catch (V2Error e) when (e.Code == V2Error.NodeExist)
            {
            }
        }

        try
        {
            await _server.DoV2Async(new Request { Method = "PUT", Path = PermsPrefix + "/enabled", Val = "false", PrevExist = false }, ct).ConfigureAwait(false);
        }
        catch (V2Error e) when (e.Code == V2Error.NodeExist)
        {
        }

        _ensured = true;
    }

    private async Task SetAsync(string res, string value, bool prevExist, CancellationToken ct)
    {
        await EnsureAuthDirectoriesAsync(ct).ConfigureAwait(false);
        await _server.DoV2Async(new Request { Method = "PUT", Path = PermsPrefix + res, Val = value, PrevExist = prevExist }, ct).ConfigureAwait(false);
    }

    private async Task DeleteAsync(string res, CancellationToken ct)
    {
        await EnsureAuthDirectoriesAsync(ct).ConfigureAwait(false);
        await _server.DoV2Async(new Request { Method = "DELETE", Path = PermsPrefix + res, PrevExist = true }, ct).ConfigureAwait(false);
    }

    private static List<string> GrantList(List<string>? current, List<string>? add, string kind)
    {
        var set = new HashSet<string>(current ?? [], StringComparer.Ordinal);
        foreach (var p in add ?? [])
        {
            if (!set.Add(p))
            {
                throw new V2AuthError(409, $"Granting duplicate {kind} permission {p}");
            }
        }

        return set.Order(StringComparer.Ordinal).ToList(); // never null after a merge: Go's set.Values() is an empty slice, written []
    }

    private static List<string> RevokeList(List<string>? current, List<string>? remove)
    {
        var set = new HashSet<string>(current ?? [], StringComparer.Ordinal);
        foreach (var p in remove ?? [])
        {
            set.Remove(p);
        }

        return set.Order(StringComparer.Ordinal).ToList(); // never null after a merge: Go's set.Values() is an empty slice, written []
    }

    private static bool SameList(List<string>? a, List<string>? b)
        => a is null ? b is null : b is not null && a.SequenceEqual(b, StringComparer.Ordinal);
}
