using System.Globalization;
using System.Text;
using Etcd.Api;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary>get, put, del and compaction (etcdctl/ctlv3/command/{get,put,del,compaction}_command.go).</summary>
public static class KvCommands
{
    private static ExitException BadArgs(string message) => new(ExitException.ExitBadArgs, message);

    private static ByteString Bytes(string s) => ByteString.CopyFromUtf8(s);

    /// <summary>The <c>get</c> command.</summary>
    public static Command Get()
    {
        var cmd = new Command("get [options] <key> [range_end]", "Gets the key or a range of keys", RunGetAsync);
        AddGetFlags(cmd);
        return cmd;
    }

    private static void AddGetFlags(Command cmd)
    {
        cmd.Flags.String("consistency", "l", "Linearizable(l) or Serializable(s)");
        cmd.Flags.String("order", "", "Order of results; ASCEND or DESCEND (ASCEND by default)");
        cmd.Flags.String("sort-by", "", "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION");
        cmd.Flags.Int64("limit", 0, "Maximum number of results");
        cmd.Flags.Bool("prefix", false, "Get keys with matching prefix");
        cmd.Flags.Bool("from-key", false, "Get keys that are greater than or equal to the given key using byte compare");
        cmd.Flags.Int64("rev", 0, "Specify the kv revision");
        cmd.Flags.Bool("keys-only", false, "Get only the keys");
        cmd.Flags.Bool("print-value-only", false, "Only write values when using the \"simple\" output format");
    }

