using Authpb;

namespace Etcd.Server.Auth;

/// <summary>
/// One user's merged key permissions over all its roles (etcd's <c>unifiedRangePermissions</c>,
/// <c>auth/range_perm_cache.go</c>): a set of read intervals and a set of write intervals over keys, where an
/// empty end means "no upper bound" (etcd's <c>BytesAffineComparable</c>). Immutable once built; thread-safe.
/// </summary>
/// <remarks>
/// A permission's <c>range_end</c> is read as etcd reads it: empty = the single key, <c>\0</c> = every key from
/// <c>key</c> on, anything else = [key, range_end). A single-key request is permitted when any interval holds the
/// key; a range request when the union of the intervals covers the whole range without a gap.
/// </remarks>
public sealed class RangePermissions
{
    private readonly Interval[] _read;
    private readonly Interval[] _write;

    private RangePermissions(Interval[] read, Interval[] write)
    {
        _read = read;
        _write = write;
    }

    /// <summary>Merges the permissions of <paramref name="roles"/> (missing roles already left out by the caller).</summary>
    public static RangePermissions Merge(IEnumerable<Role> roles)
    {
        var read = new List<Interval>();
        var write = new List<Interval>();
        foreach (var role in roles)
        {
            foreach (var perm in role.KeyPermission)
            {
                var key = perm.Key.ToByteArray();
                var end = perm.RangeEnd.ToByteArray();
                var ivl = end.Length == 0
                    ? Interval.Point(key)
                    : new Interval(key, end is [0] ? [] : end);
                switch (perm.PermType)
                {
                    case Permission.Types.Type.Readwrite:
                        read.Add(ivl);
                        write.Add(ivl);
                        break;
                    case Permission.Types.Type.Read:
                        read.Add(ivl);
                        break;
                    case Permission.Types.Type.Write:
                        write.Add(ivl);
                        break;
                }
            }
        }

        read.Sort((a, b) => Interval.CompareBegin(a.Begin, b.Begin));
        write.Sort((a, b) => Interval.CompareBegin(a.Begin, b.Begin));
        return new RangePermissions([.. read], [.. write]);
    }

    /// <summary>
    /// Whether <paramref name="write"/> (else read) access to <paramref name="key"/> .. <paramref name="rangeEnd"/> is
    /// granted: an empty <paramref name="rangeEnd"/> is the single key, <c>\0</c> every key from <paramref name="key"/> on.
    /// </summary>
    public bool Permits(ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, bool write)
    {
        var set = write ? _write : _read;
        if (rangeEnd.IsEmpty)
        {
            var point = Interval.Point(key.ToArray());
            foreach (var ivl in set)
            {
                if (ivl.Intersects(point))
                {
                    return true;
                }
            }

            return false;
        }

        var wanted = new Interval(key.ToArray(), rangeEnd is [0] ? [] : rangeEnd.ToArray());
        return Covers(set, wanted);
    }

    // etcd's IntervalTree.Contains: the intervals meeting the wanted one, in order of their begin, must join
    // without a gap and reach from at or before its begin to at or after its end.
    private static bool Covers(Interval[] sorted, Interval wanted)
    {
        byte[]? minBegin = null;
        byte[]? maxEnd = null;
        foreach (var ivl in sorted)
        {
            if (!ivl.Intersects(wanted))
            {
                continue;
            }

            if (minBegin is null)
            {
                minBegin = ivl.Begin;
                maxEnd = ivl.End;
                continue;
            }

            if (Interval.CompareEnd(maxEnd!, ivl.Begin) < 0)
            {
                return false;
            }

            if (Interval.CompareEnd(ivl.End, maxEnd!) > 0)
            {
                maxEnd = ivl.End;
            }
        }

        return minBegin is not null && Interval.CompareEnd(maxEnd!, wanted.End) >= 0 && Interval.CompareEnd(minBegin, wanted.Begin) <= 0;
    }

    /// <summary>[Begin, End) over keys; an empty array sorts after every key (etcd's affine comparison).</summary>
    private readonly record struct Interval(byte[] Begin, byte[] End)
    {
        public static Interval Point(byte[] key)
        {
            var end = new byte[key.Length + 1];
            key.CopyTo(end, 0);
            return new Interval(key, end);
        }

        public bool Intersects(Interval other) =>
            CompareEnd(Begin, other.End) < 0 && CompareEnd(other.Begin, End) < 0;

        public static int CompareBegin(byte[] a, byte[] b) => CompareEnd(a, b);

        /// <summary>Affine byte comparison: empty is greater than everything but another empty.</summary>
        public static int CompareEnd(byte[] a, byte[] b)
        {
            if (a.Length == 0)
            {
                return b.Length == 0 ? 0 : 1;
            }

            if (b.Length == 0)
            {
                return -1;
            }

            return a.AsSpan().SequenceCompareTo(b);
        }
    }
}
