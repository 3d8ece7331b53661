using Microsoft.Extensions.Logging;

namespace Etcd.Server.Logging;

/// <summary>
/// Builds the logger factory the <c>etcd</c> executable uses, from <c>--logger</c>, <c>--log-level</c> and
/// <c>--log-outputs</c> (etcd's <c>embed/config_logging.go</c>).
/// <para>How to log so that lines match etcd's (<c>--logger=zap</c>): create loggers with the Go file as
/// category (<c>factory.CreateLogger("etcdserver/server.go")</c>) and give the line as event id
/// (<c>[LoggerMessage(EventId = 2069, ...)]</c>), so <c>caller</c> reads <c>etcdserver/server.go:2069</c>. Write
/// etcd's <c>msg</c> as the template text and its fields as trailing placeholders:
/// <c>"published local member to cluster through raft {LocalMemberId} {LocalMemberAttributes} {RequestPath} {ClusterId} {PublishTimeout}"</c>
/// yields <c>"msg":"published local member to cluster through raft","local-member-id":"…",…</c> (names in kebab-case).
/// Placeholders followed by more text are rendered inline (<c>"{Id} became leader at term {@Term}"</c>; the
/// <c>@</c> keeps a trailing one inline). Values: strings quoted, numbers and bools bare, <see cref="TimeSpan"/> as Go
/// durations (<c>"7s"</c>), lists as arrays. Alternatively pass an <see cref="EtcdLogEntry"/> (see
/// <see cref="EtcdLoggerExtensions.LogFields"/>). With <c>--logger=capnslog</c> the message is the normally
/// formatted template text.</para>
/// </summary>
public static class EtcdLogging
{
    /// <summary>
    /// Creates a logger factory writing etcd's lines. Dispose it to flush and close file outputs.
    /// </summary>
    /// <param name="logger"><c>zap</c> or <c>capnslog</c>.</param>
    /// <param name="level">debug, info, warn, error, dpanic, panic or fatal.</param>
    /// <param name="outputs"><c>default</c> and <c>stderr</c> (standard error), <c>stdout</c>, or file paths
    /// (created if missing, appended to); <c>/dev/null</c> anywhere discards everything, as zap does. Duplicates are
    /// written once. Empty means <c>default</c>.</param>
    /// <param name="time">Clock for timestamps (tests); the system clock when null.</param>
    /// <exception cref="ArgumentException">Unknown logger (<c>unknown logger option "x"</c>) or level (<c>unknown level "x"</c>).</exception>
    /// <exception cref="IOException">A file output cannot be opened.</exception>
    public static ILoggerFactory CreateLoggerFactory(string logger, string level, IReadOnlyList<string> outputs, TimeProvider? time = null) =>
        CreateLoggerFactory(logger, level, outputs, "", time);

    /// <summary>
    /// As <see cref="CreateLoggerFactory(string, string, IReadOnlyList{string}, TimeProvider?)"/>, with capnslog's
    /// per-package levels (<paramref name="packageLevels"/>, see <see cref="ParsePackageLevels"/>; empty for none).
    /// </summary>
    /// <exception cref="FormatException">A malformed <paramref name="packageLevels"/>.</exception>
    public static ILoggerFactory CreateLoggerFactory(string logger, string level, IReadOnlyList<string> outputs, string packageLevels, TimeProvider? time = null)
    {
        var provider = CreateProvider(logger, level, outputs, time);
        if (packageLevels.Length > 0)
        {
            provider.PackageLevels = ParsePackageLevels(packageLevels);
        }
        var minimum = provider.PackageLevels.Values.Append(provider.MinimumLevel).Min();
        return LoggerFactory.Create(b =>
        {
            b.ClearProviders();
            b.SetMinimumLevel(minimum);
            b.AddProvider(provider);
        });
    }

    /// <summary>Creates the logger factory for a member's <see cref="EtcdOptions.Logger"/>, <see cref="EtcdOptions.LogLevel"/> and <see cref="EtcdOptions.LogOutputs"/>.</summary>
    /// <exception cref="ArgumentException">Unknown logger or level.</exception>
    /// <exception cref="IOException">A file output cannot be opened.</exception>
    /// <exception cref="FormatException">A malformed <see cref="EtcdOptions.LogPackageLevels"/>.</exception>
    public static ILoggerFactory CreateLoggerFactory(EtcdOptions options, TimeProvider? time = null) =>
        CreateLoggerFactory(options.Logger, options.LogLevel, options.LogOutputs, options.LogPackageLevels, time);

