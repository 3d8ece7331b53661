using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Etcd.Storage.Tests.Wal;

/// <summary>A fact that is skipped, with a clear reason, when the real etcd 3.4 binaries are not installed.</summary>
public sealed class RealEtcdFactAttribute : FactAttribute
{
    public const string Etcd = "/usr/bin/etcd";
    public const string Etcdctl = "/usr/bin/etcdctl";

    public RealEtcdFactAttribute()
    {
        if (!File.Exists(Etcd) || !File.Exists(Etcdctl))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason($"real etcd not installed ({Etcd}, {Etcdctl}); install Debian's etcd-server and etcd-client to run this interop test");
        }
    }
}

/// <summary>Runs the real etcd as a single member on 127.0.0.1 free ports with a given data dir.</summary>
internal sealed partial class RealEtcd : IAsyncDisposable
{
    private readonly Process _proc;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _log = new();

    private RealEtcd(string dataDir, int client, int peer)
    {
        ClientPort = client;
        PeerPort = peer;
        ClientUrl = $"http://127.0.0.1:{client}";
        string peerUrl = $"http://127.0.0.1:{peer}";
        var psi = new ProcessStartInfo(RealEtcdFactAttribute.Etcd)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in new[]
        {
            "--name", "interop", "--data-dir", dataDir,
            "--listen-client-urls", ClientUrl, "--advertise-client-urls", ClientUrl,
            "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
            "--initial-cluster", $"interop={peerUrl}", "--initial-cluster-state", "new",
        })
        {
            psi.ArgumentList.Add(a);
        }
        foreach (string k in psi.Environment.Keys.Where(k => k.StartsWith("ETCD", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(k);
        }
        _proc = new Process { StartInfo = psi };
        _proc.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _proc.OutputDataReceived += (_, e) => OnLine(e.Data);
        _proc.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException("etcd exited early:\n" + Log));
        _proc.EnableRaisingEvents = true;
    }

    public string ClientUrl { get; }

    public int ClientPort { get; }

    public int PeerPort { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log.TakeLast(40));
            }
        }
    }

    /// <summary>Starts etcd on the given ports (0: pick free ones) and waits, bounded, for it to serve clients.</summary>
    public static async Task<RealEtcd> StartAsync(string dataDir, int clientPort = 0, int peerPort = 0)
    {
        var e = new RealEtcd(dataDir, clientPort == 0 ? FreePort() : clientPort, peerPort == 0 ? FreePort() : peerPort);
        e._proc.Start();
        e._proc.BeginErrorReadLine();
        e._proc.BeginOutputReadLine();
        try
        {
            await e._ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await e.DisposeAsync();
            throw;
        }
        return e;
    }

    /// <summary>Runs etcdctl (v3 API) against this member; returns stdout, throws on a non-zero exit.</summary>
    public Task<string> CtlAsync(params string[] args) => CtlWithInputAsync(null, args);

    /// <summary>Runs etcdctl with <paramref name="stdin"/> piped in (etcdctl put reads the value from stdin when none is given).</summary>
    public async Task<string> CtlWithInputAsync(byte[]? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(RealEtcdFactAttribute.Etcdctl)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = stdin != null,
            UseShellExecute = false,
        };
        psi.Environment["ETCDCTL_API"] = "3";
        psi.ArgumentList.Add("--endpoints");
        psi.ArgumentList.Add(ClientUrl);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        if (stdin != null)
        {
            await p.StandardInput.BaseStream.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"etcdctl {string.Join(' ', args)} exited {p.ExitCode}: {await stderr}");
        }
        return await stdout;
    }

    /// <summary>Sends SIGTERM and waits (bounded) for a clean exit.</summary>
    public async Task StopAsync()
    {
        if (_proc.HasExited)
        {
            return;
        }
        Assert.Equal(0, Kill(_proc.Id, 15));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _proc.WaitForExitAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_proc.HasExited)
            {
                _proc.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _proc.WaitForExitAsync(cts.Token);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _proc.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line == null)
        {
            return;
        }
        lock (_log)
        {
            _log.Add(line);
        }
        if (line.Contains("ready to serve client requests", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);
}
