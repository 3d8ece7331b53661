using System.Globalization;

namespace Etcd.Api.Grpc;

/// <summary>
/// The <c>grpc-timeout</c> header: at most 8 ASCII digits and one unit, <c>H</c> hours, <c>M</c> minutes,
/// <c>S</c> seconds, <c>m</c> milliseconds, <c>u</c> microseconds, <c>n</c> nanoseconds (e.g. <c>100m</c>,
/// <c>5S</c>, <c>1H</c>). Stateless and thread-safe.
/// </summary>
public static class GrpcTimeout
{
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
}
