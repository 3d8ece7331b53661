using System.Globalization;

namespace Etcd.Storage.V2Store;

/// <summary>
/// etcd's v2 store (<c>etcdserver/api/v2store</c>): a tree of files and directories under <c>/</c>, each change
/// numbered by <see cref="CurrentIndex"/>, with TTLs, the 1,000-event history and watchers. Paths are cleaned
/// as Go's <c>path.Clean(path.Join("/", p))</c>; <c>/</c> and the namespaces given at creation are read-only
/// (error 107). Errors are <see cref="V2Error"/> with etcd's codes and causes.
/// </summary>
/// <remarks>
/// Thread-safe: every operation takes one lock (etcd's world lock). Writes come from the apply thread in raft
/// order; reads and watches from request threads. Time comes from the injected <see cref="TimeProvider"/> (TTLs
/// shown); expiry happens only through <see cref="DeleteExpiredKeys"/> (etcd's SYNC request).
/// </remarks>
public sealed partial class V2Store
{
    /// <summary>etcd's event history size.</summary>
    public const int HistoryCapacity = 1000;

    // Go's minExpireTime: expiry times before 2000-01-01T00:00:00Z mean permanent.
    private const long MinExpireTime = 946684800L * 1_000_000_000L;

    private readonly object _lock = new();
    private readonly TimeProvider _clock;
    private readonly HashSet<string> _readOnly;
    private readonly string[] _namespaces;
    private readonly SortedSet<V2Node> _ttlKeys = new(TtlOrder.Instance);
    private readonly Dictionary<string, List<V2Watcher>> _watchers = new(StringComparer.Ordinal);
    private V2Node _root;
    private V2EventHistory _history = new(HistoryCapacity);
    private ulong _currentIndex;
    private int _watcherCount;

    // etcd's store counts some refusals as successes in its stats (it returns those errors without setting the
    // variable its deferred counter reads); set under the lock by CountedAsSuccess, read by Failed.
    private bool _countAsSuccess;

    /// <summary>Creates an empty store with the given top-level directories (etcd's server uses <c>/0</c> and <c>/1</c>).</summary>
    public V2Store(TimeProvider clock, params string[] namespaces)
    {
        ArgumentNullException.ThrowIfNull(clock);
        _clock = clock;
        _namespaces = namespaces;
        _readOnly = new HashSet<string>(namespaces.Append("/"), StringComparer.Ordinal);
        _root = NewRoot();
    }

    /// <summary>The index of the last change.</summary>
    public ulong CurrentIndex
    {
        get
        {
            lock (_lock)
            {
                return _currentIndex;
            }
        }
    }

    /// <summary>The operation counters (etcd's <c>/v2/stats/store</c>).</summary>
    public V2StoreStats Stats { get; private set; } = new();

    /// <summary>Number of active watchers.</summary>
    public int WatcherCount => Volatile.Read(ref _watcherCount);

    /// <summary>True when some node has a TTL (the leader then proposes SYNC requests).</summary>
    public bool HasTtlKeys
    {
        get
        {
            lock (_lock)
            {
                return _ttlKeys.Count > 0;
            }
        }
    }

    private long Now => V2Json.Now(_clock);

