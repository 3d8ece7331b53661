using System.Globalization;

namespace Etcd.Ctl.Cli;

/// <summary>The value types of pflag that etcdctl uses; each parses and prints as pflag does.</summary>
public enum FlagKind
{
    /// <summary><c>bool</c>: <c>--x</c> alone means true (pflag's NoOptDefVal).</summary>
    Bool,

    /// <summary><c>string</c>.</summary>
    String,

    /// <summary><c>int64</c> (strconv.ParseInt base 0).</summary>
    Int64,

    /// <summary><c>int</c> (strconv.ParseInt base 0, 64-bit).</summary>
    Int,

    /// <summary><c>uint64</c> (strconv.ParseUint base 0).</summary>
    Uint64,

    /// <summary><c>duration</c> (time.ParseDuration).</summary>
    Duration,

    /// <summary><c>stringSlice</c>: comma-separated; the first set replaces the default, later ones append.</summary>
    StringSlice,
}

/// <summary>
/// One command-line flag as pflag keeps it: name, shorthand, usage text, default (as pflag prints it), current value,
/// and whether the command line (or the environment) set it. Not thread-safe: parsed once per run.
/// </summary>
public sealed class Flag
{
    private List<string> _slice = [];

    /// <summary>Creates a flag with its default <paramref name="defaultValue"/> (in pflag's text form, e.g. <c>2s</c>, <c>false</c>).</summary>
    public Flag(string name, string? shorthand, FlagKind kind, string defaultValue, string usage)
    {
        Name = name;
        Shorthand = shorthand;
        Kind = kind;
        Usage = usage;
        DefValue = kind == FlagKind.StringSlice ? "[" + defaultValue + "]" : defaultValue;
        Raw = defaultValue;
        if (kind == FlagKind.StringSlice)
        {
            _slice = defaultValue.Length == 0 ? [] : [.. defaultValue.Split(',')];
        }
    }

    /// <summary>The long name, without dashes.</summary>
    public string Name { get; }

    /// <summary>The one-letter shorthand, or null.</summary>
    public string? Shorthand { get; }

    /// <summary>The value type.</summary>
    public FlagKind Kind { get; }

    /// <summary>The usage text.</summary>
    public string Usage { get; }

    /// <summary>The default as pflag prints it in usage (<c>[a,b]</c> for slices).</summary>
    public string DefValue { get; }

    /// <summary>The current value's text (for slices the last text set).</summary>
    public string Raw { get; private set; }

    /// <summary>Whether the flag was set on the command line or from the environment.</summary>
    public bool Changed { get; private set; }

    /// <summary>pflag's NoOptDefVal: the value of the bare flag (bool flags only).</summary>
    public string? NoOptDefVal => Kind == FlagKind.Bool ? "true" : null;

    /// <summary>pflag's type name (<c>string</c> values are quoted in etcdctl's usage).</summary>
    public string TypeName => Kind switch
    {
        FlagKind.Bool => "bool",
        FlagKind.String => "string",
        FlagKind.Int64 => "int64",
        FlagKind.Int => "int",
        FlagKind.Uint64 => "uint64",
        FlagKind.Duration => "duration",
        _ => "stringSlice",
    };

    /// <summary>The flag as pflag names it in errors: <c>--name</c> or <c>-w, --write-out</c>.</summary>
    public string DisplayName => Shorthand is null ? "--" + Name : "-" + Shorthand + ", --" + Name;

    /// <summary>Sets the value from <paramref name="value"/>; returns the parse error (Go's text) or null.</summary>
    public string? Set(string value)
    {
        switch (Kind)
        {
            case FlagKind.Bool:
                if (ParseBool(value) is null)
                {
                    return $"strconv.ParseBool: parsing {GoFormat.Quote(value)}: invalid syntax";
                }

                break;
            case FlagKind.Int64:
            case FlagKind.Int:
                if (ParseInt(value) is null)
                {
                    return $"strconv.ParseInt: parsing {GoFormat.Quote(value)}: invalid syntax";
                }

                break;
            case FlagKind.Uint64:
                if (ParseUint(value) is null)
                {
                    return $"strconv.ParseUint: parsing {GoFormat.Quote(value)}: invalid syntax";
                }

                break;
            case FlagKind.Duration:
                if (!GoDuration.TryParse(value, out _, out var error))
                {
                    return error;
                }

                break;
            case FlagKind.StringSlice:
                var parts = value.Length == 0 ? [] : value.Split(',').ToList();
                _slice = Changed ? [.. _slice, .. parts] : parts;
                break;
        }

        Raw = value;
        Changed = true;
        return null;
    }

