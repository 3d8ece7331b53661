using System.Buffers.Binary;

namespace Etcd.Storage.Wal;

/// <summary>Record types of etcd's WAL (wal.go: metadataType = 1 ... snapshotType = 5).</summary>
internal static class WalRecordType
{
    public const long Metadata = 1;
    public const long Entry = 2;
    public const long State = 3;
    public const long Crc = 4;
    public const long Snapshot = 5;
}

/// <summary>
/// Low-level encodings shared by the WAL encoder and decoder: the 8-byte frame length word and
/// hand-rolled protobuf for walpb.Record, raftpb.Entry/HardState and walpb.Snapshot laid out exactly
/// as etcd's gogoproto code writes them (every scalar field present, bytes only when set).
/// </summary>
internal static class WalCodec
{
    /// <summary>Size of the frame's length word, in bytes.</summary>
    public const int FrameSizeBytes = 8;

    /// <summary>etcd's maxWALEntrySizeLimit: 10 MiB; larger frames are refused on read.</summary>
    public const long MaxEntrySizeLimit = 10L * 1024 * 1024;

    /// <summary>Sector size used to tell torn writes from corruption (etcd's minSectorSize).</summary>
    public const int MinSectorSize = 512;

    /// <summary>Builds the length word for a record of <paramref name="dataBytes"/> bytes and the pad needed to reach 8-byte alignment.</summary>
    public static ulong EncodeFrameSize(int dataBytes, out int padBytes)
    {
        ulong lenField = (ulong)dataBytes;
        padBytes = (8 - (dataBytes % 8)) % 8;
        if (padBytes != 0)
        {
            lenField |= (ulong)(0x80 | padBytes) << 56;
        }
        return lenField;
    }

    /// <summary>Splits a length word into record bytes (low 56 bits) and pad bytes (low 3 bits of the top byte when its top bit is set).</summary>
    public static void DecodeFrameSize(long lenField, out long recBytes, out long padBytes)
    {
        recBytes = (long)((ulong)lenField & ~(0xFFUL << 56));
        padBytes = lenField < 0 ? (long)(((ulong)lenField >> 56) & 0x7) : 0;
    }

    public static int VarintSize(ulong v)
    {
        int n = 1;
        while (v >= 0x80)
        {
            v >>= 7;
            n++;
        }
        return n;
    }

    public static int WriteVarint(Span<byte> dst, ulong v)
    {
        int i = 0;
        while (v >= 0x80)
        {
            dst[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        dst[i++] = (byte)v;
        return i;
    }

    public static bool TryReadVarint(ReadOnlySpan<byte> src, ref int pos, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= src.Length)
            {
                return false;
            }
            byte b = src[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Size of a raftpb.Entry as etcd marshals it.</summary>
    public static int EntrySize(Raftpb.Entry e)
    {
        int n = 1 + VarintSize((ulong)(long)e.Type) + 1 + VarintSize(e.Term) + 1 + VarintSize(e.Index);
        if (e.HasData)
        {
            int d = e.Data.Length;
            n += 1 + VarintSize((ulong)d) + d;
        }
        return n;
    }

    /// <summary>Writes a raftpb.Entry as etcd marshals it; returns bytes written.</summary>
    public static int WriteEntry(Span<byte> dst, Raftpb.Entry e)
    {
        int i = 0;
        dst[i++] = 0x08;
        i += WriteVarint(dst[i..], (ulong)(long)e.Type);
        dst[i++] = 0x10;
        i += WriteVarint(dst[i..], e.Term);
        dst[i++] = 0x18;
        i += WriteVarint(dst[i..], e.Index);
        if (e.HasData)
        {
            var data = e.Data.Span;
            dst[i++] = 0x22;
            i += WriteVarint(dst[i..], (ulong)data.Length);
            data.CopyTo(dst[i..]);
            i += data.Length;
        }
        return i;
    }

    /// <summary>Size of three always-present uint64 fields 1..3 (HardState; walpb.Snapshot uses two).</summary>
    public static int ThreeUInt64Size(ulong a, ulong b, ulong c) => 3 + VarintSize(a) + VarintSize(b) + VarintSize(c);

    /// <summary>Writes raftpb.HardState{term, vote, commit} as etcd marshals it.</summary>
    public static int WriteHardState(Span<byte> dst, ulong term, ulong vote, ulong commit)
    {
        int i = 0;
        dst[i++] = 0x08;
        i += WriteVarint(dst[i..], term);
        dst[i++] = 0x10;
        i += WriteVarint(dst[i..], vote);
        dst[i++] = 0x18;
        i += WriteVarint(dst[i..], commit);
        return i;
    }

    /// <summary>Size of walpb.Snapshot{index, term} as etcd marshals it.</summary>
    public static int SnapshotSize(ulong index, ulong term) => 2 + VarintSize(index) + VarintSize(term);

    /// <summary>Writes walpb.Snapshot{index, term} as etcd marshals it.</summary>
    public static int WriteSnapshot(Span<byte> dst, ulong index, ulong term)
    {
        int i = 0;
        dst[i++] = 0x08;
        i += WriteVarint(dst[i..], index);
        dst[i++] = 0x10;
        i += WriteVarint(dst[i..], term);
        return i;
    }

    /// <summary>
    /// Parses a walpb.Record without copying: type, crc and the data field's position. Unknown fields are
    /// skipped as protobuf requires. False when the bytes are not a well-formed message.
    /// </summary>
    public static bool TryParseRecord(ReadOnlySpan<byte> src, out long type, out uint crc, out int dataStart, out int dataLength, out bool hasData)
    {
        type = 0;
        crc = 0;
        dataStart = 0;
        dataLength = 0;
        hasData = false;
        int pos = 0;
        while (pos < src.Length)
        {
            if (!TryReadVarint(src, ref pos, out ulong key))
            {
                return false;
            }
            int field = (int)(key >> 3);
            int wire = (int)(key & 7);
            if (field <= 0 || (field <= 2 && wire != 0) || (field == 3 && wire != 2))
            {
                return false;
            }
            switch (wire)
            {
                case 0:
                    if (!TryReadVarint(src, ref pos, out ulong v))
                    {
                        return false;
                    }
                    if (field == 1)
                    {
                        type = (long)v;
                    }
                    else if (field == 2)
                    {
                        crc = (uint)v;
                    }
                    break;
                case 1:
                    if (src.Length - pos < 8)
                    {
                        return false;
                    }
                    pos += 8;
                    break;
                case 2:
                    if (!TryReadVarint(src, ref pos, out ulong len) || len > (ulong)(src.Length - pos))
                    {
                        return false;
                    }
                    if (field == 3)
                    {
                        dataStart = pos;
                        dataLength = (int)len;
                        hasData = true;
                    }
                    pos += (int)len;
                    break;
                case 5:
                    if (src.Length - pos < 4)
                    {
                        return false;
                    }
                    pos += 4;
                    break;
                default:
                    return false;
            }
        }
        return true;
    }

    public static void WriteUInt64LittleEndian(Span<byte> dst, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(dst, v);
}
