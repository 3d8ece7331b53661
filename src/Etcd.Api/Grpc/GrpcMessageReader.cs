using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Etcd.Api.Grpc;

/// <summary>
/// Reads gRPC length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length, payload) from a
/// <see cref="PipeReader"/>: a message may arrive split over any number of reads or DATA frames; zero-length
/// messages are valid. Errors use grpc-go's wording (rpc_util.go):
/// <list type="bullet">
/// <item>length over the limit: <see cref="StatusCode.ResourceExhausted"/> <c>grpc: received message larger than max (N vs. M)</c>;</item>
/// <item>flag other than 0/1: <see cref="StatusCode.Internal"/> <c>grpc: received unexpected payload format N</c>;</item>
/// <item>flag 1 without an encoding: Internal <c>grpc: compressed flag set with identity or empty encoding</c>;
/// an encoding other than gzip: <see cref="StatusCode.Unimplemented"/> <c>grpc: Decompressor is not installed for grpc-encoding "x"</c>;</item>
/// <item>the stream ends inside a message: Internal <c>grpc: received truncated message (got N of M bytes)</c>;</item>
/// <item>an unparsable payload: Internal <c>grpc: failed to unmarshal the received message ...</c>.</item>
/// </list>
/// The payload is parsed straight from the pipe's pooled segments (no copy) unless it is compressed.
/// One reader per stream; not thread-safe (one read at a time).
/// </summary>
public sealed class GrpcMessageReader
{
    private readonly PipeReader _input;
    private readonly int _maxMessageBytes;
    private readonly string? _encoding;

    /// <summary>Creates a reader.</summary>
    /// <param name="input">The stream's body.</param>
    /// <param name="maxMessageBytes">Largest accepted message, in bytes (before and after decompression).</param>
    /// <param name="encoding">The stream's <c>grpc-encoding</c> header (null or <c>identity</c> when none).</param>
    public GrpcMessageReader(PipeReader input, int maxMessageBytes, string? encoding)
    {
        _input = input;
        _maxMessageBytes = maxMessageBytes;
        _encoding = encoding;
    }

    /// <summary>Payload bytes (as framed, before decompression) of the message last returned by <see cref="ReadMessageAsync"/>.</summary>
    public long LastMessageBytes { get; private set; }

    /// <summary>
    /// Reads the next message, or returns null when the stream ended cleanly between messages.
    /// Throws <see cref="RpcException"/> for bad frames (see the type remarks); I/O errors and cancellation of
    /// the pipe surface as the pipe throws them (callers map them to Cancelled/Unavailable).
    /// </summary>
    public async ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken = default)
        where T : IMessage<T>
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCanceled)
            {
                _input.AdvanceTo(buffer.Start);
                throw new OperationCanceledException("the read was cancelled");
            }

            if (buffer.Length >= GrpcFraming.HeaderSize)
            {
                var (compressed, length) = ReadHeader(buffer);
                if (buffer.Length - GrpcFraming.HeaderSize >= length)
                {
                    var payload = buffer.Slice(GrpcFraming.HeaderSize, length);
                    LastMessageBytes = length;
                    T message;
                    try
                    {
                        message = compressed ? ParseCompressed(parser, payload) : Parse(parser, payload);
                    }
                    finally
                    {
                        _input.AdvanceTo(payload.End);
                    }

                    return message;
                }

                if (result.IsCompleted)
                {
                    _input.AdvanceTo(buffer.End);
                    throw Truncated(buffer.Length - GrpcFraming.HeaderSize, length);
                }
            }
            else if (result.IsCompleted)
            {
                _input.AdvanceTo(buffer.End);
                if (buffer.Length == 0)
                {
                    return default;
                }

                throw new RpcException(StatusCode.Internal, $"grpc: received truncated message header ({buffer.Length} of {GrpcFraming.HeaderSize} bytes)");
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private (bool Compressed, long Length) ReadHeader(ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[GrpcFraming.HeaderSize];
        buffer.Slice(0, GrpcFraming.HeaderSize).CopyTo(header);
        var flag = header[0];
        long length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > _maxMessageBytes)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"grpc: received message larger than max ({length} vs. {_maxMessageBytes})");
        }

        switch (flag)
        {
            case 0:
                return (false, length);
            case 1:
                if (string.IsNullOrEmpty(_encoding) || _encoding == "identity")
                {
                    throw new RpcException(StatusCode.Internal, "grpc: compressed flag set with identity or empty encoding");
                }

                if (_encoding != "gzip")
                {
                    throw new RpcException(StatusCode.Unimplemented, $"grpc: Decompressor is not installed for grpc-encoding \"{_encoding}\"");
                }

                return (true, length);
            default:
                throw new RpcException(StatusCode.Internal, $"grpc: received unexpected payload format {flag}");
        }
    }

    private static RpcException Truncated(long got, long want) =>
        new(StatusCode.Internal, $"grpc: received truncated message (got {got} of {want} bytes)");

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(payload);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(StatusCode.Internal, "grpc: failed to unmarshal the received message " + e.Message, e);
        }
    }

    private T ParseCompressed<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload)
        where T : IMessage<T>
    {
        var compressed = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        var output = ArrayPool<byte>.Shared.Rent(Math.Max(256, Math.Min(_maxMessageBytes, (int)payload.Length * 4)));
        var size = 0;
        try
        {
            payload.CopyTo(compressed);
            using (var gz = new GZipStream(new MemoryStream(compressed, 0, (int)payload.Length), CompressionMode.Decompress))
            {
                while (true)
                {
                    if (size == output.Length)
                    {
                        if (size > _maxMessageBytes)
                        {
                            break;
                        }

                        var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)size * 2, (long)_maxMessageBytes + 1));
                        output.AsSpan(0, size).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(output);
                        output = bigger;
                    }

                    var n = gz.Read(output, size, output.Length - size);
                    if (n == 0)
                    {
                        break;
                    }

                    size += n;
                }
            }

            if (size > _maxMessageBytes)
            {
                throw new RpcException(StatusCode.ResourceExhausted, $"grpc: received message after decompression larger than max ({size} vs. {_maxMessageBytes})");
            }

            return Parse(parser, new ReadOnlySequence<byte>(output, 0, size));
        }
        catch (InvalidDataException e)
        {
            throw new RpcException(StatusCode.Internal, "grpc: failed to decompress the received message " + e.Message, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
            ArrayPool<byte>.Shared.Return(output);
        }
    }
}
