using System.Buffers.Binary;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Etcd.Storage.Wal;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum etcd's WAL records and snap files use.
/// <see cref="Update"/> has Go's <c>crc32.Update(crc, castagnoliTable, data)</c> semantics: the value passed in and
/// returned is the finished (post-inverted) CRC, so chaining is <c>Update(Update(0, a), b) == Update(0, a+b)</c>.
/// Uses SSE4.2 or ARMv8 CRC instructions when present, otherwise a slicing-by-8 table. Thread-safe: stateless.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private static readonly uint[] s_table = BuildTable();

    /// <summary>Returns the CRC-32C of <paramref name="data"/> continued from the finished CRC <paramref name="crc"/> (0 to start).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        uint c = ~crc;
        if (Sse42.X64.IsSupported)
        {
            c = UpdateSse42X64(c, data);
        }
        else if (Sse42.IsSupported)
        {
            c = UpdateSse42(c, data);
        }
        else if (Crc32.Arm64.IsSupported)
        {
            c = UpdateArm64(c, data);
        }
        else
        {
            c = UpdateTable(c, data);
        }
        return ~c;
    }

    /// <summary>The CRC-32C of <paramref name="data"/> alone.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(0, data);

    private static uint UpdateSse42X64(uint c, ReadOnlySpan<byte> data)
    {
        ulong c64 = c;
        while (data.Length >= 8)
        {
            c64 = Sse42.X64.Crc32(c64, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        c = (uint)c64;
        foreach (byte b in data)
        {
            c = Sse42.Crc32(c, b);
        }
        return c;
    }

    private static uint UpdateSse42(uint c, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 4)
        {
            c = Sse42.Crc32(c, BinaryPrimitives.ReadUInt32LittleEndian(data));
            data = data[4..];
        }
        foreach (byte b in data)
        {
            c = Sse42.Crc32(c, b);
        }
        return c;
    }

    private static uint UpdateArm64(uint c, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            c = Crc32.Arm64.ComputeCrc32C(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
        {
            c = Crc32.ComputeCrc32C(c, b);
        }
        return c;
    }

    /// <summary>Portable slicing-by-8 path; internal so tests can check it against the hardware path.</summary>
    internal static uint UpdateTableFinished(uint crc, ReadOnlySpan<byte> data) => ~UpdateTable(~crc, data);

    private static uint UpdateTable(uint c, ReadOnlySpan<byte> data)
    {
        uint[] t = s_table;
        while (data.Length >= 8)
        {
            uint lo = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ c;
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            c = t[(7 * 256) + (lo & 0xFF)] ^ t[(6 * 256) + ((lo >> 8) & 0xFF)] ^
                t[(5 * 256) + ((lo >> 16) & 0xFF)] ^ t[(4 * 256) + (lo >> 24)] ^
                t[(3 * 256) + (hi & 0xFF)] ^ t[(2 * 256) + ((hi >> 8) & 0xFF)] ^
                t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
            data = data[8..];
        }
        foreach (byte b in data)
        {
            c = t[(c ^ b) & 0xFF] ^ (c >> 8);
        }
        return c;
    }

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            }
            t[i] = c;
        }
        for (int i = 0; i < 256; i++)
        {
            for (int s = 1; s < 8; s++)
            {
                uint prev = t[((s - 1) * 256) + i];
                t[(s * 256) + i] = (prev >> 8) ^ t[prev & 0xFF];
            }
        }
        return t;
    }
}