    /// <summary>
    /// Parses <c>--log-package-levels</c> as capnslog's <c>ParseLogLevelConfig</c>: comma-separated
    /// <c>package=LEVEL</c> with CRITICAL/C, ERROR/E/0, WARNING/W/1, NOTICE/N/2, INFO/I/3, DEBUG/D/4, TRACE/T/5;
    /// package <c>*</c> stands for every package. NOTICE (a capnslog level between INFO and WARNING) maps to
    /// <see cref="LogLevel.Information"/>.
    /// </summary>
    /// <exception cref="FormatException">capnslog's messages: <c>oddly structured `pkg=level` option: X</c>,
    /// <c>couldn't parse log level X</c>.</exception>
    public static IReadOnlyDictionary<string, LogLevel> ParsePackageLevels(string text)
    {
        var levels = new Dictionary<string, LogLevel>(StringComparer.Ordinal);
        foreach (string setting in text.Split(','))
        {
            string[] parts = setting.Split('=');
            if (parts.Length != 2)
            {
                throw new FormatException("oddly structured `pkg=level` option: " + setting);
            }
            levels[parts[0]] = parts[1] switch
            {
                "CRITICAL" or "C" => LogLevel.Critical,
                "ERROR" or "0" or "E" => LogLevel.Error,
                "WARNING" or "1" or "W" => LogLevel.Warning,
                "NOTICE" or "2" or "N" or "INFO" or "3" or "I" => LogLevel.Information,
                "DEBUG" or "4" or "D" => LogLevel.Debug,
                "TRACE" or "5" or "T" => LogLevel.Trace,
                _ => throw new FormatException("couldn't parse log level " + parts[1]),
            };
        }
        return levels;
    }

    /// <summary>Creates the provider alone (see <see cref="CreateLoggerFactory(string, string, IReadOnlyList{string}, TimeProvider?)"/> for the arguments).</summary>
    public static EtcdLoggerProvider CreateProvider(string logger, string level, IReadOnlyList<string> outputs, TimeProvider? time = null)
    {
        var format = ParseLogger(logger);
        var minimum = ParseLevel(level);
        var streams = new List<Stream>();
        var owned = new List<Stream>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        IEnumerable<string> targets = outputs.Count == 0 ? ["default"] : outputs;
        if (targets.Contains("/dev/null"))
        {
            targets = ["/dev/null"];
        }
        try
        {
            foreach (string target in targets)
            {
                string key = target is "default" ? "stderr" : target;
                if (!seen.Add(key))
                {
                    continue;
                }
                switch (key)
                {
                    case "stderr":
                        streams.Add(Console.OpenStandardError());
                        break;
                    case "stdout":
                        streams.Add(Console.OpenStandardOutput());
                        break;
                    case "/dev/null":
                        streams.Add(Stream.Null);
                        break;
                    default:
                        var fs = new FileStream(key, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                        streams.Add(fs);
                        owned.Add(fs);
                        break;
                }
            }
        }
        catch
        {
            foreach (var s in owned)
            {
                s.Dispose();
            }
            throw;
        }
        return new EtcdLoggerProvider(format, minimum, streams, time, owned);
    }

    /// <summary>Parses <c>--logger</c>.</summary>
    /// <exception cref="ArgumentException"><c>unknown logger option "x"</c>.</exception>
    public static EtcdLogFormat ParseLogger(string logger) => logger switch
    {
        "zap" => EtcdLogFormat.Zap,
        "capnslog" => EtcdLogFormat.Capnslog,
        _ => throw new ArgumentException($"unknown logger option \"{logger}\"", nameof(logger)),
    };

    /// <summary>
    /// Maps <c>--log-level</c> to the lowest <see cref="LogLevel"/> written: debug → Trace, info → Information,
    /// warn → Warning, error → Error, dpanic/panic/fatal → Critical (etcd's <c>pkg/logutil/log_level.go</c>).
    /// </summary>
    /// <exception cref="ArgumentException"><c>unknown level "x"</c> (etcd panics with this text).</exception>
    public static LogLevel ParseLevel(string level) => level switch
    {
        "debug" => LogLevel.Trace,
        "info" => LogLevel.Information,
        "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "dpanic" or "panic" or "fatal" => LogLevel.Critical,
        _ => throw new ArgumentException($"unknown level \"{level}\"", nameof(level)),
    };
}
