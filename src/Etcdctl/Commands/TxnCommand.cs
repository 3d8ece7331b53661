using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Etcd.Api;
using Etcd.Ctl.Cli;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary>
/// <c>txn</c> (etcdctl/ctlv3/command/txn_command.go): reads compares, success operations and failure operations from
/// stdin, each block ended by an empty line; <c>-i</c> prints the prompts. Malformed input exits 3.
/// </summary>
public static partial class TxnCommand
{
    /// <summary>The <c>txn</c> command.</summary>
    public static Command Create()
    {
        var cmd = new Command("txn [options]", "Txn processes all the requests in one transaction", RunAsync);
        cmd.Flags.Bool("interactive", false, "Input transaction in interactive mode", "i");
        return cmd;
    }

    private static async Task RunAsync(CommandRun run)
    {
        if (run.Args.Count != 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, "txn command does not accept argument");
        }

        using var ctl = Ctl.From(run);
        _ = ctl.Client;
        var interactive = run.Command.Get("interactive").Bool;
        var reader = new LineReader(run.Console.Stdin);
        var request = new TxnRequest();
        if (interactive)
        {
            run.Console.Out("compares:\n");
        }

        request.Compare.Add(ReadBlock(reader, ParseCompare));

        if (interactive)
        {
            run.Console.Out("success requests (get, put, del):\n");
        }

        request.Success.Add(ReadBlock(reader, ParseRequest));

        if (interactive)
        {
            run.Console.Out("failure requests (get, put, del):\n");
        }

        request.Failure.Add(ReadBlock(reader, ParseRequest));

