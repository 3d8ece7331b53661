namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// Locates the binaries the compatibility tests run: our server (<c>ETCD_UNDER_TEST</c>, default
/// <c>&lt;repo root&gt;/bin/etcd</c>), the reference etcd 3.4.23 and etcdctl 3.4.23. A missing binary is
/// a test FAILURE with a clear message, never a silent pass; to leave these tests out, filter on the
/// trait <see cref="Category"/> (<c>dotnet test --filter "Category!=Compat"</c>).
/// </summary>
public static class CompatEnvironment
{
    /// <summary>xunit trait name used on every process-driven test.</summary>
    public const string TraitName = "Category";

    /// <summary>xunit trait value used on every process-driven test.</summary>
    public const string Category = "Compat";

    /// <summary>Environment variable naming our server's executable.</summary>
    public const string UnderTestVariable = "ETCD_UNDER_TEST";

    /// <summary>Optional override of the reference etcd path (default /usr/bin/etcd).</summary>
    public const string ReferenceEtcdVariable = "COMPAT_REFERENCE_ETCD";

    /// <summary>Optional override of the etcdctl path (default /usr/bin/etcdctl).</summary>
    public const string EtcdctlVariable = "COMPAT_ETCDCTL";

    /// <summary>Path of the server under test (may not exist; see <see cref="RequireAll"/>).</summary>
    public static string UnderTestPath
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable(UnderTestVariable);
            if (!string.IsNullOrWhiteSpace(fromEnv))
            {
                // Absolute, since members run with the temp directory as working directory.
                return Path.GetFullPath(fromEnv);
            }

            var root = FindRepoRoot();
            return root is null ? "<repo root not found>/bin/etcd" : Path.Combine(root, "bin", "etcd");
        }
    }

    /// <summary>Path of the real etcd 3.4.23.</summary>
    public static string ReferenceEtcdPath =>
        Environment.GetEnvironmentVariable(ReferenceEtcdVariable) is { Length: > 0 } p ? p : "/usr/bin/etcd";

    /// <summary>Path of the real etcdctl 3.4.23.</summary>
    public static string EtcdctlPath =>
        Environment.GetEnvironmentVariable(EtcdctlVariable) is { Length: > 0 } p ? p : "/usr/bin/etcdctl";

    /// <summary>Walks up from <see cref="AppContext.BaseDirectory"/> to the directory holding Etcd.slnx.</summary>
    public static string? FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        for (var i = 0; dir is not null && i < 64; i++, dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Etcd.slnx")))
            {
                return dir.FullName;
            }
        }

        return null;
    }

    /// <summary>Fails the calling test with an explicit message if our server is missing.</summary>
    public static string RequireUnderTest()
    {
        var path = UnderTestPath;
        if (!File.Exists(path))
        {
            Assert.Fail(
                $"Server under test not found at '{path}'. Set {UnderTestVariable} to our published etcd " +
                $"executable (e.g. {UnderTestVariable}=/usr/bin/etcd to run real-vs-real), or exclude these " +
                $"tests with --filter \"{TraitName}!={Category}\".");
        }

        return path;
    }

    /// <summary>Fails the calling test with an explicit message if etcdctl is missing.</summary>
    public static string RequireEtcdctl() => RequireFile(EtcdctlPath, "etcdctl 3.4.23", EtcdctlVariable);

    /// <summary>Fails the calling test with an explicit message if the reference etcd is missing.</summary>
    public static string RequireReferenceEtcd() => RequireFile(ReferenceEtcdPath, "reference etcd 3.4.23", ReferenceEtcdVariable);

    /// <summary>Requires our server, the reference etcd and etcdctl.</summary>
    public static void RequireAll()
    {
        RequireEtcdctl();
        RequireReferenceEtcd();
        RequireUnderTest();
    }

    internal static string RequireFile(string path, string what, string variable)
    {
        if (!File.Exists(path))
        {
            Assert.Fail(
                $"{what} not found at '{path}' (override with {variable}). These tests need it; exclude them with " +
                $"--filter \"{TraitName}!={Category}\".");
        }

        return path;
    }

    /// <summary>
    /// Copies the current environment minus every ETCD_* / ETCDCTL_* variable, so neither etcd nor
    /// etcdctl picks up flags (or warns about unknown variables such as ETCD_UNDER_TEST).
    /// </summary>
    internal static void ScrubEnvironment(IDictionary<string, string?> env)
    {
        foreach (var key in env.Keys.ToList())
        {
            if (key.StartsWith("ETCD_", StringComparison.Ordinal) || key.StartsWith("ETCDCTL_", StringComparison.Ordinal))
            {
                env.Remove(key);
            }
        }
    }
}
