namespace Etcd.Utl;

/// <summary>
/// The <c>etcdutl</c> command line: <c>snapshot status</c>, <c>snapshot restore</c>, <c>defrag</c>, <c>version</c>,
/// <c>help</c>. Output and exit codes follow etcd (success 0; errors print <c>Error: MSG</c> on stderr and exit 1;
/// an unsupported output format exits 4, etcdctl's ExitBadFeature). Not thread-safe when logging to shared writers.
/// </summary>
public static class EtcdutlMain
{
    /// <summary>The etcd version this tool reports and matches.</summary>
    public const string Version = "3.4.23";

    /// <summary>The process entry point.</summary>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs one command with <paramref name="args"/> (without the program name), writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        try
        {
            return Dispatch(new Args(args), stdout, stderr);
        }
        catch (UsageException e)
        {
            stderr.WriteLine("Error: " + e.Message);
            return 1;
        }
    }

    private static int Dispatch(Args a, TextWriter stdout, TextWriter stderr)
    {
        var output = a.Flag("write-out", "w") ?? "simple";
        a.Flag("hex");
        if (a.Bool("help", "h") || a.Positional.Count == 0 || a.Positional[0] == "help")
        {
            var topic = a.Positional.Count > 0 && a.Positional[0] == "help" ? a.Positional.Skip(1).ToList() : a.Positional;
            stdout.Write(string.Join(' ', topic) switch
            {
                "snapshot" => SnapshotHelp,
                "snapshot status" => StatusHelp,
                "snapshot restore" => RestoreHelp,
                "defrag" => DefragHelp,
                "version" => VersionHelp,
                _ => Help,
            });
            return 0;
        }
        switch (a.Positional[0])
        {
            case "version":
                a.EnsureConsumed();
                stdout.WriteLine($"etcdutl version: {Version}");
                stdout.WriteLine("API version: 3.4");
                return 0;
            case "defrag":
                {
                    var dir = a.Flag("data-dir") ?? "";
                    a.EnsureConsumed();
                    if (dir.Length == 0)
                    {
                        stderr.WriteLine("Error: required flag(s) \"data-dir\" not set");
                        return 1;
                    }
                    try
                    {
                        Defrag.Run(dir);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or Storage.Bolt.BoltException)
                    {
                        stderr.WriteLine($"Error: Failed to defragment etcd data[{dir}] ({e.Message})");
                        return 1;
                    }
                    stdout.WriteLine($"Finished defragmenting etcd member[{dir}]");
                    return 0;
                }
            case "snapshot" when a.Positional.Count >= 2 && a.Positional[1] == "status":
                {
                    a.EnsureConsumed();
                    if (a.Positional.Count != 3)
                    {
                        stderr.WriteLine("Error: snapshot status requires exactly one argument");
                        return 128;
                    }
                    if (!Printers.Formats.Contains(output))
                    {
                        stderr.WriteLine("Error: unsupported output format");
                        return 4;
                    }
                    SnapshotStatusResult st;
                    try
                    {
                        st = SnapshotStatusResult.Read(a.Positional[2]);
                    }
                    catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or Storage.Bolt.BoltException)
                    {
                        stderr.WriteLine("Error: " + e.Message);
                        return 1;
                    }
                    var text = Printers.DbStatus(output, st);
                    if (text == null)
                    {
                        stderr.WriteLine($"Error: {output} not supported as output format");
                        return 4;
                    }
                    stdout.Write(text);
                    return 0;
                }
            case "snapshot" when a.Positional.Count >= 2 && a.Positional[1] == "restore":
                {
                    var o = new RestoreOptions { SnapshotPath = "" };
                    var name = a.Flag("name") ?? o.Name;
                    o = o with
                    {
                        Name = name,
                        DataDir = a.Flag("data-dir") ?? "",
                        WalDir = a.Flag("wal-dir") ?? "",
                        PeerUrls = a.Flag("initial-advertise-peer-urls") ?? o.PeerUrls,
                        InitialCluster = a.Flag("initial-cluster") ?? o.InitialCluster,
                        InitialClusterToken = a.Flag("initial-cluster-token") ?? o.InitialClusterToken,
                        SkipHashCheck = a.Bool("skip-hash-check"),
                    };
                    a.EnsureConsumed();
                    if (a.Positional.Count != 3)
                    {
                        stderr.WriteLine("Error: snapshot restore requires exactly one argument");
                        return 128;
                    }
                    o = o with { SnapshotPath = a.Positional[2] };
                    try
                    {
                        SnapshotRestore.Run(o, new ZapLog(stderr));
                    }
                    catch (Exception e) when (e is RestoreException or IOException or UnauthorizedAccessException or Storage.Bolt.BoltException or Storage.Wal.WalException)
                    {
                        stderr.WriteLine("Error: " + e.Message);
                        return 1;
                    }
                    return 0;
                }
            case "snapshot":
                a.EnsureConsumed();
                stdout.Write(SnapshotHelp);
                return 0;
            default:
                stderr.WriteLine($"Error: unknown command \"{a.Positional[0]}\" for \"etcdutl\"");
                stderr.WriteLine("Run 'etcdutl --help' for usage.");
                return 1;
        }
    }

    private const string GlobalFlags = """
        Global Flags:
          -w, --write-out string   set the output format (fields, json, protobuf, simple, table) (default "simple")

        """;

    private const string StatusHelp = """
        When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
        The items in the lists are hash, revision, total keys, total size.

        Usage:
          etcdutl snapshot status <filename> [flags]

        Flags:
          -h, --help   help for status

        """ + GlobalFlags;

    private const string RestoreHelp = """
        Restores an etcd member snapshot to an etcd directory

        Usage:
          etcdutl snapshot restore <filename> --data-dir {output dir} [options] [flags]

        Flags:
              --data-dir string                      Path to the output data directory
          -h, --help                                 help for restore
              --initial-advertise-peer-urls string   List of this member's peer URLs to advertise to the rest of the cluster (default "http://localhost:2380")
              --initial-cluster string               Initial cluster configuration for restore bootstrap (default "default=http://localhost:2380")
              --initial-cluster-token string         Initial cluster token for the etcd cluster during restore bootstrap (default "etcd-cluster")
              --name string                          Human-readable name for this member (default "default")
              --skip-hash-check                      Ignore snapshot integrity hash value (required if copied from data directory)
              --wal-dir string                       Path to the WAL directory (use --data-dir if none given)

        """ + GlobalFlags;

    private const string DefragHelp = """
        Defragments the storage of the etcd

        Usage:
          etcdutl defrag [flags]

        Flags:
              --data-dir string   Required. Defragments a data directory not in use by etcd.
          -h, --help              help for defrag

        """ + GlobalFlags;

    private const string VersionHelp = """
        Prints the version of etcdutl

        Usage:
          etcdutl version [flags]

        Flags:
          -h, --help   help for version

        """ + GlobalFlags;

    private const string SnapshotHelp = """
        Manages etcd node snapshots

        Usage:
          etcdutl snapshot [command]

        Available Commands:
          restore     Restores an etcd member snapshot to an etcd directory
          status      Gets backend snapshot status of a given file

        Flags:
          -h, --help   help for snapshot

        Global Flags:
          -w, --write-out string   set the output format (fields, json, protobuf, simple, table) (default "simple")

        Use "etcdutl snapshot [command] --help" for more information about a command.

        """;

    private const string Help = """
        A simple command line tool for etcd3 offline maintenance.

        Usage:
          etcdutl [command]

        Available Commands:
          defrag      Defragments the storage of the etcd
          help        Help about any command
          snapshot    Manages etcd node snapshots
          version     Prints the version of etcdutl

        Flags:
          -h, --help               help for etcdutl
          -w, --write-out string   set the output format (fields, json, protobuf, simple, table) (default "simple")

        Use "etcdutl [command] --help" for more information about a command.

        """;
}

