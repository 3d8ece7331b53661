using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Etcd.Utl.Tests;

/// <summary>Skips a test when the real etcd 3.4.23 binaries are not installed.</summary>
public sealed class RealEtcdFactAttribute : FactAttribute
{
    public RealEtcdFactAttribute()
    {
        if (!RealEtcd.Available)
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("real etcd 3.4.23 (/usr/bin/etcd, /usr/bin/etcdctl) absent");
        }
    }
}

/// <summary>Theory counterpart of <see cref="RealEtcdFactAttribute"/>.</summary>
public sealed class RealEtcdTheoryAttribute : TheoryAttribute
{
    public RealEtcdTheoryAttribute()
    {
        if (!RealEtcd.Available)
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("real etcd 3.4.23 (/usr/bin/etcd, /usr/bin/etcdctl) absent");
        }
    }
}

/// <summary>Runs the real etcd / etcdctl as processes.</summary>
public static class RealEtcd
{
    public const string EtcdPath = "/usr/bin/etcd";
    public const string EtcdctlPath = "/usr/bin/etcdctl";

    public static bool Available => File.Exists(EtcdPath) && File.Exists(EtcdctlPath);

    /// <summary>
    /// A free 127.0.0.1 port drawn at random from 10000–19999 (below the kernel's ephemeral range, whose ports outgoing
    /// connections of parallel test processes take at any moment), checked by binding it.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = 10_000 + Random.Shared.Next(10_000);
            try
            {
                using var l = new TcpListener(IPAddress.Loopback, port);
                l.Start();
                return port;
            }
            catch (SocketException) when (attempt < 1000)
            {
            }
        }
    }

    /// <summary>Runs etcdctl (API v3) with a 60 s bound; returns exit code, stdout, stderr.</summary>
    public static (int Code, string Out, string Err) Etcdctl(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo(EtcdctlPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workDir,
        };
        psi.Environment["ETCDCTL_API"] = "3";
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000))
        {
            p.Kill(true);
            throw new TimeoutException("etcdctl " + string.Join(' ', args));
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    /// <summary>Runs our etcdutl in-process.</summary>
    public static (int Code, string Out, string Err) Etcdutl(string workDir, params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var cwd = Environment.CurrentDirectory;
        lock (CwdLock)
        {
            Environment.CurrentDirectory = workDir;
            try
            {
                var code = EtcdutlMain.Run(args, o, e);
                return (code, o.ToString(), e.ToString());
            }
            finally
            {
                Environment.CurrentDirectory = cwd;
            }
        }
    }

    /// <summary>Guards the process-wide current directory while our tool runs in-process.</summary>
    public static readonly object CwdLock = new();
}

/// <summary>A running real etcd member; disposing stops it (SIGKILL after the bound) and waits for exit.</summary>
public sealed class EtcdProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _log = new();

    private EtcdProcess(Process p) => _p = p;

    public int ClientPort { get; private init; }

    public string Endpoint => $"http://127.0.0.1:{ClientPort}";

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Starts etcd on <paramref name="dataDir"/> and waits (≤ 30 s) for "ready to serve client requests".</summary>
    public static EtcdProcess Start(string dataDir, string name, int peerPort, string? initialCluster = null, string token = "etcd-cluster")
    {
        var client = RealEtcd.FreePort();
        var peer = $"http://127.0.0.1:{peerPort}";
        var psi = new ProcessStartInfo(RealEtcd.EtcdPath) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[]
                 {
                     "--name", name, "--data-dir", dataDir,
                     "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", initialCluster ?? $"{name}={peer}", "--initial-cluster-token", token,
                 })
        {
            psi.ArgumentList.Add(a);
        }
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var ep = new EtcdProcess(p) { ClientPort = client };
        DataReceivedEventHandler onLine = (_, ev) =>
        {
            if (ev.Data == null)
            {
                return;
            }
            lock (ep._log)
            {
                ep._log.AppendLine(ev.Data);
            }
            if (ev.Data.Contains("ready to serve client requests", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        p.ErrorDataReceived += onLine;
        p.OutputDataReceived += onLine;
        p.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("etcd exited"));
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            if (!ready.Task.Wait(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException("etcd not ready in 30 s");
            }
        }
        catch (Exception ex)
        {
            ep.Dispose();
            throw new InvalidOperationException("real etcd failed to start:\n" + ep.Log, ex);
        }
        return ep;
    }

    public void Dispose()
    {
        try
        {
            if (!_p.HasExited)
            {
                _p.Kill(entireProcessTree: true);
            }
            _p.WaitForExit(30_000);
        }
        catch (InvalidOperationException)
        {
        }
        _p.Dispose();
    }
}
