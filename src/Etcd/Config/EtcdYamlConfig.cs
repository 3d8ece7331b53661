using System.Globalization;
using System.Text.RegularExpressions;
using Etcd.Server;
using Microsoft.Extensions.Logging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Etcd.Main.Config;

/// <summary>
/// The <c>--config-file</c> path (etcd's <c>embed.ConfigFromFile</c> and etcdmain's <c>configFromFile</c>):
/// YAML read as sigs.k8s.io/yaml does (YAML 1.1 scalars, converted to JSON, decoded into etcd's Config with
/// Go's case-insensitive key matching; unknown keys ignored; type mismatches fail with Go's messages).
/// </summary>
internal sealed partial class LoaderRun
{
    private enum YamlType
    {
        String,
        UrlString,
        Bool,
        Uint,
        Uint64,
        Uint32,
        Int,
        Int64,
        Duration,
        StringList,
        Security,
    }

    private static readonly Dictionary<string, (string Key, YamlType Type)> s_yamlKeys = BuildYamlKeys();

    private static Dictionary<string, (string, YamlType)> BuildYamlKeys()
    {
        var keys = new Dictionary<string, (string, YamlType)>(StringComparer.OrdinalIgnoreCase);
        var notKeys = new HashSet<string>(StringComparer.Ordinal)
        {
            "config-file", "version", "cert-file", "key-file", "client-cert-auth", "client-crl-file", "client-cert-allowed-hostname",
            "trusted-ca-file", "auto-tls", "peer-cert-file", "peer-key-file", "peer-client-cert-auth", "peer-trusted-ca-file",
            "peer-auto-tls", "peer-crl-file", "peer-cert-allowed-cn", "peer-cert-allowed-hostname",
            "experimental-peer-skip-client-san-verification",
        };
        foreach (var def in EtcdFlags.All)
        {
            if (def.Kind == FlagKind.Ignored || notKeys.Contains(def.Name))
            {
                continue;
            }
            YamlType t = def.Kind switch
            {
                FlagKind.String or FlagKind.Selective => YamlType.String,
                FlagKind.Urls => YamlType.UrlString,
                FlagKind.Bool => YamlType.Bool,
                FlagKind.Uint => YamlType.Uint,
                FlagKind.Uint64 => YamlType.Uint64,
                FlagKind.Uint32 => YamlType.Uint32,
                FlagKind.Int => YamlType.Int,
                FlagKind.Int64 => YamlType.Int64,
                FlagKind.Duration => YamlType.Duration,
                FlagKind.UniqueStrings => def.Name == "host-whitelist" ? YamlType.UrlString : YamlType.StringList,
                FlagKind.Strings => YamlType.StringList,
                _ => throw new InvalidOperationException(def.Name),
            };
            keys[def.Name] = (def.Name, t);
        }
        keys["client-transport-security"] = ("client-transport-security", YamlType.Security);
        keys["peer-transport-security"] = ("peer-transport-security", YamlType.Security);
        return keys;
    }

    private static string GoTypeName(YamlType t) => t switch
    {
        YamlType.String or YamlType.UrlString => "string",
        YamlType.Bool => "bool",
        YamlType.Uint => "uint",
        YamlType.Uint64 => "uint64",
        YamlType.Uint32 => "uint32",
        YamlType.Int => "int",
        YamlType.Int64 => "int64",
        YamlType.Duration => "time.Duration",
        YamlType.StringList => "[]string",
        _ => "embed.securityConfig",
    };

