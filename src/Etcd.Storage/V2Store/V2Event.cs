using System.Text;
using System.Text.Json;

namespace Etcd.Storage.V2Store;

/// <summary>
/// A node as the v2 API shows it (etcd's <c>NodeExtern</c>): key, value (files) or <see cref="Dir"/>, expiration
/// and TTL in whole seconds rounded up (keys with a TTL), children (recursive reads), and the indexes. Written
/// with Go's field order and <c>omitempty</c>.
/// </summary>
public sealed class V2NodeExtern
{
    /// <summary>The full path, e.g. <c>/1/foo</c> in the store (the HTTP layer trims the namespace).</summary>
    public string Key { get; set; } = "";

    /// <summary>The value of a file; null for directories.</summary>
    public string? Value { get; set; }

    /// <summary>True for a directory.</summary>
    public bool Dir { get; set; }

    /// <summary>Expiration in Unix nanoseconds; 0 when permanent.</summary>
    public long Expiration { get; set; }

    /// <summary>Seconds left, rounded up; 0 when permanent.</summary>
    public long Ttl { get; set; }

    /// <summary>Children (directories read with recursion or the listed level); null when not listed.</summary>
    public List<V2NodeExtern>? Nodes { get; set; }

    /// <summary>Store index of the last change.</summary>
    public ulong ModifiedIndex { get; set; }

    /// <summary>Store index of the creation.</summary>
    public ulong CreatedIndex { get; set; }

    /// <summary>A deep copy.</summary>
    public V2NodeExtern Clone() => new()
    {
        Key = Key,
        Value = Value,
        Dir = Dir,
        Expiration = Expiration,
        Ttl = Ttl,
        Nodes = Nodes?.Select(n => n.Clone()).ToList(),
        ModifiedIndex = ModifiedIndex,
        CreatedIndex = CreatedIndex,
    };

    /// <summary>Removes <paramref name="prefix"/> from this key and every child's (etcd's <c>trimNodeExternPrefix</c>).</summary>
    public void TrimPrefix(string prefix)
    {
        if (Key.StartsWith(prefix, StringComparison.Ordinal))
        {
            Key = Key[prefix.Length..];
        }

        if (Nodes is not null)
        {
            foreach (var n in Nodes)
            {
                n.TrimPrefix(prefix);
            }
        }
    }

    /// <summary>Writes the node as etcd does.</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        if (Key.Length > 0)
        {
            w.WriteString("key", Key);
        }

        if (Value is not null)
        {
            w.WriteString("value", Value);
        }

        if (Dir)
        {
            w.WriteBoolean("dir", true);
        }

        if (Expiration != 0)
        {
            w.WriteString("expiration", V2Json.FormatTime(Expiration));
        }

        if (Ttl != 0)
        {
            w.WriteNumber("ttl", Ttl);
        }

        if (Nodes is { Count: > 0 })
        {
            w.WritePropertyName("nodes");
            w.WriteStartArray();
            foreach (var n in Nodes)
            {
                n.Write(w);
            }

            w.WriteEndArray();
        }

        if (ModifiedIndex != 0)
        {
            w.WriteNumber("modifiedIndex", ModifiedIndex);
        }

        if (CreatedIndex != 0)
        {
            w.WriteNumber("createdIndex", CreatedIndex);
        }

        w.WriteEndObject();
    }

    /// <summary>Reads a node written by <see cref="Write"/> (or by etcd).</summary>
    public static V2NodeExtern Read(JsonElement e)
    {
        var n = new V2NodeExtern();
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "key": n.Key = p.Value.GetString() ?? ""; break;
                case "value": n.Value = p.Value.GetString(); break;
                case "dir": n.Dir = p.Value.GetBoolean(); break;
                case "expiration" when p.Value.ValueKind == JsonValueKind.String: n.Expiration = V2Json.ParseTime(p.Value.GetString()!); break;
                case "ttl": n.Ttl = p.Value.GetInt64(); break;
                case "nodes" when p.Value.ValueKind == JsonValueKind.Array: n.Nodes = p.Value.EnumerateArray().Select(Read).ToList(); break;
                case "modifiedIndex": n.ModifiedIndex = p.Value.GetUInt64(); break;
                case "createdIndex": n.CreatedIndex = p.Value.GetUInt64(); break;
            }
        }

        return n;
    }
}

/// <summary>
/// One change or read of the v2 store (etcd's <c>v2store.Event</c>): the action (<c>get</c>, <c>create</c>,
/// <c>set</c>, <c>update</c>, <c>delete</c>, <c>compareAndSwap</c>, <c>compareAndDelete</c>, <c>expire</c>),
/// the node after it, the node before it, and the store index when it happened (<c>X-Etcd-Index</c>, not in
/// the JSON). Events in the history are shared: clone before changing one.
/// </summary>
public sealed class V2Event
{
    /// <summary>Action names as etcd writes them.</summary>
    public const string Get = "get", Create = "create", Set = "set", Update = "update", Delete = "delete",
        CompareAndSwap = "compareAndSwap", CompareAndDelete = "compareAndDelete", Expire = "expire";

    /// <summary>The action.</summary>
    public string Action { get; set; } = "";

    /// <summary>The node after the action (for deletes, the key and indexes only).</summary>
    public V2NodeExtern? Node { get; set; }

    /// <summary>The node before the action, when there was one.</summary>
    public V2NodeExtern? PrevNode { get; set; }

    /// <summary>The store index when the event happened (header only).</summary>
    public ulong EtcdIndex { get; set; }

    /// <summary>True for a TTL refresh, which watchers do not see.</summary>
    public bool Refresh { get; set; }

    /// <summary>The modified index of the node: the event's place in the history.</summary>
    public ulong Index => Node?.ModifiedIndex ?? 0;

    /// <summary>True when the action created the node (HTTP 201).</summary>
    public bool IsCreated => Action == Create || (Action == Set && PrevNode is null);

    internal static V2Event New(string action, string key, ulong modified, ulong created) => new()
    {
        Action = action,
        Node = new V2NodeExtern { Key = key, ModifiedIndex = modified, CreatedIndex = created },
    };

    /// <summary>A deep copy (the refresh flag is not copied, as etcd's).</summary>
    public V2Event Clone() => new() { Action = Action, EtcdIndex = EtcdIndex, Node = Node?.Clone(), PrevNode = PrevNode?.Clone() };

    /// <summary>Writes the event as etcd does.</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("action", Action);
        if (Node is not null)
        {
            w.WritePropertyName("node");
            Node.Write(w);
        }

        if (PrevNode is not null)
        {
            w.WritePropertyName("prevNode");
            PrevNode.Write(w);
        }

        if (Refresh)
        {
            w.WriteBoolean("refresh", true);
        }

        w.WriteEndObject();
    }

    /// <summary>The event as JSON text (no newline).</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
        {
            Write(w);
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Reads an event written by <see cref="Write"/> (or by etcd).</summary>
    public static V2Event Read(JsonElement e)
    {
        var ev = new V2Event();
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "action": ev.Action = p.Value.GetString() ?? ""; break;
                case "node" when p.Value.ValueKind == JsonValueKind.Object: ev.Node = V2NodeExtern.Read(p.Value); break;
                case "prevNode" when p.Value.ValueKind == JsonValueKind.Object: ev.PrevNode = V2NodeExtern.Read(p.Value); break;
                case "refresh": ev.Refresh = p.Value.GetBoolean(); break;
            }
        }

        return ev;
    }
}
