using Etcd.Server.Transport;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Cluster;

/// <summary>
/// Members of one cluster in this process, joined by an <see cref="InMemoryRaftNetwork"/>; each member has its own
/// data directory (real WAL files). Heartbeat 20 ms, election timeout 200 ms.
/// </summary>
internal sealed class InProcessCluster : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly TempDir _dir = new();
    private readonly List<string> _names = [];

    public InMemoryRaftNetwork Network { get; } = new();

    public List<EtcdServer?> Members { get; } = [];

    public Func<EtcdOptions, EtcdOptions> Tweak { get; init; } = o => o;

    public Action<EtcdServer>? BeforeLoop { get; init; }

    public static string PeerUrl(int i) => $"http://127.0.0.1:{21000 + i}";

    public EtcdOptions OptionsFor(int i, string initialCluster, string state = "new") => Tweak(new EtcdOptions
    {
        Name = $"m{i}",
        DataDir = Path.Combine(_dir.Path, $"m{i}"),
        InitialAdvertisePeerUrls = [new Uri(PeerUrl(i))],
        AdvertiseClientUrls = [new Uri($"http://127.0.0.1:{22000 + i}")],
        InitialCluster = initialCluster,
        InitialClusterState = state,
        HeartbeatIntervalMs = 20,
        ElectionTimeoutMs = 200,
    });

    public static async Task<InProcessCluster> StartAsync(int size, Func<EtcdOptions, EtcdOptions>? tweak = null, Action<EtcdServer>? beforeLoop = null)
    {
        var c = new InProcessCluster { Tweak = tweak ?? (o => o), BeforeLoop = beforeLoop };
        var initial = string.Join(",", Enumerable.Range(0, size).Select(i => $"m{i}={PeerUrl(i)}"));
        for (var i = 0; i < size; i++)
        {
            c._names.Add(initial);
            c.Members.Add(c.StartMember(c.OptionsFor(i, initial)));
        }

        foreach (var m in c.Members)
        {
            await m!.ReadyToServe.WaitAsync(Patience);
        }

        await c.WaitLeaderAsync();
        return c;
    }

    public EtcdServer StartMember(EtcdOptions o)
    {
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance, startLoop: false, transport: Network.CreateTransport());
        BeforeLoop?.Invoke(s);
        s.StartLoop();
        return s;
    }

    /// <summary>Restarts member <paramref name="i"/> from its data directory.</summary>
    public async Task<EtcdServer> RestartAsync(int i)
    {
        if (Members[i] is { } old)
        {
            await old.DisposeAsync();
        }

        var s = StartMember(OptionsFor(i, _names[i]));
        Members[i] = s;
        return s;
    }

    public IEnumerable<EtcdServer> Live => Members.Where(m => m is not null && !m.Stopped.IsCompleted)!;

    /// <summary>Waits until every live member names the same leader, which is one of them; returns it.</summary>
    public async Task<EtcdServer> WaitLeaderAsync(IReadOnlyCollection<EtcdServer>? among = null)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var live = (among ?? Live.ToList()).ToList();
            var lead = live[0].Leader;
            var leader = live.FirstOrDefault(m => m.MemberId == lead && m.IsLeader);
            if (lead != 0 && leader is not null && live.All(m => m.Leader == lead))
            {
                return leader;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("no agreed leader: " + string.Join(", ", live.Select(m => $"{m.MemberId:x}->{m.Leader:x}")));
            }

            await Task.WhenAny(live.Select(m => m.LeaderChangedTask()).Append(Task.Delay(50)));
        }
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds, re-checking whenever a member applies or changes leader.</summary>
    public async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
            var waits = Live.Select(m => m.WaitAppliedAsync(m.AppliedIndex + 1, cts.Token)).Concat(Live.Select(m => m.LeaderChangedTask())).ToList();
            try
            {
                await Task.WhenAny(waits);
            }
            catch (OperationCanceledException)
            {
            }

            foreach (var w in waits)
            {
                _ = w.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            }
        }
    }

    public static PutRequest Put(string k, string v) => new() { Key = ByteString.CopyFromUtf8(k), Value = ByteString.CopyFromUtf8(v) };

    public static RangeRequest Get(string k, bool serializable = false) => new() { Key = ByteString.CopyFromUtf8(k), Serializable = serializable };

    public static RangeRequest Prefix(string p, bool serializable = false) => new()
    {
        Key = ByteString.CopyFromUtf8(p),
        RangeEnd = ByteString.CopyFromUtf8(p[..^1] + (char)(p[^1] + 1)),
        Serializable = serializable,
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var m in Members)
        {
            if (m is not null)
            {
                await m.DisposeAsync();
            }
        }

        _dir.Dispose();
    }
}
