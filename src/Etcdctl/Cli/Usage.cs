using System.Text;

namespace Etcd.Ctl.Cli;

/// <summary>etcdctl's usage text (etcdctl/ctlv3/help.go's template through Go's tabwriter), printed for help and flag errors.</summary>
public static class Usage
{
    /// <summary>The etcd version printed in the root usage.</summary>
    public const string Version = "3.4.23";

    /// <summary>The API version printed for commands with subcommands.</summary>
    public const string ApiVersion = "3.4";

    /// <summary>The usage text of <paramref name="cmd"/>.</summary>
    public static string Of(Command cmd)
    {
        var sb = new StringBuilder();
        sb.Append("NAME:\n");
        sb.Append('\t').Append(cmd.Parent is null ? cmd.Name : CmdName(cmd, cmd.Root)).Append(" - ").Append(cmd.Short).Append('\n');
        sb.Append("\nUSAGE:\n\t").Append(cmd.UseLine).Append('\n');
        if (cmd.Parent is null)
        {
            sb.Append("\nVERSION:\n\t").Append(Version).Append('\n');
        }

        var subs = SubCommands(cmd).ToList();
        if (subs.Count > 0)
        {
            sb.Append("\nAPI VERSION:\n\t").Append(ApiVersion).Append('\n');
            sb.Append("\n\nCOMMANDS:\n");
            foreach (var s in subs.Where(s => s.Runnable))
            {
                sb.Append('\t').Append(CmdName(s, cmd)).Append('\t').Append(s.Short).Append('\n');
            }
        }

        if (cmd.Long.Length > 0)
        {
            sb.Append("\nDESCRIPTION:\n");
            foreach (var line in cmd.Long.Trim('\n', '\t', ' ').Split('\n'))
            {
                sb.Append('\t').Append(line).Append('\n');
            }
        }

        var local = cmd.LocalFlags.ToList();
        if (local.Count > 0)
        {
            sb.Append("\nOPTIONS:\n").Append(FlagUsages(local));
        }

        var inherited = cmd.InheritedFlags.ToList();
        if (inherited.Count > 0)
        {
            sb.Append("\nGLOBAL OPTIONS:\n").Append(FlagUsages(inherited));
        }

        sb.Append('\n');
        return TabWriter.Format(sb.ToString());
    }

    private static IEnumerable<Command> SubCommands(Command cmd)
    {
        foreach (var c in cmd.Commands)
        {
            yield return c;
            foreach (var s in SubCommands(c))
            {
                yield return s;
            }
        }
    }

    private static string CmdName(Command cmd, Command start)
    {
        var parts = new List<string> { cmd.Name };
        while (cmd.Parent is not null && cmd.Parent.Name != start.Name)
        {
            cmd = cmd.Parent;
            parts.Insert(0, cmd.Name);
        }

        return string.Join(' ', parts);
    }

    private static string FlagUsages(IEnumerable<Flag> flags)
    {
        var sb = new StringBuilder();
        foreach (var f in flags)
        {
            sb.Append(f.Shorthand is null ? "      --" : "  -" + f.Shorthand + ", --").Append(f.Name);
            if (f.NoOptDefVal is not null)
            {
                sb.Append('[');
            }

            sb.Append('=').Append(f.Kind == FlagKind.String ? GoFormat.Quote(f.DefValue) : f.DefValue);
            if (f.NoOptDefVal is not null)
            {
                sb.Append(']');
            }

            sb.Append('\t').Append(f.Usage).Append('\n');
        }

        return sb.ToString();
    }
}
