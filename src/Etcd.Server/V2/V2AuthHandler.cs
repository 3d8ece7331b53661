using System.Text.Json;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.V2Store;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.V2;

/// <summary>
/// etcd's <c>/v2/auth</c> endpoints (<c>v2http/client_auth.go</c>): <c>/v2/auth/users[/NAME]</c>,
/// <c>/v2/auth/roles[/NAME]</c> (GET, PUT, DELETE; root access once auth is on) and <c>/v2/auth/enable</c>
/// (GET state, PUT enable, DELETE disable). Bodies as etcd's (passwords never answered). Thread-safe.
/// </summary>
public sealed class V2AuthHandler
{
    private readonly EtcdServer _server;

    /// <summary>Serves <paramref name="server"/>'s v2 auth.</summary>
    public V2AuthHandler(EtcdServer server)
    {
        _server = server;
        Store = new V2AuthStore(server);
    }

    /// <summary>The auth store the keys and members endpoints check access with.</summary>
    public V2AuthStore Store { get; }

    /// <summary>True for the paths under <c>/v2/auth</c> that etcd routes.</summary>
    public static bool IsAuthPath(string path)
        => path is "/v2/auth/roles" or "/v2/auth/users" or "/v2/auth/enable"
            || path.StartsWith("/v2/auth/roles/", StringComparison.Ordinal) || path.StartsWith("/v2/auth/users/", StringComparison.Ordinal);

    /// <summary>Serves one <c>/v2/auth</c> request.</summary>
    public async Task HandleAsync(HttpContext http, string path)
    {
        try
        {
            if (path == "/v2/auth/enable")
            {
                await EnableDisableAsync(http).ConfigureAwait(false);
                return;
            }

            var isRoles = path.StartsWith("/v2/auth/roles", StringComparison.Ordinal);
            var pieces = V2Store.Clean(path["/v2/auth".Length..]).Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (pieces.Length == 1)
            {
                await (isRoles ? BaseRolesAsync(http) : BaseUsersAsync(http)).ConfigureAwait(false);
                return;
            }

            if (pieces.Length != 2)
            {
                await V2HttpHandler.WriteHttpErrorAsync(http, 400, "Invalid path").ConfigureAwait(false);
                return;
            }

            await (isRoles ? ForRoleAsync(http, pieces[1]) : ForUserAsync(http, pieces[1])).ConfigureAwait(false);
        }
        catch (V2AuthError e)
        {
            await V2HttpHandler.WriteHttpErrorAsync(http, e.Status, e.Message).ConfigureAwait(false);
        }
        catch (V2Error e)
        {
            await V2HttpHandler.WriteV2ErrorAsync(http, e).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await V2HttpHandler.WriteHttpErrorAsync(http, 500, e.Detail).ConfigureAwait(false);
        }
    }

    /// <summary>etcd's answer to a request without the credentials it needs: 401 <c>{"message":"Insufficient credentials"}</c>.</summary>
    public static Task WriteNoAuthAsync(HttpContext http) => V2HttpHandler.WriteHttpErrorAsync(http, 401, "Insufficient credentials");

    private async Task<bool> PrologueAsync(HttpContext http, bool writeOnlyNeedsRoot, params string[] methods)
    {
        if (!await V2HttpHandler.AllowMethodAsync(http, methods).ConfigureAwait(false))
        {
            return false;
        }

        if (!(writeOnlyNeedsRoot ? Store.HasWriteRootAccess(http) : Store.HasRootAccess(http)))
        {
            await WriteNoAuthAsync(http).ConfigureAwait(false);
            return false;
        }

        http.Response.Headers["X-Etcd-Cluster-ID"] = Membership.Member.IdString(_server.Cluster.ClusterId);
        http.Response.ContentType = "application/json";
        return true;
    }

    private async Task BaseRolesAsync(HttpContext http)
    {
        if (!await PrologueAsync(http, false, "GET").ConfigureAwait(false))
        {
            return;
        }

        var roles = Store.AllRoles().Select(Store.GetRole).ToList();
        await V2HttpHandler.WriteJsonAsync(http, 200, w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("roles");
            if (roles.Count == 0)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartArray();
                foreach (var r in roles)
                {
                    r.Write(w);
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }, newline: true).ConfigureAwait(false);
    }

    private async Task BaseUsersAsync(HttpContext http)
    {
        if (!await PrologueAsync(http, false, "GET").ConfigureAwait(false))
        {
            return;
        }

        var users = Store.AllUsers().Select(Store.GetUser).ToList();
        await V2HttpHandler.WriteJsonAsync(http, 200, w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("users");
            if (users.Count == 0)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStartArray();
                foreach (var u in users)
                {
                    WriteUserWithRoles(w, u, skipMissingRoles: true);
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }, newline: true).ConfigureAwait(false);
    }

