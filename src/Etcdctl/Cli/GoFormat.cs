using System.Globalization;
using System.Text;

namespace Etcd.Ctl.Cli;

/// <summary>Go's formatting of strings as etcdctl prints them: <c>%q</c> (strconv.Quote) and encoding/json string escaping.</summary>
public static class GoFormat
{
    /// <summary><c>strconv.Quote</c> of a .NET string (its UTF-8 bytes).</summary>
    public static string Quote(string s) => Quote(Encoding.UTF8.GetBytes(s));

    /// <summary>
    /// <c>strconv.Quote</c> of raw bytes (a Go string): printable runes as is, <c>\a\b\f\n\r\t\v\\\"</c>, other runes below
    /// U+10000 as <c>\uXXXX</c>, above as <c>\UXXXXXXXX</c>, bytes that are not UTF-8 as <c>\xNN</c>.
    /// </summary>
    public static string Quote(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length + 2);
        sb.Append('"');
        var i = 0;
        while (i < bytes.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes[i..], out var rune, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                sb.Append("\\x").Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture));
                i++;
                continue;
            }

            i += consumed;
            var v = rune.Value;
            switch (v)
            {
                case '"': sb.Append("\\\""); continue;
                case '\\': sb.Append("\\\\"); continue;
                case '\a': sb.Append("\\a"); continue;
                case '\b': sb.Append("\\b"); continue;
                case '\f': sb.Append("\\f"); continue;
                case '\n': sb.Append("\\n"); continue;
                case '\r': sb.Append("\\r"); continue;
                case '\t': sb.Append("\\t"); continue;
                case '\v': sb.Append("\\v"); continue;
            }

            if (IsPrint(rune))
            {
                sb.Append(rune.ToString());
            }
            else if (v < 0x20 || v == 0x7f)
            {
                sb.Append("\\x").Append(v.ToString("x2", CultureInfo.InvariantCulture));
            }
            else if (v < 0x10000)
            {
                sb.Append("\\u").Append(v.ToString("x4", CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append("\\U").Append(v.ToString("x8", CultureInfo.InvariantCulture));
            }
        }

        return sb.Append('"').ToString();
    }

    private static bool IsPrint(System.Text.Rune r)
    {
        if (r.Value < 0x80)
        {
            return r.Value >= 0x20 && r.Value < 0x7f;
        }

        var category = System.Text.Rune.GetUnicodeCategory(r);
        return category switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
                or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => false,
            UnicodeCategory.SpaceSeparator => r.Value == 0x3000 || false,
            _ => true,
        };
    }

    /// <summary>encoding/json's string literal: <c>&lt; &gt; &amp;</c> and U+2028/9 escaped, invalid UTF-8 as U+FFFD.</summary>
    public static void JsonString(StringBuilder sb, string s)
    {
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
                case '<': sb.Append("\\u003c"); break;
                case '>': sb.Append("\\u003e"); break;
                case '&': sb.Append("\\u0026"); break;
                case '\u2028': sb.Append("\\u2028"); break;
                case '\u2029': sb.Append("\\u2029"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
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

    /// <summary>The string Go makes of raw bytes when it must be valid UTF-8 (invalid sequences become U+FFFD).</summary>
    public static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>etcdctl's <c>--hex</c> form of bytes: <c>\x66\x6f\x6f</c>.</summary>
    public static string HexEscaped(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 4);
        foreach (var b in bytes)
        {
            sb.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}
