using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl;

/// <summary>
/// What a command needs from etcdctl's global flags (etcdctl/ctlv3/command/global.go): the ETCDCTL_* environment
/// applied to the inherited flags, the printer, the client (endpoints, timeouts, TLS, user), per-call deadlines
/// and the token, and the translation of failures into etcdctl's error text and exit codes. One per run.
/// </summary>
public sealed class Ctl : IDisposable
{
    private readonly CommandRun _run;
    private EtcdClient? _client;
    private Etcd.Api.Grpc.Metadata? _token;

    private Ctl(CommandRun run, Printer display)
    {
        _run = run;
        Display = display;
    }

    /// <summary>The printer chosen by <c>-w</c>/<c>--hex</c>.</summary>
    public Printer Display { get; }

    /// <summary>The console.</summary>
    public CtlConsole Console => _run.Console;

    /// <summary>The command being run.</summary>
    public Command Command => _run.Command;

    /// <summary>The flag <paramref name="name"/> of the command.</summary>
    public Flag Flag(string name) => _run.Command.Get(name);

    /// <summary>
    /// Applies ETCDCTL_* variables to the flags the command inherits (flags.SetPflagsFromEnv) and chooses the
    /// printer (initDisplayFromCmd); etcdctl does this when a command creates its client.
    /// </summary>
    public static Ctl From(CommandRun run, bool env = true)
    {
        if (env)
        {
            ApplyEnvironment(run.Command, run.Console);
        }

        if (run.Command.Get("discovery-srv").Raw.Length > 0 || run.Command.Get("discovery-srv-name").Raw.Length > 0)
        {
            throw new ExitException(ExitException.ExitBadFeature, "--discovery-srv (DNS SRV discovery) is not supported by this etcdctl yet; give --endpoints");
        }

        if (env && run.Command.Get("debug").Bool)
        {
            // etcdctl --debug prints every inherited flag as its environment variable (and enables gRPC logging)
            foreach (var f in run.Command.InheritedFlags)
            {
                var value = f.Kind == FlagKind.StringSlice ? "[" + string.Join(',', f.Slice) : f.Raw;
                run.Console.Err("ETCDCTL_" + f.Name.Replace('-', '_').ToUpperInvariant() + "=" + value + (f.Kind == FlagKind.StringSlice ? "]" : string.Empty) + "\n");
            }
        }

        var display = Printer.Create(run.Command.Get("write-out").Raw, run.Command.Get("hex").Bool, run.Console)
            ?? throw new ExitException(ExitException.ExitBadFeature, "unsupported output format");
        return new Ctl(run, display);
    }

    private static void ApplyEnvironment(Command cmd, CtlConsole console)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var alreadySet = new HashSet<string>(StringComparer.Ordinal);
        var flags = cmd.InheritedFlags.ToList();
        var watch = cmd.Name == "watch";
        foreach (var f in flags)
        {
            var key = "ETCDCTL_" + f.Name.Replace('-', '_').ToUpperInvariant();
            if (f.Changed)
            {
                alreadySet.Add(key);
                continue;
            }

            var value = Environment.GetEnvironmentVariable(key);
            if (!string.IsNullOrEmpty(value))
            {
                used.Add(key);
                var error = f.Set(value);
                if (error is not null)
                {
                    throw new ExitException(ExitException.ExitError, $"invalid value {GoFormat.Quote(value)} for {key}: {error}");
                }
            }
        }

        if (watch)
        {
            used.Add("ETCDCTL_WATCH_KEY");
            used.Add("ETCDCTL_WATCH_RANGE_END");
        }

        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (used.Contains(key))
            {
                continue;
            }

            if (alreadySet.Contains(key) && !string.IsNullOrEmpty((string?)e.Value))
            {
                throw new ExitException(ExitException.ExitError, null)
                    .Also(() => Log('C', $"conflicting environment variable {GoFormat.Quote(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"));
            }

