using System.Text;
using System.Text.Json;

namespace Etcd.Storage.V2Store;

public sealed partial class V2Store
{
    /// <summary>
    /// The whole store as etcd's snapshot JSON (Go's <c>json.Marshal</c> of <c>v2store.store</c>): <c>Root</c> (nodes
    /// with <c>Path</c>, indexes, <c>ExpireTime</c>, <c>Value</c>, <c>Children</c>), <c>WatcherHub.EventHistory</c>
    /// (the 1,000-slot ring), <c>CurrentIndex</c>, <c>Stats</c>, <c>CurrentVersion</c>. When
    /// <paramref name="replaceChildren"/> is given, those top-level children are written from the raw node JSON
    /// given instead of from the tree (the server keeps membership, <c>/0</c>, elsewhere).
    /// </summary>
    public byte[] Save(IReadOnlyDictionary<string, string>? replaceChildren = null)
    {
        lock (_lock)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
            {
                w.WriteStartObject();
                w.WritePropertyName("Root");
                WriteNode(w, _root, replaceChildren);
                w.WritePropertyName("WatcherHub");
                w.WriteStartObject();
                w.WritePropertyName("EventHistory");
                w.WriteStartObject();
                w.WritePropertyName("Queue");
                w.WriteStartObject();
                w.WritePropertyName("Events");
                w.WriteStartArray();
                foreach (var e in _history.Events)
                {
                    if (e is null)
                    {
                        w.WriteNullValue();
                    }
                    else
                    {
                        e.Write(w);
                    }
                }

                w.WriteEndArray();
                w.WriteNumber("Size", _history.Size);
                w.WriteNumber("Front", _history.Front);
                w.WriteNumber("Back", _history.Back);
                w.WriteNumber("Capacity", _history.Capacity);
                w.WriteEndObject();
                w.WriteNumber("StartIndex", _history.StartIndex);
                w.WriteNumber("LastIndex", _history.LastIndex);
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteNumber("CurrentIndex", _currentIndex);
                w.WritePropertyName("Stats");
                Stats.Write(w, 0);
                w.WriteNumber("CurrentVersion", 2);
                w.WriteEndObject();
            }

            return ms.ToArray();
        }
    }

    /// <summary>
    /// Replaces the whole store with snapshot JSON (etcd's or <see cref="Save"/>'s): the tree, TTLs, history,
    /// index and counters. Watchers are dropped (their channels complete). Missing namespaces are created.
    /// </summary>
    /// <exception cref="JsonException">Not v2 store JSON.</exception>
    public void Recover(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var r = doc.RootElement;
        V2Node root;
        var ttl = new List<V2Node>();
        try
        {
            root = ReadNode(r.GetProperty("Root"), null, ttl);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new JsonException("not v2 store JSON: " + e.Message, e);
        }

        var history = new V2EventHistory(HistoryCapacity);
        if (r.TryGetProperty("WatcherHub", out var hub) && hub.TryGetProperty("EventHistory", out var eh) && eh.TryGetProperty("Queue", out var q)
            && q.TryGetProperty("Events", out var events) && events.ValueKind == JsonValueKind.Array)
        {
            // Re-add in ring order so that our ring has etcd's capacity whatever the saved one was.
            var saved = events.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Object ? V2Event.Read(e) : null).ToList();
            var size = q.TryGetProperty("Size", out var sz) ? sz.GetInt32() : 0;
            var front = q.TryGetProperty("Front", out var fr) ? fr.GetInt32() : 0;
            for (var i = 0; i < size && saved.Count > 0; i++)
            {
                if (saved[(front + i) % saved.Count] is { } ev)
                {
                    history.Add(ev);
                }
            }
        }

        lock (_lock)
        {
            foreach (var list in _watchers.Values)
            {
                foreach (var w in list)
                {
                    w.Removed = true;
                    w.Complete();
                }
            }

            _watchers.Clear();
            Volatile.Write(ref _watcherCount, 0);
            _root = root;
            foreach (var ns in _namespaces)
            {
                var name = ns.TrimStart('/');
                if (!_root.Children!.ContainsKey(name))
                {
                    _root.Children[name] = new V2Node(ns, 0, _root, 0, null, dir: true);
                }
            }

            _ttlKeys.Clear();
            foreach (var n in ttl)
            {
                _ttlKeys.Add(n);
            }

            _history = history;
            _currentIndex = r.TryGetProperty("CurrentIndex", out var ci) ? ci.GetUInt64() : 0;
            Stats = r.TryGetProperty("Stats", out var st) && st.ValueKind == JsonValueKind.Object ? V2StoreStats.Read(st) : new V2StoreStats();
        }
    }

    private static void WriteNode(Utf8JsonWriter w, V2Node n, IReadOnlyDictionary<string, string>? replaceChildren)
    {
        w.WriteStartObject();
        w.WriteString("Path", n.Path);
        w.WriteNumber("CreatedIndex", n.CreatedIndex);
        w.WriteNumber("ModifiedIndex", n.ModifiedIndex);
        w.WriteString("ExpireTime", V2Json.FormatTime(n.ExpireTime));
        w.WriteString("Value", n.Value);
        w.WritePropertyName("Children");
        if (n.Children is null)
        {
            w.WriteNullValue();
        }
        else
        {
            w.WriteStartObject();
            var names = n.Children.Keys.ToList();
            if (replaceChildren is not null)
            {
                names = names.Union(replaceChildren.Keys).ToList();
            }

            // Go writes map keys sorted.
            names.Sort(StringComparer.Ordinal);
            foreach (var name in names)
            {
                w.WritePropertyName(name);
                if (replaceChildren is not null && replaceChildren.TryGetValue(name, out var raw))
                {
                    w.WriteRawValue(raw);
                }
                else
                {
                    WriteNode(w, n.Children[name], null);
                }
            }

            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static V2Node ReadNode(JsonElement e, V2Node? parent, List<V2Node> ttl)
    {
        var path = e.GetProperty("Path").GetString() ?? "/";
        var created = e.TryGetProperty("CreatedIndex", out var c) ? c.GetUInt64() : 0;
        var modified = e.TryGetProperty("ModifiedIndex", out var m) ? m.GetUInt64() : created;
        var expire = e.TryGetProperty("ExpireTime", out var x) && x.ValueKind == JsonValueKind.String ? V2Json.ParseTime(x.GetString()!) : 0;
        var value = e.TryGetProperty("Value", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : "";
        var isDir = e.TryGetProperty("Children", out var children) && children.ValueKind == JsonValueKind.Object;
        var n = new V2Node(path, created, parent, expire, value, isDir) { ModifiedIndex = modified };
        if (isDir)
        {
            foreach (var child in children.EnumerateObject())
            {
                n.Children![child.Name] = ReadNode(child.Value, n, ttl);
            }
        }

        if (expire != 0)
        {
            ttl.Add(n);
        }

        return n;
    }

    /// <summary>The snapshot JSON of a node subtree given by <paramref name="json"/>'s <c>Root.Children[name]</c>, raw; null when absent.</summary>
    public static string? RawTopLevelChild(ReadOnlySpan<byte> json, string name)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        return doc.RootElement.TryGetProperty("Root", out var root) && root.TryGetProperty("Children", out var ch)
            && ch.ValueKind == JsonValueKind.Object && ch.TryGetProperty(name, out var node)
            ? node.GetRawText()
            : null;
    }

    /// <summary>UTF-8 helper for tests and callers holding text.</summary>
    public void Recover(string json) => Recover(Encoding.UTF8.GetBytes(json));
}
