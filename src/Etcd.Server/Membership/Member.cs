using System.Text.Json.Serialization;

namespace Etcd.Server.Membership;

/// <summary>
/// A cluster member as etcd's membership package keeps it (<c>etcdserver/api/membership/member.go</c>).
/// Serialised to JSON in the context of bootstrap conf-change entries with etcd's field names
/// (<c>id</c>, <c>peerURLs</c>, <c>isLearner</c>, <c>name</c>, <c>clientURLs</c>), so raft logs move
/// between etcd and us. Mutable only under <see cref="RaftCluster"/>'s lock.
/// </summary>
public sealed class Member
{
    /// <summary>Member ID.</summary>
    [JsonPropertyName("id")]
    public ulong Id { get; set; }

    /// <summary>Peer URLs, sorted.</summary>
    [JsonPropertyName("peerURLs")]
    public List<string> PeerUrls { get; set; } = [];

    /// <summary>Whether the member is a learner (non-voting).</summary>
    [JsonPropertyName("isLearner")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool IsLearner { get; set; }

    /// <summary>Human-readable name; empty until the member publishes its attributes.</summary>
    [JsonPropertyName("name")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public string? Name { get; set; }

    /// <summary>Client URLs; empty until the member publishes its attributes.</summary>
    [JsonPropertyName("clientURLs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? ClientUrls { get; set; }

    /// <summary>
    /// etcd's member ID: the first 8 bytes (big-endian) of SHA-1 over the sorted peer URLs, the cluster
    /// token and, when given, the Unix time of a runtime add (<c>membership.NewMember</c>).
    /// </summary>
    public static ulong ComputeId(IEnumerable<string> peerUrls, string clusterToken, long? unixSeconds = null)
        => Etcd.Storage.Schema.MemberIds.ComputeMemberId(peerUrls, clusterToken, unixSeconds);

    /// <summary>A copy detached from the cluster's lock.</summary>
    public Member Clone() => new()
    {
        Id = Id,
        PeerUrls = [.. PeerUrls],
        IsLearner = IsLearner,
        Name = Name,
        ClientUrls = ClientUrls is null ? null : [.. ClientUrls],
    };

    /// <summary>etcd's text form of an ID: lower-case hex without padding (<c>types.ID.String</c>).</summary>
    public static string IdString(ulong id) => Etcd.Storage.Schema.MemberIds.ToIdString(id);
}
