using System.Diagnostics;
using Xunit.Abstractions;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// Drives crash rounds against one member process: concurrent writers put through the JSON gateway (unique keys
/// and overwrites of a few shared keys, every value unique: round, writer and sequence), optionally with learner
/// add/remove churn (conf changes); after each crash the member restarts on the same data dir and
/// <see cref="VerifyAsync"/> checks the whole history with <see cref="WriteHistory.Check"/> plus the membership.
/// Not thread-safe: one test drives one instance.
/// </summary>
public sealed class CrashRounds : IAsyncDisposable
{
    /// <summary>Variable that multiplies the rounds (and their time bound) of the crash tests for a longer soak, e.g. <c>CRASH_SOAK=20</c>.</summary>
    public const string SoakVariable = "CRASH_SOAK";

    /// <summary>The failpoint variable the server reads.</summary>
    public const string FailpointVariable = "GOFAIL_FAILPOINTS";

    private const int SharedKeys = 4;

    /// <summary>Requests of one round that may fail while the member runs (seen: HTTP/1.1 responses cut short right after a restart).</summary>
    private const int MaxTransientFailures = 20;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private readonly ITestOutputHelper _output;
    private readonly int _seed;
    private readonly HashSet<(string Key, string Value)> _attempted = [];
    private readonly List<AckedPut> _acked = [];
    private readonly Lock _gate = new();

    // Learner churn: peer URL -> member ID of acknowledged adds; URLs of every add tried; IDs whose removal was tried / acknowledged.
    private readonly Dictionary<string, ulong> _learnersAcked = new(StringComparer.Ordinal);
    private readonly HashSet<string> _learnersTried = new(StringComparer.Ordinal);
    private readonly HashSet<ulong> _removesTried = [];
    private readonly HashSet<ulong> _removesAcked = [];
    private int _nextLearnerPort = 1;

    private GatewayClient _client;

    private CrashRounds(EtcdProcess member, ITestOutputHelper output, int seed)
    {
        Member = member;
        _output = output;
        _seed = seed;
        _client = new GatewayClient(member.ClientUrl, RequestTimeout);
    }

    /// <summary>The member under test.</summary>
    public EtcdProcess Member { get; }

    /// <summary>Puts acknowledged so far (all rounds).</summary>
    public int AckedCount
    {
        get
        {
            lock (_gate)
            {
                return _acked.Count;
            }
        }
    }

    /// <summary>The soak multiplier from <see cref="SoakVariable"/> (1 when unset).</summary>
    public static int Soak => int.TryParse(Environment.GetEnvironmentVariable(SoakVariable), out var n) && n > 1 ? n : 1;

    /// <summary>Starts a fresh member of <paramref name="binary"/> with <paramref name="extraArgs"/>, no failpoint armed.</summary>
    public static async Task<CrashRounds> StartAsync(string binary, string name, IReadOnlyList<string> extraArgs, ITestOutputHelper output, int seed)
    {
        var member = await EtcdProcess.StartAsync(binary, name, extraArgs);
        return new CrashRounds(member, output, seed);
    }

    /// <summary>
    /// One failpoint round: SIGKILLs the current (idle) incarnation, relaunches armed with
    /// <c>GOFAIL_FAILPOINTS={point}={pass}</c>, runs the load until the failpoint kills the member (failing the test if
    /// it has not within <paramref name="limit"/>), checks that the failpoint (not something else) ended it, restarts
    /// unarmed and verifies. Returns the acknowledged puts of the round.
    /// </summary>
    public async Task<int> FailpointRoundAsync(int round, string point, int pass, bool confChurn, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        Member.Kill();
        Member.LaunchEnvironment[FailpointVariable] = $"{point}={pass}";
        var ready = await Member.TryRestartAsync();
        var started = clock.Elapsed;
        var acks = 0;
        if (ready)
        {
            ResetClient();
            acks = await RunLoadAsync(round, confChurn, limit, killAfter: null);
        }

        Assert.True(await Member.WaitForExitAsync(TimeSpan.FromSeconds(10)),
            $"round {round}: failpoint {point}={pass} did not fire within {limit.TotalSeconds:0} s of load ({acks} acks)\nlog tail:\n{Member.LogTail()}");
        var logs = Member.CurrentIncarnationLogs;
        Assert.True(logs.Contains($"failpoint: {point} fired at pass {pass}", StringComparison.Ordinal),
            $"round {round}: the member exited (code {Member.ExitCode}) without the failpoint {point}={pass} firing\nlog tail:\n{Member.LogTail()}");
        Assert.Equal(137, Member.ExitCode);
        var fired = clock.Elapsed;
        Member.LaunchEnvironment.Remove(FailpointVariable);
        await RestartAndVerifyAsync($"after {point}={pass} in round {round}");
        _output.WriteLine(
            $"round {round}: {point}={pass} fired {(ready ? "under load" : "during start-up")} after {acks} acks " +
            $"(armed start {started.TotalMilliseconds:0} ms, load {(fired - started).TotalMilliseconds:0} ms, restart+verify {(clock.Elapsed - fired).TotalMilliseconds:0} ms)");
        return acks;
    }

