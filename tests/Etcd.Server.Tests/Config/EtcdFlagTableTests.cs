using System.Collections;
using System.Text.RegularExpressions;
using Etcd.Main.Config;

namespace Etcd.Server.Tests.Config;

/// <summary>Checks our flag table against the flags etcd 3.4.23's source defines (when the source is present).</summary>
public sealed partial class EtcdFlagTableTests
{
    private const string ConfigGo = "/usr/share/gocode/src/go.etcd.io/etcd/etcdmain/config.go";

    public sealed class SourceFactAttribute : FactAttribute
    {
        public SourceFactAttribute()
        {
            if (!File.Exists(ConfigGo))
            {
                Skip = global::Etcd.Tests.MissingTool.SkipReason("etcd 3.4 source not installed");
            }
        }
    }

    [SourceFact]
    public void FlagTable_MatchesEtcdSource()
    {
        string src = File.ReadAllText(ConfigGo);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in TypedVar().Matches(src))
        {
            names.Add(m.Groups[1].Value);
        }
        foreach (Match m in ValueVar().Matches(src))
        {
            names.Add(m.Groups[1].Value);
        }
        int ignoredStart = src.IndexOf("ignored = []string{", StringComparison.Ordinal);
        string ignoredBlock = src[ignoredStart..src.IndexOf('}', ignoredStart)];
        foreach (Match m in Quoted().Matches(ignoredBlock))
        {
            names.Add(m.Groups[1].Value);
        }
        Assert.True(names.Count > 90, "parsed only " + names.Count + " flags");
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), EtcdFlags.All.Select(f => f.Name).Where(n => !EtcdFlags.FromEtcd35.Contains(n) && !EtcdFlags.OwnFlags.Contains(n)).OrderBy(n => n, StringComparer.Ordinal));
        Assert.DoesNotContain(EtcdFlags.FromEtcd35, names.Contains);
        Assert.DoesNotContain(EtcdFlags.OwnFlags, names.Contains);
    }

    [Fact]
    public void EveryFlag_IsRecognised_WithItsDefaultValue()
    {
        // etcd itself refuses an explicit empty --cipher-suites ("unexpected TLS cipher suite \"\""), so it is left out.
        foreach (var def in EtcdFlags.All.Where(f => f.Kind != FlagKind.Ignored && f.Name is not ("config-file" or "version" or "cipher-suites")))
        {
            string arg = def.Kind switch
            {
                FlagKind.Bool => $"--{def.Name}={def.Default}",
                FlagKind.Urls when def.Default.Length == 0 => $"--{def.Name}=",
                _ => $"--{def.Name}={def.Default}",
            };
            // etcd requires advertise URLs whenever listen client URLs are given explicitly.
            string[] args = def.Name == "listen-client-urls" ? [arg, "--advertise-client-urls=http://localhost:2379"] : [arg];
            var r = EtcdConfigLoader.Load(args, new Hashtable());
            Assert.False(r.ShouldExit, arg + " => " + r.StandardError);
        }
    }

    [Fact]
    public void EveryFlag_HasAnEtcdEnvironmentVariable()
    {
        Assert.Equal("ETCD_DATA_DIR", EtcdFlags.ByName["data-dir"].EnvName);
        Assert.Equal("ETCD_EXPERIMENTAL_ENABLE_V2V3", EtcdFlags.ByName["experimental-enable-v2v3"].EnvName);
        Assert.Equal("ETCD_TEST.COVERPROFILE", EtcdFlags.ByName["test.coverprofile"].EnvName);
    }

    [GeneratedRegex(@"fs\.(?:String|Uint|Uint64|Int|Int64|Bool|Duration)Var\([^,]+,\s*""([^""]+)""")]
    private static partial Regex TypedVar();

    [GeneratedRegex(@"fs\.Var\(\s*(?:[^()""]|\([^()]*\))*?,\s*""([^""]+)""")]
    private static partial Regex ValueVar();

    [GeneratedRegex(@"""([^""]+)""")]
    private static partial Regex Quoted();
}
