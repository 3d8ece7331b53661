using Etcd.Server;

namespace Etcd.Main.Config;

/// <summary>
/// What <see cref="EtcdConfigLoader.Load"/> decided: either start a member with <see cref="Options"/> (after
/// writing <see cref="StandardError"/> and <see cref="StandardOutput"/>: etcd's early log lines and warnings), or
/// write those texts and exit with <see cref="ExitCode"/> (<c>--version</c>, <c>--help</c>, errors). Immutable.
/// </summary>
public sealed class EtcdConfigResult
{
    internal EtcdConfigResult(EtcdOptions? options, int exitCode, string stdout, string stderr)
    {
        Options = options;
        ExitCode = exitCode;
        StandardOutput = stdout;
        StandardError = stderr;
    }

    /// <summary>The member's options, or null when the process must exit.</summary>
    public EtcdOptions? Options { get; }

    /// <summary>True when the process must exit with <see cref="ExitCode"/> instead of starting.</summary>
    public bool ShouldExit => Options is null;

    /// <summary>
    /// Exit code when <see cref="ShouldExit"/>: 0 for <c>--version</c>/<c>--help</c>, 2 for flag syntax errors
    /// (Go's flag package), 1 for configuration errors (etcd's <c>os.Exit(1)</c>). 0 when starting.
    /// </summary>
    public int ExitCode { get; }

    /// <summary>Text to write to standard output, verbatim (may be empty).</summary>
    public string StandardOutput { get; }

    /// <summary>Text to write to standard error, verbatim (may be empty); complete lines.</summary>
    public string StandardError { get; }
}
