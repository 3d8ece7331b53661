using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Logging;

/// <summary>The two log line formats of etcd 3.4 (<c>--logger</c>).</summary>
public enum EtcdLogFormat
{
    /// <summary>zap's JSON lines (<c>--logger=zap</c>).</summary>
    Zap,

    /// <summary>capnslog's text lines (<c>--logger=capnslog</c>, etcd 3.4's default).</summary>
    Capnslog,
}

/// <summary>
/// A <see cref="ILoggerProvider"/> writing etcd's log lines (<see cref="EtcdLogFormat"/>) to one or more
/// streams. Categories name the Go source file the message belongs to, e.g. <c>"etcdserver/server.go"</c>
/// or <c>"etcdserver/api/membership/cluster.go"</c>; the <see cref="EventId"/> number is the line. zap's
/// <c>caller</c> is the category's last two path segments plus <c>:line</c> (<c>membership/cluster.go:392</c>),
/// capnslog's package is the category's directory (<c>etcdserver/api/membership</c>); a category without
/// <c>/</c> is used as is for both. Under capnslog the <c>raft</c> package (category <c>raft/*.go</c>) prints in
/// raft's own default format (<c>raft2006/01/02 15:04:05 INFO: …</c>), as etcd 3.4 does. Messages and fields come from the state: an <see cref="EtcdLogEntry"/>, or a
/// message template whose trailing placeholders are the fields (rules in <see cref="EtcdLogging"/>); an
/// exception adds the <c>error</c> field. Thread-safe: each line is built first and written whole under one
/// lock, and every line is flushed, so lines never interleave and survive a crash. <see cref="Dispose"/>
/// flushes and closes the files it opened (not the standard streams).
/// </summary>
public sealed class EtcdLoggerProvider : ILoggerProvider
{
    private readonly object _writeLock = new();
    private readonly Stream[] _outputs;
    private readonly bool[] _owned;
    private readonly ConcurrentDictionary<string, EtcdLogger> _loggers = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private bool _disposed;

