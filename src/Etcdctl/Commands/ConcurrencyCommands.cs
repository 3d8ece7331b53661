using System.Diagnostics;
using System.Runtime.InteropServices;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Ctl.Cli;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary>
/// <c>lock</c> and <c>elect</c> (etcdctl/ctlv3/command/{lock,elect}_command.go) over a session lease kept alive
/// in the background and etcd's Lock and Election services (whose keys and revisions are the concurrency package's):
/// hold until SIGINT/SIGTERM, then unlock or resign; <c>lock NAME cmd...</c> runs the command while holding the lock.
/// </summary>
public static class ConcurrencyCommands
{
    /// <summary>The <c>lock</c> command.</summary>
    public static Command Lock()
    {
        var cmd = new Command("lock <lockname> [exec-command arg1 arg2 ...]", "Acquires a named lock", LockAsync);
        cmd.Flags.Int("ttl", 10, "timeout for session");
        return cmd;
    }

    /// <summary>The <c>elect</c> command.</summary>
    public static Command Elect()
    {
        var cmd = new Command("elect <election-name> [proposal]", "Observes and participates in leader election", ElectAsync);
        cmd.Flags.Bool("listen", false, "observation mode", "l");
        return cmd;
    }

    private sealed class Session : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _keepAlive;

        private Session(long lease, Task keepAlive)
        {
            Lease = lease;
            _keepAlive = keepAlive;
        }

