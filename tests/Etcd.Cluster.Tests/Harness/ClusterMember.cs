using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Etcd.Client;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>
/// One member of a <see cref="ProcessCluster"/>: a child process of the executable under test with its own data
/// dir, client port and real peer port, advertising its <see cref="PeerProxy"/> as its peer URL. Supports SIGKILL,
/// SIGTERM, SIGSTOP/SIGCONT and restart on the same data dir and ports. Logs of every incarnation are kept for
/// failure messages. Driven by one test at a time (not thread-safe), except <see cref="Logs"/>.
/// </summary>
public sealed partial class ClusterMember : IAsyncDisposable
{
    /// <summary>The line etcd logs once it serves client requests.</summary>
    public const string ReadyLine = "ready to serve client requests";

    private readonly StringBuilder _logs = new();
    private readonly Lock _logGate = new();
    private Process? _process;
    private int _incarnation;
    private EtcdClient? _client;
    private readonly List<(string Text, TaskCompletionSource Seen)> _logWaiters = [];

    internal ClusterMember(string binary, string name, string dataDir, PeerProxy proxy, int clientPort, int peerPort)
    {
        Binary = binary;
        Name = name;
        DataDir = dataDir;
        Proxy = proxy;
        ClientPort = clientPort;
        PeerPort = peerPort;
    }

    /// <summary>Executable run; a test swaps it between restarts to replace a member with another implementation on the same data dir.</summary>
    public string Binary { get; set; }

    /// <summary>Member name (<c>--name</c>).</summary>
    public string Name { get; }

    /// <summary>Data dir; survives restarts.</summary>
    public string DataDir { get; }

    /// <summary>The inbound peer proxy; <see cref="PeerUrl"/> is its URL.</summary>
    public PeerProxy Proxy { get; }

    /// <summary>Client port on 127.0.0.1.</summary>
    public int ClientPort { get; private set; }

    /// <summary>The real peer port (<c>--listen-peer-urls</c>).</summary>
    public int PeerPort { get; private set; }

    /// <summary>Client URL.</summary>
    public string ClientUrl => $"http://127.0.0.1:{ClientPort}";

    /// <summary>The advertised peer URL (the proxy's).</summary>
    public string PeerUrl => Proxy.Url;

    /// <summary>Raft member ID, known once the cluster has listed its members.</summary>
    public ulong MemberId { get; internal set; }

    /// <summary>Arguments of the first start; restarts reuse them (etcd ignores the initial-cluster flags then).</summary>
    public IReadOnlyList<string> Arguments { get; internal set; } = [];

    /// <summary>True while the process is alive (stopped by SIGSTOP counts as alive).</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>True between <see cref="Pause"/> and <see cref="Resume"/>.</summary>
    public bool IsPaused { get; private set; }

    /// <summary>The process's exit code, once it has exited.</summary>
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>A client talking to this member only (for status, hashes and per-member reads).</summary>
    public EtcdClient Client => _client ??= EtcdClient.Create(new EtcdClientOptions { Endpoints = [ClientUrl], DialTimeout = TimeSpan.FromSeconds(2) });

    /// <summary>All captured log lines of every incarnation.</summary>
    public string Logs
    {
        get
        {
            lock (_logGate)
            {
                return _logs.ToString();
            }
        }
    }

    /// <summary>The last lines of the logs, for failure messages.</summary>
    public string LogTail(int lines = 60)
    {
        var all = Logs.Split('\n');
        return $"--- {Name} log tail ---\n" + string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <summary>Starts the process with <see cref="Arguments"/>; waits for <see cref="ReadyLine"/> unless told not to.</summary>
    /// <exception cref="InvalidOperationException">Exited before becoming ready.</exception>
    /// <exception cref="TimeoutException">Not ready within <paramref name="readyTimeout"/>.</exception>
    public async Task StartAsync(TimeSpan readyTimeout, bool waitReady = true)
    {
        if (_incarnation > 0 || !waitReady)
        {
            await LaunchAsync(readyTimeout, waitReady);
            return;
        }

        // First start: a port probed free may be taken (e.g. as another connection's source port) before the member
        // binds it. Only this member's own args name its real ports (peers know it by its proxy), so pick new ones.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await LaunchAsync(readyTimeout, waitReady);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5 && LastIncarnationLogs().Contains("address already in use", StringComparison.Ordinal))
            {
                var (oldClient, oldPeer) = (ClientUrl, $"http://127.0.0.1:{PeerPort}");
                ClientPort = FreePorts.Next();
                PeerPort = FreePorts.Next();
                Proxy.TargetPort = PeerPort;
                Arguments = Arguments.Select(a => a == oldClient ? ClientUrl : a == oldPeer ? $"http://127.0.0.1:{PeerPort}" : a).ToList();
                if (Directory.Exists(DataDir))
                {
                    Directory.Delete(DataDir, recursive: true);
                }
            }
        }
    }

    private string LastIncarnationLogs()
    {
        var marker = $"[{_incarnation}]";
        return string.Join('\n', Logs.Split('\n').Where(l => l.Contains(marker, StringComparison.Ordinal)));
    }

