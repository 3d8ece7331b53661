using Etcd.Api;
using Etcd.Ctl.Cli;
using Etcd.Ctl.Output;
using Etcdserverpb;

namespace Etcd.Ctl.Commands;

/// <summary><c>member add|remove|update|list|promote</c> (etcdctl/ctlv3/command/member_command.go).</summary>
public static class MemberCommands
{
    /// <summary>The <c>member</c> command group.</summary>
    public static Command Create()
    {
        var add = new Command("add <memberName> [options]", "Adds a member into the cluster", AddAsync);
        add.Flags.String("peer-urls", "", "comma separated peer URLs for the new member.");
        add.Flags.Bool("learner", false, "indicates if the new member is raft learner");
        var update = new Command("update <memberID> [options]", "Updates a member in the cluster", UpdateAsync);
        update.Flags.String("peer-urls", "", "comma separated peer URLs for the updated member.");
        return new Command("member <subcommand>", "Membership related commands").Add(
            add,
            new Command("remove <memberID>", "Removes a member from the cluster", RemoveAsync),
            update,
            new Command("list", "Lists all members in the cluster", ListAsync, "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\nThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n"),
            new Command("promote <memberID>", "Promotes a non-voting member in the cluster", PromoteAsync, "Promotes a non-voting learner member to a voting one in the cluster.\n"));
    }

    private static ulong MemberId(CommandRun run)
    {
        if (run.Args.Count != 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "member ID is not provided");
        }

        return KvCommands.TryParseHexUint(run.Args[0], out var id, out var error)
            ? id
            : throw new ExitException(ExitException.ExitBadArgs, $"bad member ID arg ({error}), expecting ID in Hex");
    }

    private static async Task AddAsync(CommandRun run)
    {
        if (run.Args.Count < 1)
        {
            throw new ExitException(ExitException.ExitBadArgs, "member name not provided");
        }

        if (run.Args.Count > 1)
        {
            var ev = "too many arguments";
            foreach (var s in run.Args.Where(s => s.ToLowerInvariant().StartsWith("http", StringComparison.Ordinal)))
            {
                ev += ", did you mean --peer-urls=" + s;
            }

            throw new ExitException(ExitException.ExitBadArgs, ev);
        }

        var name = run.Args[0];
        var peerUrls = run.Command.Get("peer-urls").Raw;
        if (peerUrls.Length == 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, "member peer urls not provided");
        }

        using var ctl = Ctl.From(run);
        var request = new MemberAddRequest { IsLearner = run.Command.Get("learner").Bool };
        request.PeerURLs.Add(peerUrls.Split(','));
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ClusterService.MemberAdd, request)).ConfigureAwait(false);
        ctl.Display.MemberAdd(r);
        if (ctl.Display is SimplePrinter)
        {
            var conf = new List<string>();
            foreach (var m in r.Members)
            {
                foreach (var u in m.PeerURLs)
                {
                    conf.Add((m.ID == r.Member.ID ? name : m.Name) + "=" + u);
                }
            }

            ctl.Console.Out($"\nETCD_NAME={GoFormat.Quote(name)}\nETCD_INITIAL_CLUSTER={GoFormat.Quote(string.Join(',', conf))}\nETCD_INITIAL_ADVERTISE_PEER_URLS={GoFormat.Quote(peerUrls)}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
        }
    }

    private static async Task RemoveAsync(CommandRun run)
    {
        var id = MemberId(run);
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ClusterService.MemberRemove, new MemberRemoveRequest { ID = id })).ConfigureAwait(false);
        ctl.Display.MemberRemove(id, r);
    }

    private static async Task UpdateAsync(CommandRun run)
    {
        var id = MemberId(run);
        var peerUrls = run.Command.Get("peer-urls").Raw;
        if (peerUrls.Length == 0)
        {
            throw new ExitException(ExitException.ExitBadArgs, "member peer urls not provided");
        }

        using var ctl = Ctl.From(run);
        var request = new MemberUpdateRequest { ID = id };
        request.PeerURLs.Add(peerUrls.Split(','));
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ClusterService.MemberUpdate, request)).ConfigureAwait(false);
        ctl.Display.MemberUpdate(id, r);
    }

    private static async Task ListAsync(CommandRun run)
    {
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ClusterService.MemberList, new MemberListRequest())).ConfigureAwait(false);
        ctl.Display.MemberList(r);
    }

    private static async Task PromoteAsync(CommandRun run)
    {
        var id = MemberId(run);
        using var ctl = Ctl.From(run);
        var r = await ctl.MustAsync(ctl.CallAsync(EtcdMethods.ClusterService.MemberPromote, new MemberPromoteRequest { ID = id })).ConfigureAwait(false);
        ctl.Display.MemberPromote(id, r);
    }
}
