using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcdserverpb;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>Settings of a <see cref="ProcessCluster"/>. Immutable.</summary>
public sealed record ClusterOptions
{
    /// <summary><c>--heartbeat-interval</c>, ms.</summary>
    public int HeartbeatMs { get; init; } = 100;

    /// <summary><c>--election-timeout</c>, ms.</summary>
    public int ElectionMs { get; init; } = 1000;

    /// <summary><c>--snapshot-count</c>, or null for the server's default.</summary>
    public ulong? SnapshotCount { get; init; }

    /// <summary>Bound on each member's start (readiness line).</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(40);

    /// <summary>Flags added to every member's command line (e.g. <c>--experimental-corrupt-check-time=1s</c>).</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    /// <summary>Executable; null means <see cref="ClusterEnvironment.RequireUnderTest"/>.</summary>
    public string? Binary { get; init; }

    /// <summary>Executable of each initial member by position (a mixed cluster); null = <see cref="Binary"/> for all.</summary>
    public IReadOnlyList<string>? Binaries { get; init; }
}

/// <summary>
/// A cluster of real member processes on 127.0.0.1 (free ports picked at run time), each member's peer URL
/// going through a <see cref="PeerProxy"/> of <see cref="Network"/> so tests can partition peer links. Offers
/// leader discovery and membership changes (learner add, promote, remove) through our client's Cluster API.
/// Dispose kills every process and deletes the data dirs. Driven by one test (not thread-safe).
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    private readonly List<ClusterMember> _members = [];
    private readonly List<ClusterMember> _removed = [];
    private readonly string _token = "cluster-test-" + Guid.NewGuid().ToString("N")[..8];
    private int _nextOrdinal;

    private ProcessCluster(ClusterOptions options)
    {
        Options = options;
        Binary = options.Binary ?? ClusterEnvironment.RequireUnderTest();
        Root = Path.Combine(Path.GetTempPath(), "etcd-cluster-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Root);
    }

    /// <summary>The settings.</summary>
    public ClusterOptions Options { get; }

    /// <summary>Executable run.</summary>
    public string Binary { get; }

    /// <summary>Temp directory holding the members' data dirs.</summary>
    public string Root { get; }

    /// <summary>The peer proxies.</summary>
    public PeerNetwork Network { get; } = new();

    /// <summary>Current members (removed ones are dropped from this list), in order of creation.</summary>
    public IReadOnlyList<ClusterMember> Members => _members;

    /// <summary>Members that are running and not paused.</summary>
    public IEnumerable<ClusterMember> Live => _members.Where(m => m.IsRunning && !m.IsPaused);

    /// <summary>Starts <paramref name="size"/> members as a new cluster and waits until each is ready and a leader is known.</summary>
    public static async Task<ProcessCluster> StartAsync(int size, ClusterOptions? options = null)
    {
        var cluster = new ProcessCluster(options ?? new ClusterOptions());
        try
        {
            var members = Enumerable.Range(0, size).Select(i => cluster.NewMember(cluster.Options.Binaries?[i] ?? cluster.Binary)).ToList();
            var initial = string.Join(",", members.Select(m => $"{m.Name}={m.PeerUrl}"));
            foreach (var m in members)
            {
                m.Arguments = cluster.ArgumentsFor(m, initial, "new");
            }

            await Task.WhenAll(members.Select(m => m.StartAsync(cluster.Options.ReadyTimeout)));
            await cluster.RefreshMemberIdsAsync();
            await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(20));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Polls the live members' Status until a majority of them name the same leader, that leader is live and
    /// reports itself as leader; returns it.
    /// </summary>
    /// <exception cref="TimeoutException">No such leader within <paramref name="timeout"/>.</exception>
    public async Task<ClusterMember> WaitForLeaderAsync(TimeSpan timeout, ClusterMember? notThis = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var live = Live.ToList();
            var statuses = await Task.WhenAll(live.Select(async m => (Member: m, Status: await TryStatusAsync(m))));
            var votes = statuses.Where(s => s.Status is { Leader: not 0 }).GroupBy(s => s.Status!.Leader).OrderByDescending(g => g.Count()).FirstOrDefault();
            last = string.Join(", ", statuses.Select(s => $"{s.Member.Name}: leader {s.Status?.Leader:x} term {s.Status?.RaftTerm}"));
            if (votes is not null && votes.Count() > Members.Count(m => !IsLearner(m)) / 2)
            {
                var leader = live.FirstOrDefault(m => m.MemberId == votes.Key);
                if (leader is not null && leader != notThis)
                {
                    return leader;
                }
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"no agreed leader within {timeout.TotalSeconds:0} s: {last}\n{string.Join('\n', Members.Select(m => m.LogTail(20)))}");
    }

    /// <summary>The followers among the current members (everything but <paramref name="leader"/>).</summary>
    public IReadOnlyList<ClusterMember> Followers(ClusterMember leader) => _members.Where(m => m != leader).ToList();

    /// <summary>
    /// MemberAdd of a learner through a live member, then starts it with <c>--initial-cluster-state existing</c>
    /// and waits for it to be ready.
    /// </summary>
    /// <param name="binary">The learner's executable; null = the cluster's <see cref="Binary"/>.</param>
    public async Task<ClusterMember> AddLearnerAsync(string? binary = null)
    {
        var member = NewMember(binary ?? Binary);
        var resp = await RetryAsync(() => AnyLive().Cluster_AddAsync(member.PeerUrl, learner: true), TimeSpan.FromSeconds(20));
        member.MemberId = resp.Member.ID;
        member.Proxy.MemberId = resp.Member.ID;
        _learners.Add(member.MemberId);
        var initial = string.Join(",", _members.Select(m => $"{m.Name}={m.PeerUrl}"));
        member.Arguments = ArgumentsFor(member, initial, "existing");
        await member.StartAsync(Options.ReadyTimeout);
        return member;
    }

    /// <summary>MemberPromote, retried (bounded) while the learner is not yet in sync with the leader.</summary>
    public async Task PromoteAsync(ClusterMember learner, TimeSpan timeout)
    {
        await RetryAsync(
            () => AnyLive().UnaryAsync(EtcdMethods.ClusterService.MemberPromote, new MemberPromoteRequest { ID = learner.MemberId }, Call()),
            timeout);
        _learners.Remove(learner.MemberId);
    }

    /// <summary>MemberRemove through a live member other than <paramref name="member"/>; waits (bounded) for the removed process to exit.</summary>
    /// <returns>Whether the removed member's process exited by itself within 20 s (it is killed otherwise).</returns>
    public async Task<bool> RemoveAsync(ClusterMember member)
    {
        await RetryAsync(
            async () =>
            {
                try
                {
                    return await Live.First(m => m != member).Client.UnaryAsync(EtcdMethods.ClusterService.MemberRemove, new MemberRemoveRequest { ID = member.MemberId }, Call());
                }
                catch (RpcException e) when (e.Detail.Contains("member not found", StringComparison.Ordinal))
                {
                    // An earlier attempt whose answer was lost did remove it.
                    return new MemberRemoveResponse();
                }
            },
            TimeSpan.FromSeconds(20));
        _members.Remove(member);
        _removed.Add(member);
        var exited = await member.WaitForExitAsync(TimeSpan.FromSeconds(20));
        member.Kill();
        return exited;
    }

    /// <summary>The status of one member, or null if it does not answer within 2 s.</summary>
    public static async Task<StatusResponse?> TryStatusAsync(ClusterMember m)
    {
        try
        {
            return await m.Client.Maintenance.StatusAsync(options: new CallOptions { Timeout = TimeSpan.FromSeconds(2) });
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Every member's log tail, for failure messages.</summary>
    public string LogTails(int lines = 40) => string.Join('\n', _members.Concat(_removed).Select(m => m.LogTail(lines)));

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var m in _members.Concat(_removed))
        {
            try
            {
                await m.DisposeAsync();
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
            }
        }

        await Network.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private readonly HashSet<ulong> _learners = [];

    private bool IsLearner(ClusterMember m) => _learners.Contains(m.MemberId);

    private EtcdClient AnyLive() => (Live.FirstOrDefault() ?? throw new InvalidOperationException("no live member")).Client;

    private static CallOptions Call() => new() { Timeout = TimeSpan.FromSeconds(5) };

    private ClusterMember NewMember(string binary)
    {
        var name = "m" + _nextOrdinal++;
        var peerPort = FreePorts.Next();
        var proxy = Network.AddProxy(name, peerPort);
        var member = new ClusterMember(binary, name, Path.Combine(Root, name), proxy, FreePorts.Next(), peerPort);
        _members.Add(member);
        return member;
    }

    private List<string> ArgumentsFor(ClusterMember m, string initialCluster, string state)
    {
        var args = new List<string>
        {
            "--name", m.Name,
            "--data-dir", m.DataDir,
            "--listen-client-urls", m.ClientUrl,
            "--advertise-client-urls", m.ClientUrl,
            "--listen-peer-urls", $"http://127.0.0.1:{m.PeerPort}",
            "--initial-advertise-peer-urls", m.PeerUrl,
            "--initial-cluster", initialCluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", _token,
            "--heartbeat-interval", Options.HeartbeatMs.ToString(),
            "--election-timeout", Options.ElectionMs.ToString(),
        };
        if (Options.SnapshotCount is { } sc)
        {
            args.AddRange(["--snapshot-count", sc.ToString()]);
        }

        args.AddRange(Options.ExtraArgs);
        return args;
    }

    private async Task RefreshMemberIdsAsync()
    {
        var list = await RetryAsync(() => AnyLive().Cluster.MemberListAsync(Call()), TimeSpan.FromSeconds(20));
        foreach (var m in _members)
        {
            var info = list.Members.FirstOrDefault(i => i.PeerURLs.Any(u => u.TrimEnd('/') == m.PeerUrl))
                ?? throw new InvalidOperationException($"member list has no member with peer URL {m.PeerUrl}: {list}");
            m.MemberId = info.ID;
            m.Proxy.MemberId = info.ID;
        }
    }

    /// <summary>Retries <paramref name="call"/> on errors until it succeeds or <paramref name="timeout"/> passes (then rethrows).</summary>
    public static async Task<T> RetryAsync<T>(Func<Task<T>> call, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or HttpRequestException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(Math.Min(1000, 100 * (attempt + 1)));
            }
        }
    }
}

/// <summary>Membership calls on <see cref="EtcdClient"/> not (yet) typed in its <see cref="ClusterClient"/>.</summary>
internal static class ClusterCalls
{
    public static Task<MemberAddResponse> Cluster_AddAsync(this EtcdClient client, string peerUrl, bool learner)
    {
        var req = new MemberAddRequest { IsLearner = learner };
        req.PeerURLs.Add(peerUrl);
        return client.UnaryAsync(EtcdMethods.ClusterService.MemberAdd, req, new CallOptions { Timeout = TimeSpan.FromSeconds(5) });
    }
}
