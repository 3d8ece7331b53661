using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Etcd.Server;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Main.Config;

/// <summary>
/// Turns the <c>etcd</c> command line and environment into <see cref="EtcdOptions"/>, the way etcd 3.4.23's
/// <c>etcdmain/config.go</c>, <c>pkg/flags</c> and <c>embed/config.go</c> do:
/// <list type="bullet">
/// <item>Go flag syntax: <c>--flag value</c>, <c>--flag=value</c>, <c>-flag</c>; booleans as <c>--flag</c> or
/// <c>--flag=false</c>; parsing stops at the first non-flag or <c>--</c>; leftovers are an error.</item>
/// <item>Every flag etcd 3.4 defines is recognised (and etcd 3.5's <c>--tls-min-version</c> and
/// <c>--self-signed-cert-validity</c>). Flags we do not implement yet (discovery, v2 proxy,
/// <c>--client-cert-allowed-hostname</c>, non-simple <c>--auth-token</c>) are refused unless given their default value; etcd's ignored legacy flags
/// are accepted with etcd's warning.</item>
/// <item><c>ETCD_*</c> variables fill flags not given on the command line; a variable shadowed by a flag is
/// fatal and unknown <c>ETCD_*</c> variables are warned about, with etcd's messages.</item>
/// <item><c>--config-file</c> (or <c>ETCD_CONFIG_FILE</c>) reads etcd's YAML keys and ignores other flags and
/// variables.</item>
/// <item>Validation with etcd's messages and exit codes (2 for flag syntax, 1 for configuration errors).</item>
/// </list>
/// Pure apart from reading the config file (and appending zap error lines to file log outputs, as etcd does);
/// thread-safe.
/// </summary>
public static class EtcdConfigLoader
{
    /// <summary>The etcd version we implement and report.</summary>
    public const string EtcdVersion = "3.4.23";

    /// <summary>Our product's name, printed beside etcd's version.</summary>
    public const string ProductName = "etcd-cs";

    /// <summary>Our product's version (the assembly's informational version without build metadata, else 0.1.0).</summary>
    public static string ProductVersion { get; } = ReadProductVersion();

    /// <summary>Our git commit, if the build stamped one into the informational version (<c>1.2.3+sha</c>).</summary>
    public static string GitSha { get; } = ReadGitSha();

    /// <summary>Loads the configuration of the current process (its arguments and environment).</summary>
    public static EtcdConfigResult LoadFromProcess() => Load(Environment.GetCommandLineArgs().Skip(1).ToArray(), Environment.GetEnvironmentVariables());

    /// <summary>
    /// Parses <paramref name="args"/> (without the program name) and <paramref name="environment"/> (string keys
    /// and values, e.g. <see cref="Environment.GetEnvironmentVariables()"/>).
    /// </summary>
    /// <param name="args">Command-line arguments after the program name.</param>
    /// <param name="environment">Environment variables; only <c>ETCD_*</c> ones matter.</param>
    /// <param name="time">Clock for the timestamps of early log lines; the system clock when null.</param>
    /// <returns>Options to start with, or text to print and an exit code.</returns>
    public static EtcdConfigResult Load(IReadOnlyList<string> args, IDictionary environment, TimeProvider? time = null)
    {
        var run = new LoaderRun(environment, time ?? TimeProvider.System);
        try
        {
            var options = run.Execute(args);
            return new EtcdConfigResult(options, 0, run.Out.ToString(), run.Err.ToString());
        }
        catch (ExitException e)
        {
            return new EtcdConfigResult(null, e.Code, run.Out.ToString(), run.Err.ToString());
        }
    }

    /// <summary>etcd's <c>--version</c> lines with our values, then our product line.</summary>
    public static string VersionText()
    {
        var sb = new StringBuilder();
        sb.Append("etcd Version: ").Append(EtcdVersion).Append('\n');
        sb.Append("Git SHA: ").Append(GitSha).Append('\n');
        sb.Append("Go Version: ").Append(RuntimeInformation.FrameworkDescription).Append('\n');
        sb.Append("Go OS/Arch: ").Append(GoOs()).Append('/').Append(GoArch()).Append('\n');
        sb.Append(ProductName).Append(" Version: ").Append(ProductVersion).Append('\n');
        return sb.ToString();
    }

