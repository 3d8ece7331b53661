using System.Net;
using System.Net.Sockets;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>
/// Where the executable under test is (<c>ETCD_UNDER_TEST</c>, default <c>&lt;repo root&gt;/bin/etcd</c>, as
/// tests/Etcd.Compat.Tests) and how long scenarios run (<c>CLUSTER_SOAK=1</c> multiplies load phases for an
/// opt-in soak run). A missing binary FAILS the process tests; exclude them with
/// <c>--filter "Category!=Cluster"</c>.
/// </summary>
public static class ClusterEnvironment
{
    /// <summary>xunit trait name of the process-driven tests.</summary>
    public const string TraitName = "Category";

    /// <summary>xunit trait value of the process-driven tests.</summary>
    public const string Category = "Cluster";

    /// <summary>Environment variable naming our server's executable.</summary>
    public const string UnderTestVariable = "ETCD_UNDER_TEST";

    /// <summary>Environment variable that turns on the longer soak variants (any non-empty value but 0).</summary>
    public const string SoakVariable = "CLUSTER_SOAK";

    /// <summary>True when <see cref="SoakVariable"/> is set.</summary>
    public static bool Soak => Environment.GetEnvironmentVariable(SoakVariable) is { Length: > 0 } v && v != "0";

    /// <summary>A load phase's length: <paramref name="normal"/>, or 10 times it in soak runs.</summary>
    public static TimeSpan Phase(TimeSpan normal) => Soak ? normal * 10 : normal;

    /// <summary>Path of the server under test (may not exist; see <see cref="RequireUnderTest"/>).</summary>
    public static string UnderTestPath
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable(UnderTestVariable);
            if (!string.IsNullOrWhiteSpace(fromEnv))
            {
                return Path.GetFullPath(fromEnv);
            }

            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            for (var i = 0; dir is not null && i < 64; i++, dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Etcd.slnx")))
                {
                    return Path.Combine(dir.FullName, "bin", "etcd");
                }
            }

            return "<repo root not found>/bin/etcd";
        }
    }

    /// <summary>Fails the calling test with an explicit message if the server under test is missing.</summary>
    public static string RequireUnderTest()
    {
        var path = UnderTestPath;
        if (!File.Exists(path))
        {
            Assert.Fail($"Server under test not found at '{path}'. Run scripts/publish.sh or set {UnderTestVariable}; " +
                        $"exclude these tests with --filter \"{TraitName}!={Category}\".");
        }

        return path;
    }
}
