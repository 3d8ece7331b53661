namespace Etcd.Tests;

/// <summary>
/// The one rule for tests that need a tool this machine may lack (real etcd/etcdctl, Go, etcd's source): on a
/// developer's machine such a test is skipped with the reason; under <c>CI=true</c> it is not skipped, so it runs and
/// fails on the missing tool, and a green CI run means the interop tests really ran. Compiled into every test project
/// (Directory.Build.props).
/// </summary>
internal static class MissingTool
{
    /// <summary>Whether the run is CI's (<c>CI=true</c>, as CI services set it).</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The skip reason for a missing tool: <paramref name="reason"/>, or null (run, and fail) under CI.</summary>
    public static string? SkipReason(string reason) => IsCi ? null : reason;
}
