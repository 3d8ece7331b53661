using System.Diagnostics;
using System.Text;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcd.Storage.Mvcc.Watch;
using Etcdserverpb;
using Mvccpb;
using Etcd.Storage.Tests.Mvcc;

namespace Etcd.Storage.Tests.Watch;

public sealed class WatchableStoreTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly KvStore _kv = new(new InMemoryBackend());
    private WatchableStore _ws;

    public WatchableStoreTests()
    {
        _ws = new WatchableStore(_kv, new WatchableStoreOptions { StreamBufferLength = 4, SyncBatchRevisions = 3 });
        _kv.SetObserver(_ws);
    }

    public void Dispose()
    {
        _ws.Dispose();
        _kv.Dispose();
    }

    private static byte[] K(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<WatchStreamMessage> Next(WatchStream s)
    {
        using var cts = new CancellationTokenSource(Timeout);
        var m = await s.ReadAsync(cts.Token);
        Assert.NotNull(m);
        return m!;
    }

    /// <summary>Reads event messages of <paramref name="id"/> until <paramref name="count"/> events were seen.</summary>
    private static async Task<List<Event>> Events(WatchStream s, long id, int count)
    {
        var all = new List<Event>();
        while (all.Count < count)
        {
            var m = await Next(s);
            if (m.Kind == WatchMessageKind.Events && m.WatchId == id)
            {
                all.AddRange(m.Events);
            }
        }

        Assert.Equal(count, all.Count);
        return all;
    }

    private static string Describe(Event e) => $"{e.Type}:{e.Kv.Key.ToStringUtf8()}={e.Kv.Value.ToStringUtf8()}@{e.Kv.ModRevision}";

    [Fact]
    public async Task SyncedWatcherGetsKeyRangeAndPrefixEvents()
    {
        using var s = _ws.NewWatchStream();
        var (k, _) = s.Watch(0, K("a"), null, 0);
        var (r, _) = s.Watch(0, K("a"), K("c"), 0);
        var (p, _) = s.Watch(0, K("b"), [], 0);
        Assert.Equal((0L, 1L, 2L), (k, r, p));
        for (var i = 0; i < 3; i++)
        {
            var c = await Next(s);
            Assert.Equal(WatchMessageKind.Created, c.Kind);
            Assert.Equal(i, c.WatchId);
            Assert.Equal(1, c.Revision);
        }

        _kv.Put("a", "1"); // 2
        _kv.Put("b", "2"); // 3
        _kv.Put("z", "3"); // 4
        _kv.Del("a");      // 5
        var got = new Dictionary<long, List<string>> { [k] = [], [r] = [], [p] = [] };
        var seen = 0;
        while (seen < 7)
        {
            var m = await Next(s);
            Assert.Equal(WatchMessageKind.Events, m.Kind);
            got[m.WatchId].AddRange(m.Events.Select(Describe));
            seen += m.Events.Count;
        }

        Assert.Equal(["Put:a=1@2", "Delete:a=@5"], got[k]);
        Assert.Equal(["Put:a=1@2", "Put:b=2@3", "Delete:a=@5"], got[r]);
        Assert.Equal(["Put:b=2@3", "Put:z=3@4"], got[p]);
        Assert.Equal((3, 0, 0), _ws.GroupSizes);
    }

    [Fact]
    public async Task PastStartRevisionReplaysHistoryInBatchesThenGoesLive()
    {
        for (var i = 0; i < 10; i++)
        {
            _kv.Put("k", i.ToString()); // revisions 2..11
        }

        using var s = _ws.NewWatchStream();
        var (id, err) = s.Watch(0, K("k"), null, 3);
        Assert.Null(err);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        var history = await Events(s, id, 9); // revisions 3..11, read 3 revisions per round
        Assert.Equal(Enumerable.Range(3, 9).Select(i => (long)i), history.Select(e => e.Kv.ModRevision));

        // now synced: the next write comes through OnCommitted
        var deadline = Stopwatch.StartNew();
        while (_ws.GroupSizes.Synced != 1 && deadline.Elapsed < Timeout)
        {
            await Task.Delay(5);
        }

        Assert.Equal((1, 0, 0), _ws.GroupSizes);
        _kv.Put("k", "live"); // 12
        var live = await Events(s, id, 1);
        Assert.Equal("Put:k=live@12", Describe(live[0]));
    }

    [Fact]
    public async Task HistoryReplayEqualsLiveHistory()
    {
        using var live = _ws.NewWatchStream();
        var (lid, _) = live.Watch(0, K("p/"), K("p0"), 0);
        await Next(live);
        var rnd = new Random(7);
        for (var i = 0; i < 60; i++)
        {
            var key = "p/" + rnd.Next(5);
            if (rnd.Next(4) == 0)
            {
                _kv.Del(key);
            }
            else
            {
                _kv.Put(key, i.ToString());
            }

            _kv.Put("other", "x");
        }

        // deletes of missing keys change nothing; count what reached the store
        var expected = _kv.ReadEvents(2, _kv.CurrentRevision + 1).Count(e => e.Kv.Key.ToStringUtf8().StartsWith("p/", StringComparison.Ordinal));
        var liveEvents = await Events(live, lid, expected);
        using var replay = _ws.NewWatchStream();
        var (rid, _) = replay.Watch(0, K("p/"), K("p0"), 1);
        await Next(replay);
        var replayed = await Events(replay, rid, expected);
        Assert.Equal(liveEvents.Select(Describe), replayed.Select(Describe));
    }

    [Fact]
    public async Task CompactedStartRevisionYieldsCompactedMessage()
    {
        for (var i = 0; i < 5; i++)
        {
            _kv.Put("k", i.ToString()); // 2..6
        }

        _kv.Compact(new CompactionRequest { Revision = 5 });
        using var s = _ws.NewWatchStream();
        var (id, _) = s.Watch(0, K("k"), null, 2);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        var m = await Next(s);
        Assert.Equal(WatchMessageKind.Compacted, m.Kind);
        Assert.Equal(id, m.WatchId);
        Assert.Equal(5, m.CompactRevision);
        Assert.Equal((0, 0, 0), _ws.GroupSizes);

        // starting at the compacted revision itself is allowed (etcd keeps it)
        var (id2, _) = s.Watch(0, K("k"), null, 5);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        var evs = await Events(s, id2, 2);
        Assert.Equal([5L, 6L], evs.Select(e => e.Kv.ModRevision));
    }

    [Fact]
    public async Task FiltersDropPutsOrDeletes()
    {
        using var s = _ws.NewWatchStream();
        var (noPut, _) = s.Watch(0, K("k"), null, 0, WatchFilter.NoPut);
        var (noDel, _) = s.Watch(0, K("k"), null, 0, WatchFilter.NoDelete);
        await Next(s);
        await Next(s);
        _kv.Put("k", "1");
        _kv.Del("k");
        _kv.Put("k", "2");
        var a = new List<string>();
        var b = new List<string>();
        while (a.Count + b.Count < 3)
        {
            var m = await Next(s);
            (m.WatchId == noPut ? a : b).AddRange(m.Events.Select(Describe));
        }

        Assert.Equal(["Delete:k=@3"], a);
        Assert.Equal(["Put:k=1@2", "Put:k=2@4"], b);
    }

    [Fact]
    public async Task FullStreamMakesVictimsWithoutBlockingWritesAndCatchesUpInOrder()
    {
        using var slow = _ws.NewWatchStream();
        using var fast = _ws.NewWatchStream();
        var (sid, _) = slow.Watch(0, K("k"), null, 0);
        var (fid, _) = fast.Watch(0, K("k"), null, 0);
        await Next(slow);
        await Next(fast);
        var fastTask = Events(fast, fid, 50);
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < 50; i++)
        {
            _kv.Put("k", i.ToString()); // 2..51, the slow stream holds 4
        }

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.InRange(_ws.GroupSizes.Victims, 1, 2); // the fast reader may fall behind a tight write loop too
        Assert.Equal(4, slow.Buffered);
        var fastEvents = await fastTask.WaitAsync(Timeout);
        Assert.Equal(50, fastEvents.Count);

        // the slow reader now drains: everything arrives exactly once, in order
        var slowEvents = await Events(slow, sid, 50);
        Assert.Equal(Enumerable.Range(2, 50).Select(i => (long)i), slowEvents.Select(e => e.Kv.ModRevision));
        var deadline = Stopwatch.StartNew();
        while (_ws.GroupSizes != (2, 0, 0) && deadline.Elapsed < Timeout)
        {
            await Task.Delay(5);
        }

        Assert.Equal((2, 0, 0), _ws.GroupSizes);
    }

    [Fact]
    public async Task DuplicateIdEmptyRangeAndCancel()
    {
        using var s = _ws.NewWatchStream();
        Assert.Equal((7L, (string?)null), s.Watch(7, K("a"), null, 0));
        Assert.Equal((-1L, WatchErrors.DuplicateId), s.Watch(7, K("b"), null, 0));
        Assert.Equal((-1L, WatchErrors.EmptyWatcherRange), s.Watch(0, K("b"), K("a"), 0));
        Assert.Equal((0L, (string?)null), s.Watch(0, K("a"), null, 0));
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        _kv.Put("a", "1");
        Assert.True(s.Cancel(7));
        Assert.False(s.Cancel(7));
        var m1 = await Next(s);
        var m2 = await Next(s);
        var m3 = await Next(s);
        Assert.Equal(WatchMessageKind.Events, m1.Kind);
        Assert.Equal(WatchMessageKind.Events, m2.Kind);
        Assert.Equal((WatchMessageKind.Canceled, 7L), (m3.Kind, m3.WatchId));
        _kv.Put("a", "2");
        var m4 = await Next(s);
        Assert.Equal((WatchMessageKind.Events, 0L), (m4.Kind, m4.WatchId));
    }

    [Fact]
    public async Task ProgressAllWaitsForCatchUpAndNeverPrecedesEvents()
    {
        for (var i = 0; i < 20; i++)
        {
            _kv.Put("k", i.ToString()); // 2..21
        }

        using var s = _ws.NewWatchStream();
        s.Watch(0, K("k"), null, 2);
        s.RequestProgressAll();
        var maxEventRev = 0L;
        var progress = 0L;
        var sawCreated = false;
        while (progress == 0)
        {
            var m = await Next(s);
            switch (m.Kind)
            {
                case WatchMessageKind.Created:
                    sawCreated = true;
                    break;
                case WatchMessageKind.Events:
                    maxEventRev = Math.Max(maxEventRev, m.Events[^1].Kv.ModRevision);
                    break;
                case WatchMessageKind.ProgressAll:
                    progress = m.Revision;
                    break;
            }
        }

        Assert.True(sawCreated);
        Assert.Equal(21, maxEventRev);
        Assert.Equal(21, progress);
    }

    [Fact]
    public async Task PerWatcherProgressOnlyWhenSynced()
    {
        using var s = _ws.NewWatchStream();
        var (id, _) = s.Watch(0, K("k"), null, 0);
        await Next(s);
        _kv.Put("x", "1");
        s.RequestProgress(id);
        var m = await Next(s);
        Assert.Equal((WatchMessageKind.Progress, id, 2L), (m.Kind, m.WatchId, m.Revision));
        Assert.Empty(m.Events);
        s.RequestProgress(99);
        Assert.False(s.TryRead(out _));
    }

    [Fact]
    public async Task DisposedStreamEndsAndDetachesWatchers()
    {
        var s = _ws.NewWatchStream();
        s.Watch(0, K("k"), null, 0);
        s.Watch(0, K("a"), K("z"), 0);
        Assert.Equal(2, _ws.GroupSizes.Synced);
        s.Dispose();
        Assert.Equal((0, 0, 0), _ws.GroupSizes);
        _kv.Put("k", "v");
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        Assert.Null(await s.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal((-1L, WatchErrors.EmptyWatcherRange), s.Watch(0, K("k"), null, 0));
    }
}

