using System.Text;
using System.Text.Json;
using Etcd.Compat.Tests.Harness;
using Xunit.Abstractions;

namespace Etcd.Compat.Tests;

/// <summary>
/// Durability of the server under test across SIGKILL: every put that etcdctl acknowledged (exit 0,
/// "OK") before the crash must be readable with its value after a restart on the same data dir, no
/// key may hold a value that was never written, no entry may be applied twice (every key at version 1, the
/// revision one past the number of keys), and the store must accept writes again.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class CrashDurabilityTests(ITestOutputHelper output)
{
    private const int Rounds = 3;
    private const int MaxPutsPerRound = 300;
    private const int Writers = 3;
    private static readonly TimeSpan RoundTimeLimit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AcknowledgedPuts_SurviveSigkill_AndStoreAcceptsWritesAfterRestart()
    {
        CompatEnvironment.RequireEtcdctl();
        var binary = CompatEnvironment.RequireUnderTest();
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var rng = new Random(seed);

        await using var member = await EtcdProcess.StartAsync(binary, "crash");
        var acknowledged = new Dictionary<string, string>();
        var attempted = new Dictionary<string, string>();

        for (var round = 0; round < Rounds; round++)
        {
            var killAfterAcks = rng.Next(10, 60);
            var killJitterMs = rng.Next(0, 40);
            var killRequested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var killer = Task.Run(async () =>
            {
                await killRequested.Task;
                // Jitter (not synchronisation): moves the kill point around inside the next put.
                await Task.Delay(killJitterMs);
                member.Kill();
            });

            // Several sequential writers at once, so that several proposals are in flight when the kill lands.
            var acksThisRound = 0;
            var gate = new Lock();
            var started = DateTime.UtcNow;
            var r = round;
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                for (var i = 0; i < MaxPutsPerRound / Writers && DateTime.UtcNow - started < RoundTimeLimit; i++)
                {
                    var key = $"crash/r{r}/w{w}/{i:D4}";
                    var value = $"value-{r}-{w}-{i}-{seed}";
                    lock (gate)
                    {
                        attempted[key] = value;
                    }

                    var result = await Etcdctl.RunAsync(
                        member.Endpoint,
                        ["--dial-timeout=1s", "--command-timeout=3s", "put", key, value],
                        timeout: TimeSpan.FromSeconds(15));
                    if (result.ExitCode == 0)
                    {
                        Assert.Equal("OK\n", result.Stdout);
                        lock (gate)
                        {
                            acknowledged[key] = value;
                            if (++acksThisRound == killAfterAcks)
                            {
                                killRequested.TrySetResult();
                            }
                        }

                        continue;
                    }

                    Assert.True(
                        killRequested.Task.IsCompleted,
                        $"round {r}: put {key} failed before the crash was injected (after {acksThisRound} acks): {result}\nlog tail:\n{member.LogTail()}");
                    return;
                }
            })).ToArray();
            await Task.WhenAll(writers);

            Assert.True(killRequested.Task.IsCompleted, $"round {round}: only {acksThisRound} acks in the round's bounds; the crash was never injected");
            await killer;
            Assert.False(member.IsRunning, "member still running after SIGKILL");
            output.WriteLine($"round {round}: killed after {acksThisRound} acks (kill requested at {killAfterAcks}, jitter {killJitterMs} ms)");

            await member.RestartAsync();
            await VerifyAsync(member, acknowledged, attempted, $"after SIGKILL in round {round}");

            var probeKey = $"crash/after/r{round}";
            var probe = await Etcdctl.RunAsync(member.Endpoint, "put", probeKey, "writable");
            Assert.True(probe.ExitCode == 0, $"store refuses writes after restart in round {round}: {probe}\nlog tail:\n{member.LogTail()}");
            acknowledged[probeKey] = "writable";
            attempted[probeKey] = "writable";
        }

        // A graceful stop (SIGTERM) and restart keeps everything too.
        Assert.True(await member.StopAsync(TimeSpan.FromSeconds(15)), $"member did not exit on SIGTERM within 15 s\nlog tail:\n{member.LogTail()}");
        await member.RestartAsync();
        await VerifyAsync(member, acknowledged, attempted, "after SIGTERM and restart");
    }

    private static async Task VerifyAsync(EtcdProcess member, Dictionary<string, string> acknowledged, Dictionary<string, string> attempted, string when)
    {
        var result = await Etcdctl.RunAsync(member.Endpoint, "get", "crash/", "--prefix", "-w", "json");
        Assert.True(result.ExitCode == 0, $"get {when} failed: {result}\nlog tail:\n{member.LogTail()}");

        var stored = new Dictionary<string, string>();
        long revision;
        var twice = new List<string>();
        using (var doc = JsonDocument.Parse(result.Stdout))
        {
            revision = doc.RootElement.GetProperty("header").GetProperty("revision").GetInt64();
            if (doc.RootElement.TryGetProperty("kvs", out var kvs))
            {
                foreach (var kv in kvs.EnumerateArray())
                {
                    var key = Encoding.UTF8.GetString(kv.GetProperty("key").GetBytesFromBase64());
                    var value = kv.TryGetProperty("value", out var v) ? Encoding.UTF8.GetString(v.GetBytesFromBase64()) : string.Empty;
                    stored[key] = value;

                    // Every key is put once: a second version means an entry was applied twice.
                    if (kv.GetProperty("version").GetInt64() != 1)
                    {
                        twice.Add(key);
                    }
                }
            }
        }

        Assert.True(twice.Count == 0, $"{when}: keys applied more than once: {string.Join(", ", twice.Take(20))}");

        // Only these puts ever wrote: one revision each after the initial revision 1, none applied twice.
        Assert.True(revision == stored.Count + 1, $"{when}: store revision {revision} for {stored.Count} keys each put once");

        var lost = acknowledged.Where(a => !stored.TryGetValue(a.Key, out var v) || v != a.Value)
            .Select(a => $"{a.Key}={a.Value} (stored: {(stored.TryGetValue(a.Key, out var v) ? v : "<absent>")})")
            .ToList();
        Assert.True(lost.Count == 0, $"{when}: {lost.Count} acknowledged puts lost or changed: {string.Join(", ", lost.Take(20))}\nlog tail:\n{member.LogTail()}");

        var bogus = stored.Where(s => !attempted.TryGetValue(s.Key, out var v) || v != s.Value).Select(s => $"{s.Key}={s.Value}").ToList();
        Assert.True(bogus.Count == 0, $"{when}: keys with values never written: {string.Join(", ", bogus.Take(20))}");
    }
}
