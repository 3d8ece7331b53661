namespace Etcd.Ctl.Cli;

/// <summary>
/// cobra's command execution as etcdctl 3.4 uses it (prefix matching on): finds the command from the arguments,
/// parses its flags as pflag does (interspersed, <c>--</c> ends flags), prints etcdctl's usage for help and flag errors,
/// and runs it. Errors print cobra's text then etcdctl's <c>Error: ...</c>; exit codes as etcdctl's.
/// </summary>
public static class CommandLine
{
    private sealed class HelpRequested : Exception;

    /// <summary>Runs <paramref name="args"/> against the tree under <paramref name="root"/>; returns the exit code.</summary>
    public static async Task<int> ExecuteAsync(Command root, IReadOnlyList<string> args, CtlConsole console)
    {
        var help = new Command("help [command]", "Help about any command", @long: "Help provides help for any command in the application.\nSimply type " + root.Name + " help [path to command] for full details.");
        help.Run = run =>
        {
            var (target, _, error) = Find(root, run.Args);
            if (error is not null)
            {
                console.Out($"Unknown help topic `{string.Join(' ', run.Args)}`\n");
                console.Out(Usage.Of(root));
            }
            else
            {
                console.Out(Usage.Of(target));
            }

            return Task.CompletedTask;
        };
        root.Add(help);

        try
        {
            var (cmd, rest, findError) = Find(root, args);
            if (findError is not null)
            {
                console.Err("Error: " + findError + "\n");
                console.Err("Run '" + cmd.CommandPath + " --help' for usage.\n");
                throw new ExitException(ExitException.ExitError, findError);
            }

            List<string> positional;
            try
            {
                positional = Parse(cmd, rest);
            }
            catch (HelpRequested)
            {
                console.Out(Usage.Of(cmd));
                return 0;
            }
            catch (FormatException e)
            {
                console.Err("Error: " + e.Message + "\n");
                console.Out(Usage.Of(cmd));
                console.Err("\n");
                throw new ExitException(ExitException.ExitError, e.Message);
            }

            if (cmd.Get("help").Bool || !cmd.Runnable)
            {
                console.Out(Usage.Of(cmd));
                return 0;
            }

            await cmd.Run!(new CommandRun(cmd, positional, args, console)).ConfigureAwait(false);
            return 0;
        }
        catch (ExitException e)
        {
            if (e.ErrorMessage is not null)
            {
                console.Err("Error: " + e.ErrorMessage + "\n");
            }

            return e.Code;
        }
    }

    /// <summary>cobra's Find: the command the arguments name, the arguments left for it, and the unknown-command error.</summary>
    public static (Command Command, List<string> Remaining, string? Error) Find(Command root, IReadOnlyList<string> args)
    {
        var cmd = root;
        var rest = args.ToList();
        while (true)
        {
            var words = StripFlags(rest, cmd);
            if (words.Count == 0)
            {
                break;
            }

            var next = FindNext(cmd, words[0]);
            if (next is null)
            {
                break;
            }

            rest.Remove(words[0]);
            cmd = next;
        }

        string? error = null;
        if (cmd.Commands.Count > 0 && cmd.Parent is null)
        {
            var words = StripFlags(rest, cmd);
            if (words.Count > 0)
            {
                error = $"unknown command {GoFormat.Quote(words[0])} for {GoFormat.Quote(cmd.CommandPath)}{Suggestions(cmd, words[0])}";
            }
        }

        return (cmd, rest, error);
    }

    private static Command? FindNext(Command cmd, string next)
    {
        var matches = new List<Command>();
        foreach (var c in cmd.Commands)
        {
            if (c.Name == next)
            {
                return c;
            }

            if (c.Name.StartsWith(next, StringComparison.Ordinal))
            {
                matches.Add(c);
            }
        }

        return matches.Count == 1 ? matches[0] : null;
    }

    private static string Suggestions(Command cmd, string typed)
    {
        var found = new List<string>();
        foreach (var c in cmd.Commands)
        {
            if (c.Name == "help" || !(c.Runnable || c.Commands.Count > 0))
            {
                continue;
            }

            if (Levenshtein(typed.ToLowerInvariant(), c.Name.ToLowerInvariant()) <= 2 || c.Name.ToLowerInvariant().StartsWith(typed.ToLowerInvariant(), StringComparison.Ordinal))
            {
                found.Add(c.Name);
            }
        }

        return found.Count == 0 ? string.Empty : "\n\nDid you mean this?\n" + string.Concat(found.Select(f => "\t" + f + "\n"));
    }