    /// <summary>The value of a bool flag.</summary>
    public bool Bool => ParseBool(Raw) ?? false;

    /// <summary>The value of an int/int64 flag.</summary>
    public long Int64 => ParseInt(Raw) ?? 0;

    /// <summary>The value of a uint64 flag.</summary>
    public ulong Uint64 => ParseUint(Raw) ?? 0;

    /// <summary>The value of a duration flag.</summary>
    public TimeSpan Duration => GoDuration.TryParse(Raw, out var d, out _) ? d : TimeSpan.Zero;

    /// <summary>The value of a string-slice flag.</summary>
    public IReadOnlyList<string> Slice => _slice;

    private static bool? ParseBool(string s) => s switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };

    internal static long? ParseInt(string s)
    {
        var negative = s.StartsWith('-');
        var body = negative || s.StartsWith('+') ? s[1..] : s;
        var u = ParseUint(body);
        if (u is null || u > (negative ? 9223372036854775808UL : long.MaxValue))
        {
            return null;
        }

        return negative ? (long)(0 - u.Value) : (long)u.Value;
    }

    private static ulong? ParseUint(string s)
    {
        var text = s.Replace("_", string.Empty, StringComparison.Ordinal);
        var style = NumberStyles.None;
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            text = text[2..];
            style = NumberStyles.AllowHexSpecifier;
        }
        else if (text.Length > 1 && text[0] == '0')
        {
            try
            {
                return text.TrimStart('0', 'o', 'O').Aggregate(0UL, (acc, c) => c is >= '0' and <= '7' ? checked(acc * 8 + (ulong)(c - '0')) : throw new FormatException());
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                return null;
            }
        }

        return text.Length > 0 && ulong.TryParse(text, style, CultureInfo.InvariantCulture, out var v) ? v : null;
    }
}

/// <summary>An ordered set of flags (pflag's FlagSet) with lookup by name and shorthand.</summary>
public sealed class FlagSet
{
    private readonly List<Flag> _flags = [];

    /// <summary>The flags in the order added.</summary>
    public IReadOnlyList<Flag> All => _flags;

    /// <summary>Adds a flag and returns it.</summary>
    public Flag Add(string name, string? shorthand, FlagKind kind, string defaultValue, string usage)
    {
        var f = new Flag(name, shorthand, kind, defaultValue, usage);
        _flags.Add(f);
        return f;
    }

    /// <summary>Adds a bool flag.</summary>
    public Flag Bool(string name, bool defaultValue, string usage, string? shorthand = null) =>
        Add(name, shorthand, FlagKind.Bool, defaultValue ? "true" : "false", usage);

    /// <summary>Adds a string flag.</summary>
    public Flag String(string name, string defaultValue, string usage, string? shorthand = null) =>
        Add(name, shorthand, FlagKind.String, defaultValue, usage);

    /// <summary>Adds an int64 flag.</summary>
    public Flag Int64(string name, long defaultValue, string usage) =>
        Add(name, null, FlagKind.Int64, defaultValue.ToString(CultureInfo.InvariantCulture), usage);

    /// <summary>Adds an int flag.</summary>
    public Flag Int(string name, int defaultValue, string usage) =>
        Add(name, null, FlagKind.Int, defaultValue.ToString(CultureInfo.InvariantCulture), usage);

    /// <summary>Finds a flag by long name.</summary>
    public Flag? Lookup(string name) => _flags.FirstOrDefault(f => f.Name == name);
}
