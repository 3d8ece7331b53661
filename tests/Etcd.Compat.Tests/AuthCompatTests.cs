using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// Auth against real etcd 3.4.23 and the real etcdctl: a data dir with users, roles, permissions and auth enabled
/// moves both ways and the same passwords and permissions work on the other side (bcrypt hashes as etcd stores them);
/// the user, role and auth commands print the same on both in every output format.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class AuthCompatTests
{
    private const string Root = "root:rootpw";
    private const string Alice = "alice:alicepw";

    [Fact]
    public Task RealEtcdAuthDataDir_IsServedByServerUnderTest()
        => MoveAuthDataDirAsync(CompatEnvironment.RequireReferenceEtcd(), CompatEnvironment.RequireUnderTest());

    [Fact]
    public Task ServerUnderTestAuthDataDir_IsServedByRealEtcd()
        => MoveAuthDataDirAsync(CompatEnvironment.RequireUnderTest(), CompatEnvironment.RequireReferenceEtcd());

    /// <summary>The same user/role/auth commands print the same on real etcd and on ours, in every output format.</summary>
    [Fact]
    public async Task UserRoleAuthCommands_PrintAsRealEtcd()
    {
        CompatEnvironment.RequireEtcdctl();
        var reference = await RunScriptAsync(CompatEnvironment.RequireReferenceEtcd());
        var underTest = await RunScriptAsync(CompatEnvironment.RequireUnderTest());
        Assert.Equal(reference.Count, underTest.Count);
        for (var i = 0; i < reference.Count; i++)
        {
            Assert.Equal(reference[i], underTest[i]);
        }
    }

    private static async Task<List<string>> RunScriptAsync(string binary)
    {
        await using var member = await EtcdProcess.StartAsync(binary, "authout", []);
        var ep = member.Endpoint;
        var outputs = new List<string>();
        async Task Run(params string[] args)
        {
            var r = await Etcdctl.RunAsync(ep, args, args.Contains("passwd") ? "newpw\n" : null, TimeSpan.FromSeconds(30));
            var stdout = args.Contains("-w=json") ? WithoutHeader(r.Stdout)
                : args.Contains("-w=fields") ? WithoutHeaderFields(r.Stdout)
                : args.Contains("-w=protobuf") ? WithoutProtobufHeader(r.StdoutBytes)
                : r.Stdout;
            outputs.Add($"$ etcdctl {string.Join(' ', args)}\nexit {r.ExitCode}\n{stdout}{LastLine(r.Stderr)}");
        }

        foreach (var format in new[] { "simple", "json", "table", "fields", "protobuf" })
        {
            var w = "-w=" + format;
            var suffix = format;
            await Run(w, "user", "add", $"u-{suffix}:pw");
            await Run(w, "user", "add", $"u-{suffix}:pw");
            await Run(w, "role", "add", $"r-{suffix}");
            await Run(w, "role", "add", $"r-{suffix}");
            await Run(w, "role", "grant-permission", $"r-{suffix}", "readwrite", "foo");
            await Run(w, "role", "grant-permission", $"r-{suffix}", "read", "--prefix", "pre/");
            await Run(w, "role", "grant-permission", $"r-{suffix}", "write", "--from-key", "zz");
            await Run(w, "role", "grant-permission", $"r-{suffix}", "readwrite", "a", "c");
            await Run(w, "role", "get", $"r-{suffix}");
            await Run(w, "role", "get", "nosuchrole");
            await Run(w, "user", "grant-role", $"u-{suffix}", $"r-{suffix}");
            await Run(w, "user", "grant-role", $"u-{suffix}", "nosuchrole");
            await Run(w, "user", "get", $"u-{suffix}");
            await Run(w, "user", "get", "--detail", $"u-{suffix}");
            await Run(w, "user", "get", "nosuchuser");
            await Run(w, "user", "list");
            await Run(w, "role", "list");
            await Run(w, "role", "revoke-permission", $"r-{suffix}", "foo");
            await Run(w, "role", "revoke-permission", $"r-{suffix}", "foo");
            await Run(w, "user", "revoke-role", $"u-{suffix}", $"r-{suffix}");
            await Run(w, "user", "revoke-role", $"u-{suffix}", $"r-{suffix}");
            await Run(w, "user", "passwd", $"u-{suffix}", "--interactive=false");
        }

        await Run("auth", "enable");
        await Run("user", "add", "root:rootpw");
        await Run("auth", "enable");
        await Run("role", "add", "root");
        await Run("user", "grant-role", "root", "root");
        await Run("auth", "enable");
        await Run("auth", "enable");
        await Run("get", "foo");
        await Run("--user", "root:wrong", "get", "foo");
        await Run("--user", "nosuchuser:pw", "get", "foo");
        await Run("--user", Root, "user", "delete", "root");
        await Run("--user", Root, "role", "delete", "root");
        await Run("--user", Root, "user", "revoke-role", "root", "root");
        await Run("--user", "u-simple:pw", "user", "list");
        await Run("--user", "u-simple:pw", "user", "get", "u-simple");
        await Run("--user", Root, "user", "delete", "u-json");
        await Run("--user", Root, "role", "delete", "r-json");
        await Run("--user", Root, "user", "list");
        await Run("--user", Root, "auth", "disable");
        await Run("auth", "disable");
        return outputs;
    }

    private static async Task MoveAuthDataDirAsync(string writer, string reader)
    {
        CompatEnvironment.RequireEtcdctl();
        await using var member = await EtcdProcess.StartAsync(writer, "authdir", []);
        var ep = member.Endpoint;
        await OkAsync(ep, "user", "add", Root);
        await OkAsync(ep, "role", "add", "root");
        await OkAsync(ep, "user", "grant-role", "root", "root");
        await OkAsync(ep, "user", "add", Alice);
        await OkAsync(ep, "role", "add", "app");
        await OkAsync(ep, "role", "grant-permission", "app", "readwrite", "--prefix", "app/");
        await OkAsync(ep, "user", "grant-role", "alice", "app");
        await OkAsync(ep, "auth", "enable");
        await OkAsync(ep, "--user", Alice, "put", "app/one", "1");
        await OkAsync(ep, "--user", Root, "put", "other", "x");
        Assert.True(await member.StopAsync(), $"writer {writer} did not stop\n{member.LogTail()}");

        await member.RestartAsync(reader);

        // Auth is still on, the same passwords work, the same permissions hold.
        await DeniedAsync(ep, "etcdserver: user name is empty", "get", "app/one");
        await DeniedAsync(ep, "etcdserver: authentication failed, invalid user ID or password", "--user", "alice:wrong", "get", "app/one");
        Assert.Contains("app/one\n1\n", await OkAsync(ep, "--user", Alice, "get", "app/one"));
        await DeniedAsync(ep, "etcdserver: permission denied", "--user", Alice, "get", "other");
        await DeniedAsync(ep, "etcdserver: permission denied", "--user", Alice, "user", "list");
        Assert.Equal("alice\nroot\n", await OkAsync(ep, "--user", Root, "user", "list"));
        Assert.Contains("[app/, app0) (prefix app/)", await OkAsync(ep, "--user", Root, "role", "get", "app"));

        // The reader's own hashes work too.
        await OkAsync(ep, "--user", Root, "user", "add", "bob:bobpw");
        await OkAsync(ep, "--user", Root, "user", "grant-role", "bob", "app");
        await OkAsync(ep, "--user", "bob:bobpw", "put", "app/two", "2");
        await OkAsync(ep, ["--user", Root, "user", "passwd", "alice", "--interactive=false"], "newpw\n");
        await DeniedAsync(ep, "etcdserver: authentication failed, invalid user ID or password", "--user", Alice, "get", "app/one");
        Assert.Contains("app/two\n2\n", await OkAsync(ep, "--user", "alice:newpw", "get", "app/two"));
    }

    private static async Task<string> OkAsync(string endpoint, params string[] args) => await OkAsync(endpoint, args, null);

    private static async Task<string> OkAsync(string endpoint, string[] args, string? stdin)
    {
        var r = await Etcdctl.RunAsync(endpoint, ["--command-timeout=30s", .. args], stdin, TimeSpan.FromSeconds(40));
        Assert.True(r.ExitCode == 0, $"etcdctl {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    private static async Task DeniedAsync(string endpoint, string error, params string[] args)
    {
        var r = await Etcdctl.RunAsync(endpoint, ["--command-timeout=30s", .. args], null, TimeSpan.FromSeconds(40));
        Assert.True(r.ExitCode != 0, $"etcdctl {string.Join(' ', args)} should fail: {r}");
        Assert.Contains("Error: " + error, r.Stderr);
    }

    private static string LastLine(string stderr)
    {
        // etcdctl's own error line; clientv3's retry warnings before it carry timestamps and client IDs.
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("{\"level\"", StringComparison.Ordinal)).ToArray();
        return lines.Length == 0 ? string.Empty : lines[^1] + "\n";
    }

    /// <summary>A <c>-w json</c> output without its headers (cluster and member IDs, revision and term differ by run).</summary>
    private static string WithoutHeader(string json) => HeaderPattern().Replace(json, string.Empty);

    /// <summary>A <c>-w fields</c> output without the header's lines (cluster and member IDs, revision and term differ by run).</summary>
    private static string WithoutHeaderFields(string fields) => string.Join('\n', fields.Split('\n').Where(l =>
        !l.StartsWith("\"ClusterID\" :", StringComparison.Ordinal) && !l.StartsWith("\"MemberID\" :", StringComparison.Ordinal) &&
        !l.StartsWith("\"Revision\" :", StringComparison.Ordinal) && !l.StartsWith("\"RaftTerm\" :", StringComparison.Ordinal)));

    /// <summary>
    /// A <c>-w protobuf</c> output as hex without the responses' header fields (field 1, length-delimited, starting with
    /// the cluster ID: tag 0x08), which Go writes first in each message; <c>user get --detail</c> prints several
    /// messages, one a line. Everything else is compared byte for byte.
    /// </summary>
    private static string WithoutProtobufHeader(byte[] output)
    {
        var kept = new List<byte>(output.Length);
        for (var p = 0; p < output.Length;)
        {
            var atMessageStart = p == 0 || output[p - 1] == (byte)'\n';
            if (atMessageStart && p + 2 < output.Length && output[p] == 0x0a && output[p + 1] is >= 0x08 and < 0x80 && output[p + 2] == 0x08)
            {
                p = Math.Min(output.Length, p + 2 + output[p + 1]);
                kept.Add((byte)'|');
                continue;
            }

            kept.Add(output[p++]);
        }

        return Convert.ToHexString([.. kept]) + "\n";
    }

    [System.Text.RegularExpressions.GeneratedRegex("\"header\":\\{[^}]*\\},?")]
    private static partial System.Text.RegularExpressions.Regex HeaderPattern();
}
