using System.Threading.Channels;

namespace Etcd.Storage.V2Store;

/// <summary>
/// The last 1,000 events of the v2 store (etcd's <c>EventHistory</c> over a ring <c>eventQueue</c>), scanned by
/// watches that start in the past. Touched only under the store's lock.
/// </summary>
internal sealed class V2EventHistory
{
    public V2EventHistory(int capacity)
    {
        Capacity = capacity;
        Events = new V2Event?[capacity];
    }

    public V2Event?[] Events { get; }
    public int Size { get; set; }
    public int Front { get; set; }
    public int Back { get; set; }
    public int Capacity { get; }
    public ulong StartIndex { get; set; }
    public ulong LastIndex { get; set; }

    public void Add(V2Event e)
    {
        Events[Back] = e;
        Back = (Back + 1) % Capacity;
        if (Size == Capacity)
        {
            Front = (Front + 1) % Capacity;
        }
        else
        {
            Size++;
        }

        LastIndex = e.Index;
        StartIndex = Events[Front]!.Index;
    }

    /// <summary>
    /// The first event at or after <paramref name="index"/> that concerns <paramref name="key"/> (its subtree when
    /// recursive, or a deleted/expired directory above it); null when none yet. Throws 401 when the index is older
    /// than the history.
    /// </summary>
    public V2Event? Scan(string key, bool recursive, ulong index)
    {
        if (index < StartIndex)
        {
            throw new V2Error(V2Error.EventIndexCleared, $"the requested history has been cleared [{StartIndex}/{index}]", 0);
        }

        if (index > LastIndex || Size == 0)
        {
            return null;
        }

        var i = (int)((Front + (long)(index - StartIndex)) % Capacity);
        while (true)
        {
            var e = Events[i]!;
            if (!e.Refresh)
            {
                var ok = e.Node!.Key == key;
                if (recursive)
                {
                    var nkey = key.EndsWith('/') ? key : key + "/";
                    ok = ok || e.Node.Key.StartsWith(nkey, StringComparison.Ordinal);
                }

                if (e.Action is V2Event.Delete or V2Event.Expire && e.PrevNode is { Dir: true } pn)
                {
                    ok = ok || key.StartsWith(pn.Key, StringComparison.Ordinal);
                }

                if (ok)
                {
                    return e;
                }
            }

            i = (i + 1) % Capacity;
            if (i == Back)
            {
                return null;
            }
        }
    }
}

/// <summary>
/// A v2 watch (etcd's <c>v2store.watcher</c>): receives the events of its key (or subtree when recursive) from
/// <see cref="SinceIndex"/> on; a one-shot watcher leaves the hub after its first event, a stream watcher stays.
/// A watcher that falls 100 events behind is dropped and its channel completed. Dispose to stop watching.
/// </summary>
public sealed class V2Watcher : IDisposable
{
    private readonly V2Store _store;
    private readonly Channel<V2Event> _events = Channel.CreateBounded<V2Event>(100);

    internal V2Watcher(V2Store store, string key, bool recursive, bool stream, ulong sinceIndex, ulong startIndex)
    {
        _store = store;
        Key = key;
        Recursive = recursive;
        Stream = stream;
        SinceIndex = sinceIndex;
        StartIndex = startIndex;
    }

    /// <summary>The events; completes when the watcher is removed.</summary>
    public ChannelReader<V2Event> Events => _events.Reader;

    /// <summary>The store index when the watch began (<c>X-Etcd-Index</c> of the watch response).</summary>
    public ulong StartIndex { get; }

    internal string Key { get; }
    internal bool Recursive { get; }
    internal bool Stream { get; }
    internal ulong SinceIndex { get; }
    internal bool Removed { get; set; }

    internal bool TryPost(V2Event e) => _events.Writer.TryWrite(e);

    internal void Complete() => _events.Writer.TryComplete();

    /// <summary>Stops the watch (idempotent).</summary>
    public void Dispose() => _store.RemoveWatcher(this);
}