            if (key.StartsWith("ETCDCTL_", StringComparison.Ordinal))
            {
                Log('W', $"unrecognized environment variable {key}={e.Value}");
            }
        }

        // capnslog's line as etcd's pkg/flags prints it.
        void Log(char level, string message) =>
            console.Err($"{DateTime.Now:yyyy-MM-dd HH:mm:ss.ffffff} {level} | pkg/flags: {message}\n");
    }

    /// <summary>The endpoints (<c>--endpoints</c>, trimmed).</summary>
    public IReadOnlyList<string> Endpoints => Flag("endpoints").Slice.Select(e => e.Trim()).ToArray();

    /// <summary><c>--command-timeout</c>.</summary>
    public TimeSpan CommandTimeout => Flag("command-timeout").Duration;

    /// <summary>The client over <see cref="Endpoints"/>, created (and authenticated) on first use.</summary>
    public EtcdClient Client => _client ??= Connect(Endpoints);

    /// <summary>Creates a client for <paramref name="endpoints"/> with the global flags (clientConfigFromCmd + mustClient).</summary>
    public EtcdClient Connect(IReadOnlyList<string> endpoints, bool authenticate = true)
    {
        var tls = TlsFromFlags();
        var client = EtcdClient.Create(new EtcdClientOptions
        {
            Endpoints = endpoints,
            DialTimeout = Flag("dial-timeout").Duration,
            DialKeepAliveTime = Flag("keepalive-time").Duration,
            DialKeepAliveTimeout = Flag("keepalive-timeout").Duration,
            Tls = tls,
        });
        if (authenticate && _token is null && User() is { } user)
        {
            try
            {
                var r = client.UnaryAsync(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = user.Name, Password = user.Password },
                    new CallOptions { Timeout = Flag("dial-timeout").Duration }).GetAwaiter().GetResult();
                _token = [new KeyValuePair<string, string>("token", r.Token)];
            }
            catch (EtcdException e) when (e.Detail == "etcdserver: authentication is not enabled")
            {
                // clientv3 needs no token then
            }
            catch (Exception e) when (e is RpcException)
            {
                throw new ExitException(ExitException.ExitBadConnection, ErrorText(e));
            }
        }

        return client;
    }

    private EtcdClientTls? TlsFromFlags()
    {
        string? Check(string name)
        {
            var f = Flag(name);
            if (f.Changed && f.Raw.Length == 0)
            {
                throw new ExitException(ExitException.ExitBadArgs, $"empty string is passed to --{name} option");
            }

            return f.Raw.Length == 0 ? null : f.Raw;
        }

        var cert = Check("cert");
        var key = Check("key");
        var ca = Check("cacert");
        var skip = Flag("insecure-skip-tls-verify").Bool;
        var insecure = Flag("insecure-transport").Bool;
        if (cert is null && key is null && ca is null)
        {
            return insecure ? null : new EtcdClientTls { InsecureSkipVerify = skip };
        }

        try
        {
            return EtcdClientTls.FromFiles(ca, cert, key, skip);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new ExitException(ExitException.ExitBadArgs, e is FileNotFoundException f ? $"open {f.FileName}: no such file or directory" : e.Message);
        }
    }

    private (string Name, string Password)? User()
    {
        var user = Flag("user").Raw;
        var password = Flag("password").Raw;
        if (user.Length == 0)
        {
            return null;
        }

        if (password.Length > 0)
        {
            return (user, password);
        }

        var split = user.Split(':', 2);
        if (split.Length == 2)
        {
            return (split[0], split[1]);
        }

        Console.Out("Password: ");
        var line = ReadLine() ?? string.Empty;
        Console.Out("\n");
        return (user, line);
    }

    /// <summary>Reads one line of stdin (without the newline), or null at its end.</summary>
    public string? ReadLine()
    {
        var bytes = new List<byte>();
        var stdin = Console.Stdin;
        while (true)
        {
            var b = stdin.ReadByte();
            if (b < 0)
            {
                return bytes.Count == 0 ? null : Encoding.UTF8.GetString(bytes.ToArray());
            }

            if (b == '\n')
            {
                return Encoding.UTF8.GetString(bytes.ToArray());
            }

            bytes.Add((byte)b);
        }
    }

    /// <summary>Call options with the token and, unless <paramref name="timeout"/> is infinite, a deadline (default: <c>--command-timeout</c>).</summary>
    public CallOptions Options(TimeSpan? timeout = null)
    {
        var t = timeout ?? CommandTimeout;
        return new CallOptions { Headers = _token, Timeout = t == Timeout.InfiniteTimeSpan ? null : t };
    }

    /// <summary>
    /// A unary call through the client with the command timeout; a connection that cannot be made is retried until the
    /// deadline, as clientv3 waits for its balancer, and then fails with <c>context deadline exceeded</c>.
    /// </summary>
    public Task<TResponse> CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, TimeSpan? timeout = null, string? endpoint = null)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var client = Client;
        return CallAsync(client, method, request, timeout, endpoint);
    }

    /// <summary>As <see cref="CallAsync{TRequest, TResponse}(Method{TRequest, TResponse}, TRequest, TimeSpan?, string?)"/> through <paramref name="client"/>.</summary>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(EtcdClient client, Method<TRequest, TResponse> method, TRequest request, TimeSpan? timeout = null, string? endpoint = null)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var t = timeout ?? CommandTimeout;
        var deadline = t == Timeout.InfiniteTimeSpan ? DateTime.MaxValue : DateTime.UtcNow + t;
        while (true)
        {
            var options = new CallOptions { Headers = _token, Deadline = deadline == DateTime.MaxValue ? null : deadline };
            try
            {
                return endpoint is null
                    ? await client.UnaryAsync(method, request, options).ConfigureAwait(false)
                    : await client.GetChannel(endpoint).UnaryAsync(method, request, options).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.Status == StatusCode.Unavailable && e.InnerException is HttpRequestException && !(e is EtcdException))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    WarnRetry(endpoint ?? client.Endpoints[0].Authority, "rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure");
                    throw new RpcException(StatusCode.DeadlineExceeded, "context deadline exceeded");
                }

                await Task.Delay(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                WarnRetry(endpoint ?? client.Endpoints[0].Authority, e.Status == StatusCode.DeadlineExceeded ? "context deadline exceeded" : $"rpc error: code = {GoCode(e.Status)} desc = {e.Detail}");
                throw;
            }
        }
    }

    // clientv3's retry interceptor logs every failed unary call at warn level (zap JSON on stderr).
    private void WarnRetry(string endpoint, string error)
    {
        var sb = new StringBuilder("{\"level\":\"warn\",\"ts\":\"");
        sb.Append(DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        sb.Append("\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\",\"target\":\"endpoint://client-");
        sb.Append(Guid.NewGuid().ToString("D")).Append('/').Append(endpoint).Append("\",\"attempt\":0,\"error\":");
        GoFormat.JsonString(sb, error);
        Console.Err(sb.Append("}\n").ToString());
    }

    /// <summary>Go's <c>err.Error()</c> for a failed call: etcd's own message, <c>context deadline exceeded</c>, or <c>rpc error: code = X desc = Y</c>.</summary>
    public static string ErrorText(Exception e) => e switch
    {
        EtcdException ee => ee.Detail,
        RpcException { Status: StatusCode.DeadlineExceeded } => "context deadline exceeded",
        RpcException { Status: StatusCode.Cancelled, Detail: "context canceled" } => "context canceled",
        RpcException r => $"rpc error: code = {GoCode(r.Status)} desc = {r.Detail}",
        _ => e.Message,
    };

    private static string GoCode(StatusCode c) => c == StatusCode.Cancelled ? "Canceled" : c.ToString();

    /// <summary>Runs a call and turns a failure into <c>ExitWithError(code, err)</c> with <paramref name="wrap"/> around the text.</summary>
    public async Task<T> MustAsync<T>(Task<T> call, int code = ExitException.ExitError, Func<string, string>? wrap = null)
    {
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            var text = ErrorText(e);
            throw new ExitException(code, wrap is null ? text : wrap(text));
        }
    }

    /// <summary>Closes the client.</summary>
    public void Dispose() => _client?.Dispose();
}

/// <summary>Small helpers.</summary>
internal static class ExceptionExtensions
{
    /// <summary>Runs <paramref name="action"/> and returns <paramref name="e"/> (to print before throwing).</summary>
    public static T Also<T>(this T e, Action action)
    {
        action();
        return e;
    }
}