public sealed class WatchableStoreEdgeTests : IDisposable
{
    private readonly KvStore _kv = new(new InMemoryBackend());
    private readonly WatchableStore _ws;

    public WatchableStoreEdgeTests()
    {
        _ws = new WatchableStore(_kv);
        _kv.SetObserver(_ws);
    }

    public void Dispose()
    {
        _ws.Dispose();
        _kv.Dispose();
    }

    private static async Task<WatchStreamMessage> Next(WatchStream s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return (await s.ReadAsync(cts.Token))!;
    }

    [Fact]
    public async Task FutureStartRevisionSkipsEarlierEvents()
    {
        using var s = _ws.NewWatchStream();
        s.Watch(0, "k"u8.ToArray(), null, 4);
        Assert.Equal((1, 0, 0), _ws.GroupSizes);
        Assert.Equal(WatchMessageKind.Created, (await Next(s)).Kind);
        _kv.Put("k", "2");
        _kv.Put("k", "3");
        _kv.Put("k", "4");
        var m = await Next(s);
        Assert.Equal(4, Assert.Single(m.Events).Kv.ModRevision);
    }

    [Fact]
    public async Task RestoreMovesSyncedWatchersToCatchUpFromTheNewBackend()
    {
        // a second store holds more history; restoring it under the watchers replays what they missed
        var other = new InMemoryBackend();
        using (var kv2 = new KvStore(other))
        {
            kv2.Put("k", "a"); // 2
            kv2.Put("k", "b"); // 3
        }

        using var s = _ws.NewWatchStream();
        s.Watch(0, "k"u8.ToArray(), null, 0);
        await Next(s);
        _kv.Restore(other);
        _ws.OnRestored();
        Assert.Equal(3, _ws.Revision);
        var m = await Next(s);
        Assert.Equal([2L, 3L], m.Events.Select(e => e.Kv.ModRevision));
        _kv.Put("k", "c");
        Assert.Equal(4, Assert.Single((await Next(s)).Events).Kv.ModRevision);
    }
}

