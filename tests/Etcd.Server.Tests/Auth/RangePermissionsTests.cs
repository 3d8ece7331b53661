using Authpb;
using Google.Protobuf;

namespace Etcd.Server.Tests.Auth;

/// <summary>
/// The merged key permissions of a user as etcd's range permission cache reads them (<c>auth/range_perm_cache.go</c>):
/// single keys, [key, end) ranges, prefixes and from-key (<c>\0</c>) ranges, coverage by several joined intervals.
/// </summary>
public sealed class RangePermissionsTests
{
    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static Etcd.Server.Auth.RangePermissions Perms(params (string Key, string End, Permission.Types.Type Type)[] perms)
    {
        var role = new Role { Name = B("r") };
        foreach (var (k, e, t) in perms)
        {
            role.KeyPermission.Add(new Permission { Key = B(k), RangeEnd = e == "\\0" ? ByteString.CopyFrom(0) : B(e), PermType = t });
        }

        return Etcd.Server.Auth.RangePermissions.Merge([role]);
    }

    private static bool Read(Etcd.Server.Auth.RangePermissions p, string key, string end = "") =>
        p.Permits(B(key).Span, end == "\\0" ? [0] : B(end).Span, write: false);

    private static bool Write(Etcd.Server.Auth.RangePermissions p, string key, string end = "") =>
        p.Permits(B(key).Span, end == "\\0" ? [0] : B(end).Span, write: true);

    [Fact]
    public void SingleKeyPermission_GrantsThatKeyOnly()
    {
        var p = Perms(("foo", "", Permission.Types.Type.Read));
        Assert.True(Read(p, "foo"));
        Assert.False(Read(p, "foo0"));
        Assert.False(Read(p, "fo"));
        Assert.False(Read(p, "foo", "fop"));
        Assert.False(Write(p, "foo"));
    }

    [Fact]
    public void RangePermission_CoversKeysAndSubRanges_HalfOpen()
    {
        var p = Perms(("a", "c", Permission.Types.Type.Readwrite));
        Assert.True(Read(p, "a"));
        Assert.True(Read(p, "bzzz"));
        Assert.False(Read(p, "c"));
        Assert.True(Read(p, "a", "c"));
        Assert.True(Write(p, "b", "c"));
        Assert.False(Read(p, "a", "d"));
        Assert.False(Read(p, "0", "b"));
    }

    [Fact]
    public void FromKeyPermission_ReachesPastEveryKey()
    {
        var p = Perms(("k", "\\0", Permission.Types.Type.Write));
        Assert.True(Write(p, "k"));
        Assert.True(Write(p, "zzzzzz"));
        Assert.True(Write(p, "k", "\\0"));
        Assert.True(Write(p, "m", "n"));
        Assert.False(Write(p, "j"));
        Assert.False(Write(p, "a", "\\0"));
        Assert.False(Read(p, "k"));
    }

    [Fact]
    public void JoinedIntervals_CoverARange_AGapDoesNot()
    {
        var joined = Perms(("a", "c", Permission.Types.Type.Read), ("c", "e", Permission.Types.Type.Read));
        Assert.True(Read(joined, "a", "e"));
        Assert.True(Read(joined, "b", "d"));

        var gap = Perms(("a", "c", Permission.Types.Type.Read), ("d", "f", Permission.Types.Type.Read));
        Assert.False(Read(gap, "a", "f"));
        Assert.True(Read(gap, "d", "e"));

        var overlapping = Perms(("a", "d", Permission.Types.Type.Read), ("b", "c", Permission.Types.Type.Read), ("c", "\\0", Permission.Types.Type.Read));
        Assert.True(Read(overlapping, "a", "\\0"));
    }

    [Fact]
    public void PrefixPermission_IsTheRangeToThePrefixEnd()
    {
        var p = Perms(("pre/", "pre0", Permission.Types.Type.Read));
        Assert.True(Read(p, "pre/"));
        Assert.True(Read(p, "pre/x"));
        Assert.True(Read(p, "pre/", "pre0"));
        Assert.False(Read(p, "pre"));
        Assert.False(Read(p, "pre", "pre0"));
    }

    [Fact]
    public void ReadAndWrite_AreSeparateSets()
    {
        var p = Perms(("r", "", Permission.Types.Type.Read), ("w", "", Permission.Types.Type.Write));
        Assert.True(Read(p, "r"));
        Assert.False(Write(p, "r"));
        Assert.True(Write(p, "w"));
        Assert.False(Read(p, "w"));
    }
}
