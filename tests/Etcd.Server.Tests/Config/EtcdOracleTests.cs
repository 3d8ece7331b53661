using System.Collections;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Etcd.Main.Config;

namespace Etcd.Server.Tests.Config;

/// <summary>
/// Runs the real etcd 3.4.23 (<c>/usr/bin/etcd</c>) on bad input that makes it exit before starting, and checks
/// that our loader prints the same (timestamps normalised) with the same exit code. Skipped when the binary is absent.
/// Only inputs that make etcd exit are listed: a valid one would start a real server.
/// </summary>
public sealed class OracleTheoryAttribute : TheoryAttribute
{
    public OracleTheoryAttribute()
    {
        if (!File.Exists("/usr/bin/etcd"))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("real etcd (/usr/bin/etcd) is not installed");
        }
    }
}

public sealed partial class EtcdOracleTests : ConfigTestBase
{
    private const string EtcdPath = "/usr/bin/etcd";

    public enum Compare
    {
        /// <summary>Whole stderr and stdout, timestamps normalised.</summary>
        All,

        /// <summary>First stderr line only (flag errors: the usage text after it is ours).</summary>
        FirstLine,

        /// <summary>The first two stderr lines (etcd's panic adds a goroutine dump).</summary>
        FirstTwoLines,
    }

    public static TheoryData<string, string, Compare> Cases => new()
    {
        // args (space separated, '|' for an empty argument), env (NAME=value;...), comparison
        { "--bogus", "", Compare.FirstLine },
        { "-x=1", "", Compare.FirstLine },
        { "--heartbeat-interval abc", "", Compare.FirstLine },
        { "--heartbeat-interval=-1", "", Compare.FirstLine },
        { "--pre-vote=maybe", "", Compare.FirstLine },
        { "--name", "", Compare.FirstLine },
        { "---name x", "", Compare.FirstLine },
        { "--initial-cluster-state foo", "", Compare.FirstLine },
        { "--max-concurrent-streams 99999999999", "", Compare.FirstLine },
        { "--snapshot-count -1", "", Compare.FirstLine },
        { "--grpc-keepalive-min-time 5", "", Compare.FirstLine },
        { "--quota-backend-bytes 1e9", "", Compare.FirstLine },
        { "--listen-client-urls foo", "", Compare.FirstLine },
        { "--listen-client-urls http://127.0.0.1:1/x", "", Compare.FirstLine },
        { "--listen-peer-urls 127.0.0.1:2379", "", Compare.FirstLine },
        { "--listen-peer-urls http://[::1", "", Compare.FirstLine },
        { "--listen-peer-urls http://127.0.0.1", "", Compare.FirstLine },
        { "--listen-peer-urls localhost:2379", "", Compare.FirstLine },
        { "--listen-peer-urls :2379", "", Compare.FirstLine },
        { "--listen-peer-urls unix://x", "", Compare.FirstLine },
        { "--listen-peer-urls http://127.0.0.1:abc", "", Compare.FirstLine },
        { "--listen-peer-urls http://a:1,,http://b:2", "", Compare.FirstLine },
        { "foo", "", Compare.All },
        { "--name x foo", "", Compare.All },
        { "-", "", Compare.All },
        { "--listen-client-urls http://127.0.0.1:1", "", Compare.All },
        { "--heartbeat-interval 500", "", Compare.All },
        { "--election-timeout 60000", "", Compare.All },
        { "--heartbeat-interval 0", "", Compare.All },
        { "--election-timeout 0", "", Compare.All },
        { "--logger bogus", "", Compare.All },
        { "--logger zap --heartbeat-interval 500", "", Compare.All },
        { "--logger zap --listen-client-urls http://127.0.0.1:1", "", Compare.All },
        { "--logger zap --log-outputs stderr,stdout --heartbeat-interval 500", "", Compare.All },
        { "--logger capnslog --log-outputs stderr,stdout", "", Compare.All },
        { "--log-outputs /tmp/x.log", "", Compare.All },
        { "--logger zap --log-outputs default,stdout", "", Compare.All },
        { "--listen-client-urls http://foo.com:1 --advertise-client-urls http://foo.com:1", "", Compare.All },
        { "--listen-peer-urls http://:1", "", Compare.All },
        { "--advertise-client-urls http://:1", "", Compare.All },
        { "--auto-compaction-mode bogus", "", Compare.All },
        { "--experimental-enable-lease-checkpoint-persist", "", Compare.All },
        { "--logger zap --experimental-enable-lease-checkpoint --heartbeat-interval 0", "", Compare.All },
        { "--debug --heartbeat-interval 0", "", Compare.All },
        { "--log-output stdout --heartbeat-interval 0", "", Compare.All },
        { "--v --heartbeat-interval 0", "", Compare.All },
        { "--version=false --heartbeat-interval 0", "", Compare.All },
        { "--listen-peer-urls | --heartbeat-interval 0", "", Compare.All },
        { "", "ETCD_NAME=x;ETCD_HEARTBEAT_INTERVAL=0", Compare.All },
        { "--logger zap", "ETCD_NAME=x;ETCD_HEARTBEAT_INTERVAL=0;ETCD_FOO=bar", Compare.All },
        { "--name y", "ETCD_NAME=x;ETCD_HEARTBEAT_INTERVAL=0", Compare.All },
        { "--logger zap", "ETCD_HEARTBEAT_INTERVAL=abc", Compare.All },
        { "", "ETCD_HEARTBEAT_INTERVAL=0;ETCD_LOGGER=zap", Compare.All },
        { "", "ETCD_HEARTBEAT_INTERVAL=0;ETCD_VERSION=1", Compare.All },
        { "", "ETCD_HEARTBEAT_INTERVAL=0;ETCD_V=1", Compare.All },
        { "", "ETCD_HEARTBEAT_INTERVAL=0;ETCD_DATA_DIR=", Compare.All },
        { "", "ETCD_HEARTBEAT_INTERVAL=0;ETCD_CONFIG_FILE=/nonexistent-etcd.yml", Compare.All },
        { "--log-level bogus", "", Compare.FirstTwoLines },
        { "--version", "", Compare.FirstLine },
        { "-h", "", Compare.FirstLine },
        { "--name x --help", "", Compare.FirstLine },
        { "--log-level=debug --logger=zap --heartbeat-interval 0", "", Compare.All },
        { "--log-level=warn --heartbeat-interval 0", "", Compare.All },
        { "--logger zap --log-outputs stdout --heartbeat-interval 0", "", Compare.All },
        { "--log-output stderr --log-outputs stderr", "", Compare.All },
        { "--log-output stderr,stdout", "", Compare.All },
        { "--log-package-levels etcdmain=DEBUG --heartbeat-interval 0", "", Compare.All },
        { "--listen-peer-urls HTTP://127.0.0.1:5 --heartbeat-interval 0", "", Compare.All },
        { "--initial-advertise-peer-urls http://:1,http://a:2", "", Compare.All },
        { "--listen-metrics-urls http://example.com:1", "", Compare.All },
        { "--snapshot-count 0x10 --heartbeat-interval 010 --election-timeout 0b11", "", Compare.All },
        { "--cors http://a:1,* --heartbeat-interval 0", "", Compare.FirstLine },
        { "--max-request-bytes 1_0 --heartbeat-interval 0", "", Compare.All },
        { "--max-request-bytes _10", "", Compare.FirstLine },
    };

