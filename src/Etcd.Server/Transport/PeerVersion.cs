namespace Etcd.Server.Transport;

/// <summary>
/// The semantic versions peers exchange in <c>X-Server-Version</c> and <c>X-Min-Cluster-Version</c>, compared by
/// major.minor only, as etcd's rafthttp <c>compareMajorMinorVersion</c> does (<c>etcdserver/api/rafthttp/util.go</c>).
/// </summary>
internal static class PeerVersion
{
    /// <summary>
    /// Parses <paramref name="text"/> as a semantic version (<c>MAJOR.MINOR.PATCH</c> with an optional
    /// <c>-prerelease</c> and <c>+build</c> suffix) into its major.minor; false when it is not one.
    /// </summary>
    public static bool TryMajorMinor(string text, out Version majorMinor)
    {
        majorMinor = new Version(0, 0);
        var core = text.AsSpan();
        var cut = core.IndexOfAny('-', '+');
        if (cut >= 0)
        {
            core = core[..cut];
        }

        Span<Range> parts = stackalloc Range[4];
        if (core.Split(parts, '.') != 3)
        {
            return false;
        }

        foreach (var r in parts[..3])
        {
            var p = core[r];
            if (p.IsEmpty || (p.Length > 1 && p[0] == '0') || !int.TryParse(p, System.Globalization.NumberStyles.None, null, out _))
            {
                return false;
            }
        }

        majorMinor = new Version(int.Parse(core[parts[0]]), int.Parse(core[parts[1]]));
        return true;
    }

    /// <summary>The major.minor of a version known to be well formed (this member's own).</summary>
    public static Version MajorMinor(string text) => TryMajorMinor(text, out var v) ? v : throw new FormatException($"not a semantic version: {text}");
}