    private void WriteUserWithRoles(Utf8JsonWriter w, V2User u, bool skipMissingRoles)
    {
        var roles = new List<V2Role>();
        foreach (var name in u.Roles ?? [])
        {
            try
            {
                roles.Add(Store.GetRole(name));
            }
            catch (V2AuthError) when (skipMissingRoles)
            {
            }
        }

        w.WriteStartObject();
        w.WriteString("user", u.User);
        if (roles.Count > 0)
        {
            w.WritePropertyName("roles");
            w.WriteStartArray();
            foreach (var r in roles)
            {
                r.Write(w);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }

    private async Task ForRoleAsync(HttpContext http, string role)
    {
        if (!await PrologueAsync(http, false, "GET", "PUT", "DELETE").ConfigureAwait(false))
        {
            return;
        }

        switch (http.Request.Method)
        {
            case "GET":
                var data = Store.GetRole(role);
                await V2HttpHandler.WriteJsonAsync(http, 200, data.Write, newline: true).ConfigureAwait(false);
                return;
            case "PUT":
                V2Role input;
                try
                {
                    using var doc = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false);
                    input = V2Role.Read(doc.RootElement);
                }
                catch (Exception e) when (e is JsonException or InvalidOperationException)
                {
                    await V2HttpHandler.WriteHttpErrorAsync(http, 400, "Invalid JSON in request body.").ConfigureAwait(false);
                    return;
                }

                if (input.Role != role)
                {
                    await V2HttpHandler.WriteHttpErrorAsync(http, 400, "Role JSON name does not match the name in the URL").ConfigureAwait(false);
                    return;
                }

                if ((input.Grant?.IsEmpty ?? true) && (input.Revoke?.IsEmpty ?? true))
                {
                    await Store.CreateRoleAsync(input, http.RequestAborted).ConfigureAwait(false);
                    await V2HttpHandler.WriteJsonAsync(http, 201, input.Write, newline: true).ConfigureAwait(false);
                    return;
                }

                if (!input.Permissions.IsEmpty)
                {
                    await V2HttpHandler.WriteHttpErrorAsync(http, 400, "Role JSON contains both permissions and grant/revoke").ConfigureAwait(false);
                    return;
                }

                var updated = await Store.UpdateRoleAsync(input, http.RequestAborted).ConfigureAwait(false);
                await V2HttpHandler.WriteJsonAsync(http, 200, updated.Write, newline: true).ConfigureAwait(false);
                return;
            default:
                await Store.DeleteRoleAsync(role, http.RequestAborted).ConfigureAwait(false);
                return;
        }
    }

    private async Task ForUserAsync(HttpContext http, string user)
    {
        if (!await PrologueAsync(http, false, "GET", "PUT", "DELETE").ConfigureAwait(false))
        {
            return;
        }

        switch (http.Request.Method)
        {
            case "GET":
                var u = Store.GetUser(user);
                _ = (u.Roles ?? []).Select(Store.GetRole).ToList();
                await V2HttpHandler.WriteJsonAsync(http, 200, w => WriteUserWithRoles(w, u, skipMissingRoles: false), newline: true).ConfigureAwait(false);
                return;
            case "PUT":
                V2User input;
                try
                {
                    using var doc = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false);
                    input = V2User.Read(doc.RootElement);
                }
                catch (Exception e) when (e is JsonException or InvalidOperationException)
                {
                    await V2HttpHandler.WriteHttpErrorAsync(http, 400, "Invalid JSON in request body.").ConfigureAwait(false);
                    return;
                }

                if (input.User != user)
                {
                    await V2HttpHandler.WriteHttpErrorAsync(http, 400, "User JSON name does not match the name in the URL").ConfigureAwait(false);
                    return;
                }

                V2User output;
                var created = false;
                if ((input.Grant?.Count ?? 0) == 0 && (input.Revoke?.Count ?? 0) == 0)
                {
                    if ((input.Roles?.Count ?? 0) != 0)
                    {
                        output = await Store.CreateUserAsync(input, http.RequestAborted).ConfigureAwait(false);
                        created = true;
                    }
                    else
                    {
                        (output, created) = await Store.CreateOrUpdateUserAsync(input, http.RequestAborted).ConfigureAwait(false);
                    }
                }
                else
                {
                    if ((input.Roles?.Count ?? 0) != 0)
                    {
                        await V2HttpHandler.WriteHttpErrorAsync(http, 400, "User JSON contains both roles and grant/revoke").ConfigureAwait(false);
                        return;
                    }

                    output = await Store.UpdateUserAsync(input, http.RequestAborted).ConfigureAwait(false);
                }

                output = output with { Password = null, Grant = null, Revoke = null };
                await V2HttpHandler.WriteJsonAsync(http, created ? 201 : 200, output.Write, newline: true).ConfigureAwait(false);
                return;
            default:
                await Store.DeleteUserAsync(user, http.RequestAborted).ConfigureAwait(false);
                return;
        }
    }

    private async Task EnableDisableAsync(HttpContext http)
    {
        if (!await PrologueAsync(http, true, "GET", "PUT", "DELETE").ConfigureAwait(false))
        {
            return;
        }

        switch (http.Request.Method)
        {
            case "GET":
                var enabled = Store.AuthEnabled;
                await V2HttpHandler.WriteJsonAsync(http, 200, w =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("enabled", enabled);
                    w.WriteEndObject();
                }, newline: true).ConfigureAwait(false);
                return;
            case "PUT":
                await Store.EnableAuthAsync(http.RequestAborted).ConfigureAwait(false);
                return;
            default:
                await Store.DisableAuthAsync(http.RequestAborted).ConfigureAwait(false);
                return;
        }
    }
}
