using System.Buffers.Binary;
using Etcd.Server.Transport;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Server.Tests.Cluster;

/// <summary>The rafthttp stream encodings (etcd's msgappv2 and message codecs) and the chunked HTTP bodies that carry them.</summary>
public sealed class RaftStreamCodecTests
{
    private static Message App(ulong term, ulong index, ulong logTerm, ulong commit, params ulong[] entries)
    {
        var m = new Message { Type = MessageType.MsgApp, From = 1, To = 2, Term = term, Index = index, LogTerm = logTerm, Commit = commit };
        foreach (var e in entries)
        {
            m.Entries.Add(new Entry { Term = term, Index = e, Data = ByteString.CopyFromUtf8($"e{e}") });
        }

        return m;
    }

    [Fact]
    public async Task MsgAppV2_ContinuingAppendsTravelAsEntriesOnly_AndDecodeToTheSameMessages()
    {
        var ms = new MemoryStream();
        var enc = new RaftStreamEncoder(RaftStreamType.MsgAppV2, ms);
        var first = App(5, 10, 5, 9, 11, 12);
        var next = App(5, 12, 5, 12, 13);
        var other = App(6, 13, 5, 13, 14);
        enc.Encode(first);
        var before = ms.Length;
        enc.Encode(next);
        Assert.Equal(1, ms.GetBuffer()[before]); // msgTypeAppEntries: the encoder knows term 5 and index 12
        enc.Encode(new Message { Type = MessageType.MsgHeartbeat });
        enc.Encode(other);
        Assert.Equal(2, ms.GetBuffer()[0]); // msgTypeApp for the first, whole message

        ms.Position = 0;
        var dec = new RaftStreamDecoder(RaftStreamType.MsgAppV2, ms, local: 2, remote: 1);
        Assert.Equal(first, await dec.DecodeAsync(CancellationToken.None));
        var got = await dec.DecodeAsync(CancellationToken.None);
        Assert.Equal(next, got);
        Assert.True(RaftStreamTypes.IsLinkHeartbeat((await dec.DecodeAsync(CancellationToken.None))!));
        Assert.Equal(other, await dec.DecodeAsync(CancellationToken.None));
        Assert.Null(await dec.DecodeAsync(CancellationToken.None));
    }

    [Fact]
    public async Task MessageStream_IsAnEightByteBigEndianLengthAndTheMessage()
    {
        var m = new Message { Type = MessageType.MsgVote, From = 3, To = 4, Term = 7, Index = 8, LogTerm = 6 };
        var bytes = RaftStreamEncoder.EncodeMessage(m);
        Assert.Equal((ulong)m.CalculateSize(), BinaryPrimitives.ReadUInt64BigEndian(bytes));
        Assert.Equal(m.ToByteArray(), bytes[8..]);
        var dec = new RaftStreamDecoder(RaftStreamType.Message, new MemoryStream([.. bytes, .. bytes[..5]]), 4, 3);
        Assert.Equal(m, await dec.DecodeAsync(CancellationToken.None));
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await dec.DecodeAsync(CancellationToken.None));
    }

    [Fact]
    public async Task MsgAppV2_UnknownFrameType_IsRefusedWithEtcdsError()
    {
        var dec = new RaftStreamDecoder(RaftStreamType.MsgAppV2, new MemoryStream([9]), 2, 1);
        var e = await Assert.ThrowsAsync<InvalidDataException>(async () => await dec.DecodeAsync(CancellationToken.None));
        Assert.Equal("failed to parse type 9 in msgappv2 stream", e.Message);
    }

    [Fact]
    public async Task ChunkedBody_EachFlushIsOneChunk_AndReadsBackAcrossChunkBoundaries()
    {
        var wire = new MemoryStream();
        var w = new ChunkedWriteStream(wire);
        w.Write("hello "u8);
        await w.FlushAsync(CancellationToken.None);
        w.Write("world"u8);
        await w.CompleteAsync(CancellationToken.None);
        Assert.Equal("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", System.Text.Encoding.ASCII.GetString(wire.ToArray()));

        wire.Position = 0;
        var reader = new PeerConnectionReader(wire);
        var body = new ChunkedReadStream(reader);
        var buf = new byte[3];
        var text = new List<byte>();
        int n;
        while ((n = await body.ReadAsync(buf)) > 0)
        {
            text.AddRange(buf[..n]);
        }

        Assert.Equal("hello world", System.Text.Encoding.ASCII.GetString([.. text]));
    }
}
