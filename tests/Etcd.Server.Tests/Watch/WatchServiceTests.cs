using Etcd.Api;
using Etcdserverpb;
using Mvccpb;
using static Etcd.Server.Tests.Watch.WatchCall;

namespace Etcd.Server.Tests.Watch;

/// <summary>The Watch service through our gRPC client against an in-process member.</summary>
public sealed class WatchServiceTests : WatchMemberFixture
{
    private static string D(Event e) => $"{e.Type}:{e.Kv.Key.ToStringUtf8()}={e.Kv.Value.ToStringUtf8()}@{e.Kv.ModRevision}";

    [Fact]
    public async Task ManyWatchersPerStreamWithServerAssignedIds()
    {
        using var w = new WatchCall(Client);
        var rev = Host.Server.Kv.CurrentRevision;
        await w.CreateAsync("a");
        await w.CreateAsync("a", "c");
        await w.CreateAsync("b", "\0");
        for (var i = 0; i < 3; i++)
        {
            var c = await w.NextAsync();
            Assert.True(c.Created);
            Assert.False(c.Canceled);
            Assert.Equal(i, c.WatchId);
            Assert.Equal(rev, c.Header.Revision);
            Assert.NotEqual(0UL, c.Header.ClusterId);
        }

        await Client.Kv.PutAsync("a", "1");
        await Client.Kv.PutAsync("b", "2");
        await Client.Kv.PutAsync("z", "3");
        var got = new Dictionary<long, List<string>> { [0] = [], [1] = [], [2] = [] };
        for (var n = 0; n < 5;)
        {
            var r = await w.NextAsync();
            Assert.Equal(r.Events[^1].Kv.ModRevision, r.Header.Revision);
            got[r.WatchId].AddRange(r.Events.Select(D));
            n += r.Events.Count;
        }

        Assert.Equal([$"Put:a=1@{rev + 1}"], got[0]);
        Assert.Equal([$"Put:a=1@{rev + 1}", $"Put:b=2@{rev + 2}"], got[1]);
        Assert.Equal([$"Put:b=2@{rev + 2}", $"Put:z=3@{rev + 3}"], got[2]);
    }

    [Fact]
    public async Task ClientChosenIdsDuplicatesAndBadRange()
    {
        using var w = new WatchCall(Client);
        await w.CreateAsync("k", id: 5);
        var c = await w.NextAsync();
        Assert.Equal((true, false, 5L), (c.Created, c.Canceled, c.WatchId));
        await w.CreateAsync("k", id: 5);
        var dup = await w.NextAsync();
        Assert.Equal((true, true, -1L), (dup.Created, dup.Canceled, dup.WatchId));
        Assert.Equal("mvcc: duplicate watch ID provided on the WatchStream", dup.CancelReason);
        await w.CreateAsync("z", "a");
        var bad = await w.NextAsync();
        Assert.Equal((true, true, -1L, "mvcc: watcher range is empty"), (bad.Created, bad.Canceled, bad.WatchId, bad.CancelReason));

        // an auto id after an explicit one starts at 0
        await w.CreateAsync("k");
        Assert.Equal(0, (await w.NextAsync()).WatchId);
    }

