using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Etcd.Storage.Schema;

/// <summary>
/// etcd's derivation of member and cluster IDs (etcdserver/api/membership: <c>NewMember</c>,
/// <c>RaftCluster.genID</c>). Pure functions; thread-safe.
/// </summary>
public static class MemberIds
{
    /// <summary>
    /// A member's ID: the first 8 bytes (big-endian) of SHA-1 over the member's peer URLs sorted ordinally
    /// and concatenated, then the cluster token, then — for a member added at runtime — the Unix time in
    /// seconds as decimal text.
    /// </summary>
    /// <param name="peerUrls">The member's advertised peer URLs (any order).</param>
    /// <param name="clusterToken">The initial cluster token (<c>--initial-cluster-token</c>).</param>
    /// <param name="unixSeconds">The add time for runtime-added members; null for bootstrap members.</param>
    public static ulong ComputeMemberId(IEnumerable<string> peerUrls, string clusterToken, long? unixSeconds = null)
    {
        ArgumentNullException.ThrowIfNull(peerUrls);
        var sb = new StringBuilder();
        foreach (var u in peerUrls.OrderBy(u => u, StringComparer.Ordinal))
        {
            sb.Append(u);
        }
        sb.Append(clusterToken);
        if (unixSeconds is { } t)
        {
            sb.Append(t.ToString(CultureInfo.InvariantCulture));
        }
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
        SHA1.HashData(Encoding.UTF8.GetBytes(sb.ToString()), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }

    /// <summary>
    /// The cluster ID: the first 8 bytes (big-endian) of SHA-1 over the member IDs sorted ascending,
    /// each written as 8 bytes big-endian.
    /// </summary>
    public static ulong ComputeClusterId(IEnumerable<ulong> memberIds)
    {
        ArgumentNullException.ThrowIfNull(memberIds);
        var ids = memberIds.Order().ToArray();
        var b = new byte[8 * ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(8 * i), ids[i]);
        }
        return BinaryPrimitives.ReadUInt64BigEndian(SHA1.HashData(b));
    }

    /// <summary>etcd's <c>types.ID.String()</c>: lower-case hex without padding, e.g. <c>8e9e05c52164694d</c>.</summary>
    public static string ToIdString(ulong id) => id.ToString("x", CultureInfo.InvariantCulture);
}
