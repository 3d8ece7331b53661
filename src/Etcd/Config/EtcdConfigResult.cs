using Etcd.Server;

namespace Etcd.Main.Config;

/// <summary>
/// Values of etcd flags we accept that <see cref="EtcdOptions"/> has no property for yet. All carry etcd 3.4's
/// defaults; durations are <see cref="TimeSpan"/>s. Immutable.
/// </summary>
public sealed record EtcdExtraOptions
{
    /// <summary>The <c>--config-file</c> used, or empty.</summary>
    public string ConfigFile { get; init; } = "";

    /// <summary><c>--max-snapshots</c>: snap files kept (0 = unlimited).</summary>
    public ulong MaxSnapshots { get; init; } = 5;

    /// <summary><c>--max-wals</c>: WAL files kept (0 = unlimited).</summary>
    public ulong MaxWals { get; init; } = 5;

    /// <summary><c>--initial-election-tick-advance</c>.</summary>
    public bool InitialElectionTickAdvance { get; init; } = true;

    /// <summary><c>--backend-batch-interval</c>; zero means the backend's default (100 ms).</summary>
    public TimeSpan BackendBatchInterval { get; init; }

    /// <summary><c>--backend-batch-limit</c>; 0 means the backend's default (10000).</summary>
    public long BackendBatchLimit { get; init; }

    /// <summary><c>--metrics</c>: basic or extensive.</summary>
    public string Metrics { get; init; } = "basic";

    /// <summary><c>--enable-pprof</c>.</summary>
    public bool EnablePprof { get; init; }

    /// <summary><c>--unsafe-no-fsync</c>.</summary>
    public bool UnsafeNoFsync { get; init; }

    /// <summary><c>--debug</c> (deprecated; etcd then logs at debug level with capnslog).</summary>
    public bool Debug { get; init; }

    /// <summary><c>--log-package-levels</c> (deprecated, capnslog only).</summary>
    public string LogPackageLevels { get; init; } = "";

    /// <summary><c>--enable-grpc-gateway</c>: serve the /v3 JSON gateway.</summary>
    public bool EnableGrpcGateway { get; init; } = true;

    /// <summary><c>--cors</c> origins (sorted; <c>*</c> means all).</summary>
    public IReadOnlyList<string> Cors { get; init; } = ["*"];

    /// <summary><c>--host-whitelist</c> (sorted; <c>*</c> means all).</summary>
    public IReadOnlyList<string> HostWhitelist { get; init; } = ["*"];

    /// <summary><c>--auth-token</c>; only <c>simple</c> is accepted for now.</summary>
    public string AuthToken { get; init; } = "simple";

    /// <summary><c>--bcrypt-cost</c>.</summary>
    public ulong BcryptCost { get; init; } = 10;

    /// <summary><c>--auth-token-ttl</c> in seconds.</summary>
    public ulong AuthTokenTtlSeconds { get; init; } = 300;

    /// <summary><c>--experimental-initial-corrupt-check</c>.</summary>
    public bool ExperimentalInitialCorruptCheck { get; init; }

    /// <summary><c>--experimental-corrupt-check-time</c>; zero disables periodic checks.</summary>
    public TimeSpan ExperimentalCorruptCheckTime { get; init; }

    /// <summary><c>--experimental-enable-v2v3</c> prefix, or empty.</summary>
    public string ExperimentalEnableV2V3 { get; init; } = "";

    /// <summary><c>--experimental-backend-bbolt-freelist-type</c> (array or map; empty = array).</summary>
    public string ExperimentalBackendFreelistType { get; init; } = "";

    /// <summary><c>--experimental-enable-lease-checkpoint</c>.</summary>
    public bool ExperimentalEnableLeaseCheckpoint { get; init; }

    /// <summary><c>--experimental-enable-lease-checkpoint-persist</c>.</summary>
    public bool ExperimentalEnableLeaseCheckpointPersist { get; init; }

    /// <summary><c>--experimental-compaction-batch-limit</c>; 0 means etcd's default (1000).</summary>
    public long ExperimentalCompactionBatchLimit { get; init; }

    /// <summary><c>--experimental-watch-progress-notify-interval</c>; zero means etcd's default (10 min).</summary>
    public TimeSpan ExperimentalWatchProgressNotifyInterval { get; init; }

    /// <summary><c>--experimental-warning-apply-duration</c>.</summary>
    public TimeSpan ExperimentalWarningApplyDuration { get; init; } = TimeSpan.FromMilliseconds(100);
}

/// <summary>
/// What <see cref="EtcdConfigLoader.Load"/> decided: either start a member with <see cref="Options"/> (after
/// writing <see cref="StandardError"/> and <see cref="StandardOutput"/>: etcd's early log lines and warnings), or
/// write those texts and exit with <see cref="ExitCode"/> (<c>--version</c>, <c>--help</c>, errors). Immutable.
/// </summary>
public sealed class EtcdConfigResult
{
    internal EtcdConfigResult(EtcdOptions? options, EtcdExtraOptions? extra, int exitCode, string stdout, string stderr)
    {
        Options = options;
        Extra = extra;
        ExitCode = exitCode;
        StandardOutput = stdout;
        StandardError = stderr;
    }

    /// <summary>The member's options, or null when the process must exit.</summary>
    public EtcdOptions? Options { get; }

    /// <summary>Accepted values that <see cref="EtcdOptions"/> does not carry; null when the process must exit.</summary>
    public EtcdExtraOptions? Extra { get; }

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