    private EtcdOptions FromFile(string path)
    {
        var values = new FlagValues();
        values.IsSet.Clear();
        string? error = LoadFile(path, values);
        if (error == null)
        {
            // etcd's own validation first, so an invalid file fails with etcd's message; then what we refuse.
            error = Validate(values, false, out _) ?? RefusedError(values, YamlKeyOf);
        }
        if (error == null)
        {
            // etcdmain reads the proxy keys from the same file; bad values are fatal (Go's log.Fatalf).
            foreach (string key in (string[])["discovery-fallback", "proxy"])
            {
                var def = EtcdFlags.ByName[key];
                if (!def.Valids!.Contains(values.Str(key)))
                {
                    Err.Append(Now.ToString("yyyy'/'MM'/'dd HH':'mm':'ss", CultureInfo.InvariantCulture))
                        .Append(key == "proxy" ? " unexpected error setting up proxyFlag: invalid value\n" : " unexpected error setting up discovery-fallback flag: invalid value\n");
                    throw new ExitException(1);
                }
            }
        }
        bool zapLogged = error == null && _zapReady;
        if (zapLogged)
        {
            Zap(LogLevel.Information, "etcdmain/config.go:312", "loaded server configuration, other configuration command line flags and environment variables will be ignored if provided", ("path", path));
        }
        else
        {
            Capnslog(LogLevel.Information, "etcdmain", $"Loading server configuration from {GoSyntax.Quote(path)}. Other configuration command line flags and environment variables will be ignored if provided.");
        }
        if (error != null)
        {
            // The file's logger is dropped with the failed config: etcd reports through capnslog.
            _zapReady = false;
            throw VerifyError(error);
        }
        return Build(values);
    }