    /// <summary>Creates a provider writing to <paramref name="outputs"/>.</summary>
    /// <param name="format">Line format.</param>
    /// <param name="minimumLevel">Lowest level written.</param>
    /// <param name="outputs">Streams to write every line to; the provider never closes them unless listed in <paramref name="ownedOutputs"/>.</param>
    /// <param name="time">Clock for timestamps; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="ownedOutputs">Streams among <paramref name="outputs"/> that the provider closes on dispose.</param>
    public EtcdLoggerProvider(EtcdLogFormat format, LogLevel minimumLevel, IReadOnlyList<Stream> outputs, TimeProvider? time = null, IReadOnlyCollection<Stream>? ownedOutputs = null)
    {
        Format = format;
        MinimumLevel = minimumLevel;
        _outputs = outputs.ToArray();
        _owned = _outputs.Select(o => ownedOutputs?.Contains(o) == true).ToArray();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The line format.</summary>
    public EtcdLogFormat Format { get; }

    /// <summary>The lowest level written.</summary>
    public LogLevel MinimumLevel { get; }

    /// <summary>
    /// capnslog's per-package levels (<c>--log-package-levels</c>): the lowest level written for loggers of a
    /// package (the category's directory, e.g. <c>etcdserver</c> or <c>raft</c>), overriding
    /// <see cref="MinimumLevel"/>; key <c>*</c> applies to every package not named. Set before the first logger is
    /// created; empty by default.
    /// </summary>
    public IReadOnlyDictionary<string, LogLevel> PackageLevels { get; set; } = new Dictionary<string, LogLevel>();

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => _loggers.GetOrAdd(categoryName, static (name, p) => new EtcdLogger(p, name), this);

    /// <summary>Flushes every output.</summary>
    public void Flush()
    {
        lock (_writeLock)
        {
            foreach (var o in _outputs)
            {
                try
                {
                    o.Flush();
                }
                catch (ObjectDisposedException)
                {
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>Flushes all outputs and closes the owned ones; later log calls are dropped.</summary>
    public void Dispose()
    {
        lock (_writeLock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            for (int i = 0; i < _outputs.Length; i++)
            {
                try
                {
                    _outputs[i].Flush();
                    if (_owned[i])
                    {
                        _outputs[i].Dispose();
                    }
                }
                catch (ObjectDisposedException)
                {
                }
                catch (IOException)
                {
                }
            }
        }
    }

    internal DateTimeOffset Now => _time.GetLocalNow();

    internal void Write(string line)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(line);
        lock (_writeLock)
        {
            if (_disposed)
            {
                return;
            }
            foreach (var o in _outputs)
            {
                try
                {
                    o.Write(bytes, 0, bytes.Length);
                    o.Flush();
                }
                catch (IOException)
                {
                    // A broken output (closed pipe, full disk) must not take the server down; zap drops too.
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }

    private sealed class EtcdLogger : ILogger
    {
        private readonly EtcdLoggerProvider _provider;
        private readonly string _callerFile;
        private readonly string _package;
        private readonly LogLevel _minimum;

        public EtcdLogger(EtcdLoggerProvider provider, string category)
        {
            _provider = provider;
            int last = category.LastIndexOf('/');
            if (last < 0)
            {
                _callerFile = category;
                _package = category;
            }
            else
            {
                int prev = category.LastIndexOf('/', last - 1 < 0 ? 0 : last - 1);
                _callerFile = prev >= 0 && last > 0 ? category[(prev + 1)..] : category;
                _package = category[..last];
            }
            var levels = provider.PackageLevels;
            _minimum = levels.TryGetValue(_package, out var own) ? own : levels.TryGetValue("*", out var all) ? all : provider.MinimumLevel;
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= _minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }
            var sb = new StringBuilder(256);
            var now = _provider.Now;
            if (_provider.Format == EtcdLogFormat.Capnslog)
            {
                if (state is EtcdLogEntry { CapnslogText: "" })
                {
                    return;
                }

                string text = formatter(state, exception);
                if (exception != null && !(state is EtcdLogEntry e && e.Fields.Any(f => f.Key == "error")))
                {
                    text = text.Length == 0 ? exception.Message : text + ": " + exception.Message;
                }
                if (_package == "raft")
                {
                    EtcdLogLine.AppendRaftDefault(sb, now, logLevel, text);
                }
                else
                {
                    EtcdLogLine.AppendCapnslog(sb, now, logLevel, _package, text);
                }
            }
            else
            {
                string message;
                IEnumerable<KeyValuePair<string, object?>> fields;
                string? callerOverride = null;
                if (state is EtcdLogEntry { Message: "" })
                {
                    // An event etcd logs under capnslog only.
                    return;
                }

                if (state is EtcdLogEntry entry)
                {
                    message = entry.Message;
                    fields = entry.Fields;
                    callerOverride = entry.Caller;
                }
                else if (state is IReadOnlyList<KeyValuePair<string, object?>> list && list.Count > 0 && list[^1].Key == "{OriginalFormat}" && list[^1].Value is string format)
                {
                    var template = LogTemplate.Get(format);
                    message = template.RenderMessage(list);
                    fields = template.Fields(list);
                }
                else
                {
                    message = formatter(state, exception);
                    fields = [];
                }
                if (exception != null && !fields.Any(f => f.Key == "error"))
                {
                    fields = fields.Append(new KeyValuePair<string, object?>("error", exception.Message));
                }
                string caller = callerOverride
                    ?? (eventId.Id != 0 ? _callerFile + ":" + eventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : null)
                    ?? EtcdCallers.For(message)
                    ?? _callerFile;
                EtcdLogLine.AppendZap(sb, now, logLevel, caller, message, fields);
            }
            _provider.Write(sb.ToString());
        }
    }
}
