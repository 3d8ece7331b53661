using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// One single-member etcd (ours or the real one) run as a child process: a temp data dir, free
/// 127.0.0.1 client and peer ports, readiness detected from the log line
/// <see cref="ReadyLine"/> (etcd's embed/serve.go prints it on stderr), logs captured for failure
/// messages. Supports graceful stop (SIGTERM), crash (SIGKILL) and restart on the same data dir and
/// ports. Not thread-safe: one test drives one instance.
/// </summary>
public sealed partial class EtcdProcess : IAsyncDisposable
{
    /// <summary>The line etcd logs once it serves client requests.</summary>
    public const string ReadyLine = "ready to serve client requests";

    /// <summary>Default bound on the wait for <see cref="ReadyLine"/>.</summary>
    public static readonly TimeSpan DefaultReadyTimeout = TimeSpan.FromSeconds(30);

    private const int MaxStartAttempts = 5;
    private const int LogTailLines = 80;

    private readonly StringBuilder _logs = new();
    private readonly Lock _logGate = new();
    private readonly bool _ownsDataDir;
    private Process? _process;
    private int _incarnation;
    private IReadOnlyList<string>? _commandLine;

    private EtcdProcess(string binaryPath, string name, string dataDir, bool ownsDataDir)
    {
        BinaryPath = binaryPath;
        Name = name;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
    }

    /// <summary>Executable being run (changes with <see cref="RestartAsync(string, TimeSpan?)"/>).</summary>
    public string BinaryPath { get; private set; }

    /// <summary>Member name (--name).</summary>
    public string Name { get; }

    /// <summary>Data directory (--data-dir); survives restarts, deleted on dispose if we created it.</summary>
    public string DataDir { get; }

    /// <summary>Client port on 127.0.0.1.</summary>
    public int ClientPort { get; private set; }

    /// <summary>Peer port on 127.0.0.1.</summary>
    public int PeerPort { get; private set; }

    /// <summary>Client URL, e.g. http://127.0.0.1:40001.</summary>
    public string ClientUrl => $"http://127.0.0.1:{ClientPort}";

    /// <summary>Peer URL, e.g. http://127.0.0.1:40002.</summary>
    public string PeerUrl => $"http://127.0.0.1:{PeerPort}";

    /// <summary>Endpoint as given to etcdctl --endpoints (host:port).</summary>
    public string Endpoint => $"127.0.0.1:{ClientPort}";

    /// <summary>True while the child process is alive.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Flags appended to every later launch (e.g. <c>--snapshot-count</c>); empty by default.</summary>
    public IReadOnlyList<string> ExtraArgs { get; set; } = [];

    /// <summary>Variables set for every later launch on top of the scrubbed environment (e.g. <c>GOFAIL_FAILPOINTS</c>); edit between launches.</summary>
    public Dictionary<string, string> LaunchEnvironment { get; } = new(StringComparer.Ordinal);

    /// <summary>Exit code of the last incarnation once it has exited (137 = killed by SIGKILL), else null.</summary>
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>Raised with each log line (stdout or stderr) as it arrives, on a reader thread; handlers must be quick and thread-safe.</summary>
    public event Action<string>? LineReceived;

    /// <summary>Captured log lines of the current (last) incarnation only.</summary>
    public string CurrentIncarnationLogs
    {
        get
        {
            var marker = $"[{_incarnation}:";
            return string.Join('\n', Logs.Split('\n').Where(l => l.StartsWith(marker, StringComparison.Ordinal)));
        }
    }