    /// <summary>
    /// One random-point round: runs the load and SIGKILLs the member from outside after a random delay, restarts it
    /// and verifies. Returns the acknowledged puts of the round.
    /// </summary>
    public async Task<int> SigkillRoundAsync(int round, TimeSpan killAfter, bool confChurn, TimeSpan limit)
    {
        if (!Member.IsRunning)
        {
            await Member.RestartAsync();
        }

        ResetClient();
        var acks = await RunLoadAsync(round, confChurn, limit, killAfter);
        Assert.False(Member.IsRunning, "member still running after SIGKILL");
        _output.WriteLine($"round {round}: SIGKILL after {killAfter.TotalMilliseconds:0} ms, {acks} acks");
        await RestartAndVerifyAsync($"after SIGKILL in round {round}");
        return acks;
    }

    /// <summary>Restarts the (exited) member unarmed, checks everything, and checks it takes writes again.</summary>
    public async Task RestartAndVerifyAsync(string when)
    {
        await Member.RestartAsync();
        ResetClient();
        await VerifyAsync(when);

        // A new key per try (a failed put's outcome is unknown; its value must never be sent again).
        for (var attempt = 1; ; attempt++)
        {
            var key = $"probe/{Guid.NewGuid():N}";
            var value = $"probe-{_seed}";
            Record(key, value);
            try
            {
                var rev = await _client.PutAsync(key, value);
                lock (_gate)
                {
                    _acked.Add(new AckedPut(key, value, rev));
                }

                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                if (attempt == 3)
                {
                    throw new Xunit.Sdk.XunitException($"store refuses writes {when}: {Describe(e)}\nlog tail:\n{Member.LogTail()}");
                }
            }
        }
    }

    /// <summary>Checks the history, the current state and the membership against everything the test sent and saw acknowledged.</summary>
    public async Task VerifyAsync(string when)
    {
        var (kvs, revision) = await GatewayClient.RetryReadAsync(() => _client.RangeAllAsync());
        var history = await GatewayClient.RetryReadAsync(() => _client.HistoryAsync(revision, TimeSpan.FromSeconds(20)));
        List<string> problems;
        lock (_gate)
        {
            problems = WriteHistory.Check(history, kvs, revision, _attempted, _acked);
        }

        Assert.True(problems.Count == 0,
            $"{when}: {problems.Count} problems (seed {_seed}):\n{string.Join('\n', problems.Take(30))}\nlog tail:\n{Member.LogTail()}");

        var members = await GatewayClient.RetryReadAsync(() => _client.MemberListAsync());
        var byUrl = members.SelectMany(m => m.PeerUrls.Select(u => (Url: u, m.Id))).GroupBy(x => x.Url).ToList();
        Assert.All(byUrl, g => Assert.True(g.Count() == 1, $"{when}: peer URL {g.Key} on {g.Count()} members"));
        Assert.Single(members, m => m.PeerUrls.Contains(Member.PeerUrl));
        lock (_gate)
        {
            foreach (var m in members.Where(m => !m.PeerUrls.Contains(Member.PeerUrl)))
            {
                Assert.True(m.PeerUrls.All(_learnersTried.Contains), $"{when}: member {m.Id:x} with peer URLs never added: {string.Join(",", m.PeerUrls)}");
                Assert.True(m.IsLearner, $"{when}: added learner {m.Id:x} is not a learner any more");
                Assert.False(_removesAcked.Contains(m.Id), $"{when}: member {m.Id:x} was removed (acknowledged) but is back");
            }

            foreach (var (url, id) in _learnersAcked.Where(l => !_removesTried.Contains(l.Value)))
            {
                Assert.True(members.Any(m => m.Id == id && m.PeerUrls.Contains(url)), $"{when}: acknowledged learner {id:x} ({url}) lost");
            }
        }

        _output.WriteLine($"{when}: verified {history.Count} revisions, {kvs.Count} keys, {members.Count} members");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await Member.DisposeAsync();
    }

