using System.Collections;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Logging;

/// <summary>
/// Formats one log line in etcd 3.4's two formats: zap's JSON (<c>--logger=zap</c>, encoder settings of
/// etcd's <c>pkg/logutil/zap.go</c>: keys level, ts, caller, msg, then the fields; lowercase levels; ISO-8601
/// time with milliseconds) and capnslog's pretty text (<c>--logger=capnslog</c>:
/// <c>2006-01-02 15:04:05.000000 I | package: message</c>). Stateless and thread-safe.
/// </summary>
public static class EtcdLogLine
{
    /// <summary>zap's level name for a <see cref="LogLevel"/>: debug, info, warn, error or fatal (Critical).</summary>
    public static string ZapLevel(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "fatal",
    };

    /// <summary>capnslog's one-letter level: T, D, I, W, E or C (Critical).</summary>
    public static char CapnslogLevel(LogLevel level) => level switch
    {
        LogLevel.Trace => 'T',
        LogLevel.Debug => 'D',
        LogLevel.Information => 'I',
        LogLevel.Warning => 'W',
        LogLevel.Error => 'E',
        _ => 'C',
    };

    /// <summary>
    /// zap's ISO-8601 time (<c>2006-01-02T15:04:05.000Z0700</c>): the time as given (pass local time, as etcd
    /// prints), milliseconds, and <c>Z</c> for a zero offset or <c>+hhmm</c>.
    /// </summary>
    public static string ZapTime(DateTimeOffset time)
    {
        var local = time;
        string stamp = local.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fff", CultureInfo.InvariantCulture);
        if (local.Offset == TimeSpan.Zero)
        {
            return stamp + "Z";
        }
        var off = local.Offset;
        char sign = off < TimeSpan.Zero ? '-' : '+';
        off = off.Duration();
        return stamp + sign + off.Hours.ToString("00", CultureInfo.InvariantCulture) + off.Minutes.ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// One zap JSON line with its trailing <c>\n</c>:
    /// <c>{"level":"info","ts":"...","caller":"etcdserver/server.go:2069","msg":"...","key":value,...}</c>.
    /// Field values are written as JSON (see <see cref="AppendJsonValue"/>); <paramref name="caller"/> is omitted when empty.
    /// </summary>
    public static string FormatZap(DateTimeOffset time, LogLevel level, string caller, string message, IEnumerable<KeyValuePair<string, object?>>? fields)
    {
        var sb = new StringBuilder(256);
        AppendZap(sb, time, level, caller, message, fields);
        return sb.ToString();
    }

    /// <summary>Appends one zap JSON line (see <see cref="FormatZap"/>) to <paramref name="sb"/>.</summary>
    public static void AppendZap(StringBuilder sb, DateTimeOffset time, LogLevel level, string caller, string message, IEnumerable<KeyValuePair<string, object?>>? fields)
    {
        sb.Append("{\"level\":\"").Append(ZapLevel(level)).Append("\",\"ts\":\"").Append(ZapTime(time)).Append('"');
        if (caller.Length > 0)
        {
            sb.Append(",\"caller\":");
            AppendJsonString(sb, caller);
        }
        sb.Append(",\"msg\":");
        AppendJsonString(sb, message);
        if (fields != null)
        {
            foreach (var field in fields)
            {
                sb.Append(',');
                AppendJsonString(sb, field.Key);
                sb.Append(':');
                AppendJsonValue(sb, field.Value, 0);
            }
        }
        sb.Append("}\n");
    }

    /// <summary>
    /// One capnslog line with its trailing <c>\n</c>: <c>2006-01-02 15:04:05.000000 I | package: message</c>
    /// (the time as given, microseconds). A message already ending in a newline gets no second one.
    /// </summary>
    public static string FormatCapnslog(DateTimeOffset time, LogLevel level, string package, string message)
    {
        var sb = new StringBuilder(64 + message.Length);
        AppendCapnslog(sb, time, level, package, message);
        return sb.ToString();
    }

    /// <summary>Appends one capnslog line (see <see cref="FormatCapnslog"/>).</summary>
    public static void AppendCapnslog(StringBuilder sb, DateTimeOffset time, LogLevel level, string package, string message)
    {
        sb.Append(time.ToString("yyyy'-'MM'-'dd HH':'mm':'ss'.'ffffff", CultureInfo.InvariantCulture))
            .Append(' ').Append(CapnslogLevel(level)).Append(" | ");
        if (package.Length > 0)
        {
            sb.Append(package).Append(": ");
        }
        sb.Append(message);
        if (message.Length == 0 || message[^1] != '\n')
        {
            sb.Append('\n');
        }
    }

    /// <summary>
    /// Appends one line in the format of raft's default logger, which etcd 3.4 uses for the <c>raft</c> package
    /// under capnslog: <c>raft2006/01/02 15:04:05 INFO: message</c> (levels DEBUG, INFO, WARN, ERROR, FATAL).
    /// </summary>
    public static void AppendRaftDefault(StringBuilder sb, DateTimeOffset time, LogLevel level, string message)
    {
        string name = level switch
        {
            LogLevel.Trace or LogLevel.Debug => "DEBUG",
            LogLevel.Information => "INFO",
            LogLevel.Warning => "WARN",
            LogLevel.Error => "ERROR",
            _ => "FATAL",
        };
        sb.Append("raft").Append(time.ToString("yyyy'/'MM'/'dd HH':'mm':'ss", CultureInfo.InvariantCulture))
            .Append(' ').Append(name).Append(": ").Append(message);
        if (message.Length == 0 || message[^1] != '\n')
        {
            sb.Append('\n');
        }
    }

    /// <summary>
    /// Appends <paramref name="value"/> as JSON the way etcd's zap fields encode: null; strings quoted;
    /// bool; integers and decimals bare; floats bare (NaN/±Inf quoted); <see cref="TimeSpan"/> as a Go
    /// duration string (<c>"1.5s"</c>); <see cref="Uri"/> as its original string; exceptions as their message;
    /// dictionaries as objects; other sequences (string lists, URL lists, numbers) as arrays; anything else
    /// by its <c>ToString()</c>, quoted.
    /// </summary>
    public static void AppendJsonValue(StringBuilder sb, object? value, int depth = 0)
    {
        switch (value)
        {
            case null:
                sb.Append("null");
                return;
            case string s:
                AppendJsonString(sb, s);
                return;
            case bool b:
                sb.Append(b ? "true" : "false");
                return;
            case byte or sbyte or short or ushort or int or uint or long or ulong or decimal:
                sb.Append(((IFormattable)value).ToString(null, CultureInfo.InvariantCulture));
                return;
            case double d:
                AppendFloat(sb, d);
                return;
            case float f:
                AppendFloat(sb, f);
                return;
            case TimeSpan ts:
                AppendJsonString(sb, GoDuration.Format(ts));
                return;
            case DateTimeOffset dto:
                AppendJsonString(sb, ZapTime(dto));
                return;
            case DateTime dt:
                AppendJsonString(sb, ZapTime(new DateTimeOffset(dt.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(dt, DateTimeKind.Utc) : dt)));
                return;
            case Uri uri:
                AppendJsonString(sb, uri.OriginalString);
                return;
            case Exception ex:
                AppendJsonString(sb, ex.Message);
                return;
            case Enum e:
                AppendJsonString(sb, e.ToString());
                return;
            case byte[] bytes:
                AppendJsonString(sb, Convert.ToBase64String(bytes));
                return;
        }
        if (depth < 8)
        {
            if (value is IDictionary dict)
            {
                sb.Append('{');
                bool first = true;
                foreach (DictionaryEntry entry in dict)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    AppendJsonString(sb, Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? "");
                    sb.Append(':');
                    AppendJsonValue(sb, entry.Value, depth + 1);
                }
                sb.Append('}');
                return;
            }
            if (value is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                sb.Append('{');
                bool first = true;
                foreach (var pair in pairs)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    AppendJsonString(sb, pair.Key);
                    sb.Append(':');
                    AppendJsonValue(sb, pair.Value, depth + 1);
                }
                sb.Append('}');
                return;
            }
            if (value is IEnumerable seq)
            {
                sb.Append('[');
                bool first = true;
                foreach (object? item in seq)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    AppendJsonValue(sb, item, depth + 1);
                }
                sb.Append(']');
                return;
            }
        }
        AppendJsonString(sb, Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");
    }

    private static void AppendFloat(StringBuilder sb, double d)
    {
        if (double.IsNaN(d))
        {
            sb.Append("\"NaN\"");
        }
        else if (double.IsPositiveInfinity(d))
        {
            sb.Append("\"+Inf\"");
        }
        else if (double.IsNegativeInfinity(d))
        {
            sb.Append("\"-Inf\"");
        }
        else
        {
            sb.Append(d.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Appends a JSON string with zap's escaping: <c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\r</c>, <c>\t</c>, other
    /// control characters as <c>\u00xx</c>; everything else (including non-ASCII and <c>&lt;&gt;&amp;</c>) raw;
    /// unpaired surrogates become U+FFFD.
    /// </summary>
    public static void AppendJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                    {
                        sb.Append(c).Append(s[i + 1]);
                        i++;
                    }
                    else if (char.IsSurrogate(c))
                    {
                        sb.Append('\uFFFD');
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>
    /// Renders a value inline in message text (Go's <c>%v</c> style): strings as is, sequences as
    /// <c>[a b c]</c>, <see cref="TimeSpan"/> as a Go duration, <see cref="Uri"/> as its original string, null as <c>&lt;nil&gt;</c>.
    /// </summary>
    public static string FormatInline(object? value) => value switch
    {
        null => "<nil>",
        string s => s,
        bool b => b ? "true" : "false",
        TimeSpan ts => GoDuration.Format(ts),
        Uri u => u.OriginalString,
        Exception ex => ex.Message,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable seq => "[" + string.Join(" ", seq.Cast<object?>().Select(FormatInline)) + "]",
        _ => value.ToString() ?? "",
    };
}