    [Fact]
    public async Task CancelAnswersCanceledAndStopsEvents()
    {
        using var w = new WatchCall(Client);
        await w.CreateAsync("c");
        await w.CreateAsync("c");
        await w.NextAsync();
        await w.NextAsync();
        await w.SendAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = 0 } });
        var canceled = await w.NextAsync();
        Assert.Equal((true, 0L, false), (canceled.Canceled, canceled.WatchId, canceled.Created));
        await Client.Kv.PutAsync("c", "v");
        var r = await w.NextAsync();
        Assert.Equal(1, r.WatchId);
        Assert.Single(r.Events);

        // cancel of an unknown id: etcd answers nothing; the next answer is the progress response
        await w.SendAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = 42 } });
        await w.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        var p = await w.NextAsync();
        Assert.Equal((-1L, false), (p.WatchId, p.Canceled));
    }

    [Fact]
    public async Task ProgressNeverPrecedesEventsAlreadyDue()
    {
        for (var i = 0; i < 30; i++)
        {
            await Client.Kv.PutAsync("pr", i.ToString());
        }

        var current = Host.Server.Kv.CurrentRevision;
        using var w = new WatchCall(Client);
        await w.CreateAsync("pr", startRev: 1);
        await w.SendAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        var maxEvent = 0L;
        var events = 0;
        while (true)
        {
            var r = await w.NextAsync();
            if (r.Created)
            {
                continue;
            }

            if (r.WatchId == -1)
            {
                Assert.Empty(r.Events);
                Assert.True(r.Header.Revision >= maxEvent);
                Assert.True(r.Header.Revision >= current);
                break;
            }

            maxEvent = Math.Max(maxEvent, r.Events[^1].Kv.ModRevision);
            events += r.Events.Count;
        }

        Assert.Equal(30, events);
        Assert.Equal(current, maxEvent);
    }

    [Fact]
    public async Task CompactedStartRevisionCancelsWithCompactRevision()
    {
        await Client.Kv.PutAsync("cmp", "1");
        var r2 = await Client.Kv.PutAsync("cmp", "2");
        await Client.Kv.PutAsync("cmp", "3");
        await Client.Kv.CompactAsync(new CompactionRequest { Revision = r2.Header.Revision });
        using var w = new WatchCall(Client);
        await w.CreateAsync("cmp", startRev: 1);
        Assert.True((await w.NextAsync()).Created);
        var c = await w.NextAsync();
        Assert.True(c.Canceled);
        Assert.Equal(r2.Header.Revision, c.CompactRevision);
        Assert.Equal(0, c.WatchId);
        Assert.Empty(c.Events);
        Assert.Equal(0, c.Header.Revision); // as etcd sends it

        // canceling the compacted watcher is still answered
        await w.SendAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = 0 } });
        var canceled = await w.NextAsync();
        Assert.Equal((true, 0L, 0L), (canceled.Canceled, canceled.WatchId, canceled.CompactRevision));
    }

    [Fact]
    public async Task HistoryReplayEqualsLiveHistoryWithPrevKv()
    {
        using var live = new WatchCall(Client);
        await live.CreateAsync("h/", "h0", prevKv: true);
        await live.NextAsync();
        var start = Host.Server.Kv.CurrentRevision + 1;
        var rnd = new Random(3);
        var changes = 0;
        for (var i = 0; i < 40; i++)
        {
            var key = "h/" + rnd.Next(4);
            if (rnd.Next(3) == 0)
            {
                var d = await Client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B(key) });
                changes += (int)d.Deleted;
            }
            else
            {
                await Client.Kv.PutAsync(key, "v" + i);
                changes++;
            }
        }

        var (liveEvents, _) = await live.EventsAsync(0, changes);
        using var replay = new WatchCall(Client);
        await replay.CreateAsync("h/", "h0", startRev: start, prevKv: true);
        await replay.NextAsync();
        var (replayed, _) = await replay.EventsAsync(0, changes);
        Assert.Equal(liveEvents, replayed);
        Assert.Equal(Enumerable.Range(0, changes).Select(_ => true), liveEvents.Zip(liveEvents.Skip(1).Append(null)).Select(p => p.Second is null || p.First.Kv.ModRevision < p.Second.Kv.ModRevision));

        // prev_kv holds the value before each update or delete (and is absent on creation)
        foreach (var e in liveEvents)
        {
            var created = e.Type == Event.Types.EventType.Put && e.Kv.CreateRevision == e.Kv.ModRevision;
            Assert.Equal(created, e.PrevKv is null);
            if (e.PrevKv is not null)
            {
                Assert.Equal(e.Kv.Key, e.PrevKv.Key);
                Assert.True(e.PrevKv.ModRevision < e.Kv.ModRevision);
            }
        }
    }

    [Fact]
    public async Task FiltersAreApplied()
    {
        using var w = new WatchCall(Client);
        await w.CreateAsync("f", filters: WatchCreateRequest.Types.FilterType.Noput);
        await w.NextAsync();
        await Client.Kv.PutAsync("f", "1");
        await Client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("f") });
        var r = await w.NextAsync();
        Assert.Equal(Event.Types.EventType.Delete, Assert.Single(r.Events).Type);
    }

    [Fact]
    public async Task ClosingTheCallDetachesItsWatchers()
    {
        var before = Host.Server.Watchable.GroupSizes.Synced;
        var w = new WatchCall(Client);
        await w.CreateAsync("gone");
        await w.CreateAsync("gone2");
        await w.NextAsync();
        await w.NextAsync();
        Assert.Equal(before + 2, Host.Server.Watchable.GroupSizes.Synced);
        w.Dispose();
        for (var i = 0; i < 500 && Host.Server.Watchable.GroupSizes.Synced != before; i++)
        {
            await Task.Delay(10);
        }

        Assert.Equal(before, Host.Server.Watchable.GroupSizes.Synced);
        await Client.Kv.PutAsync("gone", "x"); // the member keeps serving
    }
}

/// <summary>Fragmentation needs a small request limit.</summary>
public sealed class WatchFragmentTests : WatchMemberFixture
{
    protected override int MaxRequestBytes => 4096;

    [Fact]
    public async Task LargeBatchesAreSplitWithFragmentOnAllButLast()
    {
        // ten 1 KB puts (each under the 4 KB request limit), then a replay of all of them comes as one batch
        var first = 0L;
        for (var i = 0; i < 10; i++)
        {
            var p = await Client.Kv.PutAsync($"fr/{i}", new string('x', 1000));
            first = first == 0 ? p.Header.Revision : first;
        }

        using var w = new WatchCall(Client);
        await w.CreateAsync("fr/", "fr0", startRev: first, fragment: true);
        await w.CreateAsync("fr/", "fr0", startRev: first);
        var fragmented = new List<WatchResponse>();
        WatchResponse? whole = null;
        while (whole is null || fragmented.Count == 0 || fragmented[^1].Fragment)
        {
            var r = await w.NextAsync();
            if (r.Created)
            {
                continue;
            }

            if (r.WatchId == 0)
            {
                fragmented.Add(r);
            }
            else
            {
                whole = r;
            }
        }

        Assert.Equal(10, whole.Events.Count);
        Assert.False(whole.Fragment);
        Assert.True(fragmented.Count > 1);
        Assert.All(fragmented[..^1], r => Assert.True(r.Fragment));
        Assert.False(fragmented[^1].Fragment);
        Assert.All(fragmented, r => Assert.True(r.Events.Count == 1 || r.CalculateSize() < 4096));
        Assert.Equal(whole.Events, fragmented.SelectMany(r => r.Events));
    }
}
