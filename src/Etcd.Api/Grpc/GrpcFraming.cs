using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace Etcd.Api.Grpc;

/// <summary>
/// Writes gRPC length-prefixed messages: a 1-byte compressed flag, the payload length as 4 bytes big-endian,
/// then the payload (PROTOCOL-HTTP2.md "Length-Prefixed-Message"). Stateless and thread-safe; the target
/// buffer writer is the caller's to serialise.
/// </summary>
public static class GrpcFraming
{
    /// <summary>Size of the message prefix, in bytes.</summary>
    public const int HeaderSize = 5;

    /// <summary>
    /// Serialises <paramref name="message"/> with its prefix straight into <paramref name="output"/> (no
    /// intermediate array). Throws <see cref="RpcException"/> <see cref="StatusCode.ResourceExhausted"/>
    /// <c>grpc: trying to send message larger than max (N vs. M)</c> when the message exceeds
    /// <paramref name="maxMessageBytes"/>. Returns the payload size in bytes.
    /// </summary>
    public static int WriteMessage(IBufferWriter<byte> output, IMessage message, int maxMessageBytes = int.MaxValue)
    {
        var size = message.CalculateSize();
        if (size > maxMessageBytes)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"grpc: trying to send message larger than max ({size} vs. {maxMessageBytes})");
        }

        var span = output.GetSpan(HeaderSize + size);
        WriteHeader(span, compressed: false, size);
        message.WriteTo(span.Slice(HeaderSize, size));
        output.Advance(HeaderSize + size);
        return size;
    }

    /// <summary>Writes a message gzip-compressed with the compressed flag set (the stream must carry <c>grpc-encoding: gzip</c>).</summary>
    public static int WriteCompressedMessage(IBufferWriter<byte> output, IMessage message, int maxMessageBytes = int.MaxValue)
    {
        var size = message.CalculateSize();
        if (size > maxMessageBytes)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"grpc: trying to send message larger than max ({size} vs. {maxMessageBytes})");
        }

        var raw = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1));
        try
        {
            message.WriteTo(raw.AsSpan(0, size));
            using var ms = new MemoryStream();
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            {
                gz.Write(raw, 0, size);
            }

            var compressed = ms.GetBuffer().AsSpan(0, (int)ms.Length);
            var span = output.GetSpan(HeaderSize + compressed.Length);
            WriteHeader(span, compressed: true, compressed.Length);
            compressed.CopyTo(span[HeaderSize..]);
            output.Advance(HeaderSize + compressed.Length);
            return compressed.Length;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>Writes the 5-byte prefix for a payload of <paramref name="length"/> bytes.</summary>
    public static void WriteHeader(Span<byte> destination, bool compressed, int length)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }
}
