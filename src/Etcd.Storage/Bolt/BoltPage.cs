using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Etcd.Storage.Bolt;

/// <summary>
/// Byte layout of bbolt 1.3.x pages (<c>page.go</c>), little-endian as on amd64:
/// a 16-byte header (id u64 @0, flags u16 @8, count u16 @10, overflow u32 @12) followed by
/// <c>count</c> 16-byte elements and then the key/value bytes the elements point at.
/// Leaf element: flags u32, pos u32, ksize u32, vsize u32; branch element: pos u32, ksize u32, pgid u64;
/// <c>pos</c> is relative to the element's own offset.
/// </summary>
internal static class BoltPage
{
    public const int HeaderSize = 16;
    public const int ElementSize = 16;
    public const int BucketHeaderSize = 16;
    public const int MetaSize = 64;
    public const int MinKeysPerPage = 2;

    public const ushort BranchFlag = 0x01;
    public const ushort LeafFlag = 0x02;
    public const ushort MetaFlag = 0x04;
    public const ushort FreelistFlag = 0x10;

    public const uint BucketLeafFlag = 0x01;

    public const uint Magic = 0xED0CDAED;
    public const uint Version = 2;
    public const ulong NoFreelist = ulong.MaxValue;

    public const int MaxKeySize = 32768;
    public const long MaxValueSize = (1L << 31) - 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Id(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt64LittleEndian(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Flags(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt16LittleEndian(p.Slice(8));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Count(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt16LittleEndian(p.Slice(10));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Overflow(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(12));

    public static void WriteHeader(Span<byte> p, ulong id, ushort flags, int count, uint overflow)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(p, id);
        BinaryPrimitives.WriteUInt16LittleEndian(p.Slice(8), flags);
        BinaryPrimitives.WriteUInt16LittleEndian(p.Slice(10), (ushort)count);
        BinaryPrimitives.WriteUInt32LittleEndian(p.Slice(12), overflow);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsLeaf(ReadOnlySpan<byte> p) => (Flags(p) & LeafFlag) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint LeafElementFlags(ReadOnlySpan<byte> p, int i)
        => BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(HeaderSize + (i * ElementSize)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> LeafKey(ReadOnlySpan<byte> p, int i)
    {
        int off = HeaderSize + (i * ElementSize);
        int pos = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 4));
        int ksize = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 8));
        return p.Slice(off + pos, ksize);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> LeafValue(ReadOnlySpan<byte> p, int i)
    {
        int off = HeaderSize + (i * ElementSize);
        int pos = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 4));
        int ksize = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 8));
        int vsize = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 12));
        return p.Slice(off + pos + ksize, vsize);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> BranchKey(ReadOnlySpan<byte> p, int i)
    {
        int off = HeaderSize + (i * ElementSize);
        int pos = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off));
        int ksize = (int)BinaryPrimitives.ReadUInt32LittleEndian(p.Slice(off + 4));
        return p.Slice(off + pos, ksize);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong BranchPgid(ReadOnlySpan<byte> p, int i)
        => BinaryPrimitives.ReadUInt64LittleEndian(p.Slice(HeaderSize + (i * ElementSize) + 8));

    /// <summary>Index of the first element whose key is &gt;= <paramref name="key"/>; sets <paramref name="exact"/>.</summary>
    public static int SearchLeaf(ReadOnlySpan<byte> p, ReadOnlySpan<byte> key, out bool exact)
    {
        int lo = 0, hi = Count(p);
        exact = false;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            int c = LeafKey(p, mid).SequenceCompareTo(key);
            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                if (c == 0)
                {
                    exact = true;
                    return mid;
                }

                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>Index of the child of a branch page that may hold <paramref name="key"/>.</summary>
    public static int SearchBranch(ReadOnlySpan<byte> p, ReadOnlySpan<byte> key)
    {
        int lo = 0, hi = Count(p);
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            int c = BranchKey(p, mid).SequenceCompareTo(key);
            if (c < 0)
            {
                lo = mid + 1;
            }
            else if (c == 0)
            {
                return mid;
            }
            else
            {
                hi = mid;
            }
        }

        return lo > 0 ? lo - 1 : 0;
    }
}

/// <summary>The bbolt meta page body (<c>db.go</c> <c>meta</c>), 64 bytes at offset 16 of pages 0 and 1.</summary>
internal struct BoltMeta
{
    public uint Magic;
    public uint Version;
    public uint PageSize;
    public uint Flags;
    public ulong Root;
    public ulong RootSequence;
    public ulong Freelist;
    public ulong Pgid;
    public ulong Txid;
    public ulong Checksum;

    public static BoltMeta Read(ReadOnlySpan<byte> page)
    {
        var m = page.Slice(BoltPage.HeaderSize);
        return new BoltMeta
        {
            Magic = BinaryPrimitives.ReadUInt32LittleEndian(m),
            Version = BinaryPrimitives.ReadUInt32LittleEndian(m.Slice(4)),
            PageSize = BinaryPrimitives.ReadUInt32LittleEndian(m.Slice(8)),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(m.Slice(12)),
            Root = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(16)),
            RootSequence = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(24)),
            Freelist = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(32)),
            Pgid = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(40)),
            Txid = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(48)),
            Checksum = BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(56)),
        };
    }

    /// <summary>Writes the meta (with a fresh checksum) into a page buffer whose header is set to page <paramref name="pageId"/>.</summary>
    public void WritePage(Span<byte> page, ulong pageId)
    {
        BoltPage.WriteHeader(page, pageId, BoltPage.MetaFlag, 0, 0);
        var m = page.Slice(BoltPage.HeaderSize, BoltPage.MetaSize);
        BinaryPrimitives.WriteUInt32LittleEndian(m, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(m.Slice(4), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(m.Slice(8), PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(m.Slice(12), Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(16), Root);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(24), RootSequence);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(32), Freelist);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(40), Pgid);
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(48), Txid);
        Checksum = Fnv1a64(m.Slice(0, 56));
        BinaryPrimitives.WriteUInt64LittleEndian(m.Slice(56), Checksum);
    }

    /// <summary>Validates magic, version and checksum; returns bbolt's error string or null.</summary>
    public static string? Validate(ReadOnlySpan<byte> page)
    {
        if (page.Length < BoltPage.HeaderSize + BoltPage.MetaSize)
        {
            return BoltException.Invalid;
        }

        var m = page.Slice(BoltPage.HeaderSize, BoltPage.MetaSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(m) != BoltPage.Magic)
        {
            return BoltException.Invalid;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(m.Slice(4)) != BoltPage.Version)
        {
            return BoltException.VersionMismatch;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(m.Slice(56)) != Fnv1a64(m.Slice(0, 56)))
        {
            return BoltException.ChecksumError;
        }

        return null;
    }

    /// <summary>64-bit FNV-1a (Go's <c>hash/fnv</c> New64a) as bbolt uses for the meta checksum.</summary>
    public static ulong Fnv1a64(ReadOnlySpan<byte> data)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in data)
        {
            h ^= b;
            h *= 1099511628211UL;
        }

        return h;
    }
}
