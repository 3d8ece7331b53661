using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Etcd.Storage.Wal;

/// <summary>Outcome of one <see cref="WalDecoder.Decode"/> call.</summary>
internal enum DecodeStatus
{
    /// <summary>A valid record was decoded.</summary>
    Record,

    /// <summary>Clean end: every segment read to its end or to its zero-filled preallocated tail (Go's io.EOF).</summary>
    Eof,

    /// <summary>A short or torn record at the end (Go's io.ErrUnexpectedEOF).</summary>
    UnexpectedEof,
}

/// <summary>
/// Reads framed records across a sequence of segment files, checking each record's CRC against the chain,
/// as etcd's wal/decoder.go does. Record data handed out stays valid until the next decode.
/// Does not own the handles. Not thread-safe.
/// </summary>
internal sealed class WalDecoder
{
    private const int ReadBufferBytes = 64 * 1024;

    private readonly IReadOnlyList<SafeFileHandle> _files;
    private readonly byte[] _rbuf = new byte[ReadBufferBytes];
    private int _cur;
    private long _fileReadOff; // file offset of _rbuf[_rlen]
    private int _rpos;
    private int _rlen;
    private byte[] _rec = new byte[4096];

    public WalDecoder(IReadOnlyList<SafeFileHandle> files)
    {
        _files = files;
    }

    /// <summary>The running CRC (Go's decoder.crc.Sum32()).</summary>
    public uint Crc { get; private set; }

    /// <summary>Offset, in the current file, just past the last valid record (Go's lastValidOff).</summary>
    public long LastOffset { get; private set; }

    /// <summary>Index of the file being read.</summary>
    public int CurrentFile => _cur;

    /// <summary>True when the decoder reads the last file of its list.</summary>
    public bool OnLastFile => _files.Count - _cur == 1;

    /// <summary>Restarts the CRC chain from <paramref name="prevCrc"/> (after a crc record).</summary>
    public void UpdateCrc(uint prevCrc) => Crc = prevCrc;

    // Last decoded record.
    public long Type { get; private set; }

    public uint RecordCrc { get; private set; }

    public bool HasData { get; private set; }

    private int _dataStart;
    private int _dataLength;

    public ReadOnlySpan<byte> Data => new(_rec, _dataStart, _dataLength);

    /// <summary>Decodes the next record. Throws <see cref="WalException"/> for corruption that is not a torn tail.</summary>
    public DecodeStatus Decode()
    {
        Type = 0;
        RecordCrc = 0;
        HasData = false;
        _dataLength = 0;
        while (true)
        {
            if (_cur >= _files.Count)
            {
                return DecodeStatus.Eof;
            }
            Span<byte> lenBuf = stackalloc byte[8];
            int n = ReadFull(lenBuf);
            if (n > 0 && n < 8)
            {
                return DecodeStatus.UnexpectedEof;
            }
            long l = n == 8 ? BinaryPrimitives.ReadInt64LittleEndian(lenBuf) : 0;
            if (n == 0 || l == 0)
            {
                // End of this file or its preallocated zero tail: go on with the next file.
                _cur++;
                _rpos = _rlen = 0;
                _fileReadOff = 0;
                if (_cur >= _files.Count)
                {
                    return DecodeStatus.Eof;
                }
                LastOffset = 0;
                continue;
            }

            WalCodec.DecodeFrameSize(l, out long recBytes, out long padBytes);
            if (recBytes >= WalCodec.MaxEntrySizeLimit - padBytes)
            {
                throw new WalException(WalErrorKind.MaxEntrySizeLimitExceeded);
            }
            int total = (int)(recBytes + padBytes);
            if (_rec.Length < total)
            {
                _rec = new byte[Math.Max(total, _rec.Length * 2)];
            }
            Span<byte> data = _rec.AsSpan(0, total);
            if (ReadFull(data) < total)
            {
                return DecodeStatus.UnexpectedEof;
            }
            Span<byte> recSpan = data[..(int)recBytes];
            if (!WalCodec.TryParseRecord(recSpan, out long type, out uint crc, out int ds, out int dl, out bool hasData))
            {
                if (IsTornEntry(data))
                {
                    return DecodeStatus.UnexpectedEof;
                }
                throw new WalException(WalErrorKind.Corrupt, "wal: record does not parse (proto: illegal wireType or truncated field)");
            }
            Type = type;
            RecordCrc = crc;
            HasData = hasData;
            _dataStart = ds;
            _dataLength = dl;
            if (type != WalRecordType.Crc)
            {
                // The chain only advances past valid records, so a torn tail leaves Crc at the last good record.
                uint next = Crc32C.Update(Crc, recSpan.Slice(ds, dl));
                if (crc != next)
                {
                    if (IsTornEntry(data))
                    {
                        return DecodeStatus.UnexpectedEof;
                    }
                    throw new WalException(WalErrorKind.CrcMismatch, "walpb: crc mismatch");
                }
                Crc = next;
            }
            LastOffset += WalCodec.FrameSizeBytes + recBytes + padBytes;
            return DecodeStatus.Record;
        }
    }

    /// <summary>
    /// A record is torn (partly written before a crash) when it sits in the last file and one of the
    /// sector-sized pieces it spans is all zero (etcd's isTornEntry).
    /// </summary>
    private bool IsTornEntry(ReadOnlySpan<byte> data)
    {
        if (!OnLastFile)
        {
            return false;
        }
        long fileOff = LastOffset + WalCodec.FrameSizeBytes;
        int curOff = 0;
        while (curOff < data.Length)
        {
            int chunkLen = (int)(WalCodec.MinSectorSize - (fileOff % WalCodec.MinSectorSize));
            if (chunkLen > data.Length - curOff)
            {
                chunkLen = data.Length - curOff;
            }
            if (!data.Slice(curOff, chunkLen).ContainsAnyExcept((byte)0))
            {
                return true;
            }
            fileOff += chunkLen;
            curOff += chunkLen;
        }
        return false;
    }

    private int ReadFull(Span<byte> dst)
    {
        int done = 0;
        while (done < dst.Length)
        {
            if (_rpos == _rlen)
            {
                if (dst.Length - done >= _rbuf.Length)
                {
                    // Large read: straight into the destination.
                    int direct = RandomAccess.Read(_files[_cur], dst[done..], _fileReadOff);
                    if (direct == 0)
                    {
                        return done;
                    }
                    _fileReadOff += direct;
                    done += direct;
                    continue;
                }
                int r = RandomAccess.Read(_files[_cur], _rbuf, _fileReadOff);
                if (r == 0)
                {
                    return done;
                }
                _fileReadOff += r;
                _rpos = 0;
                _rlen = r;
            }
            int take = Math.Min(_rlen - _rpos, dst.Length - done);
            _rbuf.AsSpan(_rpos, take).CopyTo(dst[done..]);
            _rpos += take;
            done += take;
        }
        return done;
    }
}
