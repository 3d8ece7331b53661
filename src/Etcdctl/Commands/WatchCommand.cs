using System.Diagnostics;
using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary>
/// <c>watch</c> (etcdctl/ctlv3/command/watch_command.go): watches a key, range or prefix and prints each response;
/// <c>-- cmd args</c> runs a command per event with ETCD_WATCH_* set; <c>-i</c> reads <c>watch ...</c> and
/// <c>progress</c> lines from stdin; ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END give the key. Ends with exit 5
/// when the server cancels the watch.
/// </summary>
public static class WatchCommand
{
    private const string ErrBadArgsNum = "bad number of arguments";
    private const string ErrBadArgsNumConflictEnv = "bad number of arguments (found conflicting environment key)";
    private const string ErrBadArgsNumSeparator = "bad number of arguments (found separator --, but no commands)";
    private const string ErrBadArgsInteractiveWatch = "args[0] must be 'watch' for interactive calls";

    /// <summary>The <c>watch</c> command.</summary>
    public static Command Create()
    {
        var cmd = new Command("watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]", "Watches events stream on keys or prefixes", RunAsync);
        AddFlags(cmd);
        return cmd;
    }

    private static void AddFlags(Command cmd)
    {
        cmd.Flags.Bool("interactive", false, "Interactive mode", "i");
        cmd.Flags.Bool("prefix", false, "Watch on a prefix if prefix is set");
        cmd.Flags.Int64("rev", 0, "Revision to start watching");
        cmd.Flags.Bool("prev-kv", false, "get the previous key-value pair before the event happens");
    }

    private sealed record WatchSpec(List<string> Args, List<string> Exec, bool Prefix, long Rev, bool PrevKv);

    private static async Task RunAsync(CommandRun run)
    {
        var envKey = Environment.GetEnvironmentVariable("ETCDCTL_WATCH_KEY") ?? string.Empty;
        var envRange = Environment.GetEnvironmentVariable("ETCDCTL_WATCH_RANGE_END") ?? string.Empty;
        if (envKey.Length == 0 && envRange.Length > 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, $"ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={GoFormat.Quote(envRange)}");
        }

        if (run.Command.Get("interactive").Bool)
        {
            await InteractiveAsync(run, envKey, envRange).ConfigureAwait(false);
            return;
        }