public sealed class WatchableStoreStallTests
{
    [Fact]
    public void ThousandsOfStalledWatchersKeepWritesCheapAndBuffersBounded()
    {
        using var kv = new KvStore(new InMemoryBackend());
        using var ws = new WatchableStore(kv, new WatchableStoreOptions { StreamBufferLength = 8 });
        kv.SetObserver(ws);
        var streams = Enumerable.Range(0, 100).Select(_ => ws.NewWatchStream()).ToList();
        foreach (var s in streams)
        {
            for (var j = 0; j < 50; j++)
            {
                s.Watch(0, "s/"u8.ToArray(), "s0"u8.ToArray(), 0);
            }
        }

        var sw = Stopwatch.StartNew();
        for (var i = 0; i < 2000; i++)
        {
            kv.Put($"s/{i % 10}", "v");
        }

        var elapsed = sw.Elapsed;

        // nobody reads: each stream holds at most its 8 buffered messages, every watcher is a victim with one pending
        Assert.All(streams, s => Assert.True(s.Buffered <= 8));
        Assert.Equal((0, 0, 5000), ws.GroupSizes);
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"2000 writes took {elapsed}");
        foreach (var s in streams)
        {
            s.Dispose();
        }

        Assert.Equal((0, 0, 0), ws.GroupSizes);
    }
}

