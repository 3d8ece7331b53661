using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Etcd.Server.Membership;

/// <summary>
/// The cluster's membership and version, as etcd's <c>membership.RaftCluster</c>: built from
/// <c>--initial-cluster</c> at bootstrap, then changed only by applied raft entries (conf changes and the
/// published attributes / cluster version). Thread-safe: reads take a snapshot under a lock.
/// </summary>
public sealed class RaftCluster
{
    private readonly object _lock = new();
    private readonly Dictionary<ulong, Member> _members = new();
    private readonly HashSet<ulong> _removed = new();

    /// <summary>Creates a cluster with a known ID and no members (restart: members come from the log).</summary>
    public RaftCluster(ulong clusterId, string token)
    {
        ClusterId = clusterId;
        Token = token;
    }

    /// <summary>The cluster ID.</summary>
    public ulong ClusterId { get; private set; }

    /// <summary>The initial cluster token.</summary>
    public string Token { get; }

    /// <summary>The cluster version (e.g. <c>3.4.0</c>) once set through raft; null before.</summary>
    public string? Version { get; private set; }

    /// <summary>
    /// Parses <c>--initial-cluster</c> (<c>name=url,name=url2,...</c>; a name may repeat for several URLs)
    /// into members with IDs derived from the URLs and <paramref name="token"/>, and the cluster ID derived
    /// from the sorted member IDs (<c>RaftCluster.genID</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Malformed entries or duplicate URLs, with etcd's wording.</exception>
    public static RaftCluster FromInitialCluster(string initialCluster, string token)
    {
        var byName = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var part in initialCluster.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1)
            {
                throw new ArgumentException($"--initial-cluster has invalid entry {part}: must be name=URL");
            }

            var name = part[..eq];
            var url = part[(eq + 1)..];
            if (!Uri.TryCreate(url, UriKind.Absolute, out _))
            {
                throw new ArgumentException($"--initial-cluster has invalid URL {url}");
            }

            if (!byName.TryGetValue(name, out var list))
            {
                byName[name] = list = [];
                order.Add(name);
            }

            list.Add(url);
        }

        var cluster = new RaftCluster(0, token);
        foreach (var name in order)
        {
            var urls = byName[name].OrderBy(u => u, StringComparer.Ordinal).ToList();
            var m = new Member { Id = Member.ComputeId(urls, token), Name = name, PeerUrls = urls };
            if (cluster._members.ContainsKey(m.Id))
            {
                throw new ArgumentException($"member count is unequal");
            }

            cluster._members[m.Id] = m;
        }

        cluster.ClusterId = ComputeClusterId(cluster._members.Keys);
        return cluster;
    }

    /// <summary>etcd's cluster ID: SHA-1 over the sorted member IDs (8 bytes big-endian each), first 8 bytes.</summary>
    public static ulong ComputeClusterId(IEnumerable<ulong> memberIds)
    {
        var ids = memberIds.OrderBy(i => i).ToArray();
        var b = new byte[8 * ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(8 * i), ids[i]);
        }

        return BinaryPrimitives.ReadUInt64BigEndian(SHA1.HashData(b));
    }

    /// <summary>The member named <paramref name="name"/>, or null.</summary>
    public Member? FindByName(string name)
    {
        lock (_lock)
        {
            return _members.Values.FirstOrDefault(m => m.Name == name)?.Clone();
        }
    }

    /// <summary>A snapshot of the members, ordered by ID.</summary>
    public IReadOnlyList<Member> Members()
    {
        lock (_lock)
        {
            return _members.Values.OrderBy(m => m.Id).Select(m => m.Clone()).ToList();
        }
    }

    /// <summary>The member with <paramref name="id"/>, or null.</summary>
    public Member? Find(ulong id)
    {
        lock (_lock)
        {
            return _members.TryGetValue(id, out var m) ? m.Clone() : null;
        }
    }

    /// <summary>Adds (or replaces) a member; applied from a ConfChangeAddNode/AddLearnerNode entry.</summary>
    public void AddMember(Member m)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(m.Id, out var existing))
            {
                existing.PeerUrls = m.PeerUrls;
                existing.IsLearner = m.IsLearner;
                existing.Name ??= m.Name;
                return;
            }

            _members[m.Id] = m.Clone();
        }
    }

    /// <summary>Removes a member; applied from a ConfChangeRemoveNode entry.</summary>
    public void RemoveMember(ulong id)
    {
        lock (_lock)
        {
            _members.Remove(id);
            _removed.Add(id);
        }
    }

    /// <summary>Whether <paramref name="id"/> was removed from the cluster.</summary>
    public bool IsRemoved(ulong id)
    {
        lock (_lock)
        {
            return _removed.Contains(id);
        }
    }

    /// <summary>Sets a member's published name and client URLs (etcd's <c>/0/members/{id}/attributes</c>).</summary>
    public void UpdateAttributes(ulong id, string? name, IReadOnlyList<string>? clientUrls)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(id, out var m))
            {
                m.Name = name;
                m.ClientUrls = clientUrls?.ToList() ?? [];
            }
        }
    }

    /// <summary>Sets the cluster version (applied from etcd's <c>/0/version</c> request).</summary>
    public void SetVersion(string version)
    {
        lock (_lock)
        {
            Version = version;
        }
    }

    /// <summary>Adopts the cluster ID found in the WAL metadata on restart.</summary>
    public void SetClusterId(ulong id) => ClusterId = id;
}
