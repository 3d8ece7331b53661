using System.Globalization;
using System.Text;

namespace Etcd.Ctl.Cli;

/// <summary>Go's <c>time.ParseDuration</c> and <c>time.Duration.String</c>, for duration flags and printed timings.</summary>
public static class GoDuration
{
    private static readonly (string Unit, double Nanos)[] Units =
    [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ];

    /// <summary>Parses <paramref name="text"/> (e.g. <c>1m30s</c>, <c>1.5s</c>, <c>0</c>); the error is Go's text.</summary>
    public static bool TryParse(string text, out TimeSpan value, out string error)
    {
        value = TimeSpan.Zero;
        error = string.Empty;
        var quoted = GoFormat.Quote(text);
        var s = text;
        var negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s == "0")
        {
            return true;
        }

        if (s.Length == 0)
        {
            error = "time: invalid duration " + quoted;
            return false;
        }

        double total = 0;
        while (s.Length > 0)
        {
            var i = 0;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            var number = s[..i];
            if (number.Length == 0 || number == "." || number.Count(c => c == '.') > 1)
            {
                error = "time: invalid duration " + quoted;
                return false;
            }

            s = s[i..];
            var j = 0;
            while (j < s.Length && !char.IsAsciiDigit(s[j]) && s[j] != '.')
            {
                j++;
            }

            var unit = s[..j];
            s = s[j..];
            if (unit.Length == 0)
            {
                error = "time: missing unit in duration " + quoted;
                return false;
            }

            var match = Units.FirstOrDefault(u => u.Unit == unit);
            if (match.Unit is null)
            {
                error = "time: unknown unit " + GoFormat.Quote(unit) + " in duration " + quoted;
                return false;
            }

            total += double.Parse(number, CultureInfo.InvariantCulture) * match.Nanos;
        }

        if (total > long.MaxValue)
        {
            error = "time: invalid duration " + quoted;
            return false;
        }

        value = TimeSpan.FromTicks((long)(total / 100) * (negative ? -1 : 1));
        return true;
    }

    /// <summary>Go's <c>Duration.String</c>: <c>2s</c>, <c>1m30s</c>, <c>1.5ms</c>, <c>3.794204ms</c>, <c>0s</c>.</summary>
    public static string Format(TimeSpan d) => FormatNanos(d.Ticks * 100);

    /// <summary>Go's <c>Duration.String</c> of <paramref name="nanos"/> nanoseconds.</summary>
    public static string FormatNanos(long nanos)
    {
        if (nanos == 0)
        {
            return "0s";
        }

        var negative = nanos < 0;
        var u = (ulong)(negative ? -nanos : nanos);
        var sb = new StringBuilder();
        if (u < 1_000_000_000UL)
        {
            string unit;
            int prec;
            if (u < 1_000UL)
            {
                return (negative ? "-" : string.Empty) + u.ToString(CultureInfo.InvariantCulture) + "ns";
            }

            if (u < 1_000_000UL)
            {
                unit = "µs";
                prec = 3;
            }
            else
            {
                unit = "ms";
                prec = 6;
            }

            sb.Append(Fraction(u, prec)).Append(unit);
        }
        else
        {
            var secs = u / 1_000_000_000UL;
            var frac = u % 1_000_000_000UL;
            var fracText = FractionDigits(frac, 9);
            var s = secs % 60;
            var m = secs / 60 % 60;
            var h = secs / 3600;
            if (h > 0)
            {
                sb.Append(h.ToString(CultureInfo.InvariantCulture)).Append('h');
            }

            if (h > 0 || m > 0)
            {
                sb.Append(m.ToString(CultureInfo.InvariantCulture)).Append('m');
            }

            sb.Append(s.ToString(CultureInfo.InvariantCulture)).Append(fracText).Append('s');
        }

        return (negative ? "-" : string.Empty) + sb;
    }

    private static string Fraction(ulong v, int prec)
    {
        var p = (ulong)Math.Pow(10, prec);
        return (v / p).ToString(CultureInfo.InvariantCulture) + FractionDigits(v % p, prec);
    }

    private static string FractionDigits(ulong frac, int prec)
    {
        if (frac == 0)
        {
            return string.Empty;
        }

        var digits = frac.ToString(CultureInfo.InvariantCulture).PadLeft(prec, '0').TrimEnd('0');
        return "." + digits;
    }
}
