using System.Globalization;
using System.Text;
using Etcd.Server.Logging;

namespace Etcd.Main.Proxy;

/// <summary>The value kinds of pflag that etcd's proxy commands use.</summary>
internal enum CobraFlagKind
{
    /// <summary><c>string</c>.</summary>
    String,
    /// <summary><c>bool</c>: <c>--x</c> or <c>--x=false</c>, never the next argument.</summary>
    Bool,
    /// <summary><c>strings</c>: comma-separated, repeated flags add up.</summary>
    StringSlice,
    /// <summary><c>duration</c> in Go's syntax.</summary>
    Duration,
    /// <summary><c>int</c> (Go's int, 64-bit).</summary>
    Int,
    /// <summary><c>uint32</c>.</summary>
    Uint32,
}

/// <summary>One flag of a cobra command: name, kind, default (as pflag prints it) and usage text.</summary>
internal sealed record CobraFlag(string Name, CobraFlagKind Kind, string Default, string Usage);

/// <summary>A flag or argument error, worded as cobra/pflag word it (e.g. <c>unknown flag: --foo</c>).</summary>
internal sealed class CobraFlagException(string message) : Exception(message);

/// <summary>
/// The flags of one cobra sub-command (<c>etcd gateway start</c>, <c>etcd grpc-proxy start</c>) parsed with pflag's
/// rules: <c>--name=value</c> or <c>--name value</c>, bool flags without a value, flags and arguments interleaved,
/// <c>--</c> ends the flags, <c>-h</c>/<c>--help</c>; and its help text byte for byte as cobra prints it.
/// Not thread-safe; one instance per parse.
/// </summary>
internal sealed class CobraFlags
{
    private readonly List<CobraFlag> _flags;
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _changed = new(StringComparer.Ordinal);

