using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Etcd.Main.Config;

/// <summary>How a Go <c>strconv</c> number parse failed.</summary>
internal enum GoNumError
{
    None,
    Syntax,
    Range,
}

/// <summary>
/// Go's parsing rules that etcd's flags inherit: <c>strconv.ParseUint/ParseInt</c> with base 0 (prefixes
/// 0x, 0o, 0b, leading-0 octal, digit-separating underscores), <c>strconv.ParseBool</c>, and <c>%q</c> quoting.
/// </summary>
internal static class GoSyntax
{
    /// <summary><c>strconv.ParseUint(s, 0, bits)</c>.</summary>
    public static GoNumError ParseUint(string s, int bits, out ulong value)
    {
        value = 0;
        if (s.Length == 0)
        {
            return GoNumError.Syntax;
        }
        int b = 10;
        int i = 0;
        bool base0Underscores = true;
        if (s[0] == '0')
        {
            if (s.Length >= 3 && (s[1] is 'x' or 'X'))
            {
                b = 16;
                i = 2;
            }
            else if (s.Length >= 3 && (s[1] is 'o' or 'O'))
            {
                b = 8;
                i = 2;
            }
            else if (s.Length >= 3 && (s[1] is 'b' or 'B'))
            {
                b = 2;
                i = 2;
            }
            else
            {
                b = 8;
                i = 1;
            }
        }
        ulong max = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        bool sawUnderscore = false;
        bool overflow = false;
        ulong n = 0;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            int d;
            if (c == '_' && base0Underscores)
            {
                sawUnderscore = true;
                continue;
            }
            if (c >= '0' && c <= '9')
            {
                d = c - '0';
            }
            else if (c >= 'a' && c <= 'z')
            {
                d = c - 'a' + 10;
            }
            else if (c >= 'A' && c <= 'Z')
            {
                d = c - 'A' + 10;
            }
            else
            {
                return GoNumError.Syntax;
            }
            if (d >= b)
            {
                return GoNumError.Syntax;
            }
            if (overflow)
            {
                continue;
            }
            if (n > (ulong.MaxValue - (ulong)d) / (ulong)b)
            {
                overflow = true;
                continue;
            }
            n = n * (ulong)b + (ulong)d;
            if (n > max)
            {
                overflow = true;
            }
        }
        if (sawUnderscore && !UnderscoreOk(s))
        {
            return GoNumError.Syntax;
        }
        if ((b == 16 || b == 2 || (b == 8 && s.Length >= 2 && s[1] is 'o' or 'O')) && s.Length == 2)
        {
            return GoNumError.Syntax;
        }
        if (overflow)
        {
            value = max;
            return GoNumError.Range;
        }
        value = n;
        return GoNumError.None;
    }

    /// <summary><c>strconv.ParseInt(s, 0, bits)</c>.</summary>
    public static GoNumError ParseInt(string s, int bits, out long value)
    {
        value = 0;
        if (s.Length == 0)
        {
            return GoNumError.Syntax;
        }
        bool neg = false;
        string body = s;
        if (s[0] is '+' or '-')
        {
            neg = s[0] == '-';
            body = s[1..];
        }
        var err = ParseUint(body, bits == 64 ? 64 : bits, out ulong un);
        if (err == GoNumError.Syntax)
        {
            return err;
        }
        ulong cutoff = 1UL << (bits - 1);
        if (err == GoNumError.Range || (!neg && un >= cutoff) || (neg && un > cutoff))
        {
            value = neg ? -(long)(cutoff - 1) - 1 : (long)(cutoff - 1);
            return GoNumError.Range;
        }
        value = neg ? (long)(0 - un) : (long)un;
        return GoNumError.None;
    }

    // Go's underscoreOK: underscores only between digits (or after a base prefix).
    private static bool UnderscoreOk(string s)
    {
        char saw = '^';
        int i = 0;
        if (s.Length >= 1 && (s[0] == '-' || s[0] == '+'))
        {
            s = s[1..];
        }
        bool hex = false;
        if (s.Length >= 2 && s[0] == '0' && char.ToLowerInvariant(s[1]) is 'b' or 'o' or 'x')
        {
            i = 2;
            saw = '0';
            hex = char.ToLowerInvariant(s[1]) == 'x';
        }
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsAsciiDigit(c) || (hex && char.IsAsciiHexDigit(c)))
            {
                saw = '0';
                continue;
            }
            if (c == '_')
            {
                if (saw != '0')
                {
                    return false;
                }
                saw = '_';
                continue;
            }
            if (saw == '_')
            {
                return false;
            }
            saw = '!';
        }
        return saw != '_';
    }

    /// <summary><c>strconv.ParseBool</c>.</summary>
    public static bool TryParseBool(string s, out bool value)
    {
        switch (s)
        {
            case "1" or "t" or "T" or "true" or "TRUE" or "True":
                value = true;
                return true;
            case "0" or "f" or "F" or "false" or "FALSE" or "False":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    /// <summary>Go's <c>%q</c> of a string (<c>strconv.Quote</c>).</summary>
    public static string Quote(string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\a': sb.Append("\\a"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\v': sb.Append("\\v"); break;
                default:
                    if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>Go's <c>%q</c> of a <c>[]string</c>: <c>["a" "b"]</c>.</summary>
    public static string Quote(IEnumerable<string> values) => "[" + string.Join(" ", values.Select(Quote)) + "]";

    /// <summary>Go's <c>net.ParseIP(host) != nil</c>: strict dotted IPv4 or IPv6 without zone.</summary>
    public static bool IsIP(string host)
    {
        if (host.Contains(':'))
        {
            return !host.Contains('%') && IPAddress.TryParse(host, out var a) && a.AddressFamily == AddressFamily.InterNetworkV6;
        }
        string[] parts = host.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }
        foreach (string p in parts)
        {
            if (p.Length == 0 || p.Length > 3 || !p.All(char.IsAsciiDigit) || (p.Length > 1 && p[0] == '0') || int.Parse(p, CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Go's <c>net.SplitHostPort</c>; false on "missing port" or "too many colons".</summary>
    public static bool TrySplitHostPort(string hostport, out string host, out string port)
    {
        host = "";
        port = "";
        if (hostport.StartsWith('['))
        {
            int end = hostport.IndexOf(']');
            if (end < 0 || end + 1 >= hostport.Length || hostport[end + 1] != ':')
            {
                return false;
            }
            host = hostport[1..end];
            port = hostport[(end + 2)..];
            return !port.Contains(':') && !port.Contains('[') && !port.Contains(']');
        }
        int i = hostport.LastIndexOf(':');
        if (i < 0)
        {
            return false;
        }
        host = hostport[..i];
        port = hostport[(i + 1)..];
        return !host.Contains(':') && !host.Contains('[') && !host.Contains(']') && !port.Contains('[') && !port.Contains(']');
    }
}
