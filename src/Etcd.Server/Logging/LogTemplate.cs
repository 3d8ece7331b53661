using System.Collections.Concurrent;
using System.Text;

namespace Etcd.Server.Logging;

/// <summary>
/// A message template (<c>"{OriginalFormat}"</c> of Microsoft.Extensions.Logging) split into etcd's zap
/// shape. Rule: the trailing run of placeholders (separated only by whitespace, none named with a leading
/// <c>@</c>) become zap fields, their names turned to kebab-case (<c>{LocalMemberId}</c> → <c>local-member-id</c>;
/// names already containing <c>-</c> are kept); every other placeholder is rendered inline into <c>msg</c>.
/// A leading <c>@</c> (<c>{@Term}</c>) forces a trailing placeholder inline. Parsed templates are cached; thread-safe.
/// </summary>
internal sealed class LogTemplate
{
    private static readonly ConcurrentDictionary<string, LogTemplate> s_cache = new(StringComparer.Ordinal);

    private readonly List<Segment> _segments = [];

    /// <summary>Placeholders in template order.</summary>
    public int PlaceholderCount { get; private set; }

    /// <summary>Index (in placeholder order) of the first placeholder that is a field; equals <see cref="PlaceholderCount"/> when none.</summary>
    public int FirstField { get; private set; }

    /// <summary>Field names (kebab-case) for placeholders FirstField.. in order.</summary>
    public string[] FieldNames { get; private set; } = [];

    private readonly record struct Segment(string? Literal, int Placeholder);

    public static LogTemplate Get(string format)
    {
        if (s_cache.TryGetValue(format, out var t))
        {
            return t;
        }
        t = Parse(format);
        if (s_cache.Count < 4096)
        {
            s_cache.TryAdd(format, t);
        }
        return t;
    }

    private static LogTemplate Parse(string format)
    {
        var t = new LogTemplate();
        var names = new List<string>();
        var literal = new StringBuilder();
        int i = 0;
        while (i < format.Length)
        {
            char c = format[i];
            if (c == '{')
            {
                if (i + 1 < format.Length && format[i + 1] == '{')
                {
                    literal.Append('{');
                    i += 2;
                    continue;
                }
                int close = format.IndexOf('}', i + 1);
                if (close < 0)
                {
                    literal.Append(format, i, format.Length - i);
                    break;
                }
                if (literal.Length > 0)
                {
                    t._segments.Add(new Segment(literal.ToString(), -1));
                    literal.Clear();
                }
                string inner = format.Substring(i + 1, close - i - 1);
                int cut = inner.IndexOfAny([',', ':']);
                if (cut >= 0)
                {
                    inner = inner[..cut];
                }
                t._segments.Add(new Segment(null, names.Count));
                names.Add(inner.Trim());
                i = close + 1;
            }
            else if (c == '}' && i + 1 < format.Length && format[i + 1] == '}')
            {
                literal.Append('}');
                i += 2;
            }
            else
            {
                literal.Append(c);
                i++;
            }
        }
        if (literal.Length > 0)
        {
            t._segments.Add(new Segment(literal.ToString(), -1));
        }
        t.PlaceholderCount = names.Count;

        // Walk back over the trailing run of field placeholders.
        int first = names.Count;
        for (int s = t._segments.Count - 1; s >= 0; s--)
        {
            var seg = t._segments[s];
            if (seg.Literal != null)
            {
                if (!string.IsNullOrWhiteSpace(seg.Literal))
                {
                    break;
                }
                continue;
            }
            if (names[seg.Placeholder].StartsWith('@'))
            {
                break;
            }
            first = seg.Placeholder;
        }
        t.FirstField = first;
        t.FieldNames = names.Skip(first).Select(ToKebabCase).ToArray();
        return t;
    }

    /// <summary>zap's msg: literals plus inline placeholders, the field block dropped and trailing space trimmed.</summary>
    public string RenderMessage(IReadOnlyList<KeyValuePair<string, object?>> state)
    {
        var sb = new StringBuilder();
        foreach (var seg in _segments)
        {
            if (seg.Literal != null)
            {
                sb.Append(seg.Literal);
            }
            else if (seg.Placeholder < FirstField)
            {
                sb.Append(seg.Placeholder < state.Count ? EtcdLogLine.FormatInline(state[seg.Placeholder].Value) : "");
            }
        }
        int end = sb.Length;
        while (end > 0 && char.IsWhiteSpace(sb[end - 1]))
        {
            end--;
        }
        return sb.ToString(0, end);
    }

    /// <summary>Field pairs (kebab-case names) taken from <paramref name="state"/> by placeholder position.</summary>
    public IEnumerable<KeyValuePair<string, object?>> Fields(IReadOnlyList<KeyValuePair<string, object?>> state)
    {
        for (int p = FirstField; p < PlaceholderCount && p < state.Count; p++)
        {
            yield return new KeyValuePair<string, object?>(FieldNames[p - FirstField], state[p].Value);
        }
    }

    /// <summary><c>LocalMemberID</c> → <c>local-member-id</c>; names with <c>-</c> or all lower case are kept.</summary>
    public static string ToKebabCase(string name)
    {
        if (name.StartsWith('@'))
        {
            name = name[1..];
        }
        if (name.Contains('-') || (!name.Any(char.IsUpper) && !name.Contains('_')))
        {
            return name;
        }
        var sb = new StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                bool prevLowerOrDigit = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                bool nextLower = i + 1 < name.Length && char.IsLower(name[i + 1]);
                bool prevUpper = i > 0 && char.IsUpper(name[i - 1]);
                if (i > 0 && name[i - 1] != '_' && (prevLowerOrDigit || (prevUpper && nextLower)))
                {
                    sb.Append('-');
                }
                sb.Append(char.ToLowerInvariant(c));
            }
            else if (c == '_')
            {
                sb.Append('-');
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }
}
