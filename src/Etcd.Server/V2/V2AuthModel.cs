using System.Text.Json;

namespace Etcd.Server.V2;

/// <summary>
/// A v2 auth error (etcd's <c>v2auth.Error</c>): an HTTP status and a message starting <c>auth: </c>, answered as
/// <c>{"message":"..."}</c>.
/// </summary>
public sealed class V2AuthError(int status, string message) : Exception("auth: " + message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
}

/// <summary>
/// Read and write permissions on key patterns (etcd's <c>RWPermission</c>): a pattern ending in <c>*</c> matches
/// a prefix, any other only that key. Null lists stay null in JSON, as Go's nil slices.
/// </summary>
public sealed record V2RwPermission(List<string>? Read, List<string>? Write)
{
    /// <summary>True when a pattern of the read (or write) list matches <paramref name="key"/>.</summary>
    public bool HasAccess(string key, bool write)
        => (write ? Write : Read)?.Any(p => p.Length > 0 && (p[^1] == '*' ? key.StartsWith(p[..^1], StringComparison.Ordinal) : key == p)) ?? false;

    /// <summary>True when a prefix pattern (ending in <c>*</c>) of the list covers <paramref name="key"/> and below.</summary>
    public bool HasRecursiveAccess(string key, bool write)
        => (write ? Write : Read)?.Any(p => p.Length > 0 && p[^1] == '*' && key.StartsWith(p[..^1], StringComparison.Ordinal)) ?? false;

    internal void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        V2AuthJson.WriteList(w, "read", Read);
        V2AuthJson.WriteList(w, "write", Write);
        w.WriteEndObject();
    }

    internal static V2RwPermission ReadJson(JsonElement e)
        => new(V2AuthJson.ReadList(e, "read"), V2AuthJson.ReadList(e, "write"));

    internal bool IsEmpty => (Read?.Count ?? 0) == 0 && (Write?.Count ?? 0) == 0;
}

/// <summary>A v2 user (etcd's <c>v2auth.User</c>): name, bcrypt hash (never answered), roles, and the grant/revoke lists of an update request.</summary>
public sealed record V2User(string User, string? Password, List<string>? Roles, List<string>? Grant = null, List<string>? Revoke = null)
{
    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("user", User);
        if (!string.IsNullOrEmpty(Password))
        {
            w.WriteString("password", Password);
        }

        V2AuthJson.WriteList(w, "roles", Roles);
        if (Grant is { Count: > 0 })
        {
            V2AuthJson.WriteList(w, "grant", Grant);
        }

        if (Revoke is { Count: > 0 })
        {
            V2AuthJson.WriteList(w, "revoke", Revoke);
        }

        w.WriteEndObject();
    }

    internal static V2User Read(JsonElement e) => new(
        V2AuthJson.ReadString(e, "user"),
        V2AuthJson.ReadString(e, "password"),
        V2AuthJson.ReadList(e, "roles"),
        V2AuthJson.ReadList(e, "grant"),
        V2AuthJson.ReadList(e, "revoke"));
}

/// <summary>A v2 role (etcd's <c>v2auth.Role</c>): name, key permissions, and the grant/revoke of an update request.</summary>
public sealed record V2Role(string Role, V2RwPermission Permissions, V2RwPermission? Grant = null, V2RwPermission? Revoke = null)
{
    /// <summary>Key access (root has all).</summary>
    public bool HasKeyAccess(string key, bool write) => Role == V2AuthStore.RootRoleName || Permissions.HasAccess(key, write);

    /// <summary>Recursive key access (root has all).</summary>
    public bool HasRecursiveAccess(string key, bool write) => Role == V2AuthStore.RootRoleName || Permissions.HasRecursiveAccess(key, write);

    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("role", Role);
        w.WritePropertyName("permissions");
        WritePerms(w, Permissions);
        if (Grant is not null)
        {
            w.WritePropertyName("grant");
            WritePerms(w, Grant);
        }

        if (Revoke is not null)
        {
            w.WritePropertyName("revoke");
            WritePerms(w, Revoke);
        }

        w.WriteEndObject();
    }

    private static void WritePerms(Utf8JsonWriter w, V2RwPermission p)
    {
        w.WriteStartObject();
        w.WritePropertyName("kv");
        p.WriteJson(w);
        w.WriteEndObject();
    }

    internal static V2Role Read(JsonElement e) => new(
        V2AuthJson.ReadString(e, "role"),
        ReadPerms(e, "permissions") ?? new V2RwPermission(null, null),
        ReadPerms(e, "grant"),
        ReadPerms(e, "revoke"));

    private static V2RwPermission? ReadPerms(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var p) || p.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (p.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException($"{name} is not an object");
        }

        return p.TryGetProperty("kv", out var kv) && kv.ValueKind == JsonValueKind.Object ? V2RwPermission.ReadJson(kv) : new V2RwPermission(null, null);
    }
}

/// <summary>JSON helpers of the v2 auth types: Go's nil slices as <c>null</c>, strict types as Go's decoder.</summary>
internal static class V2AuthJson
{
    public static void WriteList(Utf8JsonWriter w, string name, List<string>? list)
    {
        w.WritePropertyName(name);
        if (list is null)
        {
            w.WriteNullValue();
            return;
        }

        w.WriteStartArray();
        foreach (var s in list)
        {
            w.WriteStringValue(s);
        }

        w.WriteEndArray();
    }

    public static List<string>? ReadList(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw new JsonException($"{name} is not an array");
        }

        return v.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new JsonException($"{name} holds a non-string")).ToList();
    }

    public static string ReadString(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return "";
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new JsonException($"{name} is not a string");
    }

    public static string Serialize(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, Storage.V2Store.V2Json.WriterOptions))
        {
            write(w);
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
