using Etcd.Server.Maintenance;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// The member's auto-compactor (etcd's <c>EtcdServer.compactor</c>): built from <c>--auto-compaction-mode</c> and
/// <c>--auto-compaction-retention</c>, run from <see cref="StartLoop"/>, paused while this member is not the leader and
/// resumed when it leads (etcd's <c>updateLeadership</c>), stopped with the member. Compactions go through raft as
/// ordinary Compact proposals.
/// </summary>
public sealed partial class EtcdServer
{
    private Compactor? _compactor;

    /// <summary>An applied Compact with <c>physical</c> set: its response goes to the proposer once <paramref name="Removed"/> completes.</summary>
    private sealed record PhysicalCompaction(Etcdserverpb.CompactionResponse Response, Task Removed);

    /// <summary>
    /// The clock of the auto-compactor and of the periodic corruption check. Settable until <see cref="StartLoop"/>
    /// (tests give these loops a fake clock of their own while raft runs on real time); the member's
    /// <see cref="EtcdOptions.Time"/> by default.
    /// </summary>
    public TimeProvider MaintenanceTime
    {
        get => _maintenanceTime ?? _options.Time;
        set => _maintenanceTime = value;
    }

    private TimeProvider? _maintenanceTime;

    /// <summary>The running auto-compactor, or null when auto-compaction is off (retention 0) or the loop has not started.</summary>
    public Compactor? AutoCompactor => _compactor;

    /// <summary>Refuses options the maintenance loops cannot run with (called by <see cref="Start"/> before anything is opened).</summary>
    /// <exception cref="EtcdStartException">Unknown auto-compaction mode or unparsable retention, with etcd's message.</exception>
    private static void ValidateMaintenanceOptions(EtcdOptions options)
    {
        try
        {
            var retention = Compactor.ParseRetention(options.AutoCompactionMode, options.AutoCompactionRetention);
            if (retention != TimeSpan.Zero && options.AutoCompactionMode is not (PeriodicCompactor.Mode or RevisionCompactor.Mode))
            {
                throw new ArgumentException($"unsupported compaction mode {options.AutoCompactionMode}");
            }
        }
        catch (ArgumentException e)
        {
            throw new EtcdStartException(e.Message, e);
        }
    }

    /// <summary>Starts the auto-compactor and the periodic corruption check (from <see cref="StartLoop"/>).</summary>
    private void StartMaintenance()
    {
        _compactor = Compactor.Create(
            _options.AutoCompactionMode,
            _options.AutoCompactionRetention,
            MaintenanceTime,
            () => Kv.CurrentRevision,
            (request, ct) => CompactAsync(request, ct),
            _loggerFactory,
            zapMessages: string.Equals(_options.Logger, "zap", StringComparison.Ordinal));
        if (_compactor is not null)
        {
            if (!IsLeader)
            {
                _compactor.Pause();
            }

            _compactor.Run();
        }

        StartCorruptionMonitor();
    }

    /// <summary>Loop thread, on a leadership change: only the leader compacts.</summary>
    private void UpdateCompactorLeadership()
    {
        if (_compactor is null)
        {
            return;
        }

        if (IsLeader)
        {
            _compactor.Resume();
        }
        else
        {
            _compactor.Pause();
        }
    }

    /// <summary>Stops the auto-compactor and the corruption check (from <see cref="DisposeAsync"/>).</summary>
    private async Task StopMaintenanceAsync()
    {
        if (_compactor is { } c)
        {
            await c.DisposeAsync().ConfigureAwait(false);
        }

        await StopCorruptionMonitorAsync().ConfigureAwait(false);
    }

    /// <summary>The message the member logs, in zap's or capnslog's form, whichever it writes.</summary>
    private void LogEither(LogLevel level, string capnslog, string zap, params (string Key, object? Value)[] fields)
    {
        if (string.Equals(_options.Logger, "zap", StringComparison.Ordinal))
        {
            Logging.EtcdLoggerExtensions.LogFields(_log, level, zap, fields);
        }
        else
        {
            Logging.EtcdLoggerExtensions.LogFields(_log, level, capnslog);
        }
    }
}