    private static string GoOs() =>
        OperatingSystem.IsLinux() ? "linux" : OperatingSystem.IsMacOS() ? "darwin" : OperatingSystem.IsWindows() ? "windows" : OperatingSystem.IsFreeBSD() ? "freebsd" : "unknown";

    private static string GoArch() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.X86 => "386",
        Architecture.Arm64 => "arm64",
        Architecture.Arm => "arm",
        Architecture.S390x => "s390x",
        Architecture.Ppc64le => "ppc64le",
        _ => RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
    };

    private static string InformationalVersion() =>
        typeof(EtcdConfigLoader).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";

    private static string ReadProductVersion()
    {
        string v = InformationalVersion();
        int plus = v.IndexOf('+');
        if (plus >= 0)
        {
            v = v[..plus];
        }
        return v.Length == 0 || v == "1.0.0" ? "0.1.0" : v;
    }

    private static string ReadGitSha()
    {
        string v = InformationalVersion();
        int plus = v.IndexOf('+');
        return plus >= 0 && plus + 1 < v.Length ? v[(plus + 1)..] : "Not provided";
    }
}

/// <summary>Stops a load with an exit code; the output so far is in the run's buffers.</summary>
internal sealed class ExitException(int code) : Exception("exit " + code.ToString(CultureInfo.InvariantCulture))
{
    public int Code { get; } = code;
}

/// <summary>One load: output buffers, environment, clock.</summary>
internal sealed partial class LoaderRun
{
    private const string DefaultInitialCluster = "default=http://localhost:2380";
    private const string ErrUnsetAdvertiseClientUrls = "--advertise-client-urls is required when --listen-client-urls is set explicitly";

    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private bool _zapReady;
    private string[] _zapOutputs = ["default"];

    public LoaderRun(IDictionary environment, TimeProvider time)
    {
        foreach (DictionaryEntry e in environment)
        {
            if (e.Key is string k)
            {
                _env[k] = e.Value as string ?? "";
            }
        }
        _time = time;
    }

    public StringBuilder Out { get; } = new();

    public StringBuilder Err { get; } = new();

    private DateTimeOffset Now => _time.GetLocalNow();

    private void Capnslog(LogLevel level, string package, string message) => EtcdLogLine.AppendCapnslog(Err, Now, level, package, message);

    private void Raw(string line) => Err.Append(line).Append('\n');

    private void Zap(LogLevel level, string caller, string message, params (string Key, object? Value)[] fields)
    {
        string line = EtcdLogLine.FormatZap(Now, level, caller, message, fields.Select(f => new KeyValuePair<string, object?>(f.Key, f.Value)));
        IEnumerable<string> targets = _zapOutputs.Contains("/dev/null") ? [] : _zapOutputs.Select(o => o == "default" ? "stderr" : o).Distinct(StringComparer.Ordinal);
        foreach (string t in targets)
        {
            switch (t)
            {
                case "stderr":
                    Err.Append(line);
                    break;
                case "stdout":
                    Out.Append(line);
                    break;
                default:
                    try
                    {
                        File.AppendAllText(t, line);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        Err.Append(line);
                    }
                    break;
            }
        }
    }

    /// <summary>etcd's "error verifying flags" report (etcdmain/etcd.go), then exit 1.</summary>
    private ExitException VerifyError(string message, bool unsetAdvertise = false)
    {
        if (_zapReady)
        {
            Zap(LogLevel.Warning, "etcdmain/etcd.go:66", "failed to verify flags", ("error", message));
            if (unsetAdvertise)
            {
                Zap(LogLevel.Warning, "etcdmain/etcd.go:73", "advertise client URLs are not set", ("error", message));
            }
        }
        else
        {
            Capnslog(LogLevel.Error, "etcdmain", $"error verifying flags, {message}. See 'etcd --help'.");
            if (unsetAdvertise)
            {
                Capnslog(LogLevel.Error, "etcdmain", "When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.");
            }
        }
        return new ExitException(1);
    }

