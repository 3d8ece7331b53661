using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Etcd.Storage.Bolt;

namespace Etcd.Storage.Schema;

/// <summary>
/// One cluster member as etcd persists it (etcdserver/api/membership <c>Member</c>): the raft attributes
/// (peer URLs, learner flag) and the published attributes (name, client URLs).
/// </summary>
/// <param name="Id">The member ID (see <see cref="MemberIds.ComputeMemberId"/>).</param>
/// <param name="PeerUrls">Advertised peer URLs.</param>
/// <param name="Name">Member name; empty when not yet published.</param>
/// <param name="ClientUrls">Advertised client URLs; empty when not yet published.</param>
/// <param name="IsLearner">True for a raft learner.</param>
public sealed record MemberRecord(ulong Id, IReadOnlyList<string> PeerUrls, string Name, IReadOnlyList<string> ClientUrls, bool IsLearner = false)
{
    /// <summary>
    /// Go's <c>json.Marshal(member)</c>: <c>{"id":N,"peerURLs":[...],"isLearner":true,"name":"..","clientURLs":[..]}</c>
    /// with isLearner, name and clientURLs omitted when false/empty. This is the value of the <c>members</c>
    /// bucket and the context of the bootstrap ConfChangeAddNode entries.
    /// </summary>
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append("{\"id\":").Append(Id.ToString(CultureInfo.InvariantCulture)).Append(",\"peerURLs\":").AppendStringArray(PeerUrls);
        if (IsLearner)
        {
            sb.Append(",\"isLearner\":true");
        }
        if (!string.IsNullOrEmpty(Name))
        {
            sb.Append(",\"name\":").AppendString(Name);
        }
        if (ClientUrls.Count > 0)
        {
            sb.Append(",\"clientURLs\":").AppendStringArray(ClientUrls);
        }
        return sb.Append('}').ToString();
    }

    /// <summary>Go's <c>json.Marshal(m.RaftAttributes)</c>: <c>{"peerURLs":[...]}</c> (+ <c>"isLearner":true</c>), the v2 store's raftAttributes value.</summary>
    public string RaftAttributesJson()
    {
        var sb = new StringBuilder("{\"peerURLs\":").AppendStringArray(PeerUrls);
        if (IsLearner)
        {
            sb.Append(",\"isLearner\":true");
        }
        return sb.Append('}').ToString();
    }

    /// <summary>Parses member JSON as written by <see cref="ToJson"/> or by etcd.</summary>
    /// <exception cref="JsonException">Malformed JSON.</exception>
    public static MemberRecord FromJson(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var r = doc.RootElement;
        static List<string> Strings(JsonElement e, string name) =>
            e.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [];
        return new MemberRecord(
            r.TryGetProperty("id", out var id) ? id.GetUInt64() : 0,
            Strings(r, "peerURLs"),
            r.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "",
            Strings(r, "clientURLs"),
            r.TryGetProperty("isLearner", out var l) && l.GetBoolean());
    }
}

/// <summary>
/// Reads and writes etcd's membership buckets and meta keys inside a writable bbolt transaction
/// (etcd 3.5 <c>schema/membership.go</c>, <c>schema/cindex.go</c>). Not thread-safe beyond the transaction's own rules.
/// </summary>
public static class MembershipSchema
{
    /// <summary>The <c>members</c> bucket key of a member: <see cref="MemberIds.ToIdString"/> as ASCII.</summary>
    public static byte[] MemberKey(ulong id) => Encoding.ASCII.GetBytes(MemberIds.ToIdString(id));

    /// <summary>The value stored under a removed member's key in <c>members_removed</c>.</summary>
    public static ReadOnlySpan<byte> RemovedValue => "removed"u8;

    /// <summary>Creates the <c>members</c>, <c>members_removed</c> and <c>cluster</c> buckets when missing.</summary>
    public static void CreateBuckets(Tx tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        foreach (var b in Buckets.MembershipBuckets)
        {
            tx.CreateBucketIfNotExists(Encoding.ASCII.GetBytes(b));
        }
    }

    /// <summary>Deletes every key of <c>members</c> and <c>members_removed</c> (etcd 3.5's <c>TrimMembershipFromBackend</c>).</summary>
    public static void TrimMembership(Tx tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        foreach (var name in new[] { Buckets.Members, Buckets.MembersRemoved })
        {
            var b = tx.Bucket(Encoding.ASCII.GetBytes(name));
            if (b == null)
            {
                continue;
            }
            var keys = new List<byte[]>();
            b.ForEach((k, _) =>
            {
                keys.Add(k.ToArray());
                return true;
            });
            foreach (var k in keys)
            {
                b.Delete(k);
            }
        }
    }

    /// <summary>Writes <paramref name="member"/> into <c>members</c> (etcd's <c>mustSaveMemberToBackend</c>); the bucket must exist.</summary>
    public static void PutMember(Tx tx, MemberRecord member)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(member);
        var b = tx.Bucket(Encoding.ASCII.GetBytes(Buckets.Members)) ?? throw new InvalidOperationException("members bucket missing");
        b.Put(MemberKey(member.Id), Encoding.UTF8.GetBytes(member.ToJson()));
    }

    /// <summary>Members stored in <c>members</c>, and the IDs in <c>members_removed</c>.</summary>
    public static (List<MemberRecord> Members, List<ulong> Removed) ReadMembers(Tx tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var members = new List<MemberRecord>();
        var removed = new List<ulong>();
        tx.Bucket(Encoding.ASCII.GetBytes(Buckets.Members))?.ForEach((_, v) =>
        {
            members.Add(MemberRecord.FromJson(v));
            return true;
        });
        tx.Bucket(Encoding.ASCII.GetBytes(Buckets.MembersRemoved))?.ForEach((k, _) =>
        {
            removed.Add(ulong.Parse(Encoding.ASCII.GetString(k), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            return true;
        });
        return (members, removed);
    }

    /// <summary>
    /// Writes <c>meta/consistent_index</c> and <c>meta/term</c> (8 bytes big-endian each; etcd 3.5's
    /// <c>UnsafeUpdateConsistentIndex</c>), creating <c>meta</c> when missing.
    /// </summary>
    public static void PutConsistentIndex(Tx tx, ulong index, ulong term)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var meta = tx.CreateBucketIfNotExists(Encoding.ASCII.GetBytes(Buckets.Meta));
        Span<byte> v = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(v, index);
        meta.Put(Encoding.ASCII.GetBytes(MetaKeys.ConsistentIndex), v);
        BinaryPrimitives.WriteUInt64BigEndian(v, term);
        meta.Put(Encoding.ASCII.GetBytes(MetaKeys.Term), v);
    }

    /// <summary>Reads an 8-byte big-endian <c>meta</c> value, or null when absent.</summary>
    public static ulong? ReadMetaUInt64(Tx tx, string key)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var v = tx.Bucket(Encoding.ASCII.GetBytes(Buckets.Meta))?.Get(Encoding.ASCII.GetBytes(key));
        return v is { Length: 8 } ? BinaryPrimitives.ReadUInt64BigEndian(v) : null;
    }
}
