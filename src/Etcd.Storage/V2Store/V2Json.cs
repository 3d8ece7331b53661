using System.Globalization;
using System.Text.Json;

namespace Etcd.Storage.V2Store;

/// <summary>
/// JSON helpers shared by the v2 store: the writer options (no indentation, non-ASCII written as is, as Go's
/// <c>encoding/json</c>), and times as Go writes them (<c>time.RFC3339Nano</c> in UTC, trailing zeros of the
/// fraction dropped; Go's zero time <c>0001-01-01T00:00:00Z</c>). Times are Unix nanoseconds (0 = no time).
/// </summary>
public static class V2Json
{
    /// <summary>Go's zero <c>time.Time</c> as JSON text.</summary>
    public const string ZeroTime = "0001-01-01T00:00:00Z";

    /// <summary>Compact output, strings escaped as Go's <c>encoding/json</c> escapes them (<see cref="GoJsonEncoder"/>).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = GoJsonEncoder.Instance };

    /// <summary>The same escaping for <see cref="JsonSerializer"/>.</summary>
    public static readonly JsonSerializerOptions SerializerOptions = new() { Encoder = GoJsonEncoder.Instance };

    /// <summary>Formats Unix nanoseconds as Go's RFC3339Nano in UTC; 0 gives <see cref="ZeroTime"/>.</summary>
    public static string FormatTime(long unixNanos)
    {
        if (unixNanos == 0)
        {
            return ZeroTime;
        }

        var seconds = Math.DivRem(unixNanos, 1_000_000_000L, out var frac);
        if (frac < 0)
        {
            frac += 1_000_000_000L;
            seconds--;
        }

        var t = DateTime.UnixEpoch.AddSeconds(seconds);
        var s = t.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        if (frac != 0)
        {
            s += "." + frac.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        return s + "Z";
    }

    /// <summary>
    /// Parses an RFC 3339 time with up to nanosecond precision (any offset) into Unix nanoseconds; Go's zero time
    /// (year 1) gives 0.
    /// </summary>
    /// <exception cref="FormatException">Not an RFC 3339 time.</exception>
    public static long ParseTime(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith("0001-01-01T00:00:00", StringComparison.Ordinal))
        {
            return 0;
        }

        // Split off the fraction so that nanoseconds survive (DateTimeOffset keeps 100 ns).
        long fracNanos = 0;
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        var plain = text;
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            var digits = text[(dot + 1)..end];
            if (digits.Length is 0 or > 9)
            {
                throw new FormatException($"bad time {text}");
            }

            fracNanos = long.Parse(digits.PadRight(9, '0'), CultureInfo.InvariantCulture);
            plain = text[..dot] + text[end..];
        }

        var dto = DateTimeOffset.Parse(plain, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        return (dto.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond * 1_000_000_000L + fracNanos;
    }

    /// <summary>Now of <paramref name="clock"/> in Unix nanoseconds (100 ns resolution).</summary>
    public static long Now(TimeProvider clock) => (clock.GetUtcNow().UtcTicks - DateTime.UnixEpoch.Ticks) * 100;
}
