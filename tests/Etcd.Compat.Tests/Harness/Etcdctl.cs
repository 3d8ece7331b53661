using System.Diagnostics;
using System.Text;

namespace Etcd.Compat.Tests.Harness;

/// <summary>Outcome of one etcdctl run: exit code, stdout (raw bytes and UTF-8 text) and stderr.</summary>
/// <param name="ExitCode">Process exit code (0 = success).</param>
/// <param name="StdoutBytes">Exact stdout bytes (needed for -w protobuf).</param>
/// <param name="Stderr">stderr decoded as UTF-8.</param>
public sealed record EtcdctlResult(int ExitCode, byte[] StdoutBytes, string Stderr)
{
    /// <summary>stdout decoded as UTF-8.</summary>
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    /// <inheritdoc/>
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the real etcdctl 3.4.23 (ETCDCTL_API=3) against one endpoint. ETCD_* / ETCDCTL_* variables
/// of the test process are not passed on, so only the flags given here apply. Thread-safe.
/// </summary>
public static class Etcdctl
{
    /// <summary>Default bound on one etcdctl run.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Runs <c>etcdctl --endpoints=&lt;endpoint&gt; args...</c>, feeding <paramref name="stdin"/> (e.g. for
    /// <c>txn -i</c>) and closing stdin. Kills etcdctl and throws <see cref="TimeoutException"/> after
    /// <paramref name="timeout"/> (default 20 s).
    /// </summary>
    public static async Task<EtcdctlResult> RunAsync(string endpoint, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var psi = CreateStartInfo(endpoint, args);

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdoutTask = ReadAllAsync(process.StandardOutput.BaseStream);
        var stderrTask = process.StandardError.ReadToEndAsync();
        try
        {
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // etcdctl exited without reading stdin (e.g. a usage error); its output tells the story.
        }

        var limit = timeout ?? DefaultTimeout;
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException(
                $"etcdctl {string.Join(' ', psi.ArgumentList)} did not finish within {limit.TotalSeconds:0} s; " +
                $"stdout so far: {Encoding.UTF8.GetString(await stdoutTask)} stderr: {await stderrTask}");
        }

        return new EtcdctlResult(process.ExitCode, await stdoutTask, await stderrTask);
    }

    /// <summary>Exit code reported by <see cref="RunUntilAsync"/> when the harness stopped etcdctl because the condition held.</summary>
    public const int StoppedAfterCondition = -1;

    /// <summary>Exit code reported by <see cref="RunUntilAsync"/> when etcdctl neither exited nor met the condition in time.</summary>
    public const int TimedOut = -2;

    /// <summary>
    /// Runs a command that does not end by itself (e.g. <c>watch</c>): reads stdout until
    /// <paramref name="until"/> holds on everything read so far, then SIGKILLs etcdctl and reports exit code
    /// <see cref="StoppedAfterCondition"/>. If etcdctl exits first its own exit code is reported; if
    /// neither happens within <paramref name="timeout"/> it is killed and <see cref="TimedOut"/> reported.
    /// Stdin is closed at once.
    /// </summary>
    public static async Task<EtcdctlResult> RunUntilAsync(string endpoint, IEnumerable<string> args, Func<string, bool> until, TimeSpan timeout)
    {
        var psi = CreateStartInfo(endpoint, args);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        process.StandardInput.Close();
        var stderrTask = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.BaseStream;
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        using var cts = new CancellationTokenSource(timeout);
        int exitCode;
        try
        {
            while (true)
            {
                var n = await stdout.ReadAsync(chunk, cts.Token);
                if (n == 0)
                {
                    await process.WaitForExitAsync(cts.Token);
                    exitCode = process.ExitCode;
                    break;
                }

                buffer.Write(chunk, 0, n);
                if (until(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length)))
                {
                    exitCode = StoppedAfterCondition;
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            exitCode = TimedOut;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        await process.WaitForExitAsync();
        return new EtcdctlResult(exitCode, buffer.ToArray(), await stderrTask);
    }

    private static ProcessStartInfo CreateStartInfo(string endpoint, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(CompatEnvironment.EtcdctlPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        CompatEnvironment.ScrubEnvironment(psi.Environment);
        psi.Environment["ETCDCTL_API"] = "3";
        psi.ArgumentList.Add("--endpoints=" + endpoint);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    /// <summary>Same as <see cref="RunAsync(string, IEnumerable{string}, string?, TimeSpan?)"/> with params-style arguments.</summary>
    public static Task<EtcdctlResult> RunAsync(string endpoint, params string[] args) => RunAsync(endpoint, args, null, null);

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}