    private static async Task RunGetAsync(CommandRun run)
    {
        var request = GetRequest(run.Command, run.Args);
        using var ctl = Ctl.From(run);
        var response = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Range, request)).ConfigureAwait(false);
        if (run.Command.Get("print-value-only").Bool)
        {
            if (ctl.Display is not SimplePrinter simple)
            {
                throw BadArgs("print-value-only is only for `--write-out=simple`");
            }

            simple.ValueOnly = true;
        }

        ctl.Display.Get(response);
    }

    /// <summary>getGetOp: the RangeRequest the arguments and flags describe.</summary>
    public static RangeRequest GetRequest(Command cmd, IReadOnlyList<string> args)
    {
        if (args.Count == 0)
        {
            throw BadArgs("get command needs one argument as key and an optional argument as range_end");
        }

        var prefix = cmd.Get("prefix").Bool;
        var fromKey = cmd.Get("from-key").Bool;
        if (prefix && fromKey)
        {
            throw BadArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one");
        }

        var request = new RangeRequest();
        var consistency = cmd.Get("consistency").Raw;
        switch (consistency)
        {
            case "s": request.Serializable = true; break;
            case "l": break;
            default: throw new ExitException(ExitException.ExitBadFeature, $"unknown consistency flag {GoFormat.Quote(consistency)}");
        }

        var key = args[0];
        if (args.Count > 1)
        {
            if (prefix || fromKey)
            {
                throw BadArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
            }

            request.RangeEnd = Bytes(args[1]);
        }

        request.Limit = cmd.Get("limit").Int64;
        var rev = cmd.Get("rev").Int64;
        if (rev > 0)
        {
            request.Revision = rev;
        }

        var orderText = cmd.Get("order").Raw;
        var order = orderText.ToUpperInvariant() switch
        {
            "ASCEND" => RangeRequest.Types.SortOrder.Ascend,
            "DESCEND" => RangeRequest.Types.SortOrder.Descend,
            "" => RangeRequest.Types.SortOrder.None,
            _ => throw new ExitException(ExitException.ExitBadFeature, "bad sort order " + orderText),
        };
        var targetText = cmd.Get("sort-by").Raw;
        var target = targetText.ToUpperInvariant() switch
        {
            "CREATE" => RangeRequest.Types.SortTarget.Create,
            "KEY" or "" => RangeRequest.Types.SortTarget.Key,
            "MODIFY" => RangeRequest.Types.SortTarget.Mod,
            "VALUE" => RangeRequest.Types.SortTarget.Value,
            "VERSION" => RangeRequest.Types.SortTarget.Version,
            _ => throw new ExitException(ExitException.ExitBadFeature, "bad sort target " + targetText),
        };

        // clientv3.WithSort: ascending by key is the server's natural order, so it is sent as no sort.
        if (target == RangeRequest.Types.SortTarget.Key && order == RangeRequest.Types.SortOrder.Ascend)
        {
            order = RangeRequest.Types.SortOrder.None;
        }

        request.SortOrder = order;
        request.SortTarget = target;

        request.Key = Bytes(key);
        if (prefix)
        {
            if (key.Length == 0)
            {
                request.Key = ByteString.CopyFrom(0);
                request.RangeEnd = ByteString.CopyFrom(0);
            }
            else
            {
                request.RangeEnd = ByteString.CopyFrom(SimplePrinter.PrefixEnd(Encoding.UTF8.GetBytes(key)));
            }
        }

        if (fromKey)
        {
            if (key.Length == 0)
            {
                request.Key = ByteString.CopyFrom(0);
            }

            request.RangeEnd = ByteString.CopyFrom(0);
        }

        request.KeysOnly = cmd.Get("keys-only").Bool;
        return request;
    }

    /// <summary>The <c>put</c> command.</summary>
    public static Command Put()
    {
        var cmd = new Command("put [options] <key> <value> (<value> can also be given from stdin)", "Puts the given key into the store", RunPutAsync, PutLong);
        AddPutFlags(cmd);
        return cmd;
    }

    private static void AddPutFlags(Command cmd)
    {
        cmd.Flags.String("lease", "0", "lease ID (in hexadecimal) to attach to the key");
        cmd.Flags.Bool("prev-kv", false, "return the previous key-value pair before modification");
        cmd.Flags.Bool("ignore-value", false, "updates the key using its current value");
        cmd.Flags.Bool("ignore-lease", false, "updates the key using its current lease");
    }

    private const string PutLong = """

Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.

""";

    private static async Task RunPutAsync(CommandRun run)
    {
        var request = PutRequest(run.Command, run.Args, run.Console.Stdin);
        using var ctl = Ctl.From(run);
        var response = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Put, request)).ConfigureAwait(false);
        ctl.Display.Put(response);
    }

    /// <summary>getPutOp: the PutRequest the arguments describe (the value may come from <paramref name="stdin"/>).</summary>
    public static PutRequest PutRequest(Command cmd, IReadOnlyList<string> args, Stream? stdin)
    {
        const string needs = "put command needs 1 argument and input from stdin or 2 arguments";
        if (args.Count == 0)
        {
            throw BadArgs(needs);
        }

        var ignoreValue = cmd.Get("ignore-value").Bool;
        if (ignoreValue && args.Count > 1)
        {
            throw BadArgs("put command needs only 1 argument when 'ignore-value' is set");
        }

        var request = new PutRequest { Key = Bytes(args[0]) };
        if (!ignoreValue)
        {
            if (args.Count > 1)
            {
                request.Value = Bytes(args[1]);
            }
            else
            {
                using var ms = new MemoryStream();
                stdin?.CopyTo(ms);
                if (ms.Length == 0)
                {
                    throw BadArgs(needs);
                }

                request.Value = ByteString.CopyFrom(ms.ToArray());
            }
        }

        var leaseText = cmd.Get("lease").Raw;
        if (!TryParseHex(leaseText, out var id, out var error))
        {
            throw BadArgs($"bad lease ID ({error}), expecting ID in Hex");
        }

        request.Lease = id;
        request.PrevKv = cmd.Get("prev-kv").Bool;
        request.IgnoreValue = ignoreValue;
        request.IgnoreLease = cmd.Get("ignore-lease").Bool;
        return request;
    }

    /// <summary>strconv.ParseInt(s, 16, 64) with Go's error text.</summary>
    public static bool TryParseHex(string s, out long value, out string error)
    {
        value = 0;
        error = string.Empty;
        var negative = s.StartsWith('-');
        var body = negative || s.StartsWith('+') ? s[1..] : s;
        if (body.Length == 0 || !body.All(char.IsAsciiHexDigit))
        {
            error = $"strconv.ParseInt: parsing {GoFormat.Quote(s)}: invalid syntax";
            return false;
        }

        if (!ulong.TryParse(body, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var u) || u > (negative ? 9223372036854775808UL : long.MaxValue))
        {
            error = $"strconv.ParseInt: parsing {GoFormat.Quote(s)}: value out of range";
            return false;
        }

        value = negative ? (long)(0 - u) : (long)u;
        return true;
    }

    /// <summary>strconv.ParseUint(s, 16, 64) with Go's error text.</summary>
    public static bool TryParseHexUint(string s, out ulong value, out string error)
    {
        value = 0;
        error = string.Empty;
        if (s.Length == 0 || !s.All(char.IsAsciiHexDigit))
        {
            error = $"strconv.ParseUint: parsing {GoFormat.Quote(s)}: invalid syntax";
            return false;
        }

        if (!ulong.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
        {
            error = $"strconv.ParseUint: parsing {GoFormat.Quote(s)}: value out of range";
            return false;
        }

        return true;
    }

    /// <summary>The <c>del</c> command.</summary>
    public static Command Del()
    {
        var cmd = new Command("del [options] <key> [range_end]", "Removes the specified key or range of keys [key, range_end)", RunDelAsync);
        AddDelFlags(cmd);
        return cmd;
    }

    private static void AddDelFlags(Command cmd)
    {
        cmd.Flags.Bool("prefix", false, "delete keys with matching prefix");
        cmd.Flags.Bool("prev-kv", false, "return deleted key-value pairs");
        cmd.Flags.Bool("from-key", false, "delete keys that are greater than or equal to the given key using byte compare");
    }

    private static async Task RunDelAsync(CommandRun run)
    {
        var request = DelRequest(run.Command, run.Args);
        using var ctl = Ctl.From(run);
        var response = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.DeleteRange, request)).ConfigureAwait(false);
        ctl.Display.Del(response);
    }

    /// <summary>getDelOp: the DeleteRangeRequest the arguments describe.</summary>
    public static DeleteRangeRequest DelRequest(Command cmd, IReadOnlyList<string> args)
    {
        if (args.Count == 0 || args.Count > 2)
        {
            throw BadArgs("del command needs one argument as key and an optional argument as range_end");
        }

        var prefix = cmd.Get("prefix").Bool;
        var fromKey = cmd.Get("from-key").Bool;
        if (prefix && fromKey)
        {
            throw BadArgs("`--prefix` and `--from-key` cannot be set at the same time, choose one");
        }

        var key = args[0];
        var request = new DeleteRangeRequest { Key = Bytes(key) };
        if (args.Count > 1)
        {
            if (prefix || fromKey)
            {
                throw BadArgs("too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
            }

            request.RangeEnd = Bytes(args[1]);
        }

        if (prefix)
        {
            if (key.Length == 0)
            {
                request.Key = ByteString.CopyFrom(0);
                request.RangeEnd = ByteString.CopyFrom(0);
            }
            else
            {
                request.RangeEnd = ByteString.CopyFrom(SimplePrinter.PrefixEnd(Encoding.UTF8.GetBytes(key)));
            }
        }

        request.PrevKv = cmd.Get("prev-kv").Bool;
        if (fromKey)
        {
            if (key.Length == 0)
            {
                request.Key = ByteString.CopyFrom(0);
            }

            request.RangeEnd = ByteString.CopyFrom(0);
        }

        return request;
    }

    /// <summary>Commands parsed inside txn (put, get, del with their flags).</summary>
    internal static Command TxnGet()
    {
        var c = new Command("get [options] <key> [range_end]", "Gets the key or a range of keys", _ => Task.CompletedTask);
        AddGetFlags(c);
        return c;
    }

    /// <summary>put as parsed inside txn.</summary>
    internal static Command TxnPut()
    {
        var c = new Command("put [options] <key> <value> (<value> can also be given from stdin)", "Puts the given key into the store", _ => Task.CompletedTask);
        AddPutFlags(c);
        return c;
    }

    /// <summary>del as parsed inside txn.</summary>
    internal static Command TxnDel()
    {
        var c = new Command("del [options] <key> [range_end]", "Removes the specified key or range of keys [key, range_end)", _ => Task.CompletedTask);
        AddDelFlags(c);
        return c;
    }

    /// <summary>The <c>compaction</c> command.</summary>
    public static Command Compaction()
    {
        var cmd = new Command("compaction [options] <revision>", "Compacts the event history in etcd", RunCompactionAsync);
        cmd.Flags.Bool("physical", false, "'true' to wait for compaction to physically remove all old revisions");
        return cmd;
    }

    private static async Task RunCompactionAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw BadArgs("compaction command needs 1 argument");
        }

        if (!long.TryParse(run.Args[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var rev))
        {
            throw new ExitException(ExitException.ExitError, $"strconv.ParseInt: parsing {GoFormat.Quote(run.Args[0])}: invalid syntax");
        }

        using var ctl = Ctl.From(run);
        await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Compact, new CompactionRequest { Revision = rev, Physical = run.Command.Get("physical").Bool })).ConfigureAwait(false);
        ctl.Console.Out($"compacted revision {rev}\n");
    }
}