        var response = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Txn, request, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        ctl.Display.Txn(response);
    }

    private static List<T> ReadBlock<T>(LineReader reader, Func<string, T> parse)
    {
        var lines = new List<T>();
        while (true)
        {
            var line = reader.ReadLine() ?? throw new ExitException(ExitException.ExitInvalidInput, "EOF");
            line = line.Trim();
            if (line.Length == 0)
            {
                return lines;
            }

            lines.Add(parse(line));
        }
    }

    private sealed class LineReader(Stream stream)
    {
        public string? ReadLine()
        {
            var bytes = new List<byte>();
            while (true)
            {
                var b = stream.ReadByte();
                if (b < 0)
                {
                    return null;
                }

                if (b == '\n')
                {
                    return Encoding.UTF8.GetString(bytes.ToArray());
                }

                bytes.Add((byte)b);
            }
        }
    }

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"|'[^']*'|[^'\"\\s]\\S*[^'\"\\s]?")]
    private static partial Regex ArgPattern();

    /// <summary>etcdctl's argify: splits a line into words, honouring Go-quoted and single-quoted strings.</summary>
    public static List<string> Argify(string line)
    {
        var args = new List<string>();
        foreach (Match m in ArgPattern().Matches(line))
        {
            var a = m.Value;
            if (a.Length > 0 && a[0] == '\'')
            {
                // etcdctl trims with the count of words, not the word's length; kept as it behaves for 2-word lines.
                a = a.Length >= 2 ? a[1..^1] : a;
            }
            else if (a.Length > 0 && a[0] == '"')
            {
                a = Unquote(a) ?? throw new ExitException(ExitException.ExitInvalidInput, "invalid syntax");
            }

            args.Add(a);
        }

        return args;
    }

    /// <summary>Go's strconv.Unquote of a double-quoted literal (the escapes etcdctl's inputs use); null when malformed.</summary>
    public static string? Unquote(string s)
    {
        if (s.Length < 2 || s[0] != '"' || s[^1] != '"')
        {
            return null;
        }

        var bytes = new List<byte>();
        for (var i = 1; i < s.Length - 1; i++)
        {
            var c = s[i];
            if (c != '\\')
            {
                if (c == '"')
                {
                    return null;
                }

                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                continue;
            }

            if (++i >= s.Length - 1)
            {
                return null;
            }

            switch (s[i])
            {
                case 'n': bytes.Add((byte)'\n'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case 'a': bytes.Add(7); break;
                case 'b': bytes.Add(8); break;
                case 'f': bytes.Add(12); break;
                case 'v': bytes.Add(11); break;
                case '\\': bytes.Add((byte)'\\'); break;
                case '"': bytes.Add((byte)'"'); break;
                case '\'': bytes.Add((byte)'\''); break;
                case 'x':
                    if (i + 2 >= s.Length - 1 + 1 || !byte.TryParse(s.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hb))
                    {
                        return null;
                    }

                    bytes.Add(hb);
                    i += 2;
                    break;
                case 'u':
                    if (i + 4 >= s.Length || !int.TryParse(s.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var cp))
                    {
                        return null;
                    }

                    bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(cp)));
                    i += 4;
                    break;
                default:
                    return null;
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static RequestOp ParseRequest(string line)
    {
        var args = Argify(line);
        if (args.Count < 2)
        {
            throw new ExitException(ExitException.ExitInvalidInput, "invalid txn compare request: " + line);
        }

        var invalid = new ExitException(ExitException.ExitInvalidInput, "invalid txn request: " + line);
        var root = new Command("txn-op", string.Empty);
        var get = KvCommands.TxnGet();
        var put = KvCommands.TxnPut();
        var del = KvCommands.TxnDel();
        root.Add(get, put, del);
        var (cmd, rest, error) = CommandLine.Find(root, args);
        if (error is not null || cmd == root)
        {
            throw invalid;
        }

        List<string> positional;
        try
        {
            positional = CommandLine.Parse(cmd, rest);
        }
        catch (FormatException)
        {
            throw invalid;
        }

        return cmd.Name switch
        {
            "get" => new RequestOp { RequestRange = KvCommands.GetRequest(cmd, positional) },
            "put" => new RequestOp { RequestPut = KvCommands.PutRequest(cmd, positional, Stream.Null) },
            _ => new RequestOp { RequestDeleteRange = KvCommands.DelRequest(cmd, positional) },
        };
    }

    /// <summary>parseCompare: <c>TARGET("key") OP "value"</c> with targets ver/version, c/create, m/mod, val/value, lease.</summary>
    public static Compare ParseCompare(string line)
    {
        var paren = line.IndexOf('(', StringComparison.Ordinal);
        if (paren < 0)
        {
            throw new ExitException(ExitException.ExitInvalidInput, "malformed comparison: " + line);
        }

        var target = line[..paren];
        var rest = line[(paren + 1)..];
        var scanned = ScanCompare(rest);
        if (scanned is null)
        {
            throw new ExitException(ExitException.ExitInvalidInput, $"malformed comparison: {line}; got {target}(\"\") \"\"");
        }

        var (key, op, val) = scanned.Value;
        var cmp = new Compare { Key = ByteString.CopyFromUtf8(key) };
        cmp.Result = op switch
        {
            "=" or "==" => Compare.Types.CompareResult.Equal,
            "!=" => Compare.Types.CompareResult.NotEqual,
            "<" => Compare.Types.CompareResult.Less,
            ">" => Compare.Types.CompareResult.Greater,
            _ => throw new ExitException(ExitException.ExitInvalidInput, $"malformed comparison: {line} (unknown op {op})"),
        };

        long Number() => long.TryParse(val, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ExitException(ExitException.ExitInvalidInput, "invalid txn compare request: " + line);

        switch (target)
        {
            case "ver":
            case "version":
                cmp.Target = Compare.Types.CompareTarget.Version;
                cmp.Version = Number();
                break;
            case "c":
            case "create":
                cmp.Target = Compare.Types.CompareTarget.Create;
                cmp.CreateRevision = Number();
                break;
            case "m":
            case "mod":
                cmp.Target = Compare.Types.CompareTarget.Mod;
                cmp.ModRevision = Number();
                break;
            case "val":
            case "value":
                cmp.Target = Compare.Types.CompareTarget.Value;
                cmp.Value = ByteString.CopyFromUtf8(val);
                break;
            case "lease":
                cmp.Target = Compare.Types.CompareTarget.Lease;
                cmp.Lease = Number();
                break;
            default:
                throw new ExitException(ExitException.ExitInvalidInput, $"malformed comparison: {line} (unknown target {target})");
        }

        return cmp;
    }

    // fmt.Sscanf(rest, "%q) %s %q"): a quoted key, ")", an operator word, a quoted value.
    private static (string Key, string Op, string Val)? ScanCompare(string s)
    {
        var i = 0;
        string? QuotedAt()
        {
            while (i < s.Length && char.IsWhiteSpace(s[i]))
            {
                i++;
            }

            if (i >= s.Length)
            {
                return null;
            }

            if (s[i] == '`')
            {
                var end = s.IndexOf('`', i + 1);
                if (end < 0)
                {
                    return null;
                }

                var raw = s[(i + 1)..end];
                i = end + 1;
                return raw;
            }

            if (s[i] != '"')
            {
                return null;
            }

            var j = i + 1;
            while (j < s.Length && s[j] != '"')
            {
                j += s[j] == '\\' ? 2 : 1;
            }

            if (j >= s.Length)
            {
                return null;
            }

            var text = Unquote(s[i..(j + 1)]);
            i = j + 1;
            return text;
        }

        var key = QuotedAt();
        if (key is null || i >= s.Length || s[i] != ')')
        {
            return null;
        }

        i++;
        while (i < s.Length && char.IsWhiteSpace(s[i]))
        {
            i++;
        }

        var start = i;
        while (i < s.Length && !char.IsWhiteSpace(s[i]))
        {
            i++;
        }

        var op = s[start..i];
        if (op.Length == 0)
        {
            return null;
        }

        var val = QuotedAt();
        return val is null ? null : (key, op, val);
    }
}
