using System.Globalization;
using Etcd.Api;
using Etcd.Server.Logging;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Maintenance;

/// <summary>
/// Auto-compaction (etcd's <c>etcdserver/api/v3compactor</c>): a background loop that compacts the key-value
/// history through raft, either keeping a time window of history (<see cref="PeriodicCompactor"/>,
/// <c>--auto-compaction-mode=periodic</c>) or a number of revisions (<see cref="RevisionCompactor"/>,
/// <c>--auto-compaction-mode=revision</c>). The member runs one when <c>--auto-compaction-retention</c> is not 0,
/// pauses it while it is not the leader and resumes it when it leads, so only the leader proposes compactions.
/// </summary>
/// <remarks>
/// Time comes from the injected <see cref="TimeProvider"/> (tests drive it with a fake clock). Concurrency:
/// <see cref="Run"/>, <see cref="Stop"/>, <see cref="Pause"/> and <see cref="Resume"/> may be called from any
/// thread; the loop runs on the thread pool and calls the revision getter and the compact function from there.
/// </remarks>
public abstract class Compactor : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private volatile bool _paused;
    private Task _loop = Task.CompletedTask;

    /// <summary>Creates a compactor; it does nothing until <see cref="Run"/>.</summary>
    /// <param name="time">The clock.</param>
    /// <param name="revision">Returns the store's current revision (etcd's <c>RevGetter</c>).</param>
    /// <param name="compact">Proposes a compaction through raft and waits for it (etcd's <c>Compactable</c>); throws
    /// <see cref="EtcdException"/> with etcd's errors.</param>
    /// <param name="log">Where the start, finish and failure lines go.</param>
    /// <param name="zapMessages">Whether the member logs with zap (etcd's zap messages and fields) rather than
    /// capnslog (etcd's capnslog sentences, e.g. "Starting auto-compaction at revision 5 (retention: 2s)").</param>
    protected Compactor(TimeProvider time, Func<long> revision, Func<CompactionRequest, CancellationToken, Task> compact, ILogger log, bool zapMessages)
    {
        Time = time ?? throw new ArgumentNullException(nameof(time));
        CurrentRevision = revision ?? throw new ArgumentNullException(nameof(revision));
        CompactAsync = compact ?? throw new ArgumentNullException(nameof(compact));
        Log = log ?? throw new ArgumentNullException(nameof(log));
        ZapMessages = zapMessages;
    }

    /// <summary>The clock.</summary>
    protected TimeProvider Time { get; }

    /// <summary>The store's current revision.</summary>
    protected Func<long> CurrentRevision { get; }

    /// <summary>Proposes a compaction and waits for it.</summary>
    protected Func<CompactionRequest, CancellationToken, Task> CompactAsync { get; }

    /// <summary>The compactor's logger.</summary>
    protected ILogger Log { get; }

    /// <summary>Whether to log zap's messages and fields rather than capnslog's sentences.</summary>
    protected bool ZapMessages { get; }

    /// <summary>Cancelled by <see cref="Stop"/>.</summary>
    protected CancellationToken Stopping => _stop.Token;

    /// <summary>Whether the compactor is paused (the member is not the leader).</summary>
    public bool Paused => _paused;

    /// <summary>Starts the loop in the background (once).</summary>
    public void Run()
    {
        if (_loop.IsCompleted && !_stop.IsCancellationRequested)
        {
            _loop = Task.Run(() => RunAsync(_stop.Token));
        }
    }

    /// <summary>Stops the loop; a compaction in flight is cancelled.</summary>
    public void Stop() => _stop.Cancel();

    /// <summary>Suspends compactions (the loop keeps its bookkeeping, as etcd's does) until <see cref="Resume"/>.</summary>
    public void Pause() => _paused = true;

    /// <summary>Lets compactions run again after <see cref="Pause"/>.</summary>
    public void Resume() => _paused = false;

    /// <summary>Stops the loop and waits for it to end.</summary>
    public async ValueTask DisposeAsync()
    {
        Stop();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The loop; returns when <paramref name="stopping"/> is cancelled.</summary>
    protected abstract Task RunAsync(CancellationToken stopping);

    /// <summary>
    /// Proposes a compaction at <paramref name="revision"/>; true when it succeeded or the revision was already
    /// compacted (both count as done in etcd), false when it failed (the caller retries later).
    /// </summary>
    protected async Task<bool> TryCompactAsync(long revision, CancellationToken stopping, Action<Exception> onFailure)
    {
        try
        {
            await CompactAsync(new CompactionRequest { Revision = revision }, stopping).ConfigureAwait(false);
            return true;
        }
        catch (EtcdException e) when (ReferenceEquals(e.Error, EtcdErrors.Compacted))
        {
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
        {
            onFailure(e);
            return false;
        }
    }

    /// <summary>Logs a capnslog sentence or a zap message with fields, whichever the member writes.</summary>
    protected void Report(LogLevel level, string capnslog, string zap, params (string Key, object? Value)[] fields)
    {
        if (ZapMessages)
        {
            Log.LogFields(level, zap, fields);
        }
        else
        {
            Log.LogFields(level, capnslog);
        }
    }

    /// <summary>
    /// Creates the compactor for <c>--auto-compaction-mode</c> and <c>--auto-compaction-retention</c>, or null when the
    /// retention is 0 (auto-compaction off).
    /// </summary>
    /// <exception cref="ArgumentException">The mode is neither periodic nor revision
    /// (<c>unsupported compaction mode x</c>), or the retention does not parse (<c>error parsing CompactionRetention: ...</c>).</exception>
    public static Compactor? Create(
        string mode,
        string retention,
        TimeProvider time,
        Func<long> revision,
        Func<CompactionRequest, CancellationToken, Task> compact,
        ILoggerFactory loggerFactory,
        bool zapMessages)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var parsed = ParseRetention(mode, retention);
        if (parsed == TimeSpan.Zero)
        {
            return null;
        }

        return mode switch
        {
            PeriodicCompactor.Mode => new PeriodicCompactor(
                parsed, time, revision, compact, loggerFactory.CreateLogger(zapMessages ? "etcdserver/api/v3compactor/periodic.go" : "compactor"), zapMessages),
            RevisionCompactor.Mode => new RevisionCompactor(
                parsed.Ticks, time, revision, compact, loggerFactory.CreateLogger(zapMessages ? "etcdserver/api/v3compactor/revision.go" : "compactor"), zapMessages),
            _ => throw new ArgumentException($"unsupported compaction mode {mode}"),
        };
    }

    /// <summary>
    /// etcd's <c>parseCompactionRetention</c>: a non-negative integer is hours in periodic mode and a revision count in
    /// revision mode (returned as that many ticks); anything else must be a Go duration (<c>30m</c>, <c>2s</c>,
    /// <c>1h30m</c>), also in revision mode, where etcd then keeps its nanosecond count as the revision count.
    /// </summary>
    /// <exception cref="ArgumentException">Neither form parses: <c>error parsing CompactionRetention: time: invalid duration "x"</c>.</exception>
    public static TimeSpan ParseRetention(string mode, string retention)
    {
        ArgumentNullException.ThrowIfNull(retention);
        if (int.TryParse(retention, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= 0)
        {
            return mode switch
            {
                RevisionCompactor.Mode => TimeSpan.FromTicks(n),
                PeriodicCompactor.Mode => TimeSpan.FromHours(n),
                _ => TimeSpan.Zero,
            };
        }

        if (!GoDuration.TryParse(retention, out var ns))
        {
            throw new ArgumentException($"error parsing CompactionRetention: {GoDurationError(retention)}");
        }

        if (ns < 0)
        {
            throw new ArgumentException($"error parsing CompactionRetention: negative retention {GoQuote(retention)}");
        }

        // etcd's revision mode reads a duration as int64(nanoseconds) revisions.
        return mode == RevisionCompactor.Mode ? TimeSpan.FromTicks(ns) : TimeSpan.FromTicks(ns / 100);
    }

    /// <summary>Go's <c>time.ParseDuration</c> error text for a string it refuses.</summary>
    private static string GoDurationError(string text)
    {
        var s = text.AsSpan();
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            s = s[1..];
        }

        while (s.Length > 0)
        {
            var digits = 0;
            while (digits < s.Length && (char.IsAsciiDigit(s[digits]) || s[digits] == '.'))
            {
                digits++;
            }

            if (digits == 0)
            {
                break;
            }

            var unit = digits;
            while (unit < s.Length && !char.IsAsciiDigit(s[unit]) && s[unit] != '.')
            {
                unit++;
            }

            var u = s[digits..unit].ToString();
            if (u.Length == 0)
            {
                return $"time: missing unit in duration {GoQuote(text)}";
            }

            if (u is not ("ns" or "us" or "µs" or "μs" or "ms" or "s" or "m" or "h"))
            {
                return $"time: unknown unit {GoQuote(u)} in duration {GoQuote(text)}";
            }

            s = s[unit..];
        }

        return $"time: invalid duration {GoQuote(text)}";
    }

    private static string GoQuote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