    private async Task LaunchAsync(TimeSpan readyTimeout, bool waitReady)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException($"{Name} is running");
        }

        var incarnation = ++_incarnation;
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(DataDir)!,
        };
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("ETCD", StringComparison.Ordinal))
            {
                psi.Environment.Remove(key);
            }
        }

        foreach (var a in Arguments)
        {
            psi.ArgumentList.Add(a);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => OnLine(incarnation, e.Data, ready);
        process.ErrorDataReceived += (_, e) => OnLine(incarnation, e.Data, ready);
        AppendLog($"[{incarnation}] ---- starting {Binary} {string.Join(' ', psi.ArgumentList)}");
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {Binary}");
        }

        _process?.Dispose();
        _process = process;
        IsPaused = false;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!waitReady)
        {
            return;
        }

        await WaitReadyAsync(ready.Task, process, readyTimeout);
    }

    /// <summary>Waits (bounded) until a log line containing one of <paramref name="texts"/> has been seen (in any incarnation).</summary>
    public async Task<bool> WaitForLogAsync(TimeSpan timeout, params string[] texts)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_logGate)
        {
            var logs = _logs.ToString();
            if (texts.Any(t => logs.Contains(t, StringComparison.Ordinal)))
            {
                return true;
            }

            foreach (var t in texts)
            {
                _logWaiters.Add((t, seen));
            }
        }

        try
        {
            return await Task.WhenAny(seen.Task, Task.Delay(timeout)) == seen.Task;
        }
        finally
        {
            lock (_logGate)
            {
                _logWaiters.RemoveAll(w => w.Seen == seen);
            }
        }
    }

    /// <summary>SIGKILL, then waits for the exit (bounded).</summary>
    public void Kill()
    {
        var p = _process;
        if (p is null || p.HasExited)
        {
            return;
        }

        AppendLog($"[{_incarnation}] ---- SIGKILL");
        try
        {
            p.Kill();
        }
        catch (InvalidOperationException)
        {
        }

        if (!p.WaitForExit(TimeSpan.FromSeconds(15)))
        {
            throw new TimeoutException($"{Name} (pid {p.Id}) still alive 15 s after SIGKILL");
        }

        IsPaused = false;
    }

    /// <summary>SIGTERM: asks the member to shut down cleanly (it exits by itself; see <see cref="WaitForExitAsync"/>).</summary>
    public void Terminate()
    {
        AppendLog($"[{_incarnation}] ---- SIGTERM");
        Signal(SigTerm);
    }

    /// <summary>SIGTERM (a clean stop: the member commits its backend), then waits for the exit (bounded).</summary>
    /// <exception cref="TimeoutException">Still running 30 s later.</exception>
    public async Task TerminateAsync()
    {
        if (_process is not { HasExited: false })
        {
            return;
        }

        Terminate();
        if (!await WaitForExitAsync(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException($"{Name} still alive 30 s after SIGTERM");
        }
    }

    /// <summary>SIGSTOP: the process freezes (its sockets stay open, nothing is answered).</summary>
    public void Pause()
    {
        AppendLog($"[{_incarnation}] ---- SIGSTOP");
        Signal(SigStop);
        IsPaused = true;
    }

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume()
    {
        AppendLog($"[{_incarnation}] ---- SIGCONT");
        Signal(SigCont);
        IsPaused = false;
    }

    /// <summary>Waits (bounded) for the process to exit on its own; false if it is still running.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var p = _process;
        if (p is null || p.HasExited)
        {
            return true;
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        _client = null;
        if (IsPaused)
        {
            Resume();
        }

        Kill();
        _process?.Dispose();
        _process = null;
        await Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} (id {MemberId:x}, client {ClientUrl}, peer {PeerUrl} -> :{PeerPort})";

    private async Task WaitReadyAsync(Task ready, Process process, TimeSpan timeout)
    {
        var exited = process.WaitForExitAsync();
        var first = await Task.WhenAny(ready, exited, Task.Delay(timeout));
        if (first == ready)
        {
            return;
        }

        if (first == exited)
        {
            throw new InvalidOperationException($"{Name} exited with code {process.ExitCode} before '{ReadyLine}'.\n{LogTail()}");
        }

        throw new TimeoutException($"{Name} did not log '{ReadyLine}' within {timeout.TotalSeconds:0} s.\n{LogTail()}");
    }

    private void Signal(int signal)
    {
        var p = _process ?? throw new InvalidOperationException($"{Name} is not running");
        if (SendSignal(p.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({p.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private void OnLine(int incarnation, string? line, TaskCompletionSource ready)
    {
        if (line is null)
        {
            return;
        }

        AppendLog($"[{incarnation}] {line}");
        if (line.Contains(ReadyLine, StringComparison.Ordinal))
        {
            ready.TrySetResult();
        }

        lock (_logGate)
        {
            foreach (var (text, seen) in _logWaiters)
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    seen.TrySetResult();
                }
            }
        }
    }

    internal void AppendLog(string line)
    {
        lock (_logGate)
        {
            _logs.Append(DateTime.UtcNow.ToString("HH:mm:ss.fff")).Append(' ').Append(line).Append('\n');
        }
    }

    private const int SigTerm = 15;
    private const int SigStop = 19;
    private const int SigCont = 18;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
