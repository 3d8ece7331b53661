using System.Globalization;
using System.Text;

namespace Etcd.Storage.Schema;

/// <summary>
/// Writes JSON text the way Go's <c>encoding/json</c> does, so bytes etcd stores (member JSON, the v2 store
/// snapshot) come out identical: strings escape <c>"</c>, <c>\</c>, control characters (<c>\n</c>, <c>\r</c>,
/// <c>\t</c> short, others <c>\u00XX</c>), the HTML characters <c>&lt; &gt; &amp;</c> and U+2028/U+2029.
/// Not thread-safe (wraps one <see cref="StringBuilder"/>).
/// </summary>
public static class GoJson
{
    /// <summary>Appends <paramref name="s"/> as a quoted JSON string.</summary>
    public static StringBuilder AppendString(this StringBuilder sb, string s)
    {
        ArgumentNullException.ThrowIfNull(sb);
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029' or < ' ':
                    sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('"');
    }

    /// <summary>Appends a JSON array of strings, or <c>null</c> for a null list (Go's nil slice).</summary>
    public static StringBuilder AppendStringArray(this StringBuilder sb, IReadOnlyList<string>? items)
    {
        ArgumentNullException.ThrowIfNull(sb);
        if (items == null)
        {
            return sb.Append("null");
        }
        sb.Append('[');
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }
            sb.AppendString(items[i]);
        }
        return sb.Append(']');
    }
}