    /// <summary>Waits until the current incarnation exits by itself (e.g. a failpoint); false if it still runs after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var process = _process;
        if (process is null)
        {
            return true;
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Starts the member again on the same data dir and ports like <see cref="RestartAsync(TimeSpan?)"/>, but a launch
    /// that exits before it is ready does not throw: the caller learns it from <see cref="IsRunning"/> (a failpoint
    /// that fires during start-up). Returns whether the member became ready.
    /// </summary>
    /// <exception cref="TimeoutException">Neither ready nor exited within <paramref name="readyTimeout"/>.</exception>
    public async Task<bool> TryRestartAsync(TimeSpan? readyTimeout = null)
    {
        try
        {
            await RestartAsync(readyTimeout);
            return true;
        }
        catch (InvalidOperationException) when (!IsRunning)
        {
            return false;
        }
    }

    /// <summary>All captured stdout/stderr lines of every incarnation, each prefixed by incarnation and stream.</summary>
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

    /// <summary>
    /// Creates a temp data dir, picks free ports and starts the member, retrying with new ports
    /// (at most 5 attempts) when the member fails on "address already in use".
    /// </summary>
    /// <exception cref="InvalidOperationException">The member exited before becoming ready.</exception>
    /// <exception cref="TimeoutException">No readiness line within <paramref name="readyTimeout"/>.</exception>
    public static Task<EtcdProcess> StartAsync(string binaryPath, string name, TimeSpan? readyTimeout = null)
        => StartAsync(binaryPath, name, [], null, readyTimeout);

    /// <summary>
    /// As <see cref="StartAsync(string, string, TimeSpan?)"/>, with <paramref name="extraArgs"/> after the standard
    /// flags and <paramref name="environment"/> set, for every incarnation (see <see cref="ExtraArgs"/> and
    /// <see cref="LaunchEnvironment"/>).
    /// </summary>
    public static async Task<EtcdProcess> StartAsync(
        string binaryPath, string name, IReadOnlyList<string> extraArgs, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? readyTimeout = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "etcd-compat-" + Guid.NewGuid().ToString("N")[..12]);
        var member = new EtcdProcess(binaryPath, name, dataDir, ownsDataDir: true) { ExtraArgs = extraArgs };
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            member.LaunchEnvironment[k] = v;
        }

        try
        {
            for (var attempt = 1; ; attempt++)
            {
                member.ClientPort = FreePorts.Next();
                member.PeerPort = FreePorts.Next();
                try
                {
                    await member.LaunchAsync(readyTimeout ?? DefaultReadyTimeout);
                    return member;
                }
                catch (InvalidOperationException) when (attempt < MaxStartAttempts && member.LastIncarnationHitBindConflict())
                {
                    // Another process grabbed a port between our probe and etcd's bind: fresh ports, fresh dir.
                    if (Directory.Exists(dataDir))
                    {
                        Directory.Delete(dataDir, recursive: true);
                    }
                }
            }
        }
        catch
        {
            await member.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts <paramref name="binaryPath"/> with exactly <paramref name="commandLine"/> (no standard flags, no
    /// <see cref="ExtraArgs"/>): a deployment's own command line such as kubeadm's static pod. The caller picks the
    /// ports (<paramref name="clientPort"/> and <paramref name="peerPort"/> are only recorded) and owns
    /// <paramref name="dataDir"/>. With <paramref name="waitForReady"/> false it returns once the process runs (a
    /// member that cannot become ready, e.g. one waiting for peers). Restarts reuse the command line.
    /// </summary>
    /// <exception cref="InvalidOperationException">The member exited before becoming ready.</exception>
    /// <exception cref="TimeoutException">No readiness line within <paramref name="readyTimeout"/>.</exception>
    public static async Task<EtcdProcess> StartWithCommandLineAsync(
        string binaryPath, string name, string dataDir, int clientPort, int peerPort, IReadOnlyList<string> commandLine,
        bool waitForReady = true, TimeSpan? readyTimeout = null)
    {
        var member = new EtcdProcess(binaryPath, name, dataDir, ownsDataDir: false)
        {
            ClientPort = clientPort,
            PeerPort = peerPort,
            _commandLine = commandLine,
        };
        try
        {
            await member.LaunchAsync(readyTimeout ?? DefaultReadyTimeout, waitForReady);
            return member;
        }
        catch
        {
            await member.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the member again on the same data dir and ports; the previous incarnation must have exited.</summary>
    public Task RestartAsync(TimeSpan? readyTimeout = null)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("member is still running; stop or kill it before restarting");
        }

        return LaunchAsync(readyTimeout ?? DefaultReadyTimeout);
    }

    /// <summary>
    /// Starts <paramref name="binaryPath"/> on this member's data dir and ports (the previous incarnation must have
    /// exited): a data directory moving between real etcd and the server under test.
    /// </summary>
    public Task RestartAsync(string binaryPath, TimeSpan? readyTimeout = null)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("member is still running; stop or kill it before restarting");
        }

        BinaryPath = binaryPath;
        return LaunchAsync(readyTimeout ?? DefaultReadyTimeout);
    }

