using System.Collections;
using Etcd.Main.Config;

namespace Etcd.Server.Tests.Config;

/// <summary>
/// What the configuration tests share: a temp directory for config files (deleted on dispose), the loader called
/// with an explicit environment table, and etcd's sample config file.
/// </summary>
public abstract class ConfigTestBase : IDisposable
{
    /// <summary>
    /// The shape of etcd's etcd.conf.yml.sample (its keys and default values), which etcd's e2e suite starts with;
    /// tests derive variants with <see cref="string.Replace(string, string)"/>.
    /// </summary>
    protected const string SampleConfig = """
        name: 'default'
        data-dir:
        wal-dir:
        snapshot-count: 10000
        heartbeat-interval: 100
        election-timeout: 1000
        quota-backend-bytes: 0
        listen-peer-urls: http://localhost:2380
        listen-client-urls: http://localhost:2379
        max-snapshots: 5
        max-wals: 5
        cors:
        initial-advertise-peer-urls: http://localhost:2380
        advertise-client-urls: http://localhost:2379
        discovery:
        discovery-fallback: 'proxy'
        discovery-proxy:
        discovery-srv:
        initial-cluster:
        initial-cluster-token: 'etcd-cluster'
        initial-cluster-state: 'new'
        strict-reconfig-check: false
        enable-v2: true
        enable-pprof: true
        proxy: 'off'
        proxy-failure-wait: 5000
        proxy-refresh-interval: 30000
        proxy-dial-timeout: 1000
        proxy-write-timeout: 5000
        proxy-read-timeout: 0
        client-transport-security:
          cert-file:
          key-file:
          client-cert-auth: false
          trusted-ca-file:
          auto-tls: false
        peer-transport-security:
          cert-file:
          key-file:
          client-cert-auth: false
          trusted-ca-file:
          auto-tls: false
        debug: false
        log-package-levels:
        log-outputs: [default]
        force-new-cluster: false

        """;

    /// <summary>The test's own temp directory.</summary>
    protected string Dir { get; } = Directory.CreateTempSubdirectory("etcd-config-test-").FullName;

    /// <summary>Writes <paramref name="text"/> to a new file in <see cref="Dir"/> and returns its path.</summary>
    protected string WriteFile(string text, string name = "c.yml")
    {
        var path = Path.Combine(Dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Runs the loader on <paramref name="args"/> with exactly the environment variables in <paramref name="env"/>.</summary>
    protected static EtcdConfigResult Load(string[] args, params (string Key, string Value)[] env) =>
        EtcdConfigLoader.Load(args, EnvTable(env));

    /// <summary>The environment table <see cref="EtcdConfigLoader.Load"/> takes.</summary>
    protected static Hashtable EnvTable((string Key, string Value)[] env)
    {
        var table = new Hashtable();
        foreach (var (k, v) in env)
        {
            table[k] = v;
        }

        return table;
    }

    /// <summary>The options of a load that must not exit (fails the test with the loader's stderr otherwise).</summary>
    protected static EtcdOptions Ok(EtcdConfigResult r)
    {
        Assert.False(r.ShouldExit, "unexpected exit " + r.ExitCode + ": " + r.StandardError);
        return r.Options!;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}
