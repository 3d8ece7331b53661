using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// What legitimately differs between two single-member clusters holding the same data: the
/// member's own URLs and the IDs etcd derives from them (membership/member.go hashes the peer URLs
/// and cluster token into the member ID; the cluster ID hashes the member IDs).
/// </summary>
/// <param name="MemberId">Member ID (ResponseHeader.member_id).</param>
/// <param name="ClusterId">Cluster ID (ResponseHeader.cluster_id).</param>
/// <param name="ClientUrl">Client URL, e.g. http://127.0.0.1:40001.</param>
/// <param name="PeerUrl">Peer URL, e.g. http://127.0.0.1:40002.</param>
/// <param name="Endpoint">Endpoint as passed to etcdctl, e.g. 127.0.0.1:40001.</param>
public sealed record MemberIdentity(ulong MemberId, ulong ClusterId, string ClientUrl, string PeerUrl, string Endpoint);

/// <summary>
/// Rewrites etcdctl output so that outputs from two different members holding the same data compare
/// equal, and NOTHING else is blanked. The rules, in order:
/// <list type="number">
/// <item>This member's peer URL → <c>&lt;PEER_URL&gt;</c>, client URL → <c>&lt;CLIENT_URL&gt;</c>, endpoint host:port → <c>&lt;ENDPOINT&gt;</c>.</item>
/// <item>This member's ID and cluster ID, decimal (json, fields, protobuf) → <c>&lt;MEMBER_ID&gt;</c>/<c>&lt;CLUSTER_ID&gt;</c>;
/// lower-case hex as etcdctl prints with %x (tables, simple) → <c>&lt;MEMBER_ID_HEX&gt;</c>/<c>&lt;CLUSTER_ID_HEX&gt;</c>.
/// Only the exact values of this member are replaced, never "any big number".</item>
/// <item>Timings: the Go duration after <c>took = </c> / <c>"took":"</c> and in a table's TOOK column → <c>&lt;DURATION&gt;</c>.</item>
/// <item>etcdctl's own client log lines on stderr: the <c>"ts"</c> timestamp and the random client UUID in <c>endpoint://client-&lt;uuid&gt;/</c>.</item>
/// <item>DB size (bytes on disk): <c>"dbSize"</c>, <c>"dbSizeInUse"</c>, <c>"DBSize" :</c>, the table's DB SIZE column and
/// the 4th field of <c>endpoint status</c> simple output. Both sides write bbolt files with the same keys, but their
/// sizes differ by a page or two (which pages a commit reuses depends on when each backend's read transactions close);
/// <see cref="DbSizeCompatTests"/> bounds that difference against real etcd instead of comparing bytes.</item>
/// <item>ASCII tables (etcdctl's tablewriter) are re-rendered from their trimmed cells, because the rewrites above
/// change column widths; cell contents and row/column order are still compared exactly.</item>
/// </list>
/// Raft term and index, revisions, versions, values, counts and error strings are compared as is.
/// </summary>
public static partial class OutputNormaliser
{
    /// <summary>Placeholder for this member's ID in decimal.</summary>
    public const string MemberIdToken = "<MEMBER_ID>";

    /// <summary>Placeholder for the cluster ID in decimal.</summary>
    public const string ClusterIdToken = "<CLUSTER_ID>";

    /// <summary>
    /// Whether DB sizes are blanked (see the DB size rule in the type's remarks; <see cref="DbSizeCompatTests"/> checks
    /// them within a bound). Set to false to compare them byte for byte.
    /// </summary>
    public static bool NormaliseDbSize { get; set; } = true;

