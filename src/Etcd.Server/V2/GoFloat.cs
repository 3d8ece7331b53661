using System.Globalization;

namespace Etcd.Server.V2;

/// <summary>
/// A float64 as Go's <c>encoding/json</c> writes it: the shortest digits that read back as the same value, in plain
/// notation when 1e-6 ≤ |v| &lt; 1e21 (<c>9223372036854776000</c>, <c>0.123</c>), else in exponent notation, positive
/// exponents with at least two digits (<c>1e+21</c>, <c>1e-7</c>, <c>1.5e-10</c>). NaN and infinities are not valid JSON and are not accepted.
/// </summary>
internal static class GoFloat
{
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="v"/> is NaN or infinite.</exception>
    public static string Format(double v)
    {
        if (!double.IsFinite(v))
        {
            throw new ArgumentOutOfRangeException(nameof(v), v, "not a JSON number");
        }

        if (v == 0)
        {
            return "0";
        }

        // "R" gives the shortest round-trip digits, as d.ddddE+xx or plain; split into digits and a decimal exponent.
        var shortest = Math.Abs(v).ToString("R", CultureInfo.InvariantCulture);
        string mantissa;
        int exp;
        var e = shortest.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            mantissa = shortest[..e];
            exp = int.Parse(shortest[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        else
        {
            mantissa = shortest;
            exp = 0;
        }

        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        var pointAt = (dot < 0 ? mantissa.Length : dot) + exp;

        // Normalise: drop leading zeros (0.00123 → digits 123, point moved left).
        var lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }

        digits = digits[lead..].TrimEnd('0');
        pointAt -= lead;
        if (digits.Length == 0)
        {
            return "0";
        }

        var sign = v < 0 ? "-" : "";
        var abs = Math.Abs(v);
        if (abs < 1e21 && abs >= 1e-6)
        {
            if (pointAt <= 0)
            {
                return sign + "0." + new string('0', -pointAt) + digits;
            }

            if (pointAt >= digits.Length)
            {
                return sign + digits + new string('0', pointAt - digits.Length);
            }

            return sign + digits[..pointAt] + "." + digits[pointAt..];
        }

        var x = pointAt - 1;
        var m = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return sign + m + "e" + (x < 0 ? "-" : "+") + Math.Abs(x).ToString(x < 0 ? "D1" : "D2", CultureInfo.InvariantCulture);
    }
}
