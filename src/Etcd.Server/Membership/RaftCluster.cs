
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
    public static ulong ComputeClusterId(IEnumerable<ulong> memberIds) => Etcd.Storage.Schema.MemberIds.ComputeClusterId(memberIds);

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

    /// <summary>Whether the member with <paramref name="id"/> is a learner (false when absent); copies nothing.</summary>
    public bool IsLearner(ulong id)
    {
        lock (_lock)
        {
            return _members.TryGetValue(id, out var m) && m.IsLearner;
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

    /// <summary>Sets a member's peer URLs (ConfChangeUpdateNode).</summary>
    public void UpdatePeerUrls(ulong id, IReadOnlyList<string> peerUrls)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(id, out var m))
            {
                m.PeerUrls = [.. peerUrls.OrderBy(u => u, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Turns a learner into a voting member (promote, applied from ConfChangeAddNode with <c>isPromote</c>).</summary>
    public void Promote(ulong id)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(id, out var m))
            {
                m.IsLearner = false;
            }
        }
    }

    /// <summary>
    /// Checks a conf change against the membership before it is applied, as etcd's
    /// <c>ValidateConfigurationChange</c>; returns the error (etcd's v3rpc mapping) or null when valid.
    /// </summary>
    /// <param name="type">The conf change type.</param>
    /// <param name="id">The member it concerns.</param>
    /// <param name="member">The member from the change's context (add, update), or null.</param>
    /// <param name="isPromote">Whether an AddNode promotes a learner.</param>
    public Etcd.Api.EtcdError? Validate(Raftpb.ConfChangeType type, ulong id, Member? member, bool isPromote)
    {
        lock (_lock)
        {
            if (_removed.Contains(id))
            {
                return Etcd.Api.EtcdErrors.MemberNotFound;
            }

            switch (type)
            {
                case Raftpb.ConfChangeType.ConfChangeAddNode when isPromote:
                    if (!_members.TryGetValue(id, out var l))
                    {
                        return Etcd.Api.EtcdErrors.MemberNotFound;
                    }

                    return l.IsLearner ? null : Etcd.Api.EtcdErrors.MemberNotLearner;
                case Raftpb.ConfChangeType.ConfChangeAddNode:
                case Raftpb.ConfChangeType.ConfChangeAddLearnerNode:
                    if (_members.ContainsKey(id))
                    {
                        return Etcd.Api.EtcdErrors.MemberExist;
                    }

                    if (member is not null && UrlsInUse(member.PeerUrls, id))
                    {
                        return Etcd.Api.EtcdErrors.PeerUrlExist;
                    }

                    if (type == Raftpb.ConfChangeType.ConfChangeAddLearnerNode && _members.Values.Count(m => m.IsLearner) >= MaxLearners)
                    {
                        return Etcd.Api.EtcdErrors.TooManyLearners;
                    }

                    return null;
                case Raftpb.ConfChangeType.ConfChangeRemoveNode:
                    return _members.ContainsKey(id) ? null : Etcd.Api.EtcdErrors.MemberNotFound;
                case Raftpb.ConfChangeType.ConfChangeUpdateNode:
                    if (!_members.ContainsKey(id))
                    {
                        return Etcd.Api.EtcdErrors.MemberNotFound;
                    }

                    return member is not null && UrlsInUse(member.PeerUrls, id) ? Etcd.Api.EtcdErrors.PeerUrlExist : null;
                default:
                    return null;
            }
        }
    }

    /// <summary>Most learners a cluster may hold (etcd 3.4's <c>maxLearners</c>).</summary>
    public const int MaxLearners = 1;

    private bool UrlsInUse(IEnumerable<string> urls, ulong except)
    {
        var set = urls.ToHashSet(StringComparer.Ordinal);
        return _members.Values.Any(m => m.Id != except && m.PeerUrls.Any(set.Contains));
    }

    /// <summary>Whether any member other than <paramref name="except"/> already uses one of <paramref name="urls"/>.</summary>
    public bool PeerUrlsInUse(IEnumerable<string> urls, ulong except = 0)
    {
        lock (_lock)
        {
            return UrlsInUse(urls, except);
        }
    }

    /// <summary>
    /// etcd's <c>IsReadyToAddVotingMember</c>: after adding one more voter, the started voters (those that
    /// published a name) must still reach quorum; a started single member may always add a second.
    /// </summary>
    public bool IsReadyToAddVotingMember() => StartedVotersReachQuorum(voterDelta: 1, startedDelta: 0, excluding: null, allowSecond: true);

    /// <summary>etcd's <c>IsReadyToRemoveVotingMember</c>: the started voters left must reach the new quorum.</summary>
    public bool IsReadyToRemoveVotingMember(ulong id) => StartedVotersReachQuorum(voterDelta: -1, startedDelta: 0, excluding: id, allowSecond: false);

    /// <summary>
    /// etcd's <c>IsReadyToPromoteMember</c>: counting the learner being promoted as a started voter, the started
    /// voters must reach the quorum of the voters after the promotion.
    /// </summary>
    public bool IsReadyToPromoteMember() => StartedVotersReachQuorum(voterDelta: 1, startedDelta: 1, excluding: null, allowSecond: false);

    /// <summary>
    /// The quorum rule behind etcd's strict reconfiguration checks: with the voter count changed by
    /// <paramref name="voterDelta"/> and the started count by <paramref name="startedDelta"/> (not counting
    /// <paramref name="excluding"/>), do the started voters reach the new quorum? An empty result is always ready;
    /// <paramref name="allowSecond"/> lets one started member grow to two.
    /// </summary>
    private bool StartedVotersReachQuorum(int voterDelta, int startedDelta, ulong? excluding, bool allowSecond)
    {
        lock (_lock)
        {
            var voters = _members.Values.Where(m => !m.IsLearner).ToList();
            var total = voters.Count + voterDelta;
            if (total <= 0)
            {
                return true;
            }

            var started = voters.Count(m => m.Id != excluding && !string.IsNullOrEmpty(m.Name)) + startedDelta;
            if (allowSecond && started == 1 && total == 2)
            {
                return true;
            }

            return started >= total / 2 + 1;
        }
    }

    /// <summary>The membership as JSON (members, removed IDs, version): the membership part of a raft snapshot.</summary>
    public byte[] ExportState()
    {
        lock (_lock)
        {
            return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new ClusterState
            {
                Members = _members.Values.OrderBy(m => m.Id).Select(m => m.Clone()).ToList(),
                Removed = [.. _removed.Order()],
                Version = Version,
            });
        }
    }

    /// <summary>Replaces the membership with one exported by <see cref="ExportState"/> (a received raft snapshot).</summary>
    public void RestoreState(ReadOnlySpan<byte> json)
    {
        var st = System.Text.Json.JsonSerializer.Deserialize<ClusterState>(json) ?? new ClusterState();
        lock (_lock)
        {
            _members.Clear();
            foreach (var m in st.Members)
            {
                _members[m.Id] = m;
            }

            _removed.Clear();
            _removed.UnionWith(st.Removed);
            Version = st.Version;
        }
    }

    private sealed class ClusterState
    {
        [System.Text.Json.Serialization.JsonPropertyName("members")]
        public List<Member> Members { get; set; } = [];

        [System.Text.Json.Serialization.JsonPropertyName("removed")]
        public List<ulong> Removed { get; set; } = [];

        [System.Text.Json.Serialization.JsonPropertyName("version")]
        public string? Version { get; set; }
    }

    /// <summary>Adopts the cluster ID found in the WAL metadata on restart.</summary>
    public void SetClusterId(ulong id) => ClusterId = id;
}
