namespace Etcd.Main.Config;

/// <summary>A URL-list flag's state, as etcd's <c>flags.UniqueURLs</c> keeps it.</summary>
internal sealed class UrlListValue
{
    /// <summary>Texts set so far (the parsed URLs' texts, plus allowed exceptions such as "" or "*").</summary>
    public HashSet<string> Values { get; } = new(StringComparer.Ordinal);

    /// <summary>The parsed URLs, sorted.</summary>
    public List<GoUrl> Urls { get; set; } = [];
}

/// <summary>
/// The typed value of every etcd flag, starting at etcd's defaults, plus which flags were set (Go's
/// <c>FlagSet.Visit</c> set: command line and ETCD_* variables). Both the flag path and the
/// <c>--config-file</c> path fill one of these. Not thread-safe.
/// </summary>
internal sealed class FlagValues
{
    private readonly Dictionary<string, object> _values = new(StringComparer.Ordinal);

    public FlagValues()
    {
        foreach (var def in EtcdFlags.All)
        {
            switch (def.Kind)
            {
                case FlagKind.Urls:
                    var u = new UrlListValue();
                    if (def.Default.Length > 0)
                    {
                        Set(def, def.Default, null);
                        continue;
                    }
                    _values[def.Name] = u;
                    break;
                case FlagKind.UniqueStrings:
                    _values[def.Name] = def.Default.Length == 0 ? Array.Empty<string>() : UniqueSorted(def.Default);
                    break;
                case FlagKind.Strings:
                    _values[def.Name] = def.Default.Length == 0 ? Array.Empty<string>() : def.Default.Split(',');
                    break;
                case FlagKind.Ignored:
                    _values[def.Name] = "";
                    break;
                default:
                    if (Set(def, def.Default, null) != null)
                    {
                        throw new InvalidOperationException("bad default for " + def.Name);
                    }
                    break;
            }
        }
        IsSet.Clear();
    }

    /// <summary>Flags set on the command line or from the environment.</summary>
    public HashSet<string> IsSet { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Go's <c>flag.Value.Set</c> for <paramref name="def"/>: returns null, or the error text etcd prints after
    /// <c>invalid value "x" for flag -name: </c>. <paramref name="warnings"/> receives the ignored-flag warning.
    /// </summary>
    public string? Set(FlagDef def, string text, List<string>? warnings)
    {
        string? error = SetCore(def, text, warnings);
        if (error == null)
        {
            IsSet.Add(def.Name);
        }
        return error;
    }

    private string? SetCore(FlagDef def, string text, List<string>? warnings)
    {
        const string parseError = "parse error";
        switch (def.Kind)
        {
            case FlagKind.String:
                _values[def.Name] = text;
                return null;
            case FlagKind.Bool:
                if (!GoSyntax.TryParseBool(text, out bool b))
                {
                    return parseError;
                }
                _values[def.Name] = b;
                return null;
            case FlagKind.Uint:
            case FlagKind.Uint64:
                switch (GoSyntax.ParseUint(text, 64, out ulong u))
                {
                    case GoNumError.Syntax: return parseError;
                    case GoNumError.Range: return "value out of range";
                }
                _values[def.Name] = u;
                return null;
            case FlagKind.Int:
            case FlagKind.Int64:
                switch (GoSyntax.ParseInt(text, 64, out long l))
                {
                    case GoNumError.Syntax: return parseError;
                    case GoNumError.Range: return "value out of range";
                }
                _values[def.Name] = l;
                return null;
            case FlagKind.Duration:
                if (!Etcd.Server.Logging.GoDuration.TryParse(text, out long ns))
                {
                    return parseError;
                }
                _values[def.Name] = ns;
                return null;
            case FlagKind.Uint32:
                switch (GoSyntax.ParseUint(text, 32, out ulong u32))
                {
                    case GoNumError.Syntax: return $"strconv.ParseUint: parsing {GoSyntax.Quote(text)}: invalid syntax";
                    case GoNumError.Range: return $"strconv.ParseUint: parsing {GoSyntax.Quote(text)}: value out of range";
                }
                _values[def.Name] = (uint)u32;
                return null;
            case FlagKind.Urls:
            {
                if (!_values.TryGetValue(def.Name, out var existing))
                {
                    existing = new UrlListValue();
                    _values[def.Name] = existing;
                }
                var value = (UrlListValue)existing;
                if (value.Values.Contains(text))
                {
                    return null;
                }
                if (def.UrlExceptions?.Contains(text) == true)
                {
                    value.Values.Add(text);
                    return null;
                }
                if (!GoUrl.TryParseList(text, out var urls, out string error))
                {
                    return error;
                }
                value.Values.Clear();
                foreach (var x in urls)
                {
                    value.Values.Add(x.Text);
                }
                value.Urls = urls;
                return null;
            }
            case FlagKind.UniqueStrings:
                _values[def.Name] = UniqueSorted(text);
                return null;
            case FlagKind.Strings:
                _values[def.Name] = text.Split(',');
                return null;
            case FlagKind.Selective:
                if (!def.Valids!.Contains(text))
                {
                    return "invalid value";
                }
                _values[def.Name] = text;
                return null;
            case FlagKind.Ignored:
                warnings?.Add($"flag \"-{def.Name}\" is no longer supported - ignoring.");
                return null;
            default:
                throw new InvalidOperationException(def.Kind.ToString());
        }
    }

    private static string[] UniqueSorted(string text) => text.Split(',').Distinct(StringComparer.Ordinal).OrderBy(s => s, StringComparer.Ordinal).ToArray();

    /// <summary>Stores a typed value directly (the config-file path).</summary>
    public void Put(string name, object value) => _values[name] = value;

    public object Raw(string name) => _values[name];

    public string Str(string name) => (string)_values[name];

    public bool Bool(string name) => (bool)_values[name];

    public ulong Uint(string name) => _values[name] is uint u32 ? u32 : (ulong)_values[name];

    public long Int(string name) => (long)_values[name];

    public long DurationNs(string name) => (long)_values[name];

    public uint Uint32(string name) => (uint)_values[name];

    public UrlListValue Urls(string name) => (UrlListValue)_values[name];

    public string[] Strings(string name) => (string[])_values[name];

    /// <summary>Whether the flag holds its default value (used to accept refused flags given their default).</summary>
    public bool HasDefault(FlagDef def)
    {
        var fresh = s_defaults.Value;
        object mine = _values[def.Name];
        object theirs = fresh._values[def.Name];
        return def.Kind switch
        {
            FlagKind.Strings or FlagKind.UniqueStrings => ((string[])mine).Where(s => s.Length > 0).SequenceEqual(((string[])theirs).Where(s => s.Length > 0)),
            FlagKind.Urls => ((UrlListValue)mine).Urls.Select(u => u.Text).SequenceEqual(((UrlListValue)theirs).Urls.Select(u => u.Text)),
            _ => Equals(mine, theirs),
        };
    }

    private static readonly Lazy<FlagValues> s_defaults = new(() => new FlagValues());
}
