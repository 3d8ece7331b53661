using System.Text;

namespace Etcd.Server.V2;

/// <summary>
/// Go's form parsing as etcd's v2 handlers see it (<c>net/http.Request.ParseForm</c> over <c>net/url.ParseQuery</c>,
/// Go 1.19): pairs split on <c>&amp;</c>, a pair holding <c>;</c> refused ("invalid semicolon separator in query"),
/// <c>+</c> as a space, <c>%XX</c> escapes checked strictly ("invalid URL escape "%zz"", where ASP.NET's form reader
/// would keep the text as it is). A bad pair is skipped and parsing goes on; the error returned is the first
/// escape error, or the last semicolon error (Go assigns that one unconditionally). Stateless; thread-safe.
/// </summary>
internal static class GoForm
{
    /// <summary>Go's <c>http.defaultMaxMemory</c> limit on a form body: 10 MB.</summary>
    public const long MaxBodyBytes = 10 << 20;

    /// <summary>
    /// Adds the pairs of <paramref name="query"/> (a raw query string or form body, without a leading <c>?</c>) to
    /// <paramref name="into"/>, each value under its key in order. Returns Go's error text for the first bad pair
    /// (see the class remarks), or null.
    /// </summary>
    public static string? ParseQuery(string query, Dictionary<string, List<string>> into)
    {
        string? error = null;
        foreach (var pair in query.Split('&'))
        {
            if (pair.Contains(';', StringComparison.Ordinal))
            {
                error = "invalid semicolon separator in query";
                continue;
            }

            if (pair.Length == 0)
            {
                continue;
            }

            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var (rawKey, rawValue) = eq < 0 ? (pair, "") : (pair[..eq], pair[(eq + 1)..]);
            if (!TryUnescape(rawKey, out var key, out var e) || !TryUnescape(rawValue, out var value, out e))
            {
                error ??= e;
                continue;
            }

            if (!into.TryGetValue(key, out var list))
            {
                into[key] = list = [];
            }

            list.Add(value);
        }

        return error;
    }

    /// <summary>Go's <c>url.QueryUnescape</c>: <c>+</c> is a space, <c>%XX</c> a byte; the bytes are read as UTF-8.</summary>
    private static bool TryUnescape(string s, out string result, out string? error)
    {
        result = "";
        error = null;
        if (!s.Contains('%', StringComparison.Ordinal) && !s.Contains('+', StringComparison.Ordinal))
        {
            result = s;
            return true;
        }

        var bytes = Encoding.UTF8.GetBytes(s);
        var output = new List<byte>(bytes.Length);
        for (var i = 0; i < bytes.Length; i++)
        {
            switch (bytes[i])
            {
                case (byte)'%':
                    if (i + 2 >= bytes.Length || !IsHex(bytes[i + 1]) || !IsHex(bytes[i + 2]))
                    {
                        var bad = bytes.AsSpan(i, Math.Min(3, bytes.Length - i));
                        error = "invalid URL escape " + GoQuote(Encoding.UTF8.GetString(bad));
                        return false;
                    }

                    output.Add((byte)((Hex(bytes[i + 1]) << 4) | Hex(bytes[i + 2])));
                    i += 2;
                    break;
                case (byte)'+':
                    output.Add((byte)' ');
                    break;
                default:
                    output.Add(bytes[i]);
                    break;
            }
        }

        result = Encoding.UTF8.GetString(output.ToArray());
        return true;
    }

    private static bool IsHex(byte c) => c is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int Hex(byte c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>Go's <c>strconv.Quote</c> for the short texts an escape error holds.</summary>
    private static string GoQuote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in s)
        {
            _ = c switch
            {
                '"' => sb.Append("\\\""),
                '\\' => sb.Append("\\\\"),
                < ' ' or '\x7f' => sb.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)),
                _ => sb.Append(c),
            };
        }

        return sb.Append('"').ToString();
    }
}
