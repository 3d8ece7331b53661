using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Ctl.Commands;

/// <summary><c>auth</c>, <c>user</c> and <c>role</c> (etcdctl/ctlv3/command/{auth,user,role}_command.go).</summary>
public static class AuthCommands
{
    private static ExitException BadArgs(string m) => new(ExitException.ExitBadArgs, m);

    /// <summary>The <c>auth</c> command group.</summary>
    public static Command Auth() => new Command("auth <enable or disable>", "Enable or disable authentication").Add(
        new Command("enable", "Enables authentication", EnableAsync),
        new Command("disable", "Disables authentication", DisableAsync));

    private static async Task EnableAsync(CommandRun run)
    {
        if (run.Args.Count != 0)
        {
            throw BadArgs("auth enable command does not accept any arguments");
        }

        using var ctl = Ctl.From(run);
        var deadline = ctl.CommandTimeout;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan Left() => deadline - watch.Elapsed;
        while (true)
        {
            try
            {
                await ctl.CallAsync(EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest(), Left()).ConfigureAwait(false);
                break;
            }
            catch (EtcdException e) when (e.Detail == "etcdserver: root user does not have root role")
            {
                await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "root" }, Left())).ConfigureAwait(false);
                await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "root", Role = "root" }, Left())).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                throw new ExitException(ExitException.ExitError, Ctl.ErrorText(e));
            }
        }

        ctl.Console.Out("Authentication Enabled\n");
    }

    private static async Task DisableAsync(CommandRun run)
    {
        if (run.Args.Count != 0)
        {
            throw BadArgs("auth disable command does not accept any arguments");
        }

        using var ctl = Ctl.From(run);
        await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.AuthDisable, new AuthDisableRequest())).ConfigureAwait(false);
        ctl.Console.Out("Authentication Disabled\n");
    }

    /// <summary>The <c>user</c> command group.</summary>
    public static Command User()
    {
        var add = new Command("add <user name or user:password> [options]", "Adds a new user", UserAddAsync);
        add.Flags.Bool("interactive", true, "Read password from stdin instead of interactive terminal");
        add.Flags.String("new-user-password", "", "Supply password from the command line flag");
        add.Flags.Bool("no-password", false, "Create a user without password (CN based auth only)");
        var get = new Command("get <user name> [options]", "Gets detailed information of a user", UserGetAsync);
        get.Flags.Bool("detail", false, "Show permissions of roles granted to the user");
        var passwd = new Command("passwd <user name> [options]", "Changes password of user", PasswdAsync);
        passwd.Flags.Bool("interactive", true, "If true, read password from stdin instead of interactive terminal");
        return new Command("user <subcommand>", "User related commands").Add(
            add,
            new Command("delete <user name>", "Deletes a user", run => Simple(run, "user delete command requires user name as its argument", 1,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.UserDelete, new AuthUserDeleteRequest { Name = a[0] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.UserDelete(a[0], r))),
            get,
            new Command("list", "Lists all users", run => Simple(run, "user list command requires no arguments", 0,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.UserList, new AuthUserListRequest(), Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.UserList(r))),
            passwd,
            new Command("grant-role <user name> <role name>", "Grants a role to a user", run => Simple(run, "user grant command requires user name and role name as its argument", 2,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = a[0], Role = a[1] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.UserGrantRole(a[0], a[1], r))),
            new Command("revoke-role <user name> <role name>", "Revokes a role from a user", run => Simple(run, "user revoke-role requires user name and role name as its argument", 2,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.UserRevokeRole, new AuthUserRevokeRoleRequest { Name = a[0], Role = a[1] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.UserRevokeRole(a[0], a[1], r))));
    }

    private static async Task Simple<T>(CommandRun run, string argsError, int argCount, Func<Ctl, IReadOnlyList<string>, Task<T>> call, Action<Ctl, IReadOnlyList<string>, T> print)
    {
        if (run.Args.Count != argCount)
        {
            throw BadArgs(argsError);
        }

        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(call(ctl, run.Args)).ConfigureAwait(false);
        print(ctl, run.Args, r);
    }

    // fmt.Scanf("%s"): the first whitespace-separated word of stdin.
    private static string ScanWord(Stream stdin)
    {
        var bytes = new List<byte>();
        int b;
        while ((b = stdin.ReadByte()) >= 0 && (b == ' ' || b == '\t' || b == '\r'))
        {
        }

        while (b >= 0 && b != ' ' && b != '\n' && b != '\t' && b != '\r')
        {
            bytes.Add((byte)b);
            b = stdin.ReadByte();
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static string ReadPasswordInteractive(Ctl ctl, string name)
    {
        ctl.Console.Out($"Password of {name}: ");
        var p1 = ctl.ReadLine() ?? throw BadArgs("failed to ask password: EOF");
        ctl.Console.Out("\n");
        if (p1.Length == 0)
        {
            throw BadArgs("empty password");
        }

        ctl.Console.Out($"Type password of {name} again for confirmation: ");
        var p2 = ctl.ReadLine() ?? throw BadArgs("failed to ask password: EOF");
        ctl.Console.Out("\n");
        if (p1 != p2)
        {
            throw BadArgs("given passwords are different");
        }

        return p1;
    }

    private static async Task UserAddAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw BadArgs("user add command requires user name as its argument");
        }

        var cmd = run.Command;
        using var ctl = Ctl.From(run);
        string user;
        var password = string.Empty;
        var noPassword = cmd.Get("no-password").Bool;
        if (!noPassword)
        {
            var fromFlag = cmd.Get("new-user-password").Raw;
            if (fromFlag.Length > 0)
            {
                user = run.Args[0];
                password = fromFlag;
            }
            else
            {
                var split = run.Args[0].Split(':', 2);
                if (split.Length < 2)
                {
                    user = run.Args[0];
                    password = cmd.Get("interactive").Bool ? ReadPasswordInteractive(ctl, user) : ScanWord(run.Console.Stdin);
                }
                else
                {
                    user = split[0];
                    password = split[1];
                    if (user.Length == 0)
                    {
                        throw BadArgs("empty user name is not allowed");
                    }
                }
            }
        }
        else
        {
            user = run.Args[0];
        }

        var request = new AuthUserAddRequest { Name = user, Password = password, Options = new Authpb.UserAddOptions { NoPassword = noPassword } };
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.UserAdd, request, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        ctl.Display.UserAdd(user, r);
    }

    private static async Task UserGetAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw BadArgs("user get command requires user name as its argument");
        }

        var name = run.Args[0];
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.UserGet, new AuthUserGetRequest { Name = name }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        if (run.Command.Get("detail").Bool)
        {
            ctl.Console.Out($"User: {name}\n");
            foreach (var role in r.Roles)
            {
                ctl.Console.Out("\n");
                var rr = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.RoleGet, new AuthRoleGetRequest { Role = role }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
                ctl.Display.RoleGet(role, rr);
            }
        }
        else
        {
            ctl.Display.UserGet(name, r);
        }
    }

    private static async Task PasswdAsync(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw BadArgs("user passwd command requires user name as its argument");
        }

        using var ctl = Ctl.From(run);
        var password = run.Command.Get("interactive").Bool ? ReadPasswordInteractive(ctl, run.Args[0]) : ScanWord(run.Console.Stdin);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.UserChangePassword, new AuthUserChangePasswordRequest { Name = run.Args[0], Password = password }, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        ctl.Display.UserChangePassword(r);
    }

    /// <summary>The <c>role</c> command group.</summary>
    public static Command Role()
    {
        var grant = new Command("grant-permission [options] <role name> <permission type> <key> [endkey]", "Grants a key to a role", GrantPermissionAsync);
        grant.Flags.Bool("prefix", false, "grant a prefix permission");
        grant.Flags.Bool("from-key", false, "grant a permission of keys that are greater than or equal to the given key using byte compare");
        var revoke = new Command("revoke-permission <role name> <key> [endkey]", "Revokes a key from a role", RevokePermissionAsync);
        revoke.Flags.Bool("prefix", false, "revoke a prefix permission");
        revoke.Flags.Bool("from-key", false, "revoke a permission of keys that are greater than or equal to the given key using byte compare");
        return new Command("role <subcommand>", "Role related commands").Add(
            new Command("add <role name>", "Adds a new role", run => Simple(run, "role add command requires role name as its argument", 1,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = a[0] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.RoleAdd(a[0], r))),
            new Command("delete <role name>", "Deletes a role", run => Simple(run, "role delete command requires role name as its argument", 1,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.RoleDelete, new AuthRoleDeleteRequest { Role = a[0] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.RoleDelete(a[0], r))),
            new Command("get <role name>", "Gets detailed information of a role", run => Simple(run, "role get command requires role name as its argument", 1,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.RoleGet, new AuthRoleGetRequest { Role = a[0] }, Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.RoleGet(a[0], r))),
            new Command("list", "Lists all roles", run => Simple(run, "role list command requires no arguments", 0,
                (ctl, a) => ctl.CallAsync(EtcdMethods.AuthService.RoleList, new AuthRoleListRequest(), Timeout.InfiniteTimeSpan), (ctl, a, r) => ctl.Display.RoleList(r))),
            grant,
            revoke);
    }

    private static async Task GrantPermissionAsync(CommandRun run)
    {
        if (run.Args.Count < 3)
        {
            throw BadArgs("role grant command requires role name, permission type, and key [endkey] as its argument");
        }

        var perm = run.Args[1].ToUpperInvariant() switch
        {
            "READ" => Authpb.Permission.Types.Type.Read,
            "WRITE" => Authpb.Permission.Types.Type.Write,
            "READWRITE" => Authpb.Permission.Types.Type.Readwrite,
            _ => throw BadArgs($"invalid permission type: {run.Args[1]}"),
        };
        var (key, end) = PermRange(run.Command, run.Args.Skip(2).ToList());
        using var ctl = Ctl.From(run);
        var request = new AuthRoleGrantPermissionRequest
        {
            Name = run.Args[0],
            Perm = new Authpb.Permission { PermType = perm, Key = ByteString.CopyFromUtf8(key), RangeEnd = ByteString.CopyFromUtf8(end) },
        };
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.RoleGrantPermission, request, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        ctl.Display.RoleGrantPermission(run.Args[0], r);
    }

    private static async Task RevokePermissionAsync(CommandRun run)
    {
        if (run.Args.Count < 2)
        {
            throw BadArgs("role revoke-permission command requires role name and key [endkey] as its argument");
        }

        var (key, end) = PermRange(run.Command, run.Args.Skip(1).ToList());
        using var ctl = Ctl.From(run);
        var request = new AuthRoleRevokePermissionRequest { Role = run.Args[0], Key = ByteString.CopyFromUtf8(key), RangeEnd = ByteString.CopyFromUtf8(end) };
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.AuthService.RoleRevokePermission, request, Timeout.InfiniteTimeSpan)).ConfigureAwait(false);
        ctl.Display.RoleRevokePermission(run.Args[0], run.Args[1], end, r);
    }

    private static (string Key, string End) PermRange(Command cmd, List<string> args)
    {
        var prefix = cmd.Get("prefix").Bool;
        var fromKey = cmd.Get("from-key").Bool;
        var key = args[0];
        if (key.Length == 0)
        {
            if (prefix && fromKey)
            {
                throw BadArgs("--from-key and --prefix flags are mutually exclusive");
            }

            return ("\0", prefix || fromKey ? "\0" : string.Empty);
        }

        if (args.Count == 1)
        {
            if (prefix)
            {
                if (fromKey)
                {
                    throw BadArgs("--from-key and --prefix flags are mutually exclusive");
                }

                return (key, Encoding.UTF8.GetString(SimplePrinter.PrefixEnd(Encoding.UTF8.GetBytes(key))));
            }

            return (key, fromKey ? "\0" : string.Empty);
        }

        if (prefix)
        {
            throw BadArgs("unexpected endkey argument with --prefix flag");
        }

        if (fromKey)
        {
            throw BadArgs("unexpected endkey argument with --from-key flag");
        }

        return (key, args[1]);
    }
}