    public EtcdOptions Execute(IReadOnlyList<string> args)
    {
        var values = new FlagValues();
        var positional = ParseFlags(args, values);
        if (positional.Count > 0)
        {
            throw VerifyError($"'{positional[0]}' is not a valid flag");
        }
        if (values.Bool("version"))
        {
            Out.Append(EtcdConfigLoader.VersionText());
            throw new ExitException(0);
        }
        string configFile = values.Str("config-file");
        if (configFile.Length == 0)
        {
            configFile = _env.GetValueOrDefault("ETCD_CONFIG_FILE", "");
        }
        return configFile.Length > 0 ? FromFile(configFile) : FromCommandLine(values);
    }

    // Go's flag.FlagSet.Parse with etcd's usage function; returns the arguments left after the flags.
    private List<string> ParseFlags(IReadOnlyList<string> args, FlagValues values)
    {
        int i = 0;
        while (i < args.Count)
        {
            string s = args[i];
            if (s.Length < 2 || s[0] != '-')
            {
                break;
            }
            int minuses = 1;
            if (s[1] == '-')
            {
                minuses = 2;
                if (s.Length == 2)
                {
                    i++;
                    break;
                }
            }
            string name = s[minuses..];
            if (name.Length == 0 || name[0] == '-' || name[0] == '=')
            {
                throw FlagError($"bad flag syntax: {s}");
            }
            i++;
            bool hasValue = false;
            string value = "";
            int eq = name.IndexOf('=', 1);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
                hasValue = true;
            }
            if (!EtcdFlags.ByName.TryGetValue(name, out var def))
            {
                if (name is "help" or "h")
                {
                    Err.Append(EtcdHelp.Usage).Append('\n');
                    Out.Append(EtcdHelp.Flags).Append('\n');
                    throw new ExitException(0);
                }
                throw FlagError($"flag provided but not defined: -{name}");
            }
            var warnings = new List<string>();
            if (def.IsBool)
            {
                string? err = values.Set(def, hasValue ? value : "true", warnings);
                EmitFlagWarnings(warnings);
                if (err != null)
                {
                    throw FlagError($"invalid boolean value {GoSyntax.Quote(value)} for -{name}: {err}");
                }
                continue;
            }
            if (!hasValue && i < args.Count)
            {
                value = args[i++];
                hasValue = true;
            }
            if (!hasValue)
            {
                throw FlagError($"flag needs an argument: -{name}");
            }
            string? error = values.Set(def, value, warnings);
            EmitFlagWarnings(warnings);
            if (error != null)
            {
                throw FlagError($"invalid value {GoSyntax.Quote(value)} for flag -{name}: {error}");
            }
        }
        return args.Skip(i).ToList();
    }

    private void EmitFlagWarnings(List<string> warnings)
    {
        foreach (string w in warnings)
        {
            Capnslog(LogLevel.Warning, "pkg/flags", w);
        }
    }

    private ExitException FlagError(string message)
    {
        Err.Append(message).Append('\n').Append(EtcdHelp.Usage).Append('\n');
        return new ExitException(2);
    }

    // etcdmain's configFromCmdLine: ETCD_* variables, then validation.
    private EtcdOptions FromCommandLine(FlagValues values)
    {
        var alreadySet = new HashSet<string>(values.IsSet.Select(n => EtcdFlags.ByName[n].EnvName), StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        string? envError = null;
        foreach (var def in EtcdFlags.Sorted)
        {
            string key = def.EnvName;
            if (alreadySet.Contains(key) || !_env.TryGetValue(key, out string? val) || val.Length == 0)
            {
                continue;
            }
            used.Add(key);
            var warnings = new List<string>();
            string? err = values.Set(def, val, warnings);
            EmitFlagWarnings(warnings);
            if (err != null)
            {
                envError = $"invalid value {GoSyntax.Quote(val)} for {key}: {err}";
            }
            else
            {
                Capnslog(LogLevel.Information, "pkg/flags", $"recognized and used environment variable {key}={val}");
            }
        }
        foreach (var (key, val) in _env.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (used.Contains(key))
            {
                continue;
            }
            if (alreadySet.Contains(key))
            {
                Capnslog(LogLevel.Critical, "pkg/flags", $"conflicting environment variable {GoSyntax.Quote(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)");
                throw new ExitException(1);
            }
            if (key.StartsWith("ETCD_", StringComparison.Ordinal))
            {
                Capnslog(LogLevel.Warning, "pkg/flags", $"unrecognized environment variable {key}={val}");
            }
        }
        if (envError != null)
        {
            throw VerifyError(envError);
        }
        bool advertiseUnset = values.IsSet.Contains("listen-client-urls") && !values.IsSet.Contains("advertise-client-urls");
        string? error = Validate(values, advertiseUnset, out bool unset);
        if (error != null)
        {
            throw VerifyError(error, unset);
        }
        // After etcd's own checks, so that a configuration etcd rejects fails with etcd's message.
        string? refused = RefusedError(values, null);
        if (refused != null)
        {
            throw VerifyError(refused);
        }
        return Build(values);
    }

    // Flags we recognise but do not implement: only their default value passes.
    private static string? RefusedError(FlagValues values, Func<string, string>? yamlKeyOf)
    {
        foreach (var def in EtcdFlags.All)
        {
            if (def.Support != FlagSupport.Refused || values.HasDefault(def))
            {
                continue;
            }
            string given = def.Kind switch
            {
                FlagKind.Strings => string.Join(",", values.Strings(def.Name)),
                FlagKind.Bool => values.Bool(def.Name) ? "true" : "false",
                FlagKind.Uint => values.Uint(def.Name).ToString(CultureInfo.InvariantCulture),
                FlagKind.Duration => GoDuration.FormatNanoseconds(values.DurationNs(def.Name)),
                _ => values.Raw(def.Name).ToString() ?? "",
            };
            if (def.Accepts?.Invoke(given) == true)
            {
                continue;
            }
            string what = yamlKeyOf != null ? $"config key {GoSyntax.Quote(yamlKeyOf(def.Name))}" : $"--{def.Name}";
            string defText = def.Default.Length == 0 ? "''" : "'" + def.Default + "'";
            string accepted = def.Accepts is null ? $"only its default value {defText} is accepted" : $"only values like its default {defText} are accepted";
            return $"{what}={GoSyntax.Quote(given)} is not supported by {EtcdConfigLoader.ProductName} {EtcdConfigLoader.ProductVersion} ({def.Why}); {accepted}";
        }
        return null;
    }

    // embed.Config.Validate (with setupLogging) and etcdmain's validate; null when valid.
    private string? Validate(FlagValues v, bool advertiseUnset, out bool unsetError)
    {
        unsetError = false;
        string? err = SetupLogging(v);
        if (err != null)
        {
            return err;
        }
        foreach (string name in (string[])["listen-peer-urls", "listen-client-urls", "listen-metrics-urls"])
        {
            foreach (var u in v.Urls(name).Urls)
            {
                if (u.Scheme is "unix" or "unixs")
                {
                    continue;
                }
                if (!GoSyntax.TrySplitHostPort(u.Host, out string host, out _))
                {
                    return $"address {u.Host}: missing port in address";
                }
                if (host != "localhost" && !GoSyntax.IsIP(host))
                {
                    return $"expected IP in URL for binding ({u.Text})";
                }
            }
        }
        foreach (var (name, urls) in new[] { ("initial-advertise-peer-urls", v.Urls("initial-advertise-peer-urls").Urls), ("advertise-client-urls", advertiseUnset ? [] : v.Urls("advertise-client-urls").Urls) })
        {
            foreach (var u in urls)
            {
                string? inner = null;
                if (!GoSyntax.TrySplitHostPort(u.Host, out string host, out _))
                {
                    inner = $"address {u.Host}: missing port in address";
                }
                else if (host.Length == 0)
                {
                    inner = $"unexpected empty host ({u.Text})";
                }
                if (inner != null)
                {
                    return $"--{name} {GoSyntax.Quote(string.Join(",", urls.Select(x => x.Text)))} must be \"host:port\" ({inner})";
                }
            }
        }
        string state = v.Str("initial-cluster-state");
        if (state is not ("new" or "existing"))
        {
            return $"unexpected clusterState {GoSyntax.Quote(state)}";
        }
        ulong tick = v.Uint("heartbeat-interval");
        ulong election = v.Uint("election-timeout");
        if (tick == 0)
        {
            return $"--heartbeat-interval must be >0 (set to {tick}ms)";
        }
        if (election == 0)
        {
            return $"--election-timeout must be >0 (set to {election}ms)";
        }
        if (unchecked(5 * tick) > election)
        {
            return $"--election-timeout[{election}ms] should be at least as 5 times as --heartbeat-interval[{tick}ms]";
        }
        if (election > 50000)
        {
            return $"--election-timeout[{election}ms] is too long, and should be set less than 50000ms";
        }
        if (advertiseUnset)
        {
            unsetError = true;
            return ErrUnsetAdvertiseClientUrls;
        }
        string mode = v.Str("auto-compaction-mode");
        if (mode is not ("" or "periodic" or "revision"))
        {
            return $"unknown auto-compaction-mode {GoSyntax.Quote(mode)}";
        }
        bool checkpoint = v.Bool("experimental-enable-lease-checkpoint");
        bool persist = v.Bool("experimental-enable-lease-checkpoint-persist");
        if (checkpoint && !persist)
        {
            const string msg = "Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist";
            if (_zapReady)
            {
                Zap(LogLevel.Warning, "embed/config.go:642", msg);
            }
            else
            {
                Capnslog(LogLevel.Warning, "embed", msg);
            }
        }
        if (persist && !checkpoint)
        {
            return "setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint";
        }
        return null;
    }

    // embed.Config.setupLogging: deprecation warnings, output and logger checks.
    private string? SetupLogging(FlagValues v)
    {
        string[] deprecated = v.Strings("log-output");
        string[] outputs = v.Strings("log-outputs");
        if (deprecated.Length != outputs.Length)
        {
            if (deprecated.Length > outputs.Length)
            {
                Raw("'--log-output' flag has been deprecated! Please use '--log-outputs'!");
                outputs = deprecated;
                v.Put("log-outputs", outputs);
            }
            else
            {
                deprecated = [];
                v.Put("log-output", deprecated);
            }
        }
        else
        {
            if (deprecated.Length > 1)
            {
                return "both '--log-output' and '--log-outputs' are set; only set '--log-outputs'";
            }
            if (deprecated.Length < 1)
            {
                return "either '--log-output' or '--log-outputs' flag must be set";
            }
            if (deprecated.SequenceEqual(outputs) && deprecated[0] != "default")
            {
                return $"'--log-output={GoSyntax.Quote(deprecated)}' and '--log-outputs={GoSyntax.Quote(outputs)}' are incompatible; only set --log-outputs";
            }
            if (!deprecated.SequenceEqual(["default"]))
            {
                Raw($"[WARNING] Deprecated '--log-output' flag is set to {GoSyntax.Quote(deprecated)}");
                Raw("Please use '--log-outputs' flag");
            }
        }
        // etcd's warnings for --debug; the flag itself is refused after validation (it also serves pprof).
        bool debug = v.Bool("debug");
        string level = v.Str("log-level");
        string logger = v.Str("logger");
        if (debug)
        {
            Raw("[WARNING] Deprecated '--debug' flag is set to true (use '--log-level=debug' instead");
            if (level != "debug")
            {
                Raw($"[WARNING] Deprecated '--debug' flag is set to true with inconsistent '--log-level={level}' flag");
            }
        }
        if (logger == "capnslog")
        {
            Raw("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead");
        }
        string packageLevels = v.Str("log-package-levels");
        if (packageLevels.Length > 0)
        {
            Raw($"[WARNING] Deprecated '--log-package-levels={packageLevels}' flag is set; use '--logger=zap' flag instead");
        }
        switch (logger)
        {
            case "capnslog":
                if (!debug)
                {
                    CheckLevel(level);
                }
                if (outputs.Length != 1)
                {
                    return $"--logger=capnslog supports only 1 value in '--log-outputs', got {GoSyntax.Quote(outputs)}";
                }
                if (outputs[0] is not ("stderr" or "stdout" or "default"))
                {
                    return $"unknown log-output {GoSyntax.Quote(outputs[0])} (only supports \"default\", \"stderr\", \"stdout\")";
                }
                return null;
            case "zap":
                if (outputs.Length == 0)
                {
                    outputs = ["default"];
                    v.Put("log-outputs", outputs);
                }
                if (outputs.Length > 1 && outputs.Contains("default"))
                {
                    return "multi logoutput for \"default\" is not supported yet";
                }
                if (outputs.Contains("systemd/journal"))
                {
                    return $"log output \"systemd/journal\" is not supported by {EtcdConfigLoader.ProductName}";
                }
                CheckLevel(level);
                _zapReady = true;
                _zapOutputs = outputs;
                return null;
            default:
                return $"unknown logger option {GoSyntax.Quote(logger)}";
        }
    }

    // etcd panics on an unknown level (exit code 2).
    private void CheckLevel(string level)
    {
        if (level is not ("debug" or "info" or "warn" or "error" or "dpanic" or "panic" or "fatal"))
        {
            Err.Append($"panic: unknown level {GoSyntax.Quote(level)}\n\n");
            throw new ExitException(2);
        }
    }

    private EtcdOptions Build(FlagValues v)
    {
        string? tlsVersionError = TlsVersionError(v);
        if (tlsVersionError != null)
        {
            throw VerifyError(tlsVersionError);
        }
        string? tlsStartError = TlsStartError(v);
        if (tlsStartError != null)
        {
            throw StartError(tlsStartError);
        }
        string name = v.Str("name");
        var ap = v.Urls("initial-advertise-peer-urls").Urls;
        string initialCluster = v.Str("initial-cluster");
        if (name != "default" && initialCluster == DefaultInitialCluster)
        {
            string n = name.Length == 0 ? "default" : name;
            initialCluster = string.Join(",", ap.Select(u => n + "=" + u.Text));
        }
        string logger = v.Str("logger");
        string level = v.Str("log-level");
        string tokenType = v.Str("auth-token").Split(',')[0];
        if (tokenType is not ("simple" or "jwt" or ""))
        {
            // etcd's auth.NewTokenProvider, reported as etcdserver.NewServer and etcdmain report it.
            const string invalid = "auth: invalid auth options";
            if (_zapReady)
            {
                Zap(LogLevel.Warning, "auth/store.go:1394", "unknown token type", ("type", tokenType), ("error", invalid));
                Zap(LogLevel.Warning, "etcdserver/server.go:573", "failed to create token provider", ("error", invalid));
            }
            else
            {
                Capnslog(LogLevel.Error, "auth", $"unknown token type: {tokenType}");
                Capnslog(LogLevel.Warning, "etcdserver", $"failed to create token provider,err is {invalid}");
            }
            throw StartError(invalid);
        }
        var options = new EtcdOptions
        {
            Name = name,
            DataDir = v.Str("data-dir"),
            WalDir = v.Str("wal-dir"),
            ListenClientUrls = ToUris("listen-client-urls", v.Urls("listen-client-urls").Urls),
            AdvertiseClientUrls = ToUris("advertise-client-urls", v.Urls("advertise-client-urls").Urls),
            ListenPeerUrls = ToUris("listen-peer-urls", v.Urls("listen-peer-urls").Urls),
            InitialAdvertisePeerUrls = ToUris("initial-advertise-peer-urls", ap),
            ListenMetricsUrls = ToUris("listen-metrics-urls", v.Urls("listen-metrics-urls").Urls),
            InitialCluster = initialCluster,
            InitialClusterToken = v.Str("initial-cluster-token"),
            InitialClusterState = v.Str("initial-cluster-state"),
            SnapshotCount = v.Uint("snapshot-count"),
            HeartbeatIntervalMs = (int)v.Uint("heartbeat-interval"),
            ElectionTimeoutMs = (int)v.Uint("election-timeout"),
            QuotaBackendBytes = v.Int("quota-backend-bytes"),
            BcryptCost = (int)Math.Min(v.Uint("bcrypt-cost"), int.MaxValue),
            AuthToken = v.Str("auth-token"),
            AuthTokenTtl = TimeSpan.FromSeconds(v.Uint("auth-token-ttl")),
            MaxRequestBytes = ToInt("max-request-bytes", v.Uint("max-request-bytes")),
            MaxTxnOps = ToInt("max-txn-ops", v.Uint("max-txn-ops")),
            ExperimentalEnableLeaseCheckpoint = v.Bool("experimental-enable-lease-checkpoint"),
            ExperimentalWatchProgressNotifyInterval = v.DurationNs("experimental-watch-progress-notify-interval") is > 0 and var wpn ? FromNs(wpn) : TimeSpan.FromMinutes(10),
            GrpcKeepaliveIntervalMs = ToMs(v.DurationNs("grpc-keepalive-interval")),
            GrpcKeepaliveTimeoutMs = ToMs(v.DurationNs("grpc-keepalive-timeout")),
            MaxConcurrentStreams = v.Uint32("max-concurrent-streams") == uint.MaxValue ? 0 : v.Uint32("max-concurrent-streams"),
            Logger = logger,
            LogLevel = level,
            LogOutputs = v.Strings("log-outputs"),
            ClientTls = new TlsSettings
            {
                CertFile = v.Str("cert-file"),
                KeyFile = v.Str("key-file"),
                TrustedCaFile = v.Str("trusted-ca-file"),
                ClientCertAuth = v.Bool("client-cert-auth"),
                CrlFile = v.Str("client-crl-file"),
                AutoTls = v.Bool("auto-tls"),
            },
            PeerTls = new TlsSettings
            {
                CertFile = v.Str("peer-cert-file"),
                KeyFile = v.Str("peer-key-file"),
                TrustedCaFile = v.Str("peer-trusted-ca-file"),
                ClientCertAuth = v.Bool("peer-client-cert-auth"),
                CrlFile = v.Str("peer-crl-file"),
                AutoTls = v.Bool("peer-auto-tls"),
            },
            CipherSuites = v.Strings("cipher-suites"),
            TlsMinVersion = v.Str("tls-min-version"),
            SelfSignedCertValidityYears = ToInt("self-signed-cert-validity", v.Uint("self-signed-cert-validity")),
            PeerCertAllowedCn = v.Str("peer-cert-allowed-cn"),
            PeerCertAllowedHostname = v.Str("peer-cert-allowed-hostname"),
            AutoCompactionMode = v.Str("auto-compaction-mode"),
            AutoCompactionRetention = v.Str("auto-compaction-retention"),
            PreVote = v.Bool("pre-vote"),
            StrictReconfigCheck = v.Bool("strict-reconfig-check"),
            ForceNewCluster = v.Bool("force-new-cluster"),
            BackendBatchInterval = FromNs(v.DurationNs("backend-batch-interval")),
            BackendBatchLimit = (int)Math.Clamp(v.Int("backend-batch-limit"), 0, int.MaxValue),
            MaxSnapshots = v.Uint("max-snapshots"),
            MaxWals = v.Uint("max-wals"),
            UnsafeNoFsync = v.Bool("unsafe-no-fsync"),
            ExperimentalCompactionBatchLimit = (int)Math.Clamp(v.Int("experimental-compaction-batch-limit"), int.MinValue, int.MaxValue),
            ExperimentalInitialCorruptCheck = v.Bool("experimental-initial-corrupt-check"),
            ExperimentalCorruptCheckTime = FromNs(v.DurationNs("experimental-corrupt-check-time")),
            Metrics = v.Str("metrics"),
            EnableGrpcGateway = v.Bool("enable-grpc-gateway"),
            EnableV2 = v.Bool("enable-v2"),
            EnableDashboard = v.Bool("enable-dashboard"),
            Cors = v.Urls("cors").Values.OrderBy(s => s, StringComparer.Ordinal).ToArray(),
            HostWhitelist = v.Strings("host-whitelist"),
            InitialElectionTickAdvance = v.Bool("initial-election-tick-advance"),
            ExperimentalWarningApplyDuration = FromNs(v.DurationNs("experimental-warning-apply-duration")),
            ExperimentalEnableLeaseCheckpointPersist = v.Bool("experimental-enable-lease-checkpoint-persist"),
            ExperimentalPeerSkipClientSanVerification = v.Bool("experimental-peer-skip-client-san-verification"),
            LogPackageLevels = logger == "capnslog" ? PackageLevels(v.Str("log-package-levels")) : "",
        };
        return options;
    }

    // capnslog's ParseLogLevelConfig as etcd's setupLogging applies it: a bad value is warned about and dropped.
    private string PackageLevels(string text)
    {
        if (text.Length == 0)
        {
            return "";
        }
        try
        {
            EtcdLogging.ParsePackageLevels(text);
            return text;
        }
        catch (FormatException e)
        {
            Capnslog(LogLevel.Warning, "embed", $"couldn't parse log level string: {e.Message}, continuing with default levels");
            return "";
        }
    }

    // etcd 3.5's embed.Config.Validate checks of --tls-min-version (reported as flag errors).
    private static string? TlsVersionError(FlagValues v)
    {
        string min = v.Str("tls-min-version");
        if (min is not ("" or "TLS1.2" or "TLS1.3"))
        {
            return $"unexpected TLS version {GoSyntax.Quote(min)} (must be one of: TLS1.2, TLS1.3)";
        }
        if (min == "TLS1.3" && v.Strings("cipher-suites").Length > 0)
        {
            return "cipher suites cannot be configured when only TLS1.3 is enabled";
        }
        if (v.Uint("self-signed-cert-validity") == 0)
        {
            return "--self-signed-cert-validity must be at least 1 (years)";
        }
        return null;
    }

    // The TLS errors etcd's embed.StartEtcd reports (configurePeerListeners, then configureClientListeners), in its order.
    private static string? TlsStartError(FlagValues v)
    {
        foreach (string suite in v.Strings("cipher-suites"))
        {
            if (!Etcd.Server.Tls.GoCipherSuites.TryParse(suite, out _))
            {
                return $"unexpected TLS cipher suite {GoSyntax.Quote(suite)}";
            }
        }
        string cn = v.Str("peer-cert-allowed-cn");
        string host = v.Str("peer-cert-allowed-hostname");
        bool peerTls = v.Str("peer-cert-file").Length > 0 || v.Str("peer-key-file").Length > 0 || v.Bool("peer-auto-tls");
        if (peerTls && cn.Length > 0 && host.Length > 0 && v.Urls("listen-peer-urls").Urls.Any(u => u.Scheme == "https"))
        {
            return $"AllowedCN and AllowedHostname are mutually exclusive (cn={GoSyntax.Quote(cn)}, hostname={GoSyntax.Quote(host)})";
        }
        bool clientTls = v.Str("cert-file").Length > 0 || v.Str("key-file").Length > 0 || v.Bool("auto-tls");
        foreach (var u in v.Urls("listen-client-urls").Urls)
        {
            if (u.Scheme is "https" or "unixs" && !clientTls)
            {
                return $"TLS key/cert (--cert-file, --key-file) must be provided for client url {u.Text} with HTTPS scheme";
            }
        }
        return null;
    }

    // etcd's fatal start failure (etcdmain/etcd.go): "discovery failed" with zap, the bare error with capnslog; exit 1.
    private ExitException StartError(string message)
    {
        if (_zapReady)
        {
            Zap(LogLevel.Critical, "etcdmain/etcd.go:271", "discovery failed", ("error", message));
        }
        else
        {
            Capnslog(LogLevel.Critical, "etcdmain", message);
        }
        return new ExitException(1);
    }

    private IReadOnlyList<Uri> ToUris(string flag, List<GoUrl> urls)
    {
        var list = new List<Uri>(urls.Count);
        foreach (var u in urls)
        {
            if (!Uri.TryCreate(u.Text, UriKind.Absolute, out var uri))
            {
                throw VerifyError($"--{flag}: URL {GoSyntax.Quote(u.Text)} is not supported by {EtcdConfigLoader.ProductName}");
            }
            list.Add(uri);
        }
        return list;
    }

    private int ToInt(string flag, ulong value)
    {
        if (value > int.MaxValue)
        {
            throw VerifyError($"--{flag}={value} is larger than {EtcdConfigLoader.ProductName} supports ({int.MaxValue})");
        }
        return (int)value;
    }

    private static int ToMs(long ns) => ns <= 0 ? 0 : (int)Math.Min(int.MaxValue, ns / 1_000_000);

    private static TimeSpan FromNs(long ns) => TimeSpan.FromTicks(ns / 100);
}
