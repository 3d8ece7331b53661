namespace Etcd.Server;

/// <summary>
/// Unique request IDs as etcd's <c>pkg/idutil</c> makes them: the member ID's low 16 bits, then a 40-bit
/// millisecond timestamp and an 8-bit counter that carries into it. Thread-safe, lock-free.
/// </summary>
public sealed class IdGenerator
{
    private const int TsLen = 5 * 8;
    private const int CntLen = 8;
    private const int SuffixLen = TsLen + CntLen;
    private readonly ulong _prefix;
    private long _suffix;

    /// <summary>Creates a generator for <paramref name="memberId"/> starting at <paramref name="now"/>.</summary>
    public IdGenerator(ulong memberId, DateTimeOffset now)
    {
        _prefix = memberId << SuffixLen;
        var ms = (ulong)now.ToUnixTimeMilliseconds();
        _suffix = (long)(((ms << (64 - TsLen)) >> (64 - TsLen)) << CntLen);
    }

    /// <summary>The next ID.</summary>
    public ulong Next()
    {
        var s = (ulong)Interlocked.Increment(ref _suffix);
        return _prefix | ((s << (64 - SuffixLen)) >> (64 - SuffixLen));
    }
}
