using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Etcd.Storage.Bolt;

namespace Etcd.Storage.Tests.Bolt;

/// <summary>Skipped, with the reason, when the real etcd/etcdctl binaries are absent.</summary>
public sealed class EtcdBinariesFactAttribute : FactAttribute
{
    public EtcdBinariesFactAttribute()
    {
        if (!File.Exists(EtcdProcess.EtcdPath) || !File.Exists(EtcdProcess.EtcdctlPath))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason($"{EtcdProcess.EtcdPath} or {EtcdProcess.EtcdctlPath} not installed: real etcd data file not checked");
        }
    }
}

/// <summary>A real etcd 3.4 server on 127.0.0.1 free ports with a given data dir.</summary>
internal sealed class EtcdProcess : IDisposable
{
    public const string EtcdPath = "/usr/bin/etcd";
    public const string EtcdctlPath = "/usr/bin/etcdctl";

    private readonly Process _proc;

    public EtcdProcess(string dataDir)
    {
        int client = FreePort(), peer = FreePort();
        Endpoint = $"http://127.0.0.1:{client}";
        var peerUrl = $"http://127.0.0.1:{peer}";
        var psi = new ProcessStartInfo(EtcdPath,
        [
            "--name", "default", "--data-dir", dataDir,
            "--listen-client-urls", Endpoint, "--advertise-client-urls", Endpoint,
            "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
            "--initial-cluster", "default=" + peerUrl,
        ])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        _proc = Process.Start(psi)!;
        _proc.ErrorDataReceived += (_, _) => { };
        _proc.OutputDataReceived += (_, _) => { };
        _proc.BeginErrorReadLine();
        _proc.BeginOutputReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var (code, _, _) = Ctl("endpoint", "health");
            if (code == 0)
            {
                return;
            }

            if (_proc.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("etcd did not become healthy");
            }

            Thread.Sleep(100);
        }
    }

    public string Endpoint { get; }

    public (int Code, string Out, string Err) Ctl(params string[] args)
    {
        var all = new List<string> { "--endpoints", Endpoint, "--dial-timeout", "2s", "--command-timeout", "5s" };
        all.AddRange(args);
        var psi = new ProcessStartInfo(EtcdctlPath, all) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.Environment["ETCDCTL_API"] = "3";
        return GoBoltRun(psi);
    }

    private static (int, string, string) GoBoltRun(ProcessStartInfo psi)
    {
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            p.Kill(true);
            return (-1, "", "timeout");
        }

        return (p.ExitCode, o.Result, err.Result);
    }

    /// <summary>Stops etcd gracefully (SIGTERM) so its backend commits.</summary>
    public void Stop()
    {
        if (_proc.HasExited)
        {
            return;
        }

        using (var k = Process.Start("kill", ["-TERM", _proc.Id.ToString()]))
        {
            k.WaitForExit();
        }

        if (!_proc.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            _proc.Kill(true);
            _proc.WaitForExit();
        }
    }

    public void Dispose()
    {
        Stop();
        _proc.Dispose();
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

public class EtcdDataFileTests
{
    private static Dictionary<string, string> LatestKeys(Tx tx)
    {
        // key bucket: 17-byte revision keys (8-byte big-endian main, '_', 8-byte sub) -> mvccpb.KeyValue.
        var latest = new Dictionary<string, string>();
        var keyBucket = tx.Bucket("key"u8)!;
        var c = keyBucket.Cursor();
        long lastMain = 0;
        for (bool ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
        {
            Assert.True(k.Length is 17 or 18);
            Assert.Equal((byte)'_', k[8]);
            long main = BinaryPrimitives.ReadInt64BigEndian(k);
            Assert.True(main >= lastMain);
            lastMain = main;
            var kv = Mvccpb.KeyValue.Parser.ParseFrom(v.ToArray());
            if (k.Length == 18)
            {
                latest.Remove(kv.Key.ToStringUtf8()); // tombstone
            }
            else
            {
                latest[kv.Key.ToStringUtf8()] = kv.Value.ToStringUtf8();
            }
        }

        return latest;
    }

    [EtcdBinariesFact]
    public void RealEtcdDataFileOpensAndEtcdBootsOnOurCompaction()
    {
        using var dir = new TempDir();
        var dataDir = dir.File("etcd");
        using (var etcd = new EtcdProcess(dataDir))
        {
            Assert.Equal(0, etcd.Ctl("put", "foo", "bar").Code);
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal(0, etcd.Ctl("put", $"k{i}", $"v{i}").Code);
            }

            Assert.Equal(0, etcd.Ctl("del", "k3").Code);

            // etcd holds bbolt's flock on its db: we must not open it meanwhile.
            var live = Path.Combine(dataDir, "member", "snap", "db");
            Assert.Equal(BoltException.Timeout, Assert.Throws<BoltException>(() => BoltDb.Open(live, new BoltOptions { ReadOnly = true, Timeout = TimeSpan.Zero })).Message);
            etcd.Stop();
        }

        var dbPath = Path.Combine(dataDir, "member", "snap", "db");

        // The etcd backend over a copy of etcd's file: reads through IReadTx, and etcd's backend hash.
        var copy = dir.File("copy.db");
        File.Copy(dbPath, copy);
        using (var be = new Etcd.Storage.Backend.BoltBackend(new Etcd.Storage.Backend.BoltBackendOptions { Path = copy }))
        {
            using (var r = be.ConcurrentReadTx())
            {
                Assert.NotNull(r.Get("meta", "consistent_index"u8));
                int revisions = 0;
                r.ForEach("key", (_, _) => { revisions++; return true; });
                Assert.Equal(52, revisions); // 51 puts + 1 delete tombstone
            }

            uint hash = be.Hash(Etcd.Storage.Backend.BoltBackend.EtcdDefaultHashIgnore);
            var (goExe, _) = GoBolt.FindOnPath("go") != null && Directory.Exists(GoBolt.BboltSource) ? GoBolt.Get() : (null, null);
            if (goExe != null)
            {
                Assert.Equal(hash.ToString(), GoBolt.Run(goExe, "hash", dbPath).Out.Trim());
            }
        }

        using (var db = BoltDb.Open(dbPath, new BoltOptions { ReadOnly = true }))
        {
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                var names = tx.BucketNames().Select(n => System.Text.Encoding.ASCII.GetString(n)).ToHashSet();
                foreach (var expected in new[] { "key", "meta", "members", "cluster", "lease", "alarm", "auth", "authUsers", "authRoles" })
                {
                    Assert.Contains(expected, names);
                }

                var ci = tx.Bucket("meta"u8)!.Get("consistent_index"u8);
                Assert.NotNull(ci);
                Assert.True(BinaryPrimitives.ReadUInt64BigEndian(ci) > 50);
                int members = 0;
                tx.Bucket("members"u8)!.ForEach((_, _) => { members++; return true; });
                Assert.Equal(1, members);
                Assert.NotNull(tx.Bucket("cluster"u8)!.Get("clusterVersion"u8));

                var latest = LatestKeys(tx);
                Assert.Equal("bar", latest["foo"]);
                Assert.Equal("v49", latest["k49"]);
                Assert.False(latest.ContainsKey("k3"));
                return 0;
            });

            // Ours in etcd: defragment etcd's file with our engine and boot etcd on it.
            var compacted = dbPath + ".ours";
            BoltCompact.Compact(db, compacted);
        }

        File.Move(dbPath + ".ours", dbPath, overwrite: true);
        using (var etcd = new EtcdProcess(dataDir))
        {
            var (code, output, err) = etcd.Ctl("get", "foo", "--print-value-only");
            Assert.True(code == 0, err);
            Assert.Equal("bar", output.Trim());
            Assert.Equal(0, etcd.Ctl("put", "after", "compaction").Code);
            etcd.Stop();
        }

        using (var db = BoltDb.Open(dbPath, new BoltOptions { ReadOnly = true }))
        {
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                Assert.Equal("compaction", LatestKeys(tx)["after"]);
                return 0;
            });
        }
    }
}
