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
