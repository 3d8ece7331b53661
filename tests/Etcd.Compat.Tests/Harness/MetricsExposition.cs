using System.Text.RegularExpressions;

namespace Etcd.Compat.Tests.Harness;

/// <summary>One metric family as read from a Prometheus text exposition: its type, the label names its samples carry, whether it has samples.</summary>
public sealed record MetricFamily(string Name, string Type, IReadOnlySet<string> LabelNames, bool HasSamples);

/// <summary>
/// Reads the families of a Prometheus text-format exposition (<c># TYPE</c> lines and samples), enough to compare
/// two servers' <c>/metrics</c> by family, type and label names. Histogram and summary samples (<c>_bucket</c>,
/// <c>_sum</c>, <c>_count</c>) belong to their family; <c>le</c> and <c>quantile</c> are not counted as label names.
/// </summary>
public static partial class MetricsExposition
{
    /// <summary>Parses <paramref name="text"/> into families by name.</summary>
    public static IReadOnlyDictionary<string, MetricFamily> Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var labels = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var sampled = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', 4);
                types[parts[2]] = parts[3];
                labels.TryAdd(parts[2], new HashSet<string>(StringComparer.Ordinal));
                continue;
            }

            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var nameEnd = line.IndexOfAny(['{', ' ']);
            var sample = line[..nameEnd];
            var family = FamilyOf(sample, types);
            if (!labels.TryGetValue(family, out var names))
            {
                labels[family] = names = new HashSet<string>(StringComparer.Ordinal);
            }

            sampled.Add(family);
            if (line[nameEnd] == '{')
            {
                var close = line.LastIndexOf('}');
                foreach (Match m in LabelName().Matches(line[(nameEnd + 1)..close]))
                {
                    var label = m.Groups[1].Value;
                    if (label is not ("le" or "quantile"))
                    {
                        names.Add(label);
                    }
                }
            }
        }

        return labels.ToDictionary(
            kv => kv.Key,
            kv => new MetricFamily(kv.Key, types.GetValueOrDefault(kv.Key, "untyped"), kv.Value, sampled.Contains(kv.Key)),
            StringComparer.Ordinal);
    }

    private static string FamilyOf(string sample, Dictionary<string, string> types)
    {
        if (types.ContainsKey(sample))
        {
            return sample;
        }

        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(sample[..^suffix.Length], out var t) && t is "histogram" or "summary")
            {
                return sample[..^suffix.Length];
            }
        }

        return sample;
    }

    [GeneratedRegex("""(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"\s*""")]
    private static partial Regex LabelName();
}