    [OracleTheory]
    [MemberData(nameof(Cases))]
    public void SameOutputAsRealEtcd(string args, string env, Compare compare)
    {
        string[] argv = args.Length == 0 ? [] : args.Split(' ').Select(a => a == "|" ? "" : a).ToArray();
        var envPairs = env.Length == 0 ? [] : env.Split(';').Select(p => (p[..p.IndexOf('=')], p[(p.IndexOf('=') + 1)..])).ToArray();
        AssertSame(argv, envPairs, compare);
    }

    public static TheoryData<string> YamlCases => new()
    {
        "heartbeat-interval: \"100\"\n",
        "heartbeat-interval: 0\n",
        "Heartbeat-Interval: 0\nlogger: zap\n",
        "listen-client-urls: foo\n",
        "advertise-client-urls: http://127.0.0.1:1/x\n",
        "heartbeat-interval: -5\n",
        "grpc-keepalive-min-time: 5s\n",
        "log-outputs: stderr\n",
        "listen-client-urls: http://127.0.0.1:1\nlog-outputs: [stderr]\nheartbeat-interval: 0\n",
        "initial-cluster-state: bogus\n",
        "name: 5\n",
        "enable-v2: 'yes'\nheartbeat-interval: 0\n",
        "enable-v2: yes\nheartbeat-interval: 0x0\n",
        "max-txn-ops: 1.5\n",
        "log-outputs: [1]\n",
        "client-transport-security: 5\n",
        "peer-transport-security:\n  client-cert-auth: 'x'\n",
        "- a\n- b\n",
        "logger: zap\nlog-outputs: [stdout]\nexperimental-enable-lease-checkpoint: true\nheartbeat-interval: 0\n",
        SampleConfig.Replace("heartbeat-interval: 100", "heartbeat-interval: 0"),
    };

    [OracleTheory]
    [MemberData(nameof(YamlCases))]
    public void SameConfigFileOutputAsRealEtcd(string yaml)
    {
        string path = Path.Combine(Dir, "c.yml");
        File.WriteAllText(path, yaml);
        AssertSame(["--config-file", path], [], Compare.All);
    }

    private void AssertSame(string[] args, (string, string)[] env, Compare compare)
    {
        var (code, stdout, stderr) = RunEtcd(args, env);
        var ours = Load(args, env);
        Assert.True(ours.ShouldExit, "we would start; etcd printed: " + stderr);
        Assert.Equal(code, ours.ExitCode);
        string theirErr = Normalise(stderr);
        string ourErr = Normalise(ours.StandardError);
        switch (compare)
        {
            case Compare.All:
                Assert.Equal(theirErr, ourErr);
                Assert.Equal(Normalise(stdout), Normalise(ours.StandardOutput));
                break;
            case Compare.FirstLine:
                Assert.Equal(FirstLines(theirErr + stdout, 1), FirstLines(ourErr + ours.StandardOutput, 1));
                break;
            case Compare.FirstTwoLines:
                Assert.Equal(FirstLines(theirErr, 2), FirstLines(ourErr, 2));
                break;
        }
    }

    private static string FirstLines(string s, int n) => string.Join("\n", s.Split('\n').Take(n));

    private static string Normalise(string s)
    {
        s = CapnslogTime().Replace(s, "TIME ");
        s = ZapTime().Replace(s, "\"ts\":\"TIME\"");
        return GoLogTime().Replace(s, "TIME ");
    }

    [GeneratedRegex(@"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ")]
    private static partial Regex CapnslogTime();

    [GeneratedRegex("\"ts\":\"[^\"]+\"")]
    private static partial Regex ZapTime();

    [GeneratedRegex(@"(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")]
    private static partial Regex GoLogTime();

    private (int Code, string Stdout, string Stderr) RunEtcd(string[] args, (string, string)[] env)
    {
        var psi = new ProcessStartInfo(EtcdPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Dir,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/bin:/bin";
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(15_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("real etcd did not exit for: " + string.Join(" ", args));
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