/// <summary>A command-line usage error (unknown flag, missing flag value).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>cobra/pflag-style arguments: <c>--name value</c>, <c>--name=value</c>, <c>-w value</c>, bool flags, positionals.</summary>
internal sealed class Args
{
    private static readonly HashSet<string> BoolFlags = ["help", "h", "skip-hash-check", "hex"];
    private readonly Dictionary<string, string> _flags = [];
    private readonly HashSet<string> _used = [];

    public Args(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var s = args[i];
            if (s == "--")
            {
                Positional.AddRange(args[(i + 1)..]);
                break;
            }
            if (s.Length > 1 && s[0] == '-')
            {
                var body = s.TrimStart('-');
                var eq = body.IndexOf('=');
                string name, value;
                if (eq >= 0)
                {
                    name = body[..eq];
                    value = body[(eq + 1)..];
                }
                else if (BoolFlags.Contains(body))
                {
                    name = body;
                    value = "true";
                }
                else
                {
                    name = body;
                    if (i + 1 >= args.Length)
                    {
                        throw new UsageException($"flag needs an argument: {s}");
                    }
                    value = args[++i];
                }
                _flags[name] = value;
            }
            else
            {
                Positional.Add(s);
            }
        }
    }

    public List<string> Positional { get; } = [];

    public string? Flag(string name, string? shorthand = null)
    {
        _used.Add(name);
        if (shorthand != null)
        {
            _used.Add(shorthand);
            if (_flags.TryGetValue(shorthand, out var sv))
            {
                return sv;
            }
        }
        return _flags.TryGetValue(name, out var v) ? v : null;
    }

    public bool Bool(string name, string? shorthand = null)
    {
        var v = Flag(name, shorthand);
        return v != null && !v.Equals("false", StringComparison.OrdinalIgnoreCase) && v != "0";
    }

    public void EnsureConsumed()
    {
        foreach (var k in _flags.Keys)
        {
            if (!_used.Contains(k))
            {
                throw new UsageException(k.Length == 1 ? $"unknown shorthand flag: '{k}' in -{k}" : $"unknown flag: --{k}");
            }
        }
    }
}
