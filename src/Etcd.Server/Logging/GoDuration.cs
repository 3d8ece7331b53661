using System.Globalization;
using System.Text;

namespace Etcd.Server.Logging;

/// <summary>
/// Go's <c>time.Duration</c> text form, as etcd prints durations in its logs (zap's
/// <c>StringDurationEncoder</c>) and accepts them in duration flags (<c>time.ParseDuration</c>):
/// <c>0s</c>, <c>150ns</c>, <c>1.5µs</c>, <c>2.377936ms</c>, <c>7s</c>, <c>1m0s</c>, <c>2h0m0s</c>.
/// Stateless and thread-safe.
/// </summary>
public static class GoDuration
{
    private const long NsPerMicro = 1_000;
    private const long NsPerMilli = 1_000_000;
    private const long NsPerSecond = 1_000_000_000;

    /// <summary>Formats <paramref name="value"/> (resolution 100 ns) the way Go's <c>Duration.String</c> does.</summary>
    public static string Format(TimeSpan value)
    {
        long ns;
        try
        {
            ns = checked(value.Ticks * 100);
        }
        catch (OverflowException)
        {
            ns = value.Ticks < 0 ? long.MinValue : long.MaxValue;
        }
        return FormatNanoseconds(ns);
    }

    /// <summary>Formats a duration given in nanoseconds the way Go's <c>Duration.String</c> does.</summary>
    public static string FormatNanoseconds(long ns)
    {
        if (ns == 0)
        {
            return "0s";
        }
        var sb = new StringBuilder(24);
        bool negative = ns < 0;
        // Work in unsigned magnitude so long.MinValue is representable.
        ulong u = negative ? (ulong)(-(ns + 1)) + 1 : (ulong)ns;
        if (negative)
        {
            sb.Append('-');
        }
        if (u < NsPerSecond)
        {
            if (u < NsPerMicro)
            {
                sb.Append(u.ToString(CultureInfo.InvariantCulture)).Append("ns");
            }
            else if (u < NsPerMilli)
            {
                AppendFraction(sb, u, NsPerMicro, 3);
                sb.Append("µs");
            }
            else
            {
                AppendFraction(sb, u, NsPerMilli, 6);
                sb.Append("ms");
            }
            return sb.ToString();
        }
        ulong totalSeconds = u / NsPerSecond;
        ulong fracNs = u % NsPerSecond;
        ulong hours = totalSeconds / 3600;
        ulong minutes = totalSeconds / 60 % 60;
        ulong seconds = totalSeconds % 60;
        if (hours > 0)
        {
            sb.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }
        if (hours > 0 || minutes > 0)
        {
            sb.Append(minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        }
        sb.Append(seconds.ToString(CultureInfo.InvariantCulture));
        AppendFractionDigits(sb, fracNs, 9);
        sb.Append('s');
        return sb.ToString();
    }

    private static void AppendFraction(StringBuilder sb, ulong value, ulong unit, int digits)
    {
        sb.Append((value / unit).ToString(CultureInfo.InvariantCulture));
        AppendFractionDigits(sb, value % unit, digits);
    }

    private static void AppendFractionDigits(StringBuilder sb, ulong frac, int digits)
    {
        if (frac == 0)
        {
            return;
        }
        string s = frac.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        sb.Append('.').Append(s);
    }

    /// <summary>
    /// Parses Go's duration syntax (<c>time.ParseDuration</c>): an optional sign, then one or more decimal numbers
    /// each with a unit among ns, us, µs, μs, ms, s, m, h (<c>"300ms"</c>, <c>"1.5h"</c>, <c>"2h45m"</c>);
    /// a bare <c>"0"</c> is allowed. Returns false on any syntax error or overflow.
    /// </summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="nanoseconds">The duration in nanoseconds.</param>
    public static bool TryParse(string text, out long nanoseconds)
    {
        nanoseconds = 0;
        ReadOnlySpan<char> s = text;
        bool negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s.SequenceEqual("0"))
        {
            return true;
        }
        if (s.IsEmpty)
        {
            return false;
        }
        decimal total = 0;
        while (!s.IsEmpty)
        {
            int i = 0;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }
            int intDigits = i;
            decimal value = 0;
            if (intDigits > 0 && !decimal.TryParse(s[..i], NumberStyles.None, CultureInfo.InvariantCulture, out value))
            {
                return false;
            }
            bool hasFraction = false;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                int start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }
                hasFraction = i > start;
                if (hasFraction)
                {
                    var fracDigits = s[start..i];
                    if (fracDigits.Length > 18)
                    {
                        fracDigits = fracDigits[..18];
                    }
                    value += decimal.Parse(fracDigits, NumberStyles.None, CultureInfo.InvariantCulture) / Pow10(fracDigits.Length);
                }
            }
            if (intDigits == 0 && !hasFraction)
            {
                return false;
            }
            s = s[i..];
            int u = 0;
            while (u < s.Length && s[u] != '.' && !char.IsAsciiDigit(s[u]))
            {
                u++;
            }
            if (u == 0)
            {
                return false; // missing unit
            }
            decimal unit;
            switch (s[..u])
            {
                case "ns": unit = 1; break;
                case "us":
                case "µs":
                case "μs": unit = NsPerMicro; break;
                case "ms": unit = NsPerMilli; break;
                case "s": unit = NsPerSecond; break;
                case "m": unit = 60m * NsPerSecond; break;
                case "h": unit = 3600m * NsPerSecond; break;
                default: return false;
            }
            s = s[u..];
            total += value * unit;
            if (total > long.MaxValue)
            {
                return false;
            }
        }
        nanoseconds = (long)decimal.Truncate(negative ? -total : total);
        return true;
    }

    private static decimal Pow10(int n)
    {
        decimal r = 1;
        for (int i = 0; i < n; i++)
        {
            r *= 10;
        }
        return r;
    }
}
