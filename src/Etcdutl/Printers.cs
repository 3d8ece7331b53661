using System.Text;

namespace Etcd.Utl;

/// <summary>etcdctl's output formats (<c>-w simple|json|table|fields|protobuf</c>) for <c>snapshot status</c>.</summary>
public static class Printers
{
    /// <summary>The formats accepted by <c>-w</c>.</summary>
    public static readonly string[] Formats = ["simple", "json", "table", "fields", "protobuf"];

    /// <summary>
    /// Renders <paramref name="s"/> in <paramref name="format"/>; returns null for <c>protobuf</c>
    /// (etcdctl: "protobuf not supported as output format").
    /// </summary>
    public static string? DbStatus(string format, SnapshotStatusResult s)
    {
        switch (format)
        {
            case "simple":
                return string.Join(", ", s.Row()) + "\n";
            case "json":
                return $"{{\"hash\":{s.Hash},\"revision\":{s.Revision},\"totalKey\":{s.TotalKey},\"totalSize\":{s.TotalSize}}}\n";
            case "fields":
                return $"\"Hash\" : {s.Hash}\n\"Revision\" : {s.Revision}\n\"Keys\" : {s.TotalKey}\n\"Size\" : {s.TotalSize}\n";
            case "table":
                return Table(["hash", "revision", "total keys", "total size"], [s.Row()]);
            default:
                return null;
        }
    }

    /// <summary>
    /// olekukonko/tablewriter's default rendering with right-aligned cells: upper-cased headers centred
    /// (odd padding goes right), borders <c>+---+</c> and <c>| x |</c>.
    /// </summary>
    public static string Table(string[] header, IReadOnlyList<string[]> rows)
    {
        var widths = header.Select(h => h.Length).ToArray();
        foreach (var r in rows)
        {
            for (var i = 0; i < r.Length; i++)
            {
                widths[i] = Math.Max(widths[i], r[i].Length);
            }
        }
        var sb = new StringBuilder();
        void Line()
        {
            sb.Append('+');
            foreach (var w in widths)
            {
                sb.Append('-', w + 2).Append('+');
            }
            sb.Append('\n');
        }
        Line();
        sb.Append('|');
        for (var i = 0; i < header.Length; i++)
        {
            var h = header[i].ToUpperInvariant();
            var gap = widths[i] - h.Length;
            var left = gap / 2;
            sb.Append(' ').Append(' ', left).Append(h).Append(' ', gap - left).Append(" |");
        }
        sb.Append('\n');
        Line();
        foreach (var r in rows)
        {
            sb.Append('|');
            for (var i = 0; i < r.Length; i++)
            {
                sb.Append(' ').Append(r[i].PadLeft(widths[i])).Append(" |");
            }
            sb.Append('\n');
        }
        Line();
        return sb.ToString();
    }
}
