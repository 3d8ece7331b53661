using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Etcd.Storage.Wal;

/// <summary>
/// Appends framed, CRC-chained records to one segment file. Records are laid out in a pooled buffer and
/// written with one positional write per flush; nothing reaches the file before <see cref="Flush"/>
/// (or an automatic flush once more than 128 KiB are pending, like etcd's PageWriter watermark).
/// Not thread-safe: the owning <see cref="Wal"/> serialises calls.
/// </summary>
internal sealed class WalEncoder : IDisposable
{
    /// <summary>Pending bytes above which records are written out without waiting for a sync (etcd's defaultBufferBytes).</summary>
    public const int FlushWatermarkBytes = 128 * 1024;

    // length word + record tag/varints: 8 + (1 + 10) + (1 + 5) + (1 + 5).
    private const int Reserve = WalCodec.FrameSizeBytes + 11 + 6 + 6;

    private readonly SafeFileHandle _handle;
    private byte[] _buf;
    private int _len;
    private long _fileOffset;
    private uint _crc;

    public WalEncoder(SafeFileHandle handle, long fileOffset, uint prevCrc)
    {
        _handle = handle;
        _fileOffset = fileOffset;
        _crc = prevCrc;
        _buf = ArrayPool<byte>.Shared.Rent(64 * 1024);
    }

    /// <summary>Told of every byte handed to the file.</summary>
    public IWalMetrics Metrics { get; set; } = NoWalMetrics.Instance;

    /// <summary>The running CRC after the last encoded record.</summary>
    public uint Crc => _crc;

    /// <summary>Logical end offset in the file: written plus pending bytes.</summary>
    public long Offset => _fileOffset + _len;

    /// <summary>Offset up to which bytes were handed to the file.</summary>
    public long FlushedOffset => _fileOffset;

    public void EncodeEntry(Raftpb.Entry e)
    {
        int size = WalCodec.EntrySize(e);
        Span<byte> dst = Begin(size);
        WalCodec.WriteEntry(dst, e);
        Finish(WalRecordType.Entry, size, hasData: true);
    }

    public void EncodeState(ulong term, ulong vote, ulong commit)
    {
        int size = WalCodec.ThreeUInt64Size(term, vote, commit);
        WalCodec.WriteHardState(Begin(size), term, vote, commit);
        Finish(WalRecordType.State, size, hasData: true);
    }

    public void EncodeSnapshot(ulong index, ulong term)
    {
        int size = WalCodec.SnapshotSize(index, term);
        WalCodec.WriteSnapshot(Begin(size), index, term);
        Finish(WalRecordType.Snapshot, size, hasData: true);
    }

    public void EncodeRaw(long type, ReadOnlySpan<byte> data, bool hasData)
    {
        data.CopyTo(Begin(data.Length));
        Finish(type, data.Length, hasData);
    }

    /// <summary>A crc record: no data, its crc field is the running CRC (the previous segment's final CRC).</summary>
    public void EncodeCrc() => EncodeRaw(WalRecordType.Crc, ReadOnlySpan<byte>.Empty, hasData: false);

    /// <summary>Writes out pending bytes when more than the watermark is pending.</summary>
    public void FlushIfOverWatermark()
    {
        if (_len > FlushWatermarkBytes)
        {
            Flush();
        }
    }

    /// <summary>Writes every pending byte to the file (one pwrite); does not sync.</summary>
    public void Flush()
    {
        if (_len == 0)
        {
            return;
        }
        RandomAccess.Write(_handle, new ReadOnlySpan<byte>(_buf, 0, _len), _fileOffset);
        Metrics.BytesWritten(_len);
        _fileOffset += _len;
        _len = 0;
    }

    private Span<byte> Begin(int dataLength)
    {
        int need = _len + Reserve + dataLength + 8;
        if (need > _buf.Length)
        {
            Grow(need);
        }
        return _buf.AsSpan(_len + Reserve, dataLength);
    }

    private void Finish(long type, int dataLength, bool hasData)
    {
        int start = _len;
        Span<byte> buf = _buf;
        ReadOnlySpan<byte> data = buf.Slice(start + Reserve, dataLength);
        _crc = Crc32C.Update(_crc, data);

        int p = start + WalCodec.FrameSizeBytes;
        buf[p++] = 0x08;
        p += WalCodec.WriteVarint(buf[p..], (ulong)type);
        buf[p++] = 0x10;
        p += WalCodec.WriteVarint(buf[p..], _crc);
        if (hasData)
        {
            buf[p++] = 0x1a;
            p += WalCodec.WriteVarint(buf[p..], (ulong)dataLength);
        }
        data.CopyTo(buf[p..]); // overlapping move towards lower offsets
        p += dataLength;

        int recBytes = p - start - WalCodec.FrameSizeBytes;
        ulong lenField = WalCodec.EncodeFrameSize(recBytes, out int pad);
        buf.Slice(p, pad).Clear();
        WalCodec.WriteUInt64LittleEndian(buf[start..], lenField);
        _len = p + pad;
    }

    private void Grow(int need)
    {
        int size = Math.Max(need, _buf.Length * 2);
        byte[] next = ArrayPool<byte>.Shared.Rent(size);
        _buf.AsSpan(0, _len).CopyTo(next);
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = next;
    }

    /// <summary>Returns the buffer to the pool; pending bytes are dropped (call <see cref="Flush"/> first).</summary>
    public void Dispose()
    {
        byte[] b = _buf;
        _buf = Array.Empty<byte>();
        _len = 0;
        if (b.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }
}