    private static int Levenshtein(string s, string t)
    {
        var d = new int[s.Length + 1, t.Length + 1];
        for (var i = 0; i <= s.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= t.Length; j++)
        {
            d[0, j] = j;
        }

        for (var j = 1; j <= t.Length; j++)
        {
            for (var i = 1; i <= s.Length; i++)
            {
                d[i, j] = s[i - 1] == t[j - 1] ? d[i - 1, j - 1] : Math.Min(Math.Min(d[i - 1, j], d[i, j - 1]), d[i - 1, j - 1]) + 1;
            }
        }

        return d[s.Length, t.Length];
    }

    // cobra's stripFlags: the words that are not flags or flag values (a flag without '=' that is not a bool takes the next word).
    private static List<string> StripFlags(List<string> args, Command cmd)
    {
        var words = new List<string>();
        var i = 0;
        while (i < args.Count)
        {
            var s = args[i++];
            if (s == "--")
            {
                break;
            }

            if (s.StartsWith("--", StringComparison.Ordinal) && !s.Contains('=', StringComparison.Ordinal) && cmd.FindFlag(s[2..])?.NoOptDefVal is null)
            {
                if (args.Count - i <= 1)
                {
                    break;
                }

                i++;
                continue;
            }

            if (s.StartsWith('-') && !s.Contains('=', StringComparison.Ordinal) && s.Length == 2 && cmd.FindShorthand(s[1..])?.NoOptDefVal is null)
            {
                if (args.Count - i <= 1)
                {
                    break;
                }

                i++;
                continue;
            }

            if (s.Length > 0 && !s.StartsWith('-'))
            {
                words.Add(s);
            }
        }

        return words;
    }

    /// <summary>pflag's Parse over <paramref name="args"/> for <paramref name="cmd"/>'s flags; returns the positional arguments.</summary>
    /// <exception cref="FormatException">pflag's error text.</exception>
    public static List<string> Parse(Command cmd, IReadOnlyList<string> args)
    {
        var positional = new List<string>();
        var i = 0;
        while (i < args.Count)
        {
            var s = args[i++];
            if (s.Length < 2 || s[0] != '-')
            {
                positional.Add(s);
                continue;
            }

            if (s[1] == '-')
            {
                if (s.Length == 2)
                {
                    positional.AddRange(args.Skip(i));
                    break;
                }

                var name = s[2..];
                if (name[0] == '-' || name[0] == '=')
                {
                    throw new FormatException("bad flag syntax: " + s);
                }

                var eq = name.IndexOf('=', StringComparison.Ordinal);
                string? value = eq >= 0 ? name[(eq + 1)..] : null;
                name = eq >= 0 ? name[..eq] : name;
                var flag = cmd.FindFlag(name);
                if (flag is null)
                {
                    if (name == "help")
                    {
                        throw new HelpRequested();
                    }

                    throw new FormatException("unknown flag: --" + name);
                }

                if (value is null)
                {
                    if (flag.NoOptDefVal is not null)
                    {
                        value = flag.NoOptDefVal;
                    }
                    else if (i < args.Count)
                    {
                        value = args[i++];
                    }
                    else
                    {
                        throw new FormatException("flag needs an argument: " + s);
                    }
                }

                Set(flag, value);
                continue;
            }

            var shorthands = s[1..];
            while (shorthands.Length > 0)
            {
                var c = shorthands[0];
                var flag = cmd.FindShorthand(c.ToString());
                string value;
                if (flag is null)
                {
                    if (c == 'h')
                    {
                        throw new HelpRequested();
                    }

                    throw new FormatException($"unknown shorthand flag: '{c}' in -{shorthands}");
                }

                if (shorthands.Length > 2 && shorthands[1] == '=')
                {
                    value = shorthands[2..];
                    shorthands = string.Empty;
                }
                else if (flag.NoOptDefVal is not null)
                {
                    value = flag.NoOptDefVal;
                    shorthands = shorthands[1..];
                }
                else if (shorthands.Length > 1)
                {
                    value = shorthands[1..];
                    shorthands = string.Empty;
                }
                else if (i < args.Count)
                {
                    value = args[i++];
                    shorthands = string.Empty;
                }
                else
                {
                    throw new FormatException($"flag needs an argument: '{c}' in -{shorthands}");
                }

                Set(flag, value);
            }
        }

        return positional;
    }

    private static void Set(Flag flag, string value)
    {
        var error = flag.Set(value);
        if (error is not null)
        {
            throw new FormatException($"invalid argument {GoFormat.Quote(value)} for {GoFormat.Quote(flag.DisplayName)} flag: {error}");
        }
    }
}
