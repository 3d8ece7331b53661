using Etcd.Storage.V2Store;

namespace Etcd.Storage.Tests.V2Store;

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public long Nanos => V2Json.Now(this);
}

/// <summary>The v2 store's semantics, errors and indexes, as etcd's v2store (store.go, node.go, watcher_hub.go).</summary>
public sealed class V2StoreTests
{
    private const long Second = 1_000_000_000L;
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 7, 10, 0, 0, TimeSpan.Zero));
    private readonly Etcd.Storage.V2Store.V2Store _s;

    public V2StoreTests() => _s = new Etcd.Storage.V2Store.V2Store(_clock, "/0", "/1");

    private static V2Error Error(Action a) => Assert.Throws<V2Error>(a);

    [Fact]
    public void Set_CreatesThenReplaces_WithIndexesAndPrevNode()
    {
        var e1 = _s.Set("/1/foo", false, "bar", 0);
        Assert.Equal("set", e1.Action);
        Assert.True(e1.IsCreated);
        Assert.Equal(1UL, e1.EtcdIndex);
        Assert.Equal("""{"action":"set","node":{"key":"/1/foo","value":"bar","modifiedIndex":1,"createdIndex":1}}""", e1.ToJson());

        var e2 = _s.Set("/1/foo", false, "baz", 0);
        Assert.False(e2.IsCreated);
        Assert.Equal("""{"action":"set","node":{"key":"/1/foo","value":"baz","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/1/foo","value":"bar","modifiedIndex":1,"createdIndex":1}}""", e2.ToJson());
        Assert.Equal(2UL, _s.CurrentIndex);

        var g = _s.Get("/1/foo", false, false);
        Assert.Equal("""{"action":"get","node":{"key":"/1/foo","value":"baz","modifiedIndex":2,"createdIndex":2}}""", g.ToJson());
        Assert.Equal(2UL, g.EtcdIndex);
    }

    [Fact]
    public void Errors_CarryEtcdsCodesCausesAndIndex()
    {
        _s.Set("/1/a", false, "1", 0);
        var notFound = Error(() => _s.Get("/1/nope", false, false));
        Assert.Equal("""{"errorCode":100,"message":"Key not found","cause":"/1/nope","index":1}""", notFound.ToJson());
        Assert.Equal(404, notFound.StatusCode);

        var exists = Error(() => _s.Create("/1/a", false, "x", false, 0));
        Assert.Equal((105, "/1/a", 412), (exists.Code, exists.Cause, exists.StatusCode));

        var notDir = Error(() => _s.Set("/1/a/b", false, "x", 0));
        Assert.Equal((104, "/1/a", 400), (notDir.Code, notDir.Cause, notDir.StatusCode));

        var ro = Error(() => _s.Set("/1", false, "x", 0));
        Assert.Equal((107, "/"), (ro.Code, ro.Cause));
        Assert.Equal(107, Error(() => _s.Delete("/", true, true)).Code);

        _s.Create("/1/d", true, "", false, 0);
        var notFile = Error(() => _s.Set("/1/d", false, "x", 0));
        Assert.Equal((102, "/1/d", 403), (notFile.Code, notFile.Cause, notFile.StatusCode));
        Assert.Equal(102, Error(() => _s.Update("/1/d", "v", 0)).Code);
        Assert.Equal(100, Error(() => _s.Update("/1/missing", "v", 0)).Code);
        Assert.Equal(2UL, _s.CurrentIndex);
    }

    [Fact]
    public void CompareAndSwap_ComparesValueAndIndex()
    {
        _s.Set("/1/k", false, "one", 0);
        var v = Error(() => _s.CompareAndSwap("/1/k", "two", 0, "x", 0));
        Assert.Equal((101, "[two != one]", 412), (v.Code, v.Cause, v.StatusCode));
        Assert.Equal("[5 != 1]", Error(() => _s.CompareAndSwap("/1/k", "", 5, "x", 0)).Cause);
        Assert.Equal("[two != one] [5 != 1]", Error(() => _s.CompareAndSwap("/1/k", "two", 5, "x", 0)).Cause);

        var ok = _s.CompareAndSwap("/1/k", "one", 1, "three", 0);
        Assert.Equal("compareAndSwap", ok.Action);
        Assert.Equal(2UL, ok.Node!.ModifiedIndex);
        Assert.Equal(1UL, ok.Node.CreatedIndex);
        Assert.Equal("one", ok.PrevNode!.Value);

        Assert.Equal(101, Error(() => _s.CompareAndDelete("/1/k", "one", 0)).Code);
        var del = _s.CompareAndDelete("/1/k", "three", 2);
        Assert.Equal("compareAndDelete", del.Action);
        Assert.Equal(100, Error(() => _s.Get("/1/k", false, false)).Code);
    }

    [Fact]
    public void Delete_FilesDirsAndRecursion()
    {
        _s.Set("/1/dir/a", false, "1", 0);
        _s.Create("/1/empty", true, "", false, 0);
        Assert.Equal(102, Error(() => _s.Delete("/1/dir", false, false)).Code);
        var notEmpty = Error(() => _s.Delete("/1/dir", true, false));
        Assert.Equal((108, "/1/dir", 403), (notEmpty.Code, notEmpty.Cause, notEmpty.StatusCode));
        Assert.True(_s.Delete("/1/empty", true, false).Node!.Dir);
        var rec = _s.Delete("/1/dir", false, true);
        Assert.Equal("""{"action":"delete","node":{"key":"/1/dir","dir":true,"modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/1/dir","dir":true,"modifiedIndex":1,"createdIndex":1}}""", rec.ToJson());
        Assert.Equal(100, Error(() => _s.Get("/1/dir/a", false, false)).Code);
    }

    [Fact]
    public void Post_CreatesInOrderKeys_AndSortedListingsHideHiddenKeys()
    {
        var a = _s.Create("/1/queue", false, "first", true, 0);
        var b = _s.Create("/1/queue", false, "second", true, 0);
        Assert.Equal("/1/queue/00000000000000000001", a.Node!.Key);
        Assert.Equal("/1/queue/00000000000000000002", b.Node!.Key);
        _s.Set("/1/queue/_hidden", false, "h", 0);
        _s.Set("/1/queue/sub/x", false, "deep", 0);

        var flat = _s.Get("/1/queue", false, true);
        Assert.Equal(["/1/queue/00000000000000000001", "/1/queue/00000000000000000002", "/1/queue/sub"], flat.Node!.Nodes!.Select(n => n.Key));
        Assert.Null(flat.Node.Nodes![2].Nodes);
        var deep = _s.Get("/1/queue", true, true);
        Assert.Equal("deep", deep.Node!.Nodes![2].Nodes![0].Value);
        Assert.Equal("h", _s.Get("/1/queue/_hidden", false, false).Node!.Value);
    }

    [Fact]
    public void Ttl_RoundsUp_ExpiresOnSync_AndRefreshKeepsTheValue()
    {
        var exp = _clock.Nanos + (10 * Second);
        var e = _s.Set("/1/t", false, "v", exp);
        Assert.Equal(10, e.Node!.Ttl);
        _clock.Now += TimeSpan.FromMilliseconds(500);
        Assert.Equal(10, _s.Get("/1/t", false, false).Node!.Ttl);
        Assert.True(_s.HasTtlKeys);
        Assert.Contains("\"expiration\":\"2026-12-07T10:00:10Z\",\"ttl\":10", _s.Get("/1/t", false, false).ToJson());

        var refreshed = _s.Set("/1/t", false, "", _clock.Nanos + (20 * Second), refresh: true);
        Assert.Equal("v", refreshed.Node!.Value);
        Assert.True(refreshed.Refresh);

        _s.DeleteExpiredKeys(_clock.Nanos + (19 * Second));
        Assert.Equal("v", _s.Get("/1/t", false, false).Node!.Value);
        _s.DeleteExpiredKeys(_clock.Nanos + (20 * Second));
        Assert.Equal(100, Error(() => _s.Get("/1/t", false, false)).Code);
        Assert.False(_s.HasTtlKeys);
        Assert.Equal(1, _s.Stats["expireCount"]);

        // An expiry before 2000 means none (etcd's minExpireTime).
        Assert.Equal(0, _s.Set("/1/old", false, "v", 5).Node!.Ttl);
        Assert.False(_s.HasTtlKeys);
    }

    [Fact]
    public async Task Watch_OneShot_Recursive_FromHistory_AndHiddenKeys()
    {
        using var key = _s.Watch("/1/w", false, false, 0);
        using var dir = _s.Watch("/1", true, true, 0);
        using var plain = _s.Watch("/1", false, false, 0);
        _s.Set("/1/_secret", false, "s", 0);
        _s.Set("/1/w", false, "x", 0);

        var ev = await key.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(("set", "/1/w"), (ev.Action, ev.Node!.Key));
        Assert.True(ChannelClosedOrEmpty(key));
        var d = await dir.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("/1/w", d.Node!.Key);
        Assert.False(plain.Events.TryRead(out _));
        Assert.Equal(2, _s.WatcherCount);

        // A past index still in the history is answered at once; index 0 means the next change.
        using var past = _s.Watch("/1/w", false, false, 1);
        Assert.True(past.Events.TryRead(out var p));
        Assert.Equal(2UL, p.Node!.ModifiedIndex);
        Assert.Equal(2UL, p.EtcdIndex);
    }

    private static bool ChannelClosedOrEmpty(V2Watcher w) => !w.Events.TryRead(out _);

    [Fact]
    public void Watch_OutdatedIndex_FailsWith401()
    {
        for (var i = 0; i < 1005; i++)
        {
            _s.Set("/1/k", false, i.ToString(System.Globalization.CultureInfo.InvariantCulture), 0);
        }

        var e = Error(() => _s.Watch("/1/k", false, false, 3));
        Assert.Equal("""{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [6/3]","index":1005}""", e.ToJson());
        using var ok = _s.Watch("/1/k", false, false, 6);
        Assert.True(ok.Events.TryRead(out var first));
        Assert.Equal(6UL, first.Node!.ModifiedIndex);
    }

    [Fact]
    public async Task Watch_OnAChild_SeesTheDeletionOfItsDirectory()
    {
        _s.Set("/1/dir/child", false, "v", 0);
        using var w = _s.Watch("/1/dir/child", false, false, 0);
        _s.Delete("/1/dir", true, true);
        var ev = await w.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(("delete", "/1/dir"), (ev.Action, ev.Node!.Key));
    }

    [Fact]
    public void SaveRecover_RoundTripsTreeTtlsHistoryAndIndex()
    {
        _s.Set("/1/a", false, "1", 0);
        _s.Set("/1/dir/b", false, "2", _clock.Nanos + (30 * Second) + 123);
        _s.Delete("/1/a", false, false);
        var json = _s.Save();

        var copy = new Etcd.Storage.V2Store.V2Store(_clock, "/0", "/1");
        copy.Recover(json);
        Assert.Equal(json, copy.Save());
        Assert.Equal(_s.CurrentIndex, copy.CurrentIndex);
        Assert.Equal(_s.Get("/1", true, true).ToJson(), copy.Get("/1", true, true).ToJson());
        Assert.True(copy.HasTtlKeys);
        using var past = copy.Watch("/1/a", false, false, 1);
        Assert.True(past.Events.TryRead(out var first));
        Assert.Equal("set", first.Action);

        copy.DeleteExpiredKeys(_clock.Nanos + (31 * Second));
        Assert.Equal(100, Error(() => copy.Get("/1/dir/b", false, false)).Code);
    }

    [Fact]
    public void Save_ReplacesTheGivenTopLevelChildren()
    {
        _s.Set("/1/a", false, "1", 0);
        var zero = """{"Path":"/0","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"version":{"Path":"/0/version","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"3.4.0","Children":null}}}""";
        var json = System.Text.Encoding.UTF8.GetString(_s.Save(new Dictionary<string, string> { ["0"] = zero }));
        Assert.StartsWith("""{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"0":""" + zero + ",\"1\":", json);
        Assert.Equal(zero, Etcd.Storage.V2Store.V2Store.RawTopLevelChild(System.Text.Encoding.UTF8.GetBytes(json), "0"));
        Assert.EndsWith(""","CurrentIndex":1,"Stats":{"getsSuccess":0,"getsFail":0,"setsSuccess":1,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0},"CurrentVersion":2}""", json);
    }

    [Theory]
    [InlineData(0L, "0001-01-01T00:00:00Z")]
    [InlineData(1_700_000_000_123_456_789L, "2023-11-14T22:13:20.123456789Z")]
    [InlineData(1_700_000_000_100_000_000L, "2023-11-14T22:13:20.1Z")]
    [InlineData(1_700_000_000_000_000_000L, "2023-11-14T22:13:20Z")]
    public void Times_AreGosRfc3339Nano(long nanos, string text)
    {
        Assert.Equal(text, V2Json.FormatTime(nanos));
        Assert.Equal(nanos, V2Json.ParseTime(text));
    }

    [Fact]
    public void ParseTime_ReadsOffsets()
        => Assert.Equal(1_700_000_000_500_000_000L, V2Json.ParseTime("2023-11-14T23:13:20.5+01:00"));

    [Theory]
    [InlineData("foo", "/foo")]
    [InlineData("/a//b/", "/a/b")]
    [InlineData("/a/./b/../c", "/a/c")]
    [InlineData("/../..", "/")]
    public void Clean_IsGosPathClean(string input, string expected) => Assert.Equal(expected, Etcd.Storage.V2Store.V2Store.Clean(input));
}
