using Etcd.Server.Logging;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Maintenance;

/// <summary>
/// Periodic auto-compaction (etcd's <c>v3compactor.Periodic</c>, <c>--auto-compaction-mode=periodic</c>): keeps
/// about <see cref="Period"/> of history. Every <see cref="RetryInterval"/> (a tenth of the period, at most 6 min)
/// it samples the current revision into a sliding window spanning the period; once a whole period has passed
/// since the start (or since the last success, then once per <see cref="CompactInterval"/>: the period capped at
/// 1 h) it compacts at the oldest sample, the revision of one period ago. A failed compaction is retried one
/// retry interval later. While paused it keeps sampling but does not compact.
/// </summary>
/// <remarks>
/// With <c>--auto-compaction-retention=2s</c>: samples every 200 ms, the first compaction after 2 s at the revision
/// of ~2 s earlier, then one every 2 s. With <c>1</c> (hour): samples every 6 min, compacts every hour at the revision
/// of an hour ago; with <c>24</c>: first after 24 h, then hourly at the revision of 24 h ago.
/// </remarks>
public sealed class PeriodicCompactor : Compactor
{
    /// <summary>The mode's name in <c>--auto-compaction-mode</c>.</summary>
    public const string Mode = "periodic";

    private const int RetryDivisor = 10;

    /// <summary>Creates the compactor; it does nothing until <see cref="Compactor.Run"/>.</summary>
    /// <param name="period">History to keep (<c>--auto-compaction-retention</c>); positive.</param>
    /// <param name="time">The clock.</param>
    /// <param name="revision">Returns the store's current revision.</param>
    /// <param name="compact">Proposes a compaction through raft and waits for it.</param>
    /// <param name="log">Where the start, finish and failure lines go.</param>
    /// <param name="zapMessages">Whether to log zap's messages and fields rather than capnslog's sentences.</param>
    public PeriodicCompactor(TimeSpan period, TimeProvider time, Func<long> revision, Func<CompactionRequest, CancellationToken, Task> compact, ILogger log, bool zapMessages)
        : base(time, revision, compact, log, zapMessages)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        Period = period;
    }

    /// <summary>History kept.</summary>
    public TimeSpan Period { get; }

    /// <summary>Time between compactions after the first: the period, at most 1 h (etcd's <c>getCompactInterval</c>).</summary>
    public TimeSpan CompactInterval => Period > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : Period;

    /// <summary>Time between samples and between retries: a tenth of <see cref="CompactInterval"/> (etcd's <c>getRetryInterval</c>).</summary>
    public TimeSpan RetryInterval => CompactInterval / RetryDivisor;

    /// <summary>Samples kept: one period's worth plus one, so the oldest is the revision of one period ago (etcd's <c>getRetentions</c>).</summary>
    public int Retentions => (int)(Period.Ticks / RetryInterval.Ticks) + 1;

    /// <inheritdoc/>
    protected override async Task RunAsync(CancellationToken stopping)
    {
        var retry = RetryInterval;
        var retentions = Retentions;
        var revs = new List<long>();
        var lastSuccess = Time.GetTimestamp();
        var baseInterval = Period;
        var period = GoDuration.Format(Period);
        while (true)
        {
            revs.Add(CurrentRevision());
            if (revs.Count > retentions)
            {
                revs.RemoveAt(0); // revs[0] is always the revision of one period ago
            }

            await Task.Delay(retry, Time, stopping).ConfigureAwait(false);
            if (Paused || Time.GetElapsedTime(lastSuccess) < baseInterval)
            {
                continue;
            }

            // The first compaction waits a whole period; later ones come every compact interval.
            if (baseInterval == Period)
            {
                baseInterval = CompactInterval;
            }

            var rev = revs[0];
            Report(
                LogLevel.Information,
                $"Starting auto-compaction at revision {rev} (retention: {period})",
                "starting auto periodic compaction",
                ("revision", rev),
                ("compact-period", Period));
            var started = Time.GetTimestamp();
            var ok = await TryCompactAsync(rev, stopping, e =>
            {
                if (ZapMessages)
                {
                    Log.LogFields(LogLevel.Warning, "failed auto periodic compaction", ("revision", rev), ("compact-period", Period), ("retry-interval", retry), ("error", e.Message));
                }
                else
                {
                    Log.LogFields(LogLevel.Information, $"Failed auto-compaction at revision {rev} ({e.Message})");
                    Log.LogFields(LogLevel.Information, $"Retry after {GoDuration.Format(retry)}");
                }
            }).ConfigureAwait(false);
            if (ok)
            {
                Report(
                    LogLevel.Information,
                    $"Finished auto-compaction at revision {rev}",
                    "completed auto periodic compaction",
                    ("revision", rev),
                    ("compact-period", Period),
                    ("took", Time.GetElapsedTime(started)));
                lastSuccess = Time.GetTimestamp();
            }
        }
    }
}
