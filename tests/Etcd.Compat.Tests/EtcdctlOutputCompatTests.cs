using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// Our <c>bin/etcdctl</c> beside the real etcdctl 3.4.23, both against one real etcd 3.4.23: each case runs the
/// same arguments (and stdin) with both tools, real first, and compares exit code, stdout and stderr byte for byte
/// after normalising what differs by nature: revisions (the two runs write in turn), lease and member IDs, times,
/// the zap log lines' timestamps and client UUIDs. In arguments and stdin, <c>@</c> becomes <c>r</c> for the real
/// tool and <c>o</c> for ours, so writes use their own keys; the normaliser maps those names back.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class EtcdctlOutputCompatTests : IClassFixture<EtcdctlOutputCompatTests.Server>
{
    private readonly Server _server;

    /// <summary>Creates the test over the shared server.</summary>
    public EtcdctlOutputCompatTests(Server server) => _server = server;

    /// <summary>One real etcd 3.4.23 for the class, seeded with keys and a user and role.</summary>
    public sealed class Server : IAsyncLifetime
    {
        /// <summary>The member.</summary>
        public EtcdProcess? Member { get; private set; }

        /// <summary>A lease with a key attached, in hex.</summary>
        public string Lease { get; private set; } = "0";

        /// <inheritdoc/>
        public async Task InitializeAsync()
        {
            Member = await EtcdProcess.StartAsync(CompatEnvironment.RequireReferenceEtcd(), "ctl");
            foreach (var (k, v) in new[] { ("a", "1"), ("b", "2"), ("c", "3"), ("dir/x", "x"), ("dir/y", "y"), ("<&>", "\"q\"") })
            {
                await Etcdctl.RunAsync(Member.Endpoint, "put", k, v);
            }

            var grant = await Etcdctl.RunAsync(Member.Endpoint, "lease", "grant", "3000");
            Lease = grant.Stdout.Split(' ')[1];
            await Etcdctl.RunAsync(Member.Endpoint, "put", "leased", "v", "--lease", Lease);
            await Etcdctl.RunAsync(Member.Endpoint, "role", "add", "reader");
            await Etcdctl.RunAsync(Member.Endpoint, "role", "grant-permission", "reader", "read", "dir/", "--prefix");
            await Etcdctl.RunAsync(Member.Endpoint, "role", "grant-permission", "reader", "readwrite", "a", "c");
            await Etcdctl.RunAsync(Member.Endpoint, "user", "add", "alice:pw");
            await Etcdctl.RunAsync(Member.Endpoint, "user", "grant-role", "alice", "reader");
        }

        /// <inheritdoc/>
        public async Task DisposeAsync()
        {
            if (Member is not null)
            {
                await Member.DisposeAsync();
            }
        }
    }

    private static readonly string[] AllFormats = ["simple", "json", "fields", "protobuf", "table"];

    /// <summary>The cases: arguments (with <c>@</c> for per-tool names), stdin, and whether protobuf output is compared raw.</summary>
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        void Each(string args, string stdin = "")
        {
            foreach (var w in AllFormats)
            {
                data.Add(args.Replace(" ;; ", $" -w {w} ;; ", StringComparison.Ordinal) + " -w " + w, stdin);
            }
        }

        void Two(string args, string stdin = "")
        {
            foreach (var w in new[] { "simple", "json" })
            {
                data.Add(args.Replace(" ;; ", $" -w {w} ;; ", StringComparison.Ordinal) + " -w " + w, stdin);
            }
        }

        // reads
        Each("get a");
        Two("get --prefix dir/");
        Each("member list");
        Two("endpoint status");
        Each("lease timetolive LEASE --keys");
        Two("get a c");
        Two("get --from-key b --limit 2 --keys-only");
        Two("get --prefix dir/ --sort-by=VALUE --order=DESCEND");
        Two("get <&>");
        Two("endpoint hashkv");
        Two("endpoint health");
        Two("alarm list");
        Two("user list");
        Two("user get alice");
        Two("role list");
        Two("role get reader");
        Two("lease list");
        Two("lease timetolive 1234");

        // writes: per-tool names, sequences in one case
        Each("put @k v ;; put @k v2 --prev-kv ;; del @k --prev-kv");
        Each("lease grant 600");
        Each("txn", "value(\"a\") = \"1\"\n\nput @t1 x\nget a\n\ndel @t1\n\n");
        Two("txn", "mod(\"a\") > \"999999\"\n\nput @t1 x\n\nput @t2 y\ndel @t2 --prev-kv\n\n");
        data.Add("txn -i", "ver(\"a\") = \"1\"\n\nput @t3 z\n\n\n");
        Two("role add @role ;; role grant-permission @role write k1 ;; role grant-permission @role read k2 k4 ;; role get @role ;; role revoke-permission @role k1 ;; role delete @role");
        Two("user add @user:pw ;; user grant-role @user reader ;; user get @user ;; user revoke-role @user reader ;; user delete @user");
        Two("del nothing");
        data.Add("user get alice --detail", "");
        data.Add("get dir/x --print-value-only", "");
        data.Add("get a --hex", "");
        data.Add("put @stdin", "from stdin");
        data.Add("version", "");

        // bad input
        foreach (var bad in new[]
        {
            "get", "get a --prefix --from-key", "get a --consistency=x", "get a --order=sideways", "get a --sort-by=size", "get a --limit=x",
            "get a --bogus", "get a -w yaml", "get a --print-value-only -w json", "put", "put k v --lease=zz", "del", "txn extra",
            "lease grant x", "lease revoke zz", "lease revoke 1234", "member remove zz", "member add", "member add n1 http://x", "member add n1",
            "compaction", "compaction x", "compaction 99999999", "watch", "role grant-permission r1 bogus k", "user add :pw", "frobnicate",
            "gett a", "lease", "get --help", "lease grant -h", "--dial-timeout=x get a", "--cacert= get a", "snapshot status /nonexistent/file",
            "snapshot save",
        })
        {
            data.Add(bad, "");
        }

        data.Add("txn", "bogus\n");
        data.Add("txn", "value(\"a\") = \"1\"\n\nfrob a\n\n\n");
        return data;
    }

    /// <summary>Runs one case with both tools and compares.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public async Task SameOutputAsEtcdctl(string args, string stdin)
    {
        var endpoint = _server.Member!.Endpoint;
        var ours = Path.Combine(CompatEnvironment.FindRepoRoot() ?? ".", "bin", "etcdctl");
        Assert.True(File.Exists(ours), $"{ours} is missing: run scripts/publish.sh first");
        foreach (var step in args.Split(" ;; "))
        {
            await CompareAsync(ours, endpoint, step, stdin);
        }
    }

    private async Task CompareAsync(string ours, string endpoint, string args, string stdin)
    {
        var words = Words(args.Replace("LEASE", _server.Lease, StringComparison.Ordinal));
        var real = await RunAsync(CompatEnvironment.RequireEtcdctl(), endpoint, words, stdin, 'r');
        var mine = await RunAsync(ours, endpoint, words, stdin, 'o');
        var protobufWrite = args.Contains("-w protobuf", StringComparison.Ordinal) && (args.Contains('@', StringComparison.Ordinal) || args.StartsWith("lease grant", StringComparison.Ordinal) || args.StartsWith("txn", StringComparison.Ordinal));
        Assert.True(real.Exit == mine.Exit, $"{args}: exit {real.Exit} (etcdctl) vs {mine.Exit} (ours); stderr {real.Stderr} vs {mine.Stderr}");
        if (protobufWrite)
        {
            // headers carry the revision in varints: compare the lengths only
            Assert.Equal(real.Stdout.Length, mine.Stdout.Length);
        }
        else
        {
            Assert.Equal(Normalise(Encoding.UTF8.GetString(real.Stdout), 'r'), Normalise(Encoding.UTF8.GetString(mine.Stdout), 'o'));
        }

        Assert.Equal(Normalise(real.Stderr, 'r'), Normalise(mine.Stderr, 'o'));
    }

    private static List<string> Words(string args)
    {
        var words = new List<string>();
        foreach (Match m in WordPattern().Matches(args))
        {
            words.Add(m.Value.StartsWith('\'') ? m.Value[1..^1] : m.Value);
        }

        return words;
    }

    private static async Task<(int Exit, byte[] Stdout, string Stderr)> RunAsync(string tool, string endpoint, List<string> words, string stdin, char who)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        CompatEnvironment.ScrubEnvironment(psi.Environment);
        psi.ArgumentList.Add("--endpoints=" + endpoint);
        foreach (var w in words)
        {
            psi.ArgumentList.Add(w.Replace("@", Marker(who), StringComparison.Ordinal));
        }

        using var p = Process.Start(psi)!;
        var stdoutTask = Task.Run(async () =>
        {
            using var ms = new MemoryStream();
            await p.StandardOutput.BaseStream.CopyToAsync(ms);
            return ms.ToArray();
        });
        var stderrTask = p.StandardError.ReadToEndAsync();
        try
        {
            await p.StandardInput.WriteAsync(stdin.Replace("@", Marker(who), StringComparison.Ordinal));
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // the tool exited without reading stdin
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdoutTask, await stderrTask);
    }

    private static string Normalise(string text, char who)
    {
        var s = text;
        s = ZapTs().Replace(s, "\"ts\":TS");
        s = ClientUuid().Replace(s, "client-UUID");
        s = RevisionJson().Replace(s, "\"${1}\":N");
        s = RevisionFields().Replace(s, "\"${1}\" : N");
        s = LeaseDecimal().Replace(s, "${1}LEASE");
        s = Hex16().Replace(s, "ID16");
        s = Took().Replace(s, "TOOK");
        s = Ttl().Replace(s, "${1}TTL");
        // the 3-byte marker encodes to 4 base64 characters of its own at the start of a key
        var marker = Marker(who);
        s = s.Replace(marker, "@", StringComparison.Ordinal).Replace("\"" + Convert.ToBase64String(Encoding.UTF8.GetBytes(marker)), "\"@", StringComparison.Ordinal);
        return s;
    }

    private static string Marker(char who) => "zz" + who;

    [GeneratedRegex("'[^']*'|\\S+")]
    private static partial Regex WordPattern();

    [GeneratedRegex("\"ts\":(\"[^\"]*\"|[0-9.e+]+)")]
    private static partial Regex ZapTs();

    [GeneratedRegex("client-[0-9a-f-]{36}")]
    private static partial Regex ClientUuid();

    [GeneratedRegex("\"(revision|create_revision|mod_revision|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|hash|compact_revision|version)\":[0-9]+")]
    private static partial Regex RevisionJson();

    [GeneratedRegex("\"(Revision|CreateRevision|ModRevision|PrevCreateRevision|PrevModRevision|RaftIndex|RaftAppliedIndex|DBSize|Hash|Version|PrevVersion)\" : [0-9]+")]
    private static partial Regex RevisionFields();

    [GeneratedRegex("[0-9a-f]{16}")]
    private static partial Regex Hex16();

    [GeneratedRegex("(\"ID\" : |\"ID\":|\"id\":)[0-9]{12,}")]
    private static partial Regex LeaseDecimal();

    [GeneratedRegex("[0-9.]+(ms|µs|s)\\b")]
    private static partial Regex Took();

    [GeneratedRegex("(remaining\\(|\"ttl\":|\"TTL\" : )[0-9]+")]
    private static partial Regex Ttl();
}