    /// <summary>Sends SIGTERM and waits for exit; SIGKILLs and returns false if it has not exited within <paramref name="timeout"/>.</summary>
    public async Task<bool> StopAsync(TimeSpan? timeout = null)
    {
        var process = _process;
        if (process is null || process.HasExited)
        {
            return true;
        }

        if (SendSignal(process.Id, SigTerm) != 0)
        {
            // Already gone (ESRCH) or not signalable: fall through to the wait, which settles it.
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        try
        {
            await process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            Kill();
            return false;
        }
    }

    /// <summary>SIGKILLs the member (no chance to flush anything) and waits until it has exited.</summary>
    public void Kill()
    {
        var process = _process;
        if (process is null || process.HasExited)
        {
            return;
        }

        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the kill.
        }

        if (!process.WaitForExit(TimeSpan.FromSeconds(15)))
        {
            throw new TimeoutException($"member {Name} (pid {process.Id}) did not exit 15 s after SIGKILL");
        }
    }

    /// <summary>The last <paramref name="lines"/> captured log lines, for failure messages.</summary>
    public string LogTail(int lines = LogTailLines)
    {
        var all = Logs.Split('\n');
        return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (IsRunning)
            {
                await StopAsync(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            _process?.Dispose();
            _process = null;
            if (_ownsDataDir && Directory.Exists(DataDir))
            {
                try
                {
                    Directory.Delete(DataDir, recursive: true);
                }
                catch (IOException)
                {
                    // Best effort: a temp dir left behind must not fail the test.
                }
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({BinaryPath}, client {ClientUrl}, peer {PeerUrl}, data {DataDir})";

    private async Task LaunchAsync(TimeSpan readyTimeout, bool waitForReady = true)
    {
        var incarnation = ++_incarnation;
        var psi = new ProcessStartInfo(BinaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        CompatEnvironment.ScrubEnvironment(psi.Environment);
        foreach (var arg in _commandLine ?? new[]
        {
            "--name", Name,
            "--data-dir", DataDir,
            "--listen-client-urls", ClientUrl,
            "--advertise-client-urls", ClientUrl,
            "--listen-peer-urls", PeerUrl,
            "--initial-advertise-peer-urls", PeerUrl,
            "--initial-cluster", $"{Name}={PeerUrl}",
            "--initial-cluster-state", "new",
        })
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var arg in _commandLine is null ? ExtraArgs : [])
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (k, v) in LaunchEnvironment)
        {
            psi.Environment[k] = v;
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => OnLine(incarnation, "out", e.Data, ready);
        process.ErrorDataReceived += (_, e) => OnLine(incarnation, "err", e.Data, ready);
        AppendLog($"[{incarnation}] ---- starting {string.Join(' ', psi.ArgumentList)}");
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {BinaryPath}");
        }

        _process?.Dispose();
        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!waitForReady)
        {
            return;
        }

        var exited = process.WaitForExitAsync();
        var timeout = Task.Delay(readyTimeout);
        var first = await Task.WhenAny(ready.Task, exited, timeout);
        if (first == ready.Task)
        {
            return;
        }

        if (first == exited)
        {
            throw new InvalidOperationException(
                $"member {Name} ({BinaryPath}) exited with code {process.ExitCode} before logging '{ReadyLine}'. Log tail:\n{LogTail()}");
        }

        Kill();
        throw new TimeoutException(
            $"member {Name} ({BinaryPath}) did not log '{ReadyLine}' within {readyTimeout.TotalSeconds:0} s. Log tail:\n{LogTail()}");
    }

    private void OnLine(int incarnation, string stream, string? line, TaskCompletionSource ready)
    {
        if (line is null)
        {
            return;
        }

        AppendLog($"[{incarnation}:{stream}] {line}");
        LineReceived?.Invoke(line);
        if (line.Contains(ReadyLine, StringComparison.Ordinal))
        {
            ready.TrySetResult();
        }
    }

    private void AppendLog(string line)
    {
        lock (_logGate)
        {
            _logs.Append(line).Append('\n');
        }
    }

    private bool LastIncarnationHitBindConflict()
    {
        var marker = $"[{_incarnation}:";
        return Logs.Split('\n').Any(l => l.StartsWith(marker, StringComparison.Ordinal) &&
                                         l.Contains("address already in use", StringComparison.OrdinalIgnoreCase));
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