public sealed class WatchableStoreConcurrencyTests
{
    [Fact]
    public async Task CatchUpRacingLiveWritesDeliversEveryRevisionExactlyOnce()
    {
        using var kv = new KvStore(new InMemoryBackend());
        using var ws = new WatchableStore(kv, new WatchableStoreOptions { StreamBufferLength = 4, SyncBatchRevisions = 50 });
        kv.SetObserver(ws);
        for (var i = 0; i < 500; i++)
        {
            kv.Put("c", i.ToString()); // 2..501
        }

        const int live = 2000;
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < live; i++)
            {
                kv.Put("c", "live" + i); // 502..2501
            }
        });
        using var s = ws.NewWatchStream();
        var (id, _) = s.Watch(0, "c"u8.ToArray(), null, 2);
        var revs = new List<long>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (revs.Count < 500 + live)
        {
            var m = (await s.ReadAsync(cts.Token))!;
            if (m.Kind == WatchMessageKind.Events)
            {
                Assert.Equal(id, m.WatchId);
                revs.AddRange(m.Events.Select(e => e.Kv.ModRevision));
            }

            if (revs.Count % 7 == 0)
            {
                await Task.Yield(); // a reader slower than the writer now and then
            }
        }

        await writer.WaitAsync(cts.Token);
        Assert.Equal(Enumerable.Range(2, 500 + live).Select(i => (long)i), revs);
        Assert.False(s.TryRead(out var extra) && extra.Kind == WatchMessageKind.Events, "an event was delivered twice");
    }
}
