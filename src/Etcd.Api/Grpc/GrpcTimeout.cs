using System.Globalization;

namespace Etcd.Api.Grpc;

/// <summary>
/// The <c>grpc-timeout</c> header: at most 8 ASCII digits and one unit, <c>H</c> hours, <c>M</c> minutes,
/// <c>S</c> seconds, <c>m</c> milliseconds, <c>u</c> microseconds, <c>n</c> nanoseconds (e.g. <c>100m</c>,
/// <c>5S</c>, <c>1H</c>). Stateless and thread-safe.
/// </summary>
public static class GrpcTimeout
{
    private const long MaxValue = 99_999_999;

    /// <summary>
    /// Parses a header value into a timeout. Nanoseconds round up to whole ticks (100 ns) so a tiny positive
    /// timeout never becomes zero. Returns false on an empty value, more than 8 digits, a sign or an unknown unit.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length < 2 || value.Length > 9)
        {
            return false;
        }

        var digits = value[..^1];
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        var n = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        long ticks;
        switch (value[^1])
        {
            case 'H': ticks = n * TimeSpan.TicksPerHour; break;
            case 'M': ticks = n * TimeSpan.TicksPerMinute; break;
            case 'S': ticks = n * TimeSpan.TicksPerSecond; break;
            case 'm': ticks = n * TimeSpan.TicksPerMillisecond; break;
            case 'u': ticks = n * TimeSpan.TicksPerMicrosecond; break;
            case 'n': ticks = (n + 99) / 100; break;
            default: return false;
        }

        timeout = TimeSpan.FromTicks(ticks);
        return true;
    }

    /// <summary>
    /// Formats a timeout with the finest unit whose value fits in 8 digits (so precision is kept where the
    /// header allows). Negative timeouts format as <c>0n</c>; anything past 99999999 hours is clamped.
    /// </summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = timeout.Ticks;
        if (ticks <= 0)
        {
            return "0n";
        }

        // Try units from finest to coarsest; round up so the receiver never sees a shorter timeout.
        if (ticks <= MaxValue / 100)
        {
            return Fmt(ticks * 100, 'n');
        }

        var us = Ceil(ticks, TimeSpan.TicksPerMicrosecond);
        if (us <= MaxValue)
        {
            return Fmt(us, 'u');
        }

        var ms = Ceil(ticks, TimeSpan.TicksPerMillisecond);
        if (ms <= MaxValue)
        {
            return Fmt(ms, 'm');
        }

        var s = Ceil(ticks, TimeSpan.TicksPerSecond);
        if (s <= MaxValue)
        {
            return Fmt(s, 'S');
        }

        var m = Ceil(ticks, TimeSpan.TicksPerMinute);
        if (m <= MaxValue)
        {
            return Fmt(m, 'M');
        }

        return Fmt(Math.Min(Ceil(ticks, TimeSpan.TicksPerHour), MaxValue), 'H');
    }

    private static long Ceil(long ticks, long unit) => (ticks / unit) + (ticks % unit == 0 ? 0 : 1);

    private static string Fmt(long value, char unit) => value.ToString(CultureInfo.InvariantCulture) + unit;
}
