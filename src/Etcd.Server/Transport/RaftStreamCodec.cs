using System.Buffers.Binary;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>The two kinds of rafthttp stream (etcd's <c>streamType</c>).</summary>
internal enum RaftStreamType
{
    /// <summary><c>/raft/stream/msgapp/ID</c>: MsgApp only, in the msgappv2 encoding ("stream MsgApp v2").</summary>
    MsgAppV2,

    /// <summary><c>/raft/stream/message/ID</c>: any message, each an 8-byte big-endian length and a raftpb.Message ("stream Message").</summary>
    Message,
}

/// <summary>Names and paths of the stream types, as etcd logs and routes them.</summary>
internal static class RaftStreamTypes
{
    public static string Name(this RaftStreamType t) => t == RaftStreamType.MsgAppV2 ? "stream MsgApp v2" : "stream Message";

    public static string Endpoint(this RaftStreamType t) => t == RaftStreamType.MsgAppV2 ? "/raft/stream/msgapp" : "/raft/stream/message";

    /// <summary>The link heartbeat every stream writer sends when idle: MsgHeartbeat from 0 to 0, dropped by readers.</summary>
    public static bool IsLinkHeartbeat(Message m) => m.Type == MessageType.MsgHeartbeat && m.From == 0 && m.To == 0;
}

/// <summary>
/// Encodes messages on a stream. <see cref="RaftStreamType.Message"/>: each message as an 8-byte big-endian length and
/// the marshalled raftpb.Message (etcd's <c>messageEncoder</c>, also the head of a <c>/raft/snapshot</c> body).
/// <see cref="RaftStreamType.MsgAppV2"/> (etcd's <c>msgAppV2Encoder</c>): one type byte, then for 0 (link heartbeat)
/// nothing; for 1 (entries continuing the previous MsgApp at the same term) the entry count (u64), each entry as u64 size
/// and bytes, then the commit index (u64); for 2 (any other MsgApp) the u64 size and the whole message. The encoder
/// tracks the term and last index sent so that consecutive appends need only their entries. Single writer.
/// </summary>
internal sealed class RaftStreamEncoder(RaftStreamType type, Stream w)
{
    private ulong _term;
    private ulong _index;
    private readonly byte[] _u64 = new byte[8];

    /// <summary>Writes <paramref name="m"/> (a link heartbeat when <see cref="RaftStreamTypes.IsLinkHeartbeat"/>); returns bytes written.</summary>
    public int Encode(Message m)
    {
        if (type == RaftStreamType.Message)
        {
            var size = m.CalculateSize();
            WriteU64((ulong)size);
            m.WriteTo(w);
            return size + 8;
        }

        if (RaftStreamTypes.IsLinkHeartbeat(m))
        {
            w.WriteByte(0);
            return 1;
        }

        if (_index == m.Index && _term == m.LogTerm && m.LogTerm == m.Term)
        {
            w.WriteByte(1);
            WriteU64((ulong)m.Entries.Count);
            var n = 9;
            foreach (var e in m.Entries)
            {
                var es = e.CalculateSize();
                WriteU64((ulong)es);
                e.WriteTo(w);
                n += 8 + es;
                _index++;
            }

            WriteU64(m.Commit);
            return n + 8;
        }

        var ms = m.CalculateSize();
        w.WriteByte(2);
        WriteU64((ulong)ms);
        m.WriteTo(w);
        _term = m.Term;
        _index = m.Index;
        if (m.Entries.Count > 0)
        {
            _index = m.Entries[^1].Index;
        }

        return 9 + ms;
    }

    private void WriteU64(ulong v)
    {
        BinaryPrimitives.WriteUInt64BigEndian(_u64, v);
        w.Write(_u64);
    }

    /// <summary>Writes one message in the <see cref="RaftStreamType.Message"/> encoding to a byte array (a snapshot body's head).</summary>
    public static byte[] EncodeMessage(Message m)
    {
        var size = m.CalculateSize();
        var b = new byte[8 + size];
        BinaryPrimitives.WriteUInt64BigEndian(b, (ulong)size);
        m.WriteTo(b.AsSpan(8));
        return b;
    }
}

/// <summary>
/// Decodes a stream written by <see cref="RaftStreamEncoder"/> (or by etcd): returns the messages in order, link
/// heartbeats included (the caller drops them). For msgappv2, entry-only frames become MsgApp from the remote to the
/// local member at the tracked term and index. Single reader.
/// </summary>
internal sealed class RaftStreamDecoder(RaftStreamType type, Stream r, ulong local, ulong remote)
{
    /// <summary>etcd's readBytesLimit: 512 MiB per message.</summary>
    public const ulong MaxMessageBytes = 512UL * 1024 * 1024;

    private ulong _term;
    private ulong _index;
    private readonly byte[] _u64 = new byte[8];
    private readonly byte[] _u8 = new byte[1];

    /// <summary>Bytes consumed so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>The next message; null at a clean end of the stream before a message.</summary>
    /// <exception cref="InvalidDataException">An unknown frame type or an oversized message.</exception>
    /// <exception cref="EndOfStreamException">The stream ended inside a message.</exception>
    public async ValueTask<Message?> DecodeAsync(CancellationToken ct)
    {
        if (type == RaftStreamType.Message)
        {
            if (!await ReadFirstAsync(_u64, ct).ConfigureAwait(false))
            {
                return null;
            }

            var len = BinaryPrimitives.ReadUInt64BigEndian(_u64);
            return Message.Parser.ParseFrom(await ReadBytesAsync(len, ct).ConfigureAwait(false));
        }

        if (!await ReadFirstAsync(_u8, ct).ConfigureAwait(false))
        {
            return null;
        }

        switch (_u8[0])
        {
            case 0:
                return new Message { Type = MessageType.MsgHeartbeat };
            case 1:
            {
                var m = new Message { Type = MessageType.MsgApp, From = remote, To = local, Term = _term, LogTerm = _term, Index = _index };
                var count = await ReadU64Async(ct).ConfigureAwait(false);
                if (count > int.MaxValue)
                {
                    throw new InvalidDataException($"msgappv2 entry count {count} too large");
                }

                for (ulong i = 0; i < count; i++)
                {
                    var size = await ReadU64Async(ct).ConfigureAwait(false);
                    m.Entries.Add(Entry.Parser.ParseFrom(await ReadBytesAsync(size, ct).ConfigureAwait(false)));
                    _index++;
                }

                m.Commit = await ReadU64Async(ct).ConfigureAwait(false);
                return m;
            }

            case 2:
            {
                var size = await ReadU64Async(ct).ConfigureAwait(false);
                var m = Message.Parser.ParseFrom(await ReadBytesAsync(size, ct).ConfigureAwait(false));
                _term = m.Term;
                _index = m.Index;
                if (m.Entries.Count > 0)
                {
                    _index = m.Entries[^1].Index;
                }

                return m;
            }

            default:
                throw new InvalidDataException($"failed to parse type {_u8[0]} in msgappv2 stream");
        }
    }

    private async ValueTask<bool> ReadFirstAsync(byte[] buf, CancellationToken ct)
    {
        var got = 0;
        while (got < buf.Length)
        {
            var n = await r.ReadAsync(buf.AsMemory(got), ct).ConfigureAwait(false);
            if (n == 0)
            {
                return got == 0 ? false : throw new EndOfStreamException("stream ended inside a message");
            }

            got += n;
        }

        BytesRead += buf.Length;
        return true;
    }

    private async ValueTask<ulong> ReadU64Async(CancellationToken ct)
    {
        await r.ReadExactlyAsync(_u64, ct).ConfigureAwait(false);
        BytesRead += 8;
        return BinaryPrimitives.ReadUInt64BigEndian(_u64);
    }

    private async ValueTask<byte[]> ReadBytesAsync(ulong len, CancellationToken ct)
    {
        if (len > MaxMessageBytes)
        {
            throw new InvalidDataException("rafthttp: error limit exceeded");
        }

        var b = new byte[len];
        await r.ReadExactlyAsync(b, ct).ConfigureAwait(false);
        BytesRead += (long)len;
        return b;
    }
}
