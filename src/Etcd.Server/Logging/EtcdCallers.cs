namespace Etcd.Server.Logging;

/// <summary>
/// Where etcd 3.4.23 logs its common member events from (zap's <c>caller</c>), by message, for log calls whose
/// category names a package rather than a Go file (<c>"etcdserver"</c>): "starting local member" is printed from
/// <c>etcdserver/raft.go:536</c>. Immutable and thread-safe.
/// </summary>
internal static class EtcdCallers
{
    private static readonly Dictionary<string, string> ByMessage = new(StringComparer.Ordinal)
    {
        ["starting local member"] = "etcdserver/raft.go:536",
        ["restarting local member"] = "etcdserver/raft.go:586",
        ["opened backend db"] = "etcdserver/backend.go:80",
        ["starting etcd server"] = "etcdserver/server.go:816",
        ["published local member to cluster through raft"] = "etcdserver/server.go:2069",
        ["setting up initial cluster version"] = "etcdserver/server.go:2567",
        ["updating cluster version"] = "etcdserver/server.go:2576",
        ["cluster version is updated"] = "etcdserver/server.go:2599",
        ["skipped leadership transfer for single voting member cluster"] = "etcdserver/server.go:1507",
        ["added member"] = "membership/cluster.go:392",
        ["removed member"] = "membership/cluster.go:422",
        ["set initial cluster version"] = "membership/cluster.go:558",
        ["updated cluster version"] = "membership/cluster.go:546",
        ["enabled capabilities for version"] = "api/capability.go:76",
        ["enabled backend quota with default value"] = "etcdserver/quota.go:98",
        ["enabled backend quota"] = "etcdserver/quota.go:126",
        ["started to purge file"] = "fileutil/purge.go:42",
    };

    /// <summary>etcd's caller for <paramref name="message"/>, or null when not known.</summary>
    public static string? For(string message) => ByMessage.GetValueOrDefault(message);
}