    // embed.ConfigFromFile up to (not including) Validate; null on success.
    private string? LoadFile(string path, FlagValues values)
    {
        string text;
        try
        {
            if (Directory.Exists(path))
            {
                return $"read {path}: is a directory";
            }
            text = File.ReadAllText(path);
        }
        catch (FileNotFoundException)
        {
            return $"open {path}: no such file or directory";
        }
        catch (DirectoryNotFoundException)
        {
            return $"open {path}: no such file or directory";
        }
        catch (UnauthorizedAccessException)
        {
            return $"open {path}: permission denied";
        }
        catch (IOException ex)
        {
            return $"open {path}: {ex.Message}";
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            string msg = ex.InnerException?.Message ?? ex.Message;
            int colon = msg.IndexOf("): ", StringComparison.Ordinal);
            if (msg.StartsWith('(') && colon > 0)
            {
                msg = msg[(colon + 3)..];
            }
            return $"error converting YAML to JSON: yaml: line {ex.Start.Line}: {msg}";
        }
        const string prefix = "error unmarshaling JSON: while decoding JSON: json: ";
        if (stream.Documents.Count == 0)
        {
            return null;
        }
        var root = stream.Documents[0].RootNode;
        if (root is YamlScalarNode rootScalar && IsNull(rootScalar))
        {
            return null;
        }
        if (root is not YamlMappingNode map)
        {
            return prefix + $"cannot unmarshal {JsonKind(root)} into Go value of type embed.configYAML";
        }

        var security = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode keyScalar || keyScalar.Value is null || !s_yamlKeys.TryGetValue(keyScalar.Value, out var target))
            {
                continue;
            }
            string? err = target.Type == YamlType.Security
                ? DecodeSecurity(target.Key, valueNode, values)
                : DecodeValue(target.Key, target.Type, valueNode, values, "configYAML");
            if (err != null)
            {
                return prefix + err;
            }
        }

        // URL lists are parsed after decoding; a bad one exits at once (embed/config.go).
        foreach (var (key, label) in new[]
                 {
                     ("listen-peer-urls", "listen-peer-urls"), ("listen-client-urls", "listen-client-urls"),
                     ("initial-advertise-peer-urls", "initial-advertise-peer-urls"), ("advertise-client-urls", "advertise-peer-urls"),
                     ("listen-metrics-urls", "listen-metrics-urls"),
                 })
        {
            if (!_yamlStrings.TryGetValue(key, out string? s) || s.Length == 0)
            {
                continue;
            }
            if (!GoUrl.TryParseList(s, out var urls, out string urlError))
            {
                Err.Append($"unexpected error setting up {label}: {urlError}\n");
                throw new ExitException(1);
            }
            var value = values.Urls(key);
            value.Values.Clear();
            foreach (var u in urls)
            {
                value.Values.Add(u.Text);
            }
            value.Urls = urls;
        }
        if (_yamlStrings.TryGetValue("cors", out string? cors) && cors.Length > 0)
        {
            var fresh = new FlagValues();
            string? corsError = fresh.Set(EtcdFlags.ByName["cors"], cors, null);
            if (corsError != null)
            {
                Capnslog(LogLevel.Critical, "pkg/flags", $"new UniqueURLs should never fail: {corsError}");
                throw new ExitException(2);
            }
            values.Put("cors", fresh.Urls("cors"));
        }
        if (_yamlStrings.TryGetValue("host-whitelist", out string? hosts) && hosts.Length > 0)
        {
            values.Put("host-whitelist", hosts.Split(',').Distinct(StringComparer.Ordinal).OrderBy(x => x, StringComparer.Ordinal).ToArray());
        }
        if (values.Str("initial-cluster-state").Length == 0)
        {
            values.Put("initial-cluster-state", "new");
        }
        return null;
    }

    private static string YamlKeyOf(string flag) => flag switch
    {
        "cert-file" or "key-file" or "client-cert-auth" or "trusted-ca-file" or "auto-tls" => "client-transport-security." + flag,
        "peer-cert-file" or "peer-key-file" or "peer-client-cert-auth" or "peer-trusted-ca-file" or "peer-auto-tls" => "peer-transport-security." + flag[5..],
        _ => flag,
    };

    // Raw string values of URL-like keys, applied after decoding.
    private readonly Dictionary<string, string> _yamlStrings = new(StringComparer.Ordinal);

    private string? DecodeSecurity(string key, YamlNode node, FlagValues values)
    {
        if (node is YamlScalarNode s && IsNull(s))
        {
            return null;
        }
        if (node is not YamlMappingNode map)
        {
            return $"cannot unmarshal {JsonKind(node)} into Go struct field configYAML.{key} of type embed.securityConfig";
        }
        string flagPrefix = key.StartsWith("peer", StringComparison.Ordinal) ? "peer-" : "";
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode ks || ks.Value is null)
            {
                continue;
            }
            string field = ks.Value.ToLowerInvariant();
            (string flag, YamlType type) = field switch
            {
                "cert-file" => (flagPrefix + "cert-file", YamlType.String),
                "key-file" => (flagPrefix + "key-file", YamlType.String),
                "client-cert-auth" => (flagPrefix + "client-cert-auth", YamlType.Bool),
                "trusted-ca-file" => (flagPrefix + "trusted-ca-file", YamlType.String),
                "auto-tls" => (flagPrefix.Length > 0 ? "peer-auto-tls" : "auto-tls", YamlType.Bool),
                _ => ("", YamlType.String),
            };
            if (flag.Length == 0)
            {
                continue;
            }
            string? err = DecodeValue(flag, type, v, values, "securityConfig", key + "." + field);
            if (err != null)
            {
                return err;
            }
        }
        return null;
    }

    private string? DecodeValue(string key, YamlType type, YamlNode node, FlagValues values, string structName, string? fieldPath = null)
    {
        fieldPath ??= key;
        string Mismatch(string kind, YamlType t) => $"cannot unmarshal {kind} into Go struct field {structName}.{fieldPath} of type {GoTypeName(t)}";

        if (node is YamlScalarNode sc && IsNull(sc))
        {
            return null;
        }
        if (type == YamlType.StringList)
        {
            if (node is not YamlSequenceNode seq)
            {
                return Mismatch(JsonKind(node), type);
            }
            var list = new List<string>();
            foreach (var item in seq.Children)
            {
                if (item is YamlScalarNode its && IsNull(its))
                {
                    list.Add("");
                    continue;
                }
                if (JsonKind(item) != "string")
                {
                    return $"cannot unmarshal {JsonKind(item)} into Go struct field {structName}.{fieldPath} of type string";
                }
                list.Add(((YamlScalarNode)item).Value ?? "");
            }
            values.Put(key, list.ToArray());
            return null;
        }
        string kind = JsonKind(node);
        switch (type)
        {
            case YamlType.String:
            case YamlType.UrlString:
                if (kind != "string")
                {
                    return Mismatch(kind, type);
                }
                string str = ((YamlScalarNode)node).Value ?? "";
                if (type == YamlType.UrlString)
                {
                    _yamlStrings[key] = str;
                }
                else
                {
                    values.Put(key, str);
                }
                return null;
            case YamlType.Bool:
                if (kind != "bool")
                {
                    return Mismatch(kind, type);
                }
                values.Put(key, YamlBool(((YamlScalarNode)node).Value!));
                return null;
            default:
                if (kind != "number")
                {
                    return Mismatch(kind, type);
                }
                string lit = JsonNumberLiteral(((YamlScalarNode)node).Value!);
                bool unsigned = type is YamlType.Uint or YamlType.Uint64 or YamlType.Uint32;
                int bits = type == YamlType.Uint32 ? 32 : 64;
                if (unsigned)
                {
                    if (!ulong.TryParse(lit, NumberStyles.None, CultureInfo.InvariantCulture, out ulong u) || (bits == 32 && u > uint.MaxValue))
                    {
                        return Mismatch("number " + lit, type);
                    }
                    values.Put(key, type == YamlType.Uint32 ? (object)(uint)u : u);
                }
                else
                {
                    if (!long.TryParse(lit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                    {
                        return Mismatch("number " + lit, type);
                    }
                    values.Put(key, l);
                }
                return null;
        }
    }

    // YAML 1.1 plain-scalar resolution as go-yaml v2 does it, reduced to the JSON kind sigs.k8s.io/yaml emits.
    private static string JsonKind(YamlNode node)
    {
        switch (node)
        {
            case YamlSequenceNode:
                return "array";
            case YamlMappingNode:
                return "object";
            case YamlScalarNode s:
                if (s.Style != ScalarStyle.Plain || TagOf(s) == "tag:yaml.org,2002:str")
                {
                    return "string";
                }
                string v = s.Value ?? "";
                if (IsNull(s))
                {
                    return "null";
                }
                if (IsYamlBool(v))
                {
                    return "bool";
                }
                if (YamlInt().IsMatch(v) || YamlFloat().IsMatch(v))
                {
                    return "number";
                }
                return "string";
            default:
                return "string";
        }
    }

    private static string TagOf(YamlNode n) => n.Tag.IsEmpty ? "" : n.Tag.Value;

    private static bool IsNull(YamlScalarNode s) =>
        s.Style == ScalarStyle.Plain && TagOf(s) != "tag:yaml.org,2002:str" && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    private static bool IsYamlBool(string v) => v is "y" or "Y" or "yes" or "Yes" or "YES" or "n" or "N" or "no" or "No" or "NO"
        or "true" or "True" or "TRUE" or "false" or "False" or "FALSE" or "on" or "On" or "ON" or "off" or "Off" or "OFF";

    private static bool YamlBool(string v) => v is "y" or "Y" or "yes" or "Yes" or "YES" or "true" or "True" or "TRUE" or "on" or "On" or "ON";

    // The JSON literal for a YAML number: ints in decimal (hex/octal/binary/underscores resolved), floats as given.
    private static string JsonNumberLiteral(string v)
    {
        string s = v.Replace("_", "");
        bool neg = s.StartsWith('-');
        string body = s.TrimStart('+', '-');
        System.Numerics.BigInteger n;
        if (body.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            n = System.Numerics.BigInteger.Parse("0" + body[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        }
        else if (body.StartsWith("0b", StringComparison.OrdinalIgnoreCase))
        {
            n = body[2..].Aggregate(System.Numerics.BigInteger.Zero, (acc, c) => acc * 2 + (c - '0'));
        }
        else if (body.Length > 1 && body[0] == '0' && body.All(char.IsAsciiDigit))
        {
            n = body[1..].Aggregate(System.Numerics.BigInteger.Zero, (acc, c) => acc * 8 + (c - '0'));
        }
        else if (body.All(char.IsAsciiDigit))
        {
            n = System.Numerics.BigInteger.Parse(body, CultureInfo.InvariantCulture);
        }
        else
        {
            return s;
        }
        return (neg ? -n : n).ToString(CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"^[-+]?(0b[01_]+|0[0-7_]+|(0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$")]
    private static partial Regex YamlInt();

    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex YamlFloat();
}
