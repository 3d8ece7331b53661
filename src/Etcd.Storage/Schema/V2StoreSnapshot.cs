using System.Globalization;
using System.Text;

namespace Etcd.Storage.Schema;

/// <summary>
/// Builds the v2 store JSON that etcd keeps as the data of its raft snapshots (<c>v2store.Store.Save</c>) for a
/// store that holds only the bootstrap members, as <c>etcdctl snapshot restore</c> / <c>etcdutl snapshot restore</c>
/// write it: directories <c>/0</c> (cluster) and <c>/1</c> (keys) at index 0, then one create of
/// <c>/0/members/ID/raftAttributes</c> per member at indexes 1..N (members in the given order), with the
/// matching watcher-hub event history (capacity 1000) and store stats. Pure; thread-safe.
/// </summary>
public static class V2StoreSnapshot
{
    private const int EventHistoryCapacity = 1000;
    private const string ZeroTime = "0001-01-01T00:00:00Z";

    /// <summary>The JSON bytes (UTF-8) for <paramref name="members"/>, created in list order.</summary>
    /// <exception cref="ArgumentException">More members than the event history holds.</exception>
    public static byte[] BuildMembersOnly(IReadOnlyList<MemberRecord> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count > EventHistoryCapacity)
        {
            throw new ArgumentException("too many members", nameof(members));
        }
        var n = members.Count;
        var sb = new StringBuilder();
        sb.Append("{\"Root\":");
        Dir(sb, "/", 0, () =>
        {
            sb.Append("\"0\":");
            Dir(sb, "/0", 0, () =>
            {
                if (n == 0)
                {
                    return;
                }
                sb.Append("\"members\":");
                Dir(sb, "/0/members", 1, () =>
                {
                    // Go marshals map keys sorted
                    var ordered = members.Select((m, i) => (m, Index: i + 1))
                        .OrderBy(x => MemberIds.ToIdString(x.m.Id), StringComparer.Ordinal).ToList();
                    for (var i = 0; i < ordered.Count; i++)
                    {
                        if (i > 0)
                        {
                            sb.Append(',');
                        }
                        var (m, idx) = ordered[i];
                        var id = MemberIds.ToIdString(m.Id);
                        sb.AppendString(id).Append(':');
                        Dir(sb, "/0/members/" + id, idx, () =>
                        {
                            sb.Append("\"raftAttributes\":");
                            Leaf(sb, "/0/members/" + id + "/raftAttributes", idx, m.RaftAttributesJson());
                        });
                    }
                });
            });
            sb.Append(",\"1\":");
            Dir(sb, "/1", 0, static () => { });
        });
        sb.Append(",\"WatcherHub\":{\"EventHistory\":{\"Queue\":{\"Events\":[");
        for (var i = 0; i < EventHistoryCapacity; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }
            if (i < n)
            {
                var m = members[i];
                var key = "/0/members/" + MemberIds.ToIdString(m.Id) + "/raftAttributes";
                var idx = (i + 1).ToString(CultureInfo.InvariantCulture);
                sb.Append("{\"action\":\"create\",\"node\":{\"key\":").AppendString(key)
                    .Append(",\"value\":").AppendString(m.RaftAttributesJson())
                    .Append(",\"modifiedIndex\":").Append(idx).Append(",\"createdIndex\":").Append(idx).Append("}}");
            }
            else
            {
                sb.Append("null");
            }
        }
        sb.Append("],\"Size\":").Append(n).Append(",\"Front\":0,\"Back\":").Append(n)
            .Append(",\"Capacity\":").Append(EventHistoryCapacity).Append("},\"StartIndex\":").Append(n == 0 ? 0 : 1)
            .Append(",\"LastIndex\":").Append(n).Append("}},\"CurrentIndex\":").Append(n)
            .Append(",\"Stats\":{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,")
            .Append("\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":").Append(n)
            .Append(",\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,")
            .Append("\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0},\"CurrentVersion\":2}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>
    /// The v2 store JSON of a running member's membership, as etcd 3.4 keeps it in the data of its raft snapshots:
    /// <c>/0/members/ID/raftAttributes</c> and (when published) <c>/0/members/ID/attributes</c>,
    /// <c>/0/removed_members/ID</c>, <c>/0/version</c>, and an empty <c>/1</c>; every node at index 0, no event
    /// history. Real etcd recovers its membership from it; <see cref="ReadMembership"/> reads it back.
    /// </summary>
    public static byte[] BuildMembership(IReadOnlyList<MemberRecord> members, IReadOnlyList<ulong> removed, string? version)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(removed);
        var sb = new StringBuilder();
        sb.Append("{\"Root\":");
        Dir(sb, "/", 0, () =>
        {
            sb.Append("\"0\":");
            Dir(sb, "/0", 0, () =>
            {
                var first = true;
                void Sep()
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }

                    first = false;
                }

                if (members.Count > 0)
                {
                    Sep();
                    sb.Append("\"members\":");
                    Dir(sb, "/0/members", 0, () =>
                    {
                        var ordered = members.OrderBy(m => MemberIds.ToIdString(m.Id), StringComparer.Ordinal).ToList();
                        for (var i = 0; i < ordered.Count; i++)
                        {
                            if (i > 0)
                            {
                                sb.Append(',');
                            }

                            var m = ordered[i];
                            var id = MemberIds.ToIdString(m.Id);
                            sb.AppendString(id).Append(':');
                            Dir(sb, "/0/members/" + id, 0, () =>
                            {
                                if (!string.IsNullOrEmpty(m.Name) || m.ClientUrls.Count > 0)
                                {
                                    var attrs = new StringBuilder("{");
                                    if (!string.IsNullOrEmpty(m.Name))
                                    {
                                        attrs.Append("\"name\":").AppendString(m.Name);
                                    }

                                    if (m.ClientUrls.Count > 0)
                                    {
                                        attrs.Append(attrs.Length > 1 ? "," : "").Append("\"clientURLs\":").AppendStringArray(m.ClientUrls);
                                    }

                                    sb.Append("\"attributes\":");
                                    Leaf(sb, "/0/members/" + id + "/attributes", 0, attrs.Append('}').ToString());
                                    sb.Append(',');
                                }

                                sb.Append("\"raftAttributes\":");
                                Leaf(sb, "/0/members/" + id + "/raftAttributes", 0, m.RaftAttributesJson());
                            });
                        }
                    });
                }

                if (removed.Count > 0)
                {
                    Sep();
                    sb.Append("\"removed_members\":");
                    Dir(sb, "/0/removed_members", 0, () =>
                    {
                        var ids = removed.Select(MemberIds.ToIdString).Order(StringComparer.Ordinal).ToList();
                        for (var i = 0; i < ids.Count; i++)
                        {
                            if (i > 0)
                            {
                                sb.Append(',');
                            }

                            sb.AppendString(ids[i]).Append(':');
                            Leaf(sb, "/0/removed_members/" + ids[i], 0, "removed");
                        }
                    });
                }

                if (!string.IsNullOrEmpty(version))
                {
                    Sep();
                    sb.Append("\"version\":");
                    Leaf(sb, "/0/version", 0, version);
                }
            });
            sb.Append(",\"1\":");
            Dir(sb, "/1", 0, static () => { });
        });
        sb.Append(",\"WatcherHub\":{\"EventHistory\":{\"Queue\":{\"Events\":[");
        for (var i = 0; i < EventHistoryCapacity; i++)
        {
            sb.Append(i > 0 ? ",null" : "null");
        }

        sb.Append("],\"Size\":0,\"Front\":0,\"Back\":0,\"Capacity\":").Append(EventHistoryCapacity)
            .Append("},\"StartIndex\":0,\"LastIndex\":0}},\"CurrentIndex\":0")
            .Append(",\"Stats\":{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,")
            .Append("\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":0")
            .Append(",\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,")
            .Append("\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0},\"CurrentVersion\":2}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>
    /// Reads the membership out of v2 store JSON (etcd's snapshot data, or <see cref="BuildMembership"/>'s):
    /// members from <c>/0/members</c> (raft attributes and published attributes), removed IDs from
    /// <c>/0/removed_members</c>, the cluster version from <c>/0/version</c> (null when absent).
    /// </summary>
    /// <exception cref="System.Text.Json.JsonException">Not v2 store JSON.</exception>
    public static (List<MemberRecord> Members, List<ulong> Removed, string? Version) ReadMembership(ReadOnlySpan<byte> json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json.ToArray());
        var members = new List<MemberRecord>();
        var removed = new List<ulong>();
        string? version = null;
        if (!Child(doc.RootElement.GetProperty("Root"), "0", out var zero))
        {
            return (members, removed, version);
        }

        if (Child(zero, "members", out var ms))
        {
            foreach (var m in ms.GetProperty("Children").EnumerateObject())
            {
                var id = ulong.Parse(m.Name, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var raft = Child(m.Value, "raftAttributes", out var ra) ? ra.GetProperty("Value").GetString() ?? "{}" : "{}";
                var attrs = Child(m.Value, "attributes", out var at) ? at.GetProperty("Value").GetString() ?? "{}" : "{}";
                var r = MemberRecord.FromJson(Encoding.UTF8.GetBytes(raft));
                var a = MemberRecord.FromJson(Encoding.UTF8.GetBytes(attrs));
                members.Add(new MemberRecord(id, r.PeerUrls, a.Name, a.ClientUrls, r.IsLearner));
            }
        }

        if (Child(zero, "removed_members", out var rm))
        {
            foreach (var r in rm.GetProperty("Children").EnumerateObject())
            {
                removed.Add(ulong.Parse(r.Name, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }

        if (Child(zero, "version", out var v))
        {
            version = v.GetProperty("Value").GetString();
        }

        return (members, removed, version);

        static bool Child(System.Text.Json.JsonElement node, string name, out System.Text.Json.JsonElement child)
        {
            child = default;
            return node.TryGetProperty("Children", out var c) && c.ValueKind == System.Text.Json.JsonValueKind.Object && c.TryGetProperty(name, out child);
        }
    }

    private static void Dir(StringBuilder sb, string path, int index, Action children)
    {
        Head(sb, path, index, "");
        sb.Append(",\"Children\":{");
        children();
        sb.Append("}}");
    }

    private static void Leaf(StringBuilder sb, string path, int index, string value)
    {
        Head(sb, path, index, value);
        sb.Append(",\"Children\":null}");
    }

    private static void Head(StringBuilder sb, string path, int index, string value)
    {
        sb.Append("{\"Path\":").AppendString(path).Append(",\"CreatedIndex\":").Append(index)
            .Append(",\"ModifiedIndex\":").Append(index).Append(",\"ExpireTime\":\"").Append(ZeroTime)
            .Append("\",\"Value\":").AppendString(value);
    }
}