    private static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            parts.Add($"{x.GetType().Name}: {x.Message}");
        }

        return string.Join(" <- ", parts);
    }

    private void ResetClient()
    {
        _client.Dispose();
        _client = new GatewayClient(Member.ClientUrl, RequestTimeout);
    }

    private void Record(string key, string value)
    {
        lock (_gate)
        {
            _attempted.Add((key, value));
        }
    }

    /// <summary>
    /// Runs writers (and the learner churn) until the member exits: by itself (a failpoint) or, with
    /// <paramref name="killAfter"/>, by our SIGKILL at that time. Fails if a request fails while the member lives.
    /// </summary>
    private async Task<int> RunLoadAsync(int round, bool confChurn, TimeSpan limit, TimeSpan? killAfter)
    {
        const int writers = 6;
        var acks = 0;
        var stop = new CancellationTokenSource();
        var started = Stopwatch.StartNew();
        var failures = new List<string>();
        // Conf changes start once the round's first put is acknowledged: otherwise a low kill pass of a conf-change
        // failpoint can fire while the writers are still connecting, and the round never ran under load.
        var firstAck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // A failed request while the member still runs has an unknown outcome (its value stays in the attempted set,
        // never in the acknowledged one) and the writer goes on with a new value; a handful per round is tolerated
        // and reported (see MaxTransientFailures), more fails the round.
        async Task<bool> MemberDiedAsync() => await Member.WaitForExitAsync(TimeSpan.FromSeconds(1));

        var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var rng = new Random(HashCode.Combine(_seed, round, w));
            for (var seq = 0; !stop.IsCancellationRequested && started.Elapsed < limit; seq++)
            {
                var key = rng.Next(4) == 0 ? $"shared/{rng.Next(SharedKeys)}" : $"u/r{round}/w{w}/{seq:D5}";
                var value = $"r{round}-w{w}-s{seq}-{_seed}";
                Record(key, value);
                try
                {
                    var rev = await _client.PutAsync(key, value);
                    lock (_gate)
                    {
                        _acked.Add(new AckedPut(key, value, rev));
                        acks++;
                    }

                    firstAck.TrySetResult();
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    if (await MemberDiedAsync())
                    {
                        return;
                    }

                    lock (_gate)
                    {
                        failures.Add($"put {key} failed while the member runs: {Describe(e)}");
                    }
                }
            }
        })).ToList();

        if (confChurn)
        {
            tasks.Add(Task.Run(async () =>
            {
                var remaining = limit - started.Elapsed;
                if (remaining <= TimeSpan.Zero || await Task.WhenAny(firstAck.Task, Task.Delay(remaining)) != firstAck.Task)
                {
                    return;
                }

                while (!stop.IsCancellationRequested && started.Elapsed < limit)
                {
                    var url = $"http://127.0.0.1:{_nextLearnerPort++}";
                    lock (_gate)
                    {
                        _learnersTried.Add(url);
                    }

                    try
                    {
                        var id = await _client.AddLearnerAsync(url);
                        lock (_gate)
                        {
                            _learnersAcked[url] = id;
                            _removesTried.Add(id);
                        }

                        await _client.RemoveMemberAsync(id);
                        lock (_gate)
                        {
                            _removesAcked.Add(id);
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                    {
                        if (await MemberDiedAsync())
                        {
                            return;
                        }

                        lock (_gate)
                        {
                            failures.Add($"member add/remove of {url} failed while the member runs: {Describe(e)}");
                        }
                    }
                }
            }));
        }

        if (killAfter is { } delay)
        {
            // The kill time is the random input of the round, not a synchronisation.
            await Task.Delay(delay);
            Member.Kill();
        }

        var all = Task.WhenAll(tasks);
        if (await Task.WhenAny(all, Task.Delay(limit + TimeSpan.FromSeconds(15))) != all)
        {
            stop.Cancel();
            Member.Kill();
            throw new TimeoutException($"round {round}: load did not end within {limit.TotalSeconds + 15:0} s");
        }

        await all;
        stop.Cancel();
        if (failures.Count > 0)
        {
            _output.WriteLine($"round {round}: {failures.Count} requests failed while the member ran (outcome unknown): {string.Join("; ", failures.Take(3))}");
        }

        Assert.True(failures.Count <= MaxTransientFailures, $"round {round}: {failures.Count} requests failed while the member ran: {string.Join("; ", failures.Take(10))}\nlog tail:\n{Member.LogTail()}");
        return acks;
    }
}