    /// <summary>
    /// Normalises one text output (stdout or stderr) of etcdctl run against <paramref name="member"/>.
    /// <paramref name="learntIds"/> (e.g. lease IDs, by name) are replaced like the member ID: decimal →
    /// <c>&lt;NAME&gt;</c>, %016x and %x → <c>&lt;NAME_HEX&gt;</c>.
    /// </summary>
    public static string Normalise(string text, MemberIdentity member, IReadOnlyDictionary<string, ulong>? learntIds = null)
    {
        if (member.MemberId == 0 || member.ClusterId == 0)
        {
            throw new ArgumentException($"member/cluster ID must be non-zero to be normalised safely: {member}");
        }

        var s = text;
        s = s.Replace(member.PeerUrl, "<PEER_URL>", StringComparison.Ordinal);
        s = s.Replace(member.ClientUrl, "<CLIENT_URL>", StringComparison.Ordinal);
        s = s.Replace(member.Endpoint, "<ENDPOINT>", StringComparison.Ordinal);

        s = ReplaceWholeToken(s, member.MemberId.ToString(CultureInfo.InvariantCulture), MemberIdToken);
        s = ReplaceWholeToken(s, member.ClusterId.ToString(CultureInfo.InvariantCulture), ClusterIdToken);
        s = ReplaceWholeToken(s, member.MemberId.ToString("x", CultureInfo.InvariantCulture), "<MEMBER_ID_HEX>");
        s = ReplaceWholeToken(s, member.ClusterId.ToString("x", CultureInfo.InvariantCulture), "<CLUSTER_ID_HEX>");
        foreach (var (name, id) in learntIds ?? new Dictionary<string, ulong>())
        {
            s = ReplaceWholeToken(s, id.ToString(CultureInfo.InvariantCulture), $"<{name}>");
            s = ReplaceWholeToken(s, id.ToString("x16", CultureInfo.InvariantCulture), $"<{name}_HEX>");
            s = ReplaceWholeToken(s, id.ToString("x", CultureInfo.InvariantCulture), $"<{name}_HEX>");
        }

        s = TookRegex().Replace(s, m => m.Groups[1].Value + "<DURATION>");
        s = LogTimestampRegex().Replace(s, "\"ts\":\"<TS>\"");
        s = ClientUuidRegex().Replace(s, "endpoint://client-<UUID>/");

        if (NormaliseDbSize)
        {
            s = DbSizeJsonRegex().Replace(s, m => m.Groups[1].Value + "<DB_SIZE>");
            s = DbSizeFieldsRegex().Replace(s, m => m.Groups[1].Value + "<DB_SIZE>");
            s = StatusSimpleRegex().Replace(s, m => m.Groups[1].Value + "<DB_SIZE>" + m.Groups[3].Value);
        }

        return NormaliseTables(s);
    }

    /// <summary>
    /// Normalises etcdctl <c>-w protobuf</c> output: in the top-level field 1 (ResponseHeader, as in every
    /// etcdserverpb response) cluster_id (1) and member_id (2) are set to 0 when they equal this member's;
    /// everything else is kept byte for byte. Returns a hex dump for readable diffs. Input that does not parse
    /// as protobuf is dumped unchanged.
    /// </summary>
    public static string NormaliseProtobuf(ReadOnlySpan<byte> message, MemberIdentity member)
    {
        try
        {
            var output = new List<byte>(message.Length);
            var pos = 0;
            while (pos < message.Length)
            {
                var tagStart = pos;
                var tag = ReadVarint(message, ref pos);
                var field = tag >> 3;
                var wire = (int)(tag & 7);
                if (field == 1 && wire == 2)
                {
                    var len = (int)ReadVarint(message, ref pos);
                    var header = RewriteHeader(message.Slice(pos, len), member);
                    pos += len;
                    output.AddRange(message[tagStart..(tagStart + 1)].ToArray());
                    WriteVarint(output, (ulong)header.Count);
                    output.AddRange(header);
                }
                else
                {
                    SkipField(message, ref pos, wire);
                    output.AddRange(message[tagStart..pos].ToArray());
                }
            }

            return Convert.ToHexString(output.ToArray());
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or FormatException or IndexOutOfRangeException)
        {
            return "UNPARSED:" + Convert.ToHexString(message);
        }
    }