        public long Lease { get; }

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<Session> StartAsync(Ctl ctl, long ttl)
        {
            var grant = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = ttl })).ConfigureAwait(false);
            Session? s = null;
            var stop = new CancellationTokenSource();
            var keep = Task.Run(async () =>
            {
                try
                {
                    using var call = ctl.Client.GetChannel().DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive, ctl.Options(Timeout.InfiniteTimeSpan));
                    while (true)
                    {
                        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = grant.ID }).ConfigureAwait(false);
                        if (!await call.ResponseStream.MoveNext(stop.Token).ConfigureAwait(false) || call.ResponseStream.Current.TTL <= 0)
                        {
                            break;
                        }

                        await Task.Delay(TimeSpan.FromSeconds(Math.Max(call.ResponseStream.Current.TTL / 3.0, 0.5)), stop.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is RpcException or OperationCanceledException)
                {
                }

                while (s is null)
                {
                    await Task.Yield();
                }

                s.Done.TrySetResult();
            });
            s = new Session(grant.ID, keep);
            s._stop.Token.Register(stop.Cancel);
            return s;
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            try
            {
                await _keepAlive.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private static Task SignalAsync()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var regs = new[]
        {
            PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; tcs.TrySetResult(); }),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; tcs.TrySetResult(); }),
        };
        GC.KeepAlive(regs);
        Registrations.AddRange(regs);
        return tcs.Task;
    }

    private static readonly List<PosixSignalRegistration> Registrations = [];

    // Interrupted while waiting: etcdctl's ExitWithError with the canceled context, at once (the pending call and the
    // session are left to the server, as etcdctl's os.Exit leaves them).
    private static void Canceled(CtlConsole console)
    {
        console.Err("Error: context canceled\n");
        Environment.Exit(ExitException.ExitError);
    }

    private static async Task LockAsync(CommandRun run)
    {
        if (run.Args.Count == 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, "lock takes a lock name argument and an optional command to execute");
        }

        using var ctl = Ctl.From(run);
        var signal = SignalAsync();
        await using var session = await Session.StartAsync(ctl, run.Command.Get("ttl").Int64).ConfigureAwait(false);
        var lockCall = ctl.MustAsync(ctl.CallAsync(EtcdMethods.LockService.Lock, new V3Lockpb.LockRequest { Name = ByteString.CopyFromUtf8(run.Args[0]), Lease = session.Lease }, Timeout.InfiniteTimeSpan));
        if (await Task.WhenAny(lockCall, signal).ConfigureAwait(false) == signal)
        {
            Canceled(run.Console);
        }

        var locked = await lockCall.ConfigureAwait(false);
        var unlock = () => ctl.MustAsync(ctl.CallAsync(EtcdMethods.LockService.Unlock, new V3Lockpb.UnlockRequest { Key = locked.Key }, Timeout.InfiniteTimeSpan));
        if (run.Args.Count > 1)
        {
            var psi = new ProcessStartInfo(run.Args[1]) { UseShellExecute = false };
            foreach (var a in run.Args.Skip(2))
            {
                psi.ArgumentList.Add(a);
            }

            psi.Environment["ETCD_LOCK_KEY"] = locked.Key.ToStringUtf8();
            psi.Environment["ETCD_LOCK_REV"] = (locked.Header?.Revision ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string? error = null;
            try
            {
                using var p = Process.Start(psi)!;
                await p.WaitForExitAsync().ConfigureAwait(false);
                if (p.ExitCode != 0)
                {
                    error = "exit status " + p.ExitCode;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                error = $"exec: {GoFormat.Quote(run.Args[1])}: executable file not found in $PATH";
            }

            await unlock().ConfigureAwait(false);
            if (error is not null)
            {
                throw new ExitException(ExitException.ExitError, error);
            }

            return;
        }

        var get = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Range, new RangeRequest { Key = locked.Key })).ConfigureAwait(false);
        if (get.Kvs.Count == 0)
        {
            throw new ExitException(ExitException.ExitError, "lock lost on init");
        }

        ctl.Display.Get(get);
        if (await Task.WhenAny(signal, session.Done.Task).ConfigureAwait(false) == signal)
        {
            await unlock().ConfigureAwait(false);
            return;
        }

        throw new ExitException(ExitException.ExitError, "session expired");
    }

    private static async Task ElectAsync(CommandRun run)
    {
        if (run.Args.Count != 1 && run.Args.Count != 2)
        {
            throw new ExitException(ExitException.ExitBadArgs, "elect takes one election name argument and an optional proposal argument");
        }

        var listen = run.Command.Get("listen").Bool;
        if (run.Args.Count == 1 && !listen)
        {
            throw new ExitException(ExitException.ExitBadArgs, "no proposal argument but -l not set");
        }

        if (run.Args.Count == 2 && listen)
        {
            throw new ExitException(ExitException.ExitBadArgs, "proposal given but -l is set");
        }

        using var ctl = Ctl.From(run);
        var signal = SignalAsync();
        var name = ByteString.CopyFromUtf8(run.Args[0]);
        if (listen)
        {
            await using var observerSession = await Session.StartAsync(ctl, 60).ConfigureAwait(false);
            using var cts = new CancellationTokenSource();
            _ = signal.ContinueWith(_ => cts.Cancel(), TaskScheduler.Default);
            try
            {
                using var call = ctl.Client.GetChannel().ServerStreaming(EtcdMethods.ElectionService.Observe, new V3Electionpb.LeaderRequest { Name = name }, ctl.Options(Timeout.InfiniteTimeSpan), cts.Token);
                while (await call.ResponseStream.MoveNext(cts.Token).ConfigureAwait(false))
                {
                    var r = call.ResponseStream.Current;
                    var get = new RangeResponse { Header = r.Header, Count = 1 };
                    get.Kvs.Add(r.Kv);
                    ctl.Display.Get(get);
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
            }

            if (!signal.IsCompleted)
            {
                throw new ExitException(ExitException.ExitError, "elect: observer lost");
            }

            return;
        }

        await using var session = await Session.StartAsync(ctl, 60).ConfigureAwait(false);
        var campaign = ctl.MustAsync(ctl.CallAsync(EtcdMethods.ElectionService.Campaign, new V3Electionpb.CampaignRequest { Name = name, Lease = session.Lease, Value = ByteString.CopyFromUtf8(run.Args[1]) }, Timeout.InfiniteTimeSpan));
        if (await Task.WhenAny(campaign, signal).ConfigureAwait(false) == signal)
        {
            Canceled(run.Console);
        }

        var leader = (await campaign.ConfigureAwait(false)).Leader;
        var resp = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.KVService.Range, new RangeRequest { Key = leader.Key })).ConfigureAwait(false);
        ctl.Display.Get(resp);
        if (await Task.WhenAny(signal, session.Done.Task).ConfigureAwait(false) != signal)
        {
            throw new ExitException(ExitException.ExitError, "elect: session expired");
        }

        await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ElectionService.Resign, new V3Electionpb.ResignRequest { Leader = leader }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
    }
}
