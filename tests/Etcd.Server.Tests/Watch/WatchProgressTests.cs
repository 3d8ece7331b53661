using System.Collections;
using System.Collections.Concurrent;
using Etcd.Main.Config;
using Etcd.Server.Watch;
using Etcdserverpb;
using Xunit.Abstractions;
using static Etcd.Server.Tests.Watch.WatchCall;

namespace Etcd.Server.Tests.Watch;

/// <summary>
/// <c>--experimental-watch-progress-notify-interval</c> from the command line to the watch service, and etcd's
/// ordering guarantee for progress responses (etcd#15220): a progress revision is never below an event already sent
/// on the stream, and no event at or below it follows.
/// </summary>
public sealed class WatchProgressTests(ITestOutputHelper output) : WatchMemberFixture
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(150);

    protected override EtcdOptions Configure(EtcdOptions options) => options with { ExperimentalWatchProgressNotifyInterval = Interval };

    [Fact]
    public void FlagAndEnvironmentReachTheWatchServiceOptions()
    {
        static EtcdOptions Load(string[] args, Hashtable? env = null)
        {
            var r = EtcdConfigLoader.Load(args, env ?? new Hashtable());
            Assert.False(r.ShouldExit, r.StandardError);
            return r.Options!;
        }

        var byDefault = Load([]);
        Assert.Equal(TimeSpan.FromMinutes(10), byDefault.ExperimentalWatchProgressNotifyInterval);
        Assert.Equal(TimeSpan.FromMinutes(10), WatchService.OptionsFor(byDefault).ProgressNotifyInterval);

        var flag = Load(["--experimental-watch-progress-notify-interval", "250ms"]);
        Assert.Equal(TimeSpan.FromMilliseconds(250), flag.ExperimentalWatchProgressNotifyInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), WatchService.OptionsFor(flag).ProgressNotifyInterval);

        var env = Load([], new Hashtable { ["ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL"] = "2s" });
        Assert.Equal(TimeSpan.FromSeconds(2), WatchService.OptionsFor(env).ProgressNotifyInterval);

        // etcd raises anything below 100 ms to 100 ms; 0 keeps the default.
        Assert.Equal(TimeSpan.FromMilliseconds(100), WatchService.OptionsFor(Load(["--experimental-watch-progress-notify-interval", "10ms"])).ProgressNotifyInterval);
        Assert.Equal(TimeSpan.FromMinutes(10), WatchService.OptionsFor(Load(["--experimental-watch-progress-notify-interval", "0s"])).ProgressNotifyInterval);
    }

    [Fact]
    public async Task QuietWatcherGetsProgressAtTheConfiguredInterval()
    {
        var rev = (await Client.Kv.PutAsync("elsewhere", "x")).Header.Revision;
        var start = DateTime.UtcNow;
        using var w = new WatchCall(Client);
        await w.CreateAsync("quiet/", "quiet0", progressNotify: true);
        Assert.True((await w.NextAsync()).Created);
        var progress = new List<WatchResponse>();
        while (progress.Count < 3)
        {
            var r = await w.NextAsync(TimeSpan.FromSeconds(5));
            Assert.Empty(r.Events);
            Assert.False(r.Created || r.Canceled);
            Assert.Equal(0, r.WatchId);
            progress.Add(r);
        }

        var elapsed = DateTime.UtcNow - start;
        output.WriteLine($"3 progress responses in {elapsed.TotalMilliseconds:F0} ms (interval {Interval.TotalMilliseconds} ms)");
        Assert.All(progress, p => Assert.True(p.Header.Revision >= rev));

        // the first tick comes one interval after the stream started (later ones may bunch up on a starved thread
        // pool); not the 10-minute default either
        Assert.InRange(elapsed, Interval, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task ProgressRevisionsNeverFallBelowEventsAlreadySentUnderLoad()
    {
        using var w = new WatchCall(Client);
        await w.CreateAsync("busy/", "busy0", progressNotify: true, id: 1);
        await w.CreateAsync("other/", "other0", progressNotify: true, id: 2);
        Assert.True((await w.NextAsync()).Created);
        Assert.True((await w.NextAsync()).Created);

        var seen = new ConcurrentQueue<WatchResponse>();
        var progressOfBusy = new SemaphoreSlim(0);
        var last = long.MaxValue; // set once every write is done: the reader ends after progress of both kinds covers it
        var reader = Task.Run(async () =>
        {
            bool all = false, one = false;
            while (!(all && one))
            {
                var r = await w.NextAsync(TimeSpan.FromSeconds(20));
                seen.Enqueue(r);
                if (r.Events.Count == 0 && r.WatchId is 1 or -1)
                {
                    var covered = r.Header.Revision >= Volatile.Read(ref last);
                    all |= covered && r.WatchId == -1;
                    one |= covered && r.WatchId == 1;
                    progressOfBusy.Release();
                }
            }
        });

        const int rounds = 8;
        const int putsPerRound = 40;
        var written = new ConcurrentBag<(string Key, long Rev)>();
        for (var round = 0; round < rounds; round++)
        {
            // concurrent writers on both ranges, a WatchProgressRequest in the middle of the burst
            var writers = Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
            {
                for (var i = 0; i < putsPerRound / 4; i++)
                {
                    var key = (t % 2 == 0 ? "busy/" : "other/") + i;
                    written.Add((key, (await Client.Kv.PutAsync(key, $"{round}.{t}.{i}")).Header.Revision));
                }
            })).ToList();
            await w.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
            await Task.WhenAll(writers);

            // wait for a progress response of the busy watcher (timer or requested) before the next burst
            Assert.True(await progressOfBusy.WaitAsync(TimeSpan.FromSeconds(10)), "no progress response after a burst");
        }

        Volatile.Write(ref last, written.Max(x => x.Rev));
        await w.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        await reader.WaitAsync(TimeSpan.FromSeconds(20)); // the answer, and the timer's next notification for the busy watcher

        // The checks, over the whole ordered sequence of responses on the stream.
        var maxEvent = new Dictionary<long, long> { [1] = 0, [2] = 0 };
        var floor = new Dictionary<long, long> { [1] = 0, [2] = 0 }; // events must be above the last progress covering the watcher
        var events = new Dictionary<long, List<long>> { [1] = [], [2] = [] };
        int perWatcherProgress = 0, progressAll = 0;
        foreach (var r in seen)
        {
            if (r.Events.Count > 0)
            {
                foreach (var e in r.Events)
                {
                    Assert.True(e.Kv.ModRevision > maxEvent[r.WatchId], "events in revision order, exactly once");
                    Assert.True(e.Kv.ModRevision > floor[r.WatchId], $"event {e.Kv.ModRevision} of watcher {r.WatchId} after a progress at {floor[r.WatchId]}");
                    maxEvent[r.WatchId] = e.Kv.ModRevision;
                    events[r.WatchId].Add(e.Kv.ModRevision);
                }

                continue;
            }

            Assert.False(r.Created || r.Canceled);
            var covered = r.WatchId == -1 ? maxEvent.Keys.ToList() : [r.WatchId];
            foreach (var id in covered)
            {
                Assert.True(r.Header.Revision >= maxEvent[id], $"progress {r.Header.Revision} (watch id {r.WatchId}) below event {maxEvent[id]} already sent on watcher {id}");
                floor[id] = Math.Max(floor[id], r.Header.Revision);
            }

            if (r.WatchId == -1)
            {
                progressAll++;
            }
            else
            {
                perWatcherProgress++;
            }
        }

        Assert.Equal(written.Where(x => x.Key.StartsWith("busy/")).Select(x => x.Rev).Order(), events[1]);
        Assert.Equal(written.Where(x => x.Key.StartsWith("other/")).Select(x => x.Rev).Order(), events[2]);
        output.WriteLine($"{written.Count} puts, {seen.Count} responses: {progressAll} WatchProgressRequest answers, {perWatcherProgress} timer progress notifications");
        Assert.True(progressAll >= rounds);
        Assert.True(perWatcherProgress > 0, "the timer sent no progress notification");
    }
}