    private static List<byte> RewriteHeader(ReadOnlySpan<byte> header, MemberIdentity member)
    {
        var output = new List<byte>(header.Length);
        var pos = 0;
        while (pos < header.Length)
        {
            var tagStart = pos;
            var tag = ReadVarint(header, ref pos);
            var field = tag >> 3;
            var wire = (int)(tag & 7);
            if (wire == 0 && field is 1 or 2)
            {
                var value = ReadVarint(header, ref pos);
                var own = field == 1 ? member.ClusterId : member.MemberId;
                output.AddRange(header[tagStart..(tagStart + 1)].ToArray());
                WriteVarint(output, value == own ? 0UL : value);
            }
            else
            {
                SkipField(header, ref pos, wire);
                output.AddRange(header[tagStart..pos].ToArray());
            }
        }

        return output;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> data, ref int pos)
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new FormatException("varint too long");
    }

    private static void WriteVarint(List<byte> output, ulong value)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }

        output.Add((byte)value);
    }

    private static void SkipField(ReadOnlySpan<byte> data, ref int pos, int wire)
    {
        switch (wire)
        {
            case 0:
                ReadVarint(data, ref pos);
                break;
            case 1:
                pos += 8;
                break;
            case 2:
                var len = (int)ReadVarint(data, ref pos);
                pos += len;
                break;
            case 5:
                pos += 4;
                break;
            default:
                throw new FormatException($"unsupported wire type {wire}");
        }

        if (pos > data.Length)
        {
            throw new FormatException("truncated field");
        }
    }

    private static string ReplaceWholeToken(string s, string token, string replacement) =>
        Regex.Replace(s, @"(?<![0-9A-Za-z])" + Regex.Escape(token) + @"(?![0-9A-Za-z])", replacement, RegexOptions.CultureInvariant);

    /// <summary>
    /// Finds etcdctl tablewriter tables (a "+---+" border, "|" rows) and re-renders them from trimmed cells with
    /// one space of padding, after blanking the TOOK column (a timing) and, while <see cref="NormaliseDbSize"/>, the DB SIZE column.
    /// </summary>
    private static string NormaliseTables(string s)
    {
        var lines = s.Split('\n');
        var output = new StringBuilder(s.Length);
        var i = 0;
        while (i < lines.Length)
        {
            if (!IsBorder(lines[i]))
            {
                output.Append(lines[i]);
                if (i < lines.Length - 1)
                {
                    output.Append('\n');
                }

                i++;
                continue;
            }

            // A table: border, header row, border, data rows..., border.
            var rows = new List<string[]>();
            var borders = new List<int>();
            var j = i;
            while (j < lines.Length && (IsBorder(lines[j]) || lines[j].StartsWith('|')))
            {
                if (IsBorder(lines[j]))
                {
                    borders.Add(rows.Count);
                }
                else
                {
                    rows.Add(lines[j].Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray());
                }

                j++;
            }

            if (rows.Count > 0)
            {
                var header = rows[0];
                for (var col = 0; col < header.Length; col++)
                {
                    var blankDbSize = NormaliseDbSize && header[col] == "DB SIZE";
                    var blankTook = header[col] == "TOOK";
                    if (!blankDbSize && !blankTook)
                    {
                        continue;
                    }

                    for (var r = 1; r < rows.Count; r++)
                    {
                        if (col < rows[r].Length)
                        {
                            rows[r][col] = blankDbSize ? "<DB_SIZE>" : "<DURATION>";
                        }
                    }
                }
            }

            var rowIndex = 0;
            for (var k = i; k < j; k++)
            {
                if (IsBorder(lines[k]))
                {
                    output.Append("+=+");
                }
                else
                {
                    output.Append("| ").Append(string.Join(" | ", rows[rowIndex++])).Append(" |");
                }

                if (k < lines.Length - 1)
                {
                    output.Append('\n');
                }
            }

            i = j;
        }

        return output.ToString();
    }

    private static bool IsBorder(string line) => line.Length > 2 && line[0] == '+' && line.Trim().All(c => c is '+' or '-');

    // Go time.Duration.String(): e.g. 812ns, 1.5µs, 2.174176ms, 1.2s, 1m2.5s.
    [GeneratedRegex(@"((?:took\s*=\s*)|(?:""took""\s*:\s*""))(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|μs|ms|s|m|h))+")]
    private static partial Regex TookRegex();

    [GeneratedRegex(@"""ts""\s*:\s*""[^""]*""")]
    private static partial Regex LogTimestampRegex();

    [GeneratedRegex(@"endpoint://client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/")]
    private static partial Regex ClientUuidRegex();

    [GeneratedRegex(@"(""dbSize(?:InUse)?""\s*:\s*)[0-9]+")]
    private static partial Regex DbSizeJsonRegex();

    [GeneratedRegex(@"(""DBSize(?:InUse)?""\s*:\s*)[0-9]+")]
    private static partial Regex DbSizeFieldsRegex();

    // endpoint status simple output: "<ENDPOINT>, <MEMBER_ID_HEX>, 3.4.23, 20 kB, true, ..."
    [GeneratedRegex(@"(?m)^(<ENDPOINT>, <MEMBER_ID_HEX>, [^,]*, )([^,]*)(, )")]
    private static partial Regex StatusSimpleRegex();
}
