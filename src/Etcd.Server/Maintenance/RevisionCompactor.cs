using Etcd.Server.Logging;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Maintenance;

/// <summary>
/// Revision auto-compaction (etcd's <c>v3compactor.Revision</c>, <c>--auto-compaction-mode=revision</c>): every
/// <see cref="CheckInterval"/> (5 min, etcd's <c>revInterval</c>) it compacts at <c>current revision − retention</c>,
/// keeping the last <see cref="Retention"/> revisions, unless that is ≤ 0 or the revision it compacted last time.
/// A failed compaction is retried at the next check. While paused it does nothing.
/// </summary>
public sealed class RevisionCompactor : Compactor
{
    /// <summary>The mode's name in <c>--auto-compaction-mode</c>.</summary>
    public const string Mode = "revision";

    /// <summary>Time between checks (etcd's <c>revInterval</c>).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMinutes(5);

    /// <summary>Creates the compactor; it does nothing until <see cref="Compactor.Run"/>.</summary>
    /// <param name="retention">Revisions to keep (<c>--auto-compaction-retention</c>); positive.</param>
    /// <param name="time">The clock.</param>
    /// <param name="revision">Returns the store's current revision.</param>
    /// <param name="compact">Proposes a compaction through raft and waits for it.</param>
    /// <param name="log">Where the start, finish and failure lines go.</param>
    /// <param name="zapMessages">Whether to log zap's messages and fields rather than capnslog's sentences.</param>
    public RevisionCompactor(long retention, TimeProvider time, Func<long> revision, Func<CompactionRequest, CancellationToken, Task> compact, ILogger log, bool zapMessages)
        : base(time, revision, compact, log, zapMessages)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(retention, 0);
        Retention = retention;
    }

    /// <summary>Revisions kept.</summary>
    public long Retention { get; }

    /// <inheritdoc/>
    protected override async Task RunAsync(CancellationToken stopping)
    {
        long prev = 0;
        while (true)
        {
            await Task.Delay(CheckInterval, Time, stopping).ConfigureAwait(false);
            if (Paused)
            {
                continue;
            }

            var rev = CurrentRevision() - Retention;
            if (rev <= 0 || rev == prev)
            {
                continue;
            }

            Report(
                LogLevel.Information,
                $"Starting auto-compaction at revision {rev} (retention: {Retention} revisions)",
                "starting auto revision compaction",
                ("revision", rev),
                ("revision-compaction-retention", Retention));
            var started = Time.GetTimestamp();
            var ok = await TryCompactAsync(rev, stopping, e =>
            {
                if (ZapMessages)
                {
                    Log.LogFields(LogLevel.Warning, "failed auto revision compaction", ("revision", rev), ("revision-compaction-retention", Retention), ("retry-interval", CheckInterval), ("error", e.Message));
                }
                else
                {
                    Log.LogFields(LogLevel.Information, $"Failed auto-compaction at revision {rev} ({e.Message})");
                    Log.LogFields(LogLevel.Information, $"Retry after {GoDuration.Format(CheckInterval)}");
                }
            }).ConfigureAwait(false);
            if (ok)
            {
                prev = rev;
                Report(
                    LogLevel.Information,
                    $"Finished auto-compaction at revision {rev}",
                    "completed auto revision compaction",
                    ("revision", rev),
                    ("revision-compaction-retention", Retention),
                    ("took", Time.GetElapsedTime(started)));
            }
        }
    }
}