    /// <summary>Reads a node (directories list their visible children; all levels when recursive). 100 when missing, 104 when a parent is a file.</summary>
    public V2Event Get(string nodePath, bool recursive, bool sorted)
    {
        lock (_lock)
        {
            try
            {
                var n = InternalGet(nodePath);
                var e = V2Event.New(V2Event.Get, Clean(nodePath), n.ModifiedIndex, n.CreatedIndex);
                e.EtcdIndex = _currentIndex;
                var now = Now;
                if (n.IsDir)
                {
                    e.Node!.Dir = true;
                    e.Node.Nodes = n.ListVisible(recursive, sorted, now);
                }
                else
                {
                    e.Node!.Value = n.Value;
                }

                (e.Node.Expiration, e.Node.Ttl) = n.ExpirationAndTtl(now);
                Stats.Inc(V2StoreStats.Gets, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.Gets, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Creates a file or directory; with <paramref name="unique"/> a new in-order key (20-digit index) under the path. 105 when it exists.</summary>
    public V2Event Create(string nodePath, bool dir, string value, bool unique, long expireTime)
    {
        lock (_lock)
        {
            try
            {
                var e = InternalCreate(nodePath, dir, value, unique, replace: false, expireTime, V2Event.Create);
                e.EtcdIndex = _currentIndex;
                Notify(e);
                Stats.Inc(V2StoreStats.Creates, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.Creates, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Creates or replaces a file (or creates a directory); with <paramref name="refresh"/> only the TTL changes (100 when missing).</summary>
    public V2Event Set(string nodePath, bool dir, string value, long expireTime, bool refresh = false)
    {
        lock (_lock)
        {
            try
            {
                V2Node? n = null;
                V2Error? getErr = null;
                try
                {
                    n = InternalGet(nodePath);
                }
                catch (V2Error ex) when (ex.Code == V2Error.KeyNotFound)
                {
                    getErr = ex;
                }

                if (refresh)
                {
                    if (getErr is not null)
                    {
                        throw getErr;
                    }

                    value = n!.Value;
                }

                var e = InternalCreate(nodePath, dir, value, unique: false, replace: true, expireTime, V2Event.Set);
                e.EtcdIndex = _currentIndex;
                if (n is not null)
                {
                    e.PrevNode = n.Repr(false, false, Now);
                }

                if (!refresh)
                {
                    Notify(e);
                }
                else
                {
                    e.Refresh = true;
                    _history.Add(e);
                }

                Stats.Inc(V2StoreStats.Sets, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.Sets, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Changes an existing node's value and TTL (a directory only its TTL). 100 when missing, 102 for a value on a directory.</summary>
    public V2Event Update(string nodePath, string newValue, long expireTime, bool refresh = false)
    {
        lock (_lock)
        {
            try
            {
                nodePath = Clean(nodePath);
                if (_readOnly.Contains(nodePath))
                {
                    throw CountedAsSuccess(new V2Error(V2Error.RootReadOnly, "/", _currentIndex));
                }

                var next = _currentIndex + 1;
                var n = InternalGet(nodePath);
                if (n.IsDir && newValue.Length != 0)
                {
                    throw CountedAsSuccess(new V2Error(V2Error.NotFile, nodePath, _currentIndex));
                }

                if (refresh)
                {
                    newValue = n.Value;
                }

                var e = V2Event.New(V2Event.Update, nodePath, next, n.CreatedIndex);
                e.EtcdIndex = next;
                var now = Now;
                e.PrevNode = n.Repr(false, false, now);
                if (n.IsDir)
                {
                    e.Node!.Dir = true;
                }
                else
                {
                    n.Value = newValue;
                    n.ModifiedIndex = next;
                    e.Node!.Value = newValue;
                }

                UpdateTtl(n, expireTime);
                (e.Node.Expiration, e.Node.Ttl) = n.ExpirationAndTtl(now);
                if (!refresh)
                {
                    Notify(e);
                }
                else
                {
                    e.Refresh = true;
                    _history.Add(e);
                }

                _currentIndex = next;
                Stats.Inc(V2StoreStats.Updates, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.Updates, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Replaces a file's value when the previous value and/or index match. 101 with cause <c>[a != b]</c> when not, 102 on a directory.</summary>
    public V2Event CompareAndSwap(string nodePath, string prevValue, ulong prevIndex, string value, long expireTime, bool refresh = false)
    {
        lock (_lock)
        {
            try
            {
                nodePath = Clean(nodePath);
                if (_readOnly.Contains(nodePath))
                {
                    throw CountedAsSuccess(new V2Error(V2Error.RootReadOnly, "/", _currentIndex));
                }

                var n = InternalGet(nodePath);
                if (n.IsDir)
                {
                    throw new V2Error(V2Error.NotFile, nodePath, _currentIndex);
                }

                CheckCompare(n, prevValue, prevIndex);
                if (refresh)
                {
                    value = n.Value;
                }

                _currentIndex++;
                var e = V2Event.New(V2Event.CompareAndSwap, nodePath, _currentIndex, n.CreatedIndex);
                e.EtcdIndex = _currentIndex;
                var now = Now;
                e.PrevNode = n.Repr(false, false, now);
                n.Value = value;
                n.ModifiedIndex = _currentIndex;
                UpdateTtl(n, expireTime);
                e.Node!.Value = value;
                (e.Node.Expiration, e.Node.Ttl) = n.ExpirationAndTtl(now);
                if (!refresh)
                {
                    Notify(e);
                }
                else
                {
                    e.Refresh = true;
                    _history.Add(e);
                }

                Stats.Inc(V2StoreStats.CompareAndSwaps, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.CompareAndSwaps, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Deletes a file, an empty directory (<paramref name="dir"/>) or a subtree (<paramref name="recursive"/>). 102 for a directory without dir, 108 when not empty.</summary>
    public V2Event Delete(string nodePath, bool dir, bool recursive)
    {
        lock (_lock)
        {
            try
            {
                nodePath = Clean(nodePath);
                if (_readOnly.Contains(nodePath))
                {
                    throw CountedAsSuccess(new V2Error(V2Error.RootReadOnly, "/", _currentIndex));
                }

                if (recursive)
                {
                    dir = true;
                }

                var n = InternalGet(nodePath);
                var next = _currentIndex + 1;
                var e = V2Event.New(V2Event.Delete, nodePath, next, n.CreatedIndex);
                e.EtcdIndex = next;
                e.PrevNode = n.Repr(false, false, Now);
                if (n.IsDir)
                {
                    e.Node!.Dir = true;
                }

                Remove(n, dir, recursive, p => NotifyWatchers(e, p, deleted: true));
                _currentIndex++;
                Notify(e);
                Stats.Inc(V2StoreStats.Deletes, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.Deletes, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>Deletes a file when the previous value and/or index match (101 when not, 102 on a directory).</summary>
    public V2Event CompareAndDelete(string nodePath, string prevValue, ulong prevIndex)
    {
        lock (_lock)
        {
            try
            {
                nodePath = Clean(nodePath);
                var n = InternalGet(nodePath);
                if (n.IsDir)
                {
                    throw CountedAsSuccess(new V2Error(V2Error.NotFile, nodePath, _currentIndex));
                }

                try
                {
                    CheckCompare(n, prevValue, prevIndex);
                }
                catch (V2Error compareFailed)
                {
                    throw CountedAsSuccess(compareFailed);
                }

                _currentIndex++;
                var e = V2Event.New(V2Event.CompareAndDelete, nodePath, _currentIndex, n.CreatedIndex);
                e.EtcdIndex = _currentIndex;
                e.PrevNode = n.Repr(false, false, Now);
                Remove(n, false, false, p => NotifyWatchers(e, p, deleted: true));
                Notify(e);
                Stats.Inc(V2StoreStats.CompareAndDeletes, true);
                return e;
            }
            catch (V2Error)
            {
                Stats.Inc(V2StoreStats.CompareAndDeletes, CountedFailure());
                throw;
            }
        }
    }

    /// <summary>
    /// Watches <paramref name="key"/> (its subtree when recursive) from <paramref name="sinceIndex"/> (0: the next
    /// change). A matching event still in the history is delivered at once; 401 when the index is older than the
    /// history.
    /// </summary>
    public V2Watcher Watch(string key, bool recursive, bool stream, ulong sinceIndex)
    {
        lock (_lock)
        {
            key = Clean(key);
            if (sinceIndex == 0)
            {
                sinceIndex = _currentIndex + 1;
            }

            V2Event? past;
            try
            {
                past = _history.Scan(key, recursive, sinceIndex);
            }
            catch (V2Error ex)
            {
                ex.Index = _currentIndex;
                throw;
            }

            var w = new V2Watcher(this, key, recursive, stream, sinceIndex, _currentIndex);
            if (past is not null)
            {
                var ne = past.Clone();
                ne.EtcdIndex = _currentIndex;
                w.TryPost(ne);
                return w;
            }

            if (!_watchers.TryGetValue(key, out var list))
            {
                _watchers[key] = list = [];
            }

            list.Add(w);
            Interlocked.Increment(ref _watcherCount);
            return w;
        }
    }

    /// <summary>Removes every node whose expiry is at or before <paramref name="cutoffUnixNanos"/>, each with an <c>expire</c> event.</summary>
    public void DeleteExpiredKeys(long cutoffUnixNanos)
    {
        lock (_lock)
        {
            while (_ttlKeys.Count > 0)
            {
                var node = _ttlKeys.Min!;
                if (node.ExpireTime > cutoffUnixNanos)
                {
                    break;
                }

                _currentIndex++;
                var e = V2Event.New(V2Event.Expire, node.Path, _currentIndex, node.CreatedIndex);
                e.EtcdIndex = _currentIndex;
                e.PrevNode = node.Repr(false, false, Now);
                if (node.IsDir)
                {
                    e.Node!.Dir = true;
                }

                _ttlKeys.Remove(node);
                Remove(node, true, true, p => NotifyWatchers(e, p, deleted: true));
                Stats.Inc(V2StoreStats.Expires, true);
                Notify(e);
            }
        }
    }

    private V2Error CountedAsSuccess(V2Error e)
    {
        _countAsSuccess = true;
        return e;
    }

    /// <summary>Whether the failure being counted goes to the success counter (see <see cref="_countAsSuccess"/>); resets it.</summary>
    private bool CountedFailure()
    {
        var success = _countAsSuccess;
        _countAsSuccess = false;
        return success;
    }

    internal void RemoveWatcher(V2Watcher w)
    {
        lock (_lock)
        {
            w.Complete();
            DetachWatcher(w);
        }
    }

    private void DetachWatcher(V2Watcher w)
    {
        if (w.Removed)
        {
            return;
        }

        w.Removed = true;
        if (_watchers.TryGetValue(w.Key, out var list) && list.Remove(w))
        {
            Interlocked.Decrement(ref _watcherCount);
            if (list.Count == 0)
            {
                _watchers.Remove(w.Key);
            }
        }
    }

    private void Notify(V2Event e)
    {
        _history.Add(e);
        var key = e.Node!.Key;
        var curr = "/";
        NotifyWatchers(e, curr, false);
        foreach (var segment in key.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            curr = curr == "/" ? "/" + segment : curr + "/" + segment;
            NotifyWatchers(e, curr, false);
        }
    }

    private void NotifyWatchers(V2Event e, string nodePath, bool deleted)
    {
        if (!_watchers.TryGetValue(nodePath, out var list))
        {
            return;
        }

        foreach (var w in list.ToList())
        {
            var originalPath = e.Node!.Key == nodePath;
            if ((originalPath || !IsHiddenBelow(nodePath, e.Node.Key)) && (w.Recursive || originalPath || deleted) && e.Index >= w.SinceIndex)
            {
                if (!w.TryPost(e))
                {
                    // Too far behind: dropped (etcd closes it the same way).
                    w.Complete();
                    DetachWatcher(w);
                    continue;
                }

                if (!w.Stream)
                {
                    DetachWatcher(w);
                }
            }
        }
    }

    private static bool IsHiddenBelow(string watchPath, string keyPath)
    {
        if (watchPath.Length > keyPath.Length)
        {
            return false;
        }

        var after = Clean("/" + keyPath[watchPath.Length..]);
        return after.Contains("/_", StringComparison.Ordinal);
    }

    private void CheckCompare(V2Node n, string prevValue, ulong prevIndex)
    {
        var indexMatch = prevIndex == 0 || n.ModifiedIndex == prevIndex;
        var valueMatch = prevValue.Length == 0 || n.Value == prevValue;
        if (indexMatch && valueMatch)
        {
            return;
        }

        var cause = (indexMatch, valueMatch) switch
        {
            (false, true) => $"[{prevIndex} != {n.ModifiedIndex}]",
            (true, false) => $"[{prevValue} != {n.Value}]",
            _ => $"[{prevValue} != {n.Value}] [{prevIndex} != {n.ModifiedIndex}]",
        };
        throw new V2Error(V2Error.TestFailed, cause, _currentIndex);
    }

    private V2Event InternalCreate(string nodePath, bool dir, string value, bool unique, bool replace, long expireTime, string action)
    {
        var curr = _currentIndex;
        var next = curr + 1;
        if (unique)
        {
            nodePath += "/" + next.ToString(CultureInfo.InvariantCulture).PadLeft(20, '0');
        }

        nodePath = Clean(nodePath);
        if (_readOnly.Contains(nodePath))
        {
            throw new V2Error(V2Error.RootReadOnly, "/", curr);
        }

        if (expireTime < MinExpireTime)
        {
            expireTime = 0;
        }

        var slash = nodePath.LastIndexOf('/');
        var dirName = nodePath[..(slash + 1)];
        var nodeName = nodePath[(slash + 1)..];
        V2Node d;
        try
        {
            d = WalkCreatingDirs(dirName);
        }
        catch (V2Error ex)
        {
            ex.Index = curr;
            throw;
        }

        var e = V2Event.New(action, nodePath, next, next);
        if (d.Children!.TryGetValue(nodeName, out var existing))
        {
            if (!replace)
            {
                throw new V2Error(V2Error.NodeExist, nodePath, curr);
            }

            if (existing.IsDir)
            {
                throw new V2Error(V2Error.NotFile, nodePath, curr);
            }

            e.PrevNode = existing.Repr(false, false, Now);
            Remove(existing, false, false, null);
        }

        V2Node n;
        if (!dir)
        {
            e.Node!.Value = value;
            n = new V2Node(nodePath, next, d, expireTime, value, dir: false);
        }
        else
        {
            e.Node!.Dir = true;
            n = new V2Node(nodePath, next, d, expireTime, null, dir: true);
        }

        d.Children[nodeName] = n;
        if (!n.IsPermanent)
        {
            _ttlKeys.Add(n);
            (e.Node.Expiration, e.Node.Ttl) = n.ExpirationAndTtl(Now);
        }

        _currentIndex = next;
        return e;
    }

    /// <summary>Walks to <paramref name="dirPath"/>, creating missing directories (etcd's <c>checkDir</c>); 104 when a component is a file.</summary>
    private V2Node WalkCreatingDirs(string dirPath)
    {
        var curr = _root;
        foreach (var component in dirPath.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (curr.Children!.TryGetValue(component, out var child))
            {
                if (!child.IsDir)
                {
                    throw new V2Error(V2Error.NotDir, child.Path, _currentIndex);
                }

                curr = child;
                continue;
            }

            var n = new V2Node(Join(curr.Path, component), _currentIndex + 1, curr, 0, null, dir: true);
            curr.Children[component] = n;
            curr = n;
        }

        return curr;
    }

    private V2Node InternalGet(string nodePath)
    {
        nodePath = Clean(nodePath);
        var curr = _root;
        foreach (var component in nodePath.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!curr.IsDir)
            {
                throw new V2Error(V2Error.NotDir, curr.Path, _currentIndex);
            }

            if (!curr.Children!.TryGetValue(component, out var child))
            {
                throw new V2Error(V2Error.KeyNotFound, Join(curr.Path, component), _currentIndex);
            }

            curr = child;
        }

        return curr;
    }

    private void Remove(V2Node n, bool dir, bool recursive, Action<string>? callback)
    {
        if (!n.IsDir)
        {
            if (n.Parent is { } p && p.Children!.TryGetValue(n.Name, out var same) && ReferenceEquals(same, n))
            {
                p.Children.Remove(n.Name);
            }

            callback?.Invoke(n.Path);
            if (!n.IsPermanent)
            {
                _ttlKeys.Remove(n);
            }

            return;
        }

        if (!dir)
        {
            throw new V2Error(V2Error.NotFile, n.Path, _currentIndex);
        }

        if (n.Children!.Count != 0 && !recursive)
        {
            throw new V2Error(V2Error.DirNotEmpty, n.Path, _currentIndex);
        }

        foreach (var child in n.Children.Values.ToList())
        {
            Remove(child, true, true, callback);
        }

        if (n.Parent is { } parent && parent.Children!.TryGetValue(n.Name, out var s) && ReferenceEquals(s, n))
        {
            parent.Children.Remove(n.Name);
            callback?.Invoke(n.Path);
            if (!n.IsPermanent)
            {
                _ttlKeys.Remove(n);
            }
        }
    }

    private void UpdateTtl(V2Node n, long expireTime)
    {
        if (expireTime != 0 && expireTime < MinExpireTime)
        {
            expireTime = 0;
        }

        if (!n.IsPermanent)
        {
            _ttlKeys.Remove(n);
        }

        n.ExpireTime = expireTime;
        if (!n.IsPermanent)
        {
            _ttlKeys.Add(n);
        }
    }

    private V2Node NewRoot()
    {
        var root = new V2Node("/", 0, null, 0, null, dir: true);
        foreach (var ns in _namespaces)
        {
            var name = ns.TrimStart('/');
            root.Children![name] = new V2Node(ns, 0, root, 0, null, dir: true);
        }

        return root;
    }

    /// <summary>Go's <c>path.Clean(path.Join("/", p))</c>: absolute, no empty, <c>.</c> or <c>..</c> components, no trailing slash.</summary>
    public static string Clean(string p)
    {
        var parts = new List<string>();
        foreach (var c in p.Split('/'))
        {
            if (c.Length == 0 || c == ".")
            {
                continue;
            }

            if (c == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(c);
        }

        return "/" + string.Join('/', parts);
    }

    private static string Join(string dir, string name) => dir == "/" ? "/" + name : dir + "/" + name;

    private sealed class TtlOrder : IComparer<V2Node>
    {
        public static readonly TtlOrder Instance = new();

        public int Compare(V2Node? x, V2Node? y)
        {
            var c = x!.ExpireTime.CompareTo(y!.ExpireTime);
            return c != 0 ? c : x.Sequence.CompareTo(y.Sequence);
        }
    }
}
