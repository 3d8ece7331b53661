using System.Runtime.InteropServices;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// The start-up and shutdown lines of etcd 3.4's <c>embed</c> package (<c>embed/etcd.go</c>, <c>embed/serve.go</c>)
/// with their zap fields and callers, and their capnslog texts where etcd has them (an empty capnslog text: zap only).
/// Stateless and thread-safe.
/// </summary>
internal static class EtcdHostLog
{
    public static void ConfiguringPeerListeners(ILogger log, EtcdOptions o) =>
        log.LogEtcd(LogLevel.Information, "embed/etcd.go:117", "configuring peer listeners", "", ("listen-peer-urls", Urls(o.ListenPeerUrls)));

    public static void ConfiguringClientListeners(ILogger log, EtcdOptions o) =>
        log.LogEtcd(LogLevel.Information, "embed/etcd.go:127", "configuring client listeners", "", ("listen-client-urls", Urls(o.ListenClientUrls)));

    /// <summary>etcd's <c>print</c> of the server configuration (zap only; capnslog prints other lines).</summary>
    public static void StartingServer(ILogger log, EtcdOptions o, bool memberInitialized)
    {
        var tick = TimeSpan.FromMilliseconds(o.HeartbeatIntervalMs);
        var electionTicks = Math.Max(1, o.ElectionTimeoutMs / Math.Max(1, o.HeartbeatIntervalMs));
        log.LogEtcd(
            LogLevel.Information,
            "embed/etcd.go:305",
            "starting an etcd server",
            "",
            ("etcd-version", EtcdServer.Version),
            ("git-sha", "Not provided"),
            ("go-version", RuntimeInformation.FrameworkDescription),
            ("go-os", OperatingSystem.IsLinux() ? "linux" : RuntimeInformation.OSDescription),
            ("go-arch", RuntimeInformation.ProcessArchitecture == Architecture.X64 ? "amd64" : RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()),
            ("max-cpu-set", Environment.ProcessorCount),
            ("max-cpu-available", Environment.ProcessorCount),
            ("member-initialized", memberInitialized),
            ("name", o.Name),
            ("data-dir", o.ResolvedDataDir),
            ("wal-dir", o.WalDir),
            ("wal-dir-dedicated", o.WalDir),
            ("member-dir", Path.Combine(o.ResolvedDataDir, "member")),
            ("force-new-cluster", o.ForceNewCluster),
            ("heartbeat-interval", GoDuration.Format(tick)),
            ("election-timeout", GoDuration.Format(tick * electionTicks)),
            ("initial-election-tick-advance", o.InitialElectionTickAdvance),
            ("snapshot-count", o.SnapshotCount),
            ("max-wals", o.MaxWals),
            ("max-snapshots", o.MaxSnapshots),
            ("snapshot-catchup-entries", 5000),
            ("initial-advertise-peer-urls", Urls(o.InitialAdvertisePeerUrls)),
            ("listen-peer-urls", Urls(o.ListenPeerUrls)),
            ("advertise-client-urls", Urls(o.AdvertiseClientUrls)),
            ("listen-client-urls", Urls(o.ListenClientUrls)),
            ("listen-metrics-urls", Urls(o.ListenMetricsUrls)),
            ("cors", o.Cors.Order(StringComparer.Ordinal).ToArray()),
            ("host-whitelist", o.HostWhitelist.Order(StringComparer.Ordinal).ToArray()),
            ("initial-cluster", memberInitialized ? "" : o.ResolvedInitialCluster),
            ("initial-cluster-state", o.InitialClusterState),
            ("initial-cluster-token", memberInitialized ? "" : o.InitialClusterToken),
            ("quota-backend-bytes", o.QuotaBackendBytes > 0 ? o.QuotaBackendBytes : 2L * 1024 * 1024 * 1024),
            ("max-request-bytes", o.MaxRequestBytes),
            ("max-concurrent-streams", o.MaxConcurrentStreams == 0 ? uint.MaxValue : o.MaxConcurrentStreams),
            ("pre-vote", o.PreVote),
            ("initial-corrupt-check", o.ExperimentalInitialCorruptCheck),
            ("corrupt-check-time-interval", GoDuration.Format(o.ExperimentalCorruptCheckTime)),
            ("auto-compaction-mode", o.AutoCompactionMode),
            ("auto-compaction-retention", "0s"),
            ("auto-compaction-interval", "0s"),
            ("discovery-url", ""),
            ("discovery-proxy", ""));
    }

    public static void NowServing(ILogger log, EtcdOptions o, string localMemberId) =>
        log.LogEtcd(
            LogLevel.Information,
            "embed/etcd.go:247",
            "now serving peer/client/metrics",
            "",
            ("local-member-id", localMemberId),
            ("initial-advertise-peer-urls", Urls(o.InitialAdvertisePeerUrls)),
            ("listen-peer-urls", Urls(o.ListenPeerUrls)),
            ("advertise-client-urls", Urls(o.AdvertiseClientUrls)),
            ("listen-client-urls", Urls(o.ListenClientUrls)),
            ("listen-metrics-urls", Urls(o.ListenMetricsUrls)));

    public static void ServingPeerTraffic(ILogger log, string address) =>
        log.LogEtcd(LogLevel.Information, "embed/etcd.go:587", "serving peer traffic", "listening for peers on " + address, ("address", address));

    public static void ServingClientTraffic(ILogger log, Uri url)
    {
        if (url.Scheme == "http")
        {
            log.LogEtcd(
                LogLevel.Information,
                "embed/serve.go:145",
                "serving client traffic insecurely; this is strongly discouraged!",
                $"serving insecure client requests on {url.Authority}, this is strongly discouraged!",
                ("address", url.Authority));
        }
        else
        {
            log.LogEtcd(LogLevel.Information, "embed/serve.go:201", "serving client traffic securely", $"serving client requests on {url.Authority}", ("address", url.Authority));
        }
    }

    public static void Closing(ILogger log, EtcdOptions o, bool closed) =>
        log.LogEtcd(
            LogLevel.Information,
            closed ? "embed/etcd.go:375" : "embed/etcd.go:371",
            closed ? "closed etcd server" : "closing etcd server",
            "",
            ("name", o.Name),
            ("data-dir", o.ResolvedDataDir),
            ("advertise-peer-urls", Urls(o.InitialAdvertisePeerUrls)),
            ("advertise-client-urls", Urls(o.AdvertiseClientUrls)));

    private static string[] Urls(IReadOnlyList<Uri> urls) => urls.Select(u => u.OriginalString).ToArray();
}