        var (watchArgs, execArgs) = ParseArgs(run.OsArgs, run.Args, envKey, envRange);
        using var ctl = Ctl.From(run);
        var spec = new WatchSpec(watchArgs, execArgs, run.Command.Get("prefix").Bool, run.Command.Get("rev").Int64, run.Command.Get("prev-kv").Bool);
        var create = CreateRequest(spec) ?? throw new ExitException(ExitException.ExitBadArgs, CreateError(spec));
        await PrintWatchAsync(ctl, create, execArgs).ConfigureAwait(false);
        throw new ExitException(ExitException.ExitInterrupted, "watch is canceled by the server");
    }

    private static string CreateError(WatchSpec spec) =>
        spec.Args.Count < 1 ? ErrBadArgsNum : "`range_end` and `--prefix` are mutually exclusive";

    private static WatchCreateRequest? CreateRequest(WatchSpec spec)
    {
        if (spec.Args.Count < 1 || (spec.Args.Count == 2 && spec.Prefix))
        {
            return null;
        }

        var key = spec.Args[0];
        var request = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(key), StartRevision = spec.Rev, PrevKv = spec.PrevKv };
        if (spec.Args.Count == 2)
        {
            request.RangeEnd = ByteString.CopyFromUtf8(spec.Args[1]);
        }

        if (spec.Prefix)
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

        return request;
    }

    // Reads one watch's responses until the server cancels it or the stream ends.
    private static async Task PrintWatchAsync(Ctl ctl, WatchCreateRequest create, List<string> execArgs, Action<DuplexStreamingCall<WatchRequest, WatchResponse>>? started = null)
    {
        _ = ctl.Client;
        var headers = ctl.Options(Timeout.InfiniteTimeSpan).Headers ?? [];
        headers.Add("hasleader", "true");
        using var call = ctl.Client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, new CallOptions { Headers = headers });
        try
        {
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }).ConfigureAwait(false);
            started?.Invoke(call);
            while (await call.ResponseStream.MoveNext().ConfigureAwait(false))
            {
                var r = call.ResponseStream.Current;
                if (r.Created && !r.Canceled)
                {
                    continue;
                }

                if (r.Canceled)
                {
                    ctl.Console.Err($"watch was canceled ({CancelText(r)})\n");
                }

                if (r.Events.Count == 0 && !r.Canceled && !r.Created && r.CompactRevision == 0 && (r.Header?.Revision ?? 0) != 0)
                {
                    ctl.Console.Out($"progress notify: {r.Header!.Revision}\n");
                }

                ctl.Display.Watch(r);
                if (execArgs.Count > 0)
                {
                    foreach (var ev in r.Events)
                    {
                        Exec(ctl, execArgs, r, ev);
                    }
                }

                if (r.Canceled)
                {
                    return;
                }
            }
        }
        catch (RpcException)
        {
            // the stream failed: as clientv3 closing the watch channel
        }
    }

    private static string CancelText(WatchResponse r) =>
        r.CompactRevision != 0 ? "etcdserver: mvcc: required revision has been compacted"
        : r.CancelReason.Length > 0 ? r.CancelReason
        : "etcdserver: mvcc: required revision is a future revision";

    private static void Exec(Ctl ctl, List<string> execArgs, WatchResponse r, Mvccpb.Event ev)
    {
        var psi = new ProcessStartInfo(execArgs[0]) { UseShellExecute = false };
        foreach (var a in execArgs.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["ETCD_WATCH_REVISION"] = (r.Header?.Revision ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["ETCD_WATCH_EVENT_TYPE"] = ev.Type == Mvccpb.Event.Types.EventType.Put ? "\"PUT\"" : "\"DELETE\"";
        psi.Environment["ETCD_WATCH_KEY"] = GoFormat.Quote((ev.Kv ?? new Mvccpb.KeyValue()).Key.Span);
        psi.Environment["ETCD_WATCH_VALUE"] = GoFormat.Quote((ev.Kv ?? new Mvccpb.KeyValue()).Value.Span);
        string? error = null;
        try
        {
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                error = "exit status " + p.ExitCode;
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            error = $"exec: {GoFormat.Quote(execArgs[0])}: executable file not found in $PATH";
        }

        if (error is not null)
        {
            ctl.Console.Err($"command [{string.Join(' ', execArgs.Select(GoFormat.Quote))}] error ({error})\n");
            throw new ExitException(1, null);
        }
    }

    private static (List<string> Watch, List<string> Exec) ParseArgs(IReadOnlyList<string> osArgs, IReadOnlyList<string> commandArgs, string envKey, string envRange)
    {
        var raw = osArgs.ToList();
        var w = raw.IndexOf("watch");
        if (w >= 0)
        {
            raw = raw.Skip(w + 1).ToList();
        }

        var watchArgs = commandArgs.ToList();
        var execIdx = raw.IndexOf("--");
        var execExist = execIdx >= 0;
        if (execExist && execIdx == raw.Count - 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNumSeparator);
        }

        if (!execExist && raw.Count < 1 && envKey.Length == 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNum);
        }

        if (execExist && envKey.Length > 0)
        {
            int widx = watchArgs.Count - 1, ridx = raw.Count - 1;
            for (; widx >= 0; widx--)
            {
                if (watchArgs[widx] == raw[ridx])
                {
                    ridx--;
                    continue;
                }

                if (ridx == execIdx)
                {
                    throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNumConflictEnv);
                }
            }
        }

        if (!execExist && watchArgs.Count > 0 && envKey.Length > 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNumConflictEnv);
        }

        var exec = execExist ? raw.Skip(execIdx + 1).ToList() : [];
        if (envKey.Length > 0)
        {
            var ranges = new List<string> { envKey };
            if (envRange.Length > 0)
            {
                ranges.Add(envRange);
            }

            watchArgs = [.. ranges, .. watchArgs];
        }

        if (!execExist)
        {
            return (watchArgs, exec);
        }

        var endIdx = watchArgs.Count - 1;
        for (; endIdx >= 0; endIdx--)
        {
            if (watchArgs[endIdx] == raw[execIdx + 1])
            {
                break;
            }
        }

        return (watchArgs.Take(Math.Max(endIdx, 0)).ToList(), exec);
    }

    private static async Task InteractiveAsync(CommandRun run, string envKey, string envRange)
    {
        using var ctl = Ctl.From(run);
        _ = ctl.Client;
        var calls = new List<DuplexStreamingCall<WatchRequest, WatchResponse>>();
        var stdin = run.Console.Stdin;
        while (true)
        {
            var bytes = new List<byte>();
            int b;
            while ((b = stdin.ReadByte()) >= 0 && b != '\n')
            {
                bytes.Add((byte)b);
            }

            if (b < 0)
            {
                throw new ExitException(ExitException.ExitInvalidInput, "Error reading watch request line: EOF");
            }

            var l = Encoding.UTF8.GetString(bytes.ToArray());
            var args = TxnCommand.Argify(l);
            if (args.Count < 1)
            {
                run.Console.Err($"Invalid command: {l} (watch and progress supported)\n");
                continue;
            }

            switch (args[0])
            {
                case "watch":
                    if (args.Count < 2 && envKey.Length == 0)
                    {
                        run.Console.Err($"Invalid command {l} (command type or key is not provided)\n");
                        continue;
                    }

                    var spec = ParseInteractive(args, envKey, envRange);
                    var create = CreateRequest(spec);
                    if (create is null)
                    {
                        run.Console.Err($"Invalid command {l} ({CreateError(spec)})\n");
                        continue;
                    }

                    _ = Task.Run(() => PrintWatchAsync(ctl, create, spec.Exec, c => { lock (calls) { calls.Add(c); } }));
                    break;
                case "progress":
                    List<DuplexStreamingCall<WatchRequest, WatchResponse>> open;
                    lock (calls)
                    {
                        open = [.. calls];
                    }

                    foreach (var c in open)
                    {
                        try
                        {
                            await c.RequestStream.WriteAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() }).ConfigureAwait(false);
                        }
                        catch (RpcException)
                        {
                            // that watch has ended
                        }
                    }

                    break;
                default:
                    run.Console.Err($"Invalid command {l} (only support watch)\n");
                    continue;
            }
        }
    }

    private static WatchSpec ParseInteractive(List<string> args, string envKey, string envRange)
    {
        var watchArgs = args.Skip(1).ToList();
        var execIdx = watchArgs.IndexOf("--");
        var execExist = execIdx >= 0;
        if (execExist && execIdx == watchArgs.Count - 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNumSeparator);
        }

        var flags = new Command("watch", string.Empty);
        AddFlags(flags);
        List<string> positional;
        try
        {
            positional = CommandLine.Parse(flags, watchArgs);
        }
        catch (FormatException e)
        {
            throw new ExitException(ExitException.ExitBadArgs, e.Message);
        }

        if (!execExist && envKey.Length == 0 && positional.Count < 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNum);
        }

        if (!execExist && positional.Count > 0 && envKey.Length > 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, ErrBadArgsNumConflictEnv);
        }

        var exec = execExist ? watchArgs.Skip(execIdx + 1).ToList() : [];
        if (envKey.Length > 0)
        {
            var ranges = new List<string> { envKey };
            if (envRange.Length > 0)
            {
                ranges.Add(envRange);
            }

            positional = [.. ranges, .. positional];
        }

        if (execExist)
        {
            var endIdx = positional.Count - 1;
            for (; endIdx >= 0; endIdx--)
            {
                if (positional[endIdx] == watchArgs[execIdx + 1])
                {
                    break;
                }
            }

            positional = positional.Take(Math.Max(endIdx, 0)).ToList();
        }

        return new WatchSpec(positional, exec, flags.Get("prefix").Bool, flags.Get("rev").Int64, flags.Get("prev-kv").Bool);
    }
}
