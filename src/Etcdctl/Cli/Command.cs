namespace Etcd.Ctl.Cli;

/// <summary>
/// One command of the tree, as cobra defines it: <see cref="Use"/> (its name is the first word), short and long
/// help, local flags, persistent flags (inherited by subcommands), subcommands, and the action. Built once per run;
/// not thread-safe.
/// </summary>
public sealed class Command
{
    private readonly List<Command> _commands = [];

    /// <summary>Creates a command.</summary>
    public Command(string use, string @short, Func<CommandRun, Task>? run = null, string? @long = null)
    {
        Use = use;
        Short = @short;
        Run = run;
        Long = @long ?? string.Empty;
        Flags.Bool("help", false, "help for " + Name, "h");
    }

    /// <summary>The usage line after the parent's path, e.g. <c>get [options] &lt;key&gt; [range_end]</c>.</summary>
    public string Use { get; }

    /// <summary>The one-line description.</summary>
    public string Short { get; }

    /// <summary>The long description (may be empty).</summary>
    public string Long { get; }

    /// <summary>The action; null for a command that only groups subcommands.</summary>
    public Func<CommandRun, Task>? Run { get; set; }

    /// <summary>Flags of this command only.</summary>
    public FlagSet Flags { get; } = new();

    /// <summary>Flags of this command and all its subcommands.</summary>
    public FlagSet PersistentFlags { get; } = new();

    /// <summary>The parent, or null for the root.</summary>
    public Command? Parent { get; private set; }

    /// <summary>The name: the first word of <see cref="Use"/>.</summary>
    public string Name => Use.Split(' ')[0];

    /// <summary>The subcommands sorted by name, as cobra lists them.</summary>
    public IReadOnlyList<Command> Commands => _commands.OrderBy(c => c.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Whether the command has an action.</summary>
    public bool Runnable => Run is not null;

    /// <summary>Adds subcommands.</summary>
    public Command Add(params Command[] commands)
    {
        foreach (var c in commands)
        {
            c.Parent = this;
            _commands.Add(c);
        }

        return this;
    }

    /// <summary>The root of the tree.</summary>
    public Command Root => Parent?.Root ?? this;

    /// <summary>The full path, e.g. <c>etcdctl lease grant</c>.</summary>
    public string CommandPath => Parent is null ? Name : Parent.CommandPath + " " + Name;

    /// <summary>cobra's UseLine: the parent's path, the use text and <c>[flags]</c>.</summary>
    public string UseLine => (Parent is null ? Use : Parent.CommandPath + " " + Use) + (Use.Contains("[flags]", StringComparison.Ordinal) ? string.Empty : " [flags]");

    /// <summary>Flags declared on this command (local and persistent), sorted by name.</summary>
    public IEnumerable<Flag> LocalFlags => Flags.All.Concat(PersistentFlags.All).OrderBy(f => f.Name, StringComparer.Ordinal);

    /// <summary>Persistent flags of the ancestors, sorted by name.</summary>
    public IEnumerable<Flag> InheritedFlags
    {
        get
        {
            var list = new List<Flag>();
            for (var p = Parent; p is not null; p = p.Parent)
            {
                list.AddRange(p.PersistentFlags.All.Where(f => list.All(l => l.Name != f.Name)));
            }

            return list.OrderBy(f => f.Name, StringComparer.Ordinal);
        }
    }

    /// <summary>Every flag the command accepts.</summary>
    public IEnumerable<Flag> AllFlags => LocalFlags.Concat(InheritedFlags);

    /// <summary>Finds an accepted flag by long name.</summary>
    public Flag? FindFlag(string name) => AllFlags.FirstOrDefault(f => f.Name == name);

    /// <summary>Finds an accepted flag by shorthand.</summary>
    public Flag? FindShorthand(string shorthand) => AllFlags.FirstOrDefault(f => f.Shorthand == shorthand);

    /// <summary>The flag named <paramref name="name"/>; the command must declare or inherit it.</summary>
    public Flag Get(string name) => FindFlag(name) ?? throw new InvalidOperationException("flag " + name + " is not defined for " + CommandPath);
}

/// <summary>A command being run: the command, its positional arguments, the raw process arguments and the console.</summary>
/// <param name="Command">The command.</param>
/// <param name="Args">Positional arguments after flag parsing.</param>
/// <param name="OsArgs">The process arguments (without the program name), as etcdctl's watch reads os.Args.</param>
/// <param name="Console">The process streams.</param>
public sealed record CommandRun(Command Command, IReadOnlyList<string> Args, IReadOnlyList<string> OsArgs, CtlConsole Console);
