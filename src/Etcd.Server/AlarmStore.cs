using Etcdserverpb;

namespace Etcd.Server;

/// <summary>
/// The raised alarms of the cluster (etcd's <c>etcdserver/api/v3alarm</c>): at most one of each type per
/// member. Changed only by the apply loop; read from any thread (a lock guards it). Kept in memory until the
/// bbolt-format backend persists it in the <c>alarm</c> bucket.
/// </summary>
public sealed class AlarmStore
{
    private readonly object _lock = new();
    private readonly List<AlarmMember> _alarms = [];

    /// <summary>The alarms of <paramref name="type"/>, or all when it is <see cref="AlarmType.None"/>; ordered by member, then type.</summary>
    public IReadOnlyList<AlarmMember> Get(AlarmType type)
    {
        lock (_lock)
        {
            return _alarms.Where(a => type == AlarmType.None || a.Alarm == type)
                .OrderBy(a => a.MemberID).ThenBy(a => a.Alarm).Select(a => a.Clone()).ToList();
        }
    }

    /// <summary>Raises an alarm; returns it, or null when it was already raised.</summary>
    public AlarmMember? Activate(ulong memberId, AlarmType type)
    {
        lock (_lock)
        {
            if (_alarms.Any(a => a.MemberID == memberId && a.Alarm == type))
            {
                return null;
            }

            var m = new AlarmMember { MemberID = memberId, Alarm = type };
            _alarms.Add(m);
            return m.Clone();
        }
    }

    /// <summary>Clears an alarm; returns it, or null when it was not raised.</summary>
    public AlarmMember? Deactivate(ulong memberId, AlarmType type)
    {
        lock (_lock)
        {
            var i = _alarms.FindIndex(a => a.MemberID == memberId && a.Alarm == type);
            if (i < 0)
            {
                return null;
            }

            var m = _alarms[i];
            _alarms.RemoveAt(i);
            return m;
        }
    }
}
