using System.Text;
using System.Text.Json;

namespace Etcd.Storage.V2Store;

/// <summary>
/// The v2 store's operation counters (etcd's <c>v2store.Stats</c>), as served by <c>/v2/stats/store</c> and kept in
/// snapshots: successes and failures per operation, expired keys and (filled when written) the watcher count.
/// Thread-safe (atomic counters).
/// </summary>
public sealed class V2StoreStats
{
    internal const int Gets = 0, Sets = 1, Deletes = 2, Updates = 3, Creates = 4, CompareAndSwaps = 5, CompareAndDeletes = 6, Expires = 7;

    // Go's JSON names, in its field order; successes at 2i, failures at 2i+1, expireCount last.
    private static readonly string[] Names =
    [
        "getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail", "updateSuccess", "updateFail",
        "createSuccess", "createFail", "compareAndSwapSuccess", "compareAndSwapFail", "compareAndDeleteSuccess",
        "compareAndDeleteFail", "expireCount",
    ];

    private readonly long[] _counters = new long[Names.Length];

    internal void Inc(int op, bool success)
    {
        var i = op == Expires ? Names.Length - 1 : (op * 2) + (success ? 0 : 1);
        Interlocked.Increment(ref _counters[i]);
    }

    /// <summary>The counter named as in etcd's JSON (e.g. <c>setsSuccess</c>); 0 for unknown names.</summary>
    public long this[string name] => Array.IndexOf(Names, name) is var i and >= 0 ? Interlocked.Read(ref _counters[i]) : 0;

    /// <summary>Writes the counters and <paramref name="watchers"/> as etcd's JSON object.</summary>
    public void Write(Utf8JsonWriter w, long watchers)
    {
        w.WriteStartObject();
        for (var i = 0; i < Names.Length; i++)
        {
            w.WriteNumber(Names[i], Interlocked.Read(ref _counters[i]));
        }

        w.WriteNumber("watchers", watchers);
        w.WriteEndObject();
    }

    /// <summary>The counters as JSON text.</summary>
    public string ToJson(long watchers)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
        {
            Write(w, watchers);
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    internal static V2StoreStats Read(JsonElement e)
    {
        var s = new V2StoreStats();
        for (var i = 0; i < Names.Length; i++)
        {
            if (e.TryGetProperty(Names[i], out var v) && v.TryGetInt64(out var n))
            {
                s._counters[i] = n;
            }
        }

        return s;
    }
}
