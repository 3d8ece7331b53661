using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;

namespace Etcd.Server.Watch;

/// <summary>Tunables of the Watch service; defaults match etcd 3.4.</summary>
public sealed record WatchServiceOptions
{
    /// <summary>
    /// How often a watcher created with <c>progress_notify</c> gets a progress response when no events were sent to
    /// it in the interval (etcd's <c>--experimental-watch-progress-notify-interval</c>, default 10 minutes).
    /// </summary>
    public TimeSpan ProgressNotifyInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Size in bytes at which a response of a watcher created with <c>fragment</c> is split (etcd uses
    /// <c>--max-request-bytes</c>); null = the member's <see cref="EtcdOptions.MaxRequestBytes"/>.
    /// </summary>
    public int? MaxResponseBytes { get; init; }

    /// <summary>Control responses (created, canceled, progress) outstanding per stream before the service stops reading requests (etcd's <c>ctrlStreamBufLen</c>, 16).</summary>
    public int ControlBufferLength { get; init; } = 16;
}

/// <summary>
/// etcd's <c>Watch</c> gRPC service (<c>etcdserver/api/v3rpc/watch.go</c>) over <see cref="EtcdServer.Watchable"/>:
/// one bidirectional stream carries any number of watchers; each gets a created response first, then its events in
/// revision order exactly once, then a canceled response when canceled or compacted.
/// </summary>
public static class WatchService
{
    /// <summary>gRPC metadata key asking the member to refuse streams while it has no leader (etcd's <c>rpctypes.MetadataRequireLeaderKey</c>).</summary>
    public const string RequireLeaderKey = "hasleader";

    /// <summary>Smallest progress notify interval (etcd's <c>minWatchProgressInterval</c>, 100 ms); a shorter configured interval is raised to it.</summary>
    public static readonly TimeSpan MinProgressNotifyInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The service options a member with <paramref name="options"/> uses: the progress interval from
    /// <see cref="EtcdOptions.ExperimentalWatchProgressNotifyInterval"/> (zero or less = 10 minutes, below
    /// <see cref="MinProgressNotifyInterval"/> raised to it, as etcd's <c>NewWatchServer</c> does).
    /// </summary>
    public static WatchServiceOptions OptionsFor(EtcdOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var interval = options.ExperimentalWatchProgressNotifyInterval;
        if (interval <= TimeSpan.Zero)
        {
            interval = TimeSpan.FromMinutes(10);
        }

        return new WatchServiceOptions { ProgressNotifyInterval = interval < MinProgressNotifyInterval ? MinProgressNotifyInterval : interval };
    }

    /// <summary>
    /// Serves one Watch stream until the client goes away (a half-close of the request stream keeps the watchers
    /// running, as etcd does). Fails with <see cref="EtcdErrors.NoLeader"/> (Unavailable, "etcdserver: no leader")
    /// when <paramref name="requireLeader"/> (the call carries <c>hasleader: true</c>) and the member knows no leader.
    /// </summary>
    public static async Task ServeAsync(EtcdServer server, WatchServiceOptions options, IAsyncStreamReader<WatchRequest> requests, IAsyncStreamWriter<WatchResponse> responses, bool requireLeader, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(options);
        if (requireLeader && server.Leader == 0)
        {
            throw EtcdErrors.NoLeader.ToException();
        }

        using var session = new WatchSession(server, options, requests, responses);
        await session.RunAsync(requireLeader, cancellationToken).ConfigureAwait(false);
    }
}
