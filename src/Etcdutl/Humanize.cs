using System.Globalization;

namespace Etcd.Utl;

/// <summary>go-humanize's <c>Bytes</c>: SI units (base 1000), e.g. 24576 → <c>25 kB</c>, 1234 → <c>1.2 kB</c>, 9 → <c>9 B</c>.</summary>
public static class Humanize
{
    private static readonly string[] Sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

    /// <summary>Formats <paramref name="s"/> bytes as go-humanize does.</summary>
    public static string Bytes(ulong s)
    {
        if (s < 10)
        {
            return s.ToString(CultureInfo.InvariantCulture) + " B";
        }
        var e = Math.Floor(Math.Log(s) / Math.Log(1000));
        var suffix = Sizes[(int)e];
        var val = Math.Floor(s / Math.Pow(1000, e) * 10 + 0.5) / 10;
        // Go's %.0f / %.1f round half to even on the exact binary value
        return val < 10
            ? Math.Round(val, 1, MidpointRounding.ToEven).ToString("0.0", CultureInfo.InvariantCulture) + " " + suffix
            : Math.Round(val, 0, MidpointRounding.ToEven).ToString("0", CultureInfo.InvariantCulture) + " " + suffix;
    }
}