    /// <summary>Creates the set; <c>help</c> is added as pflag adds it.</summary>
    public CobraFlags(IEnumerable<CobraFlag> flags)
    {
        _flags = flags.Append(new CobraFlag("help", CobraFlagKind.Bool, "false", "")).OrderBy(f => f.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Whether <c>-h</c>/<c>--help</c> was given.</summary>
    public bool Help => Bool("help");

    /// <summary>The arguments that were not flags, in order.</summary>
    public List<string> Positional { get; } = [];

    /// <summary>Parses <paramref name="args"/>; throws <see cref="CobraFlagException"/> with pflag's message.</summary>
    public void Parse(IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                Positional.AddRange(args.Skip(i + 1));
                return;
            }

            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string body = a[2..];
                int eq = body.IndexOf('=', StringComparison.Ordinal);
                string name = eq >= 0 ? body[..eq] : body;
                var flag = Find(name) ?? throw new CobraFlagException($"unknown flag: --{name}");
                string value;
                if (eq >= 0)
                {
                    value = body[(eq + 1)..];
                }
                else if (flag.Kind == CobraFlagKind.Bool)
                {
                    value = "true";
                }
                else if (i + 1 < args.Count)
                {
                    value = args[++i];
                }
                else
                {
                    throw new CobraFlagException($"flag needs an argument: --{name}");
                }

                Set(flag, value, $"--{name}");
            }
            else if (a.StartsWith('-') && a.Length > 1)
            {
                // the only shorthand of these commands is -h
                foreach (char c in a.AsSpan(1))
                {
                    if (c != 'h')
                    {
                        throw new CobraFlagException($"unknown shorthand flag: '{c}' in {a}");
                    }

                    Set(Find("help")!, "true", "-h");
                }
            }
            else
            {
                Positional.Add(a);
            }
        }
    }

    /// <summary>Whether the flag was given.</summary>
    public bool Changed(string name) => _changed.Contains(name);

    /// <summary>A string flag's value.</summary>
    public string Str(string name) => _values.TryGetValue(name, out var v) ? v : Find(name)!.Default;

    /// <summary>A bool flag's value.</summary>
    public bool Bool(string name) => Str(name) == "true";

    /// <summary>A string-slice flag's value.</summary>
    public IReadOnlyList<string> Slice(string name)
    {
        if (_values.TryGetValue(name, out var v))
        {
            return Csv(v);
        }

        var d = Find(name)!.Default;
        return d is "[]" ? [] : Csv(d.Trim('[', ']'));
    }

    /// <summary>A duration flag's value.</summary>
    public TimeSpan Duration(string name)
    {
        GoDuration.TryParse(Str(name), out long ns);
        return TimeSpan.FromTicks(ns / 100);
    }

    /// <summary>An int flag's value.</summary>
    public long Int(string name) => long.Parse(Str(name), CultureInfo.InvariantCulture);

    /// <summary>
    /// The help text cobra prints for <c>--help</c> (with <paramref name="shortText"/> first) or after a flag error
    /// (without): usage line, then the flags aligned as pflag's <c>FlagUsages</c>.
    /// </summary>
    public string Usage(string commandPath, string? shortText)
    {
        var sb = new StringBuilder();
        if (shortText is not null)
        {
            sb.Append(shortText).Append("\n\n");
        }

        sb.Append("Usage:\n  ").Append(commandPath).Append(" [flags]\n\nFlags:\n");
        var lines = new List<(string Head, string Tail)>();
        int max = 0;
        foreach (var f in _flags)
        {
            string head = f.Name == "help" ? "  -h, --help" : "      --" + f.Name;
            string type = f.Kind switch
            {
                CobraFlagKind.String => "string",
                CobraFlagKind.StringSlice => "strings",
                CobraFlagKind.Duration => "duration",
                CobraFlagKind.Int => "int",
                CobraFlagKind.Uint32 => "uint32",
                _ => "",
            };
            if (type.Length > 0)
            {
                head += " " + type;
            }

            max = Math.Max(max, head.Length + 1);
            string usage = f.Name == "help" ? "help for " + commandPath.Split(' ')[^1] : f.Usage;
            bool zero = f.Default is "" or "false" or "0" or "[]" or "0s";
            if (!zero)
            {
                usage += f.Kind == CobraFlagKind.String ? $" (default \"{f.Default}\")" : $" (default {f.Default})";
            }

            lines.Add((head, usage));
        }

        foreach (var (head, tail) in lines)
        {
            sb.Append(head).Append(' ').Append(' ', max - head.Length).Append(' ').Append(tail).Append('\n');
        }

        return sb.ToString();
    }

    private CobraFlag? Find(string name) => _flags.Find(f => f.Name == name);

    private void Set(CobraFlag flag, string value, string spelled)
    {
        string Invalid(string why) => $"invalid argument \"{value}\" for \"{spelled}\" flag: {why}";
        switch (flag.Kind)
        {
            case CobraFlagKind.Bool:
                value = value switch
                {
                    "1" or "t" or "T" or "true" or "TRUE" or "True" => "true",
                    "0" or "f" or "F" or "false" or "FALSE" or "False" => "false",
                    _ => throw new CobraFlagException(Invalid($"strconv.ParseBool: parsing \"{value}\": invalid syntax")),
                };
                break;
            case CobraFlagKind.Duration:
                if (!GoDuration.TryParse(value, out _))
                {
                    throw new CobraFlagException(Invalid($"time: invalid duration \"{value}\""));
                }

                break;
            case CobraFlagKind.Int:
                if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
                {
                    throw new CobraFlagException(Invalid($"strconv.ParseInt: parsing \"{value}\": invalid syntax"));
                }

                break;
            case CobraFlagKind.Uint32:
                if (!uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    throw new CobraFlagException(Invalid($"strconv.ParseUint: parsing \"{value}\": invalid syntax"));
                }

                break;
            case CobraFlagKind.StringSlice:
                if (_changed.Contains(flag.Name) && _values.TryGetValue(flag.Name, out var earlier) && earlier.Length > 0)
                {
                    value = value.Length == 0 ? earlier : earlier + "," + value;
                }

                break;
        }

        _values[flag.Name] = value;
        _changed.Add(flag.Name);
    }

    private static List<string> Csv(string value) =>
        value.Length == 0 ? [] : value.Split(',').ToList();
}
