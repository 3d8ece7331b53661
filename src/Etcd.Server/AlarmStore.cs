using Etcd.Storage.Backend;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server;

/// <summary>
/// The raised alarms of the cluster (etcd's <c>etcdserver/api/v3alarm</c>): at most one of each type per
/// member, persisted in the backend's <c>alarm</c> bucket as etcd does (key = the marshalled
/// <c>etcdserverpb.AlarmMember</c>, empty value). Changed only by the apply loop; read from any thread (a
/// lock guards the in-memory copy).
/// </summary>
public sealed class AlarmStore
{
    /// <summary>The backend bucket holding alarms (etcd's <c>alarm</c>).</summary>
    public const string AlarmBucket = "alarm";

    private readonly object _lock = new();
    private readonly List<AlarmMember> _alarms = [];
    private readonly IBackend? _backend;
    private readonly Action<IBatchTx>? _inSameBatch;

    /// <summary>An alarm store kept in memory only (tests).</summary>
    public AlarmStore()
    {
    }

    /// <summary>
    /// An alarm store persisted in <paramref name="backend"/>: creates the <c>alarm</c> bucket and loads the
    /// alarms in it. <paramref name="inSameBatch"/> runs inside every batch that changes the bucket (the server
    /// writes the consistent index there).
    /// </summary>
    public AlarmStore(IBackend backend, Action<IBatchTx>? inSameBatch = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
        _inSameBatch = inSameBatch;
        Recover();
    }

    /// <summary>
    /// Reloads the alarms from the backend (start-up, or after a raft snapshot replaced the backend), as etcd's
    /// <c>AlarmStore.restore</c>. No-op for a memory-only store.
    /// </summary>
    public void Recover()
    {
        if (_backend is null)
        {
            return;
        }

        var loaded = new List<AlarmMember>();
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            tx.CreateBucket(AlarmBucket);
            tx.ForEach(AlarmBucket, (k, _) =>
            {
                loaded.Add(AlarmMember.Parser.ParseFrom(k.ToArray()));
                return true;
            });
        }
        finally
        {
            tx.Unlock();
        }

        lock (_lock)
        {
            _alarms.Clear();
            foreach (var a in loaded)
            {
                if (!_alarms.Any(x => x.MemberID == a.MemberID && x.Alarm == a.Alarm))
                {
                    _alarms.Add(a);
                }
            }
        }
    }

    /// <summary>
    /// Whether an alarm of <paramref name="type"/> is raised on any member (any alarm for <see cref="AlarmType.None"/>);
    /// allocates nothing (the appliers ask on every request).
    /// </summary>
    public bool IsRaised(AlarmType type)
    {
        lock (_lock)
        {
            foreach (var a in _alarms)
            {
                if (type == AlarmType.None || a.Alarm == type)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The alarms of <paramref name="type"/>, or all when it is <see cref="AlarmType.None"/>; ordered by member, then type.</summary>
    public IReadOnlyList<AlarmMember> Get(AlarmType type)
    {
        lock (_lock)
        {
            return _alarms.Where(a => type == AlarmType.None || a.Alarm == type)
                .OrderBy(a => a.MemberID).ThenBy(a => a.Alarm).Select(a => a.Clone()).ToList();
        }
    }

    /// <summary>Raises an alarm; returns it, or null when it was already raised. Persisted before it returns.</summary>
    public AlarmMember? Activate(ulong memberId, AlarmType type)
    {
        AlarmMember m;
        lock (_lock)
        {
            if (_alarms.Any(a => a.MemberID == memberId && a.Alarm == type))
            {
                return null;
            }

            m = new AlarmMember { MemberID = memberId, Alarm = type };
            _alarms.Add(m);
        }

        Write(m, put: true);
        return m.Clone();
    }

    /// <summary>Clears an alarm; returns it, or null when it was not raised. Persisted before it returns.</summary>
    public AlarmMember? Deactivate(ulong memberId, AlarmType type)
    {
        AlarmMember m;
        lock (_lock)
        {
            var i = _alarms.FindIndex(a => a.MemberID == memberId && a.Alarm == type);
            if (i < 0)
            {
                return null;
            }

            m = _alarms[i];
            _alarms.RemoveAt(i);
        }

        Write(m, put: false);
        return m;
    }

    private void Write(AlarmMember m, bool put)
    {
        if (_backend is null)
        {
            return;
        }

        var key = m.ToByteArray();
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            if (put)
            {
                tx.Put(AlarmBucket, key, []);
            }
            else
            {
                tx.Delete(AlarmBucket, key);
            }

            _inSameBatch?.Invoke(tx);
        }
        finally
        {
            tx.Unlock();
        }
    }
}
