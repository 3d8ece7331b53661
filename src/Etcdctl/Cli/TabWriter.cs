using System.Text;

namespace Etcd.Ctl.Cli;

/// <summary>
/// Go's <c>text/tabwriter</c> as etcdctl configures it for usage text (minwidth 0, tabwidth 8, padding 1, padchar tab,
/// no flags): tab-terminated cells of consecutive lines form columns, each padded with tabs to the widest cell plus
/// one, rounded up to a multiple of 8.
/// </summary>
public static class TabWriter
{
    private const int TabWidth = 8;
    private const int Padding = 1;

    /// <summary>Aligns <paramref name="text"/>.</summary>
    public static string Format(string text)
    {
        var lines = text.Split('\n').Select(l => l.Split('\t')).ToArray();
        var sb = new StringBuilder(text.Length * 2);
        var widths = new List<int>();
        FormatBlock(lines, 0, lines.Length, widths, sb);
        return sb.ToString();
    }

    private static int FormatBlock(string[][] lines, int line0, int line1, List<int> widths, StringBuilder sb)
    {
        var column = widths.Count;
        for (var current = line0; current < line1; current++)
        {
            if (column >= lines[current].Length - 1)
            {
                continue;
            }

            WriteLines(lines, line0, current, widths, sb);
            line0 = current;
            var width = 0;
            for (; current < line1; current++)
            {
                if (column >= lines[current].Length - 1)
                {
                    break;
                }

                width = Math.Max(width, Width(lines[current][column]) + Padding);
            }

            widths.Add(width);
            FormatBlock(lines, line0, current, widths, sb);
            widths.RemoveAt(widths.Count - 1);
            line0 = current;
        }

        WriteLines(lines, line0, line1, widths, sb);
        return line1;
    }

    private static void WriteLines(string[][] lines, int line0, int line1, List<int> widths, StringBuilder sb)
    {
        for (var i = line0; i < line1; i++)
        {
            var cells = lines[i];
            for (var j = 0; j < cells.Length; j++)
            {
                sb.Append(cells[j]);
                if (j < widths.Count)
                {
                    var cellWidth = (widths[j] + TabWidth - 1) / TabWidth * TabWidth;
                    var n = cellWidth - Width(cells[j]);
                    sb.Append('\t', (n + TabWidth - 1) / TabWidth);
                }
            }

            if (i + 1 < lines.Length)
            {
                sb.Append('\n');
            }
        }
    }

    private static int Width(string cell) => cell.EnumerateRunes().Count();
}
