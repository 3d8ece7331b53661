using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Grpc;

/// <summary>
/// Sits between an HTTP/2 client and Kestrel on one connection and repairs an <c>:authority</c> Kestrel would
/// reject. clientv3 (etcd 3.4) dials a single endpoint as <c>passthrough:///http://host:port</c>, so its gRPC
/// layer sends <c>:authority: http://host:port</c> (scheme included); Go's HTTP/2 server takes it, Kestrel resets
/// such a stream with PROTOCOL_ERROR (invalid Host), which breaks <c>etcdctl move-leader</c> and
/// <c>endpoint hashkv --cluster</c>. The filter reads the client's frames, decodes each header block with its own
/// HPACK decoder (tracking the client's dynamic table), and forwards it unchanged while no authority needs
/// repair. From the first block that does, every later block is re-encoded as literals that never enter
/// Kestrel's dynamic table (Kestrel's table stays as it was, never referenced again), with the scheme and
/// path cut from the authority (<c>http://127.0.0.1:2379</c> → <c>127.0.0.1:2379</c>); blocks larger than
/// Kestrel's frame size are split into CONTINUATION frames. Other frames pass through as they arrive. Input the
/// filter cannot parse (oversized frames, bad HPACK, a broken CONTINUATION sequence) is passed on raw and the
/// filter steps aside for the rest of the connection, so Kestrel reports the error as it would have.
/// One pump task per connection; the server-to-client direction is untouched.
/// </summary>
internal sealed class Http2AuthorityFilter
{
    private const int FrameHeaderLength = 9;
    private const byte FrameHeaders = 0x1;
    private const byte FrameContinuation = 0x9;
    private const byte FlagEndHeaders = 0x4;
    private const byte FlagPadded = 0x8;
    private const byte FlagPriority = 0x20;
    private const int PrefaceLength = 24;

    // A header block larger than this is not decoded (Kestrel's own limit, 32 KiB by default, rejects it anyway).
    private const int MaxHeaderBlockBytes = 1 << 20;

    private static readonly byte[] AuthorityName = ":authority"u8.ToArray();

    private readonly int _maxFrameSize;
    private readonly HpackDecoder _decoder;
    private readonly ArrayBufferWriter<byte> _block = new();
    private readonly ArrayBufferWriter<byte> _pendingFrames = new();
    private readonly ArrayBufferWriter<byte> _encoded = new();
    private int _prefaceRemaining = PrefaceLength;
    private long _forwardRemaining;
    private bool _inHeaderBlock;
    private byte _firstFlags;
    private int _streamId;
    private byte[] _priority = [];
    private bool _rewriting;
    private bool _passthrough;

    /// <param name="maxFrameSize">SETTINGS_MAX_FRAME_SIZE Kestrel advertises, in bytes (frames it accepts).</param>
    /// <param name="headerTableSize">SETTINGS_HEADER_TABLE_SIZE Kestrel advertises, in bytes (bounds the client's table).</param>
    public Http2AuthorityFilter(int maxFrameSize, int headerTableSize)
    {
        _maxFrameSize = maxFrameSize;
        _decoder = new HpackDecoder(headerTableSize);
    }

    /// <summary>Whether a block has been rewritten on this connection (from then on every block is).</summary>
    public bool Rewriting => _rewriting;

    /// <summary>
    /// A Kestrel connection middleware that puts the filter in front of the connection's input.
    /// </summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(int maxFrameSize, int headerTableSize, ILogger logger) =>
        next => async connection =>
        {
            var original = connection.Transport;
            var pipe = new Pipe(new PipeOptions(useSynchronizationContext: false));
            var filter = new Http2AuthorityFilter(maxFrameSize, headerTableSize);
            var pump = filter.PumpAsync(original.Input, pipe.Writer, logger);
            connection.Transport = new FilteredDuplexPipe(pipe.Reader, original.Output);
            try
            {
                await next(connection).ConfigureAwait(false);
            }
            finally
            {
                connection.Transport = original;
                await pipe.Reader.CompleteAsync().ConfigureAwait(false);
                original.Input.CancelPendingRead();
                await pump.ConfigureAwait(false);
            }
        };

    /// <summary>Copies <paramref name="source"/> to <paramref name="target"/> through the filter until either side ends.</summary>
    public async Task PumpAsync(PipeReader source, PipeWriter target, ILogger logger)
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await source.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                var buffer = result.Buffer;
                var consumed = Process(buffer, target);
                if (result.IsCompleted)
                {
                    // The client closed its side (FIN) with an incomplete frame left: Kestrel sees the bytes and the end
                    // of the stream. They are copied before AdvanceTo, which hands the buffer's segments back to the
                    // pipe's pool: slicing the buffer after it read recycled segments and failed with "Specified
                    // argument was out of the range of valid values. (Parameter 'start')".
                    foreach (var segment in buffer.Slice(consumed))
                    {
                        target.Write(segment.Span);
                    }

                    source.AdvanceTo(buffer.End);
                    await target.FlushAsync().ConfigureAwait(false);
                    break;
                }

                source.AdvanceTo(consumed, buffer.End);

                var flush = await target.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or ConnectionResetException or ConnectionAbortedException)
        {
            logger.LogDebug(e, "HTTP/2 authority filter: connection input ended");
            error = e;
        }
        finally
        {
            await target.CompleteAsync(error).ConfigureAwait(false);
        }
    }

    /// <summary>Handles every complete unit in <paramref name="buffer"/>; returns how far it was consumed.</summary>
    internal SequencePosition Process(ReadOnlySequence<byte> buffer, IBufferWriter<byte> target)
    {
        var reader = new SequenceReader<byte>(buffer);
        Span<byte> header = stackalloc byte[FrameHeaderLength];
        while (!reader.End)
        {
            if (_passthrough)
            {
                Forward(ref reader, reader.Remaining, target);
                continue;
            }

            if (_prefaceRemaining > 0)
            {
                _prefaceRemaining -= (int)Forward(ref reader, _prefaceRemaining, target);
                continue;
            }

            if (_forwardRemaining > 0)
            {
                _forwardRemaining -= Forward(ref reader, _forwardRemaining, target);
                continue;
            }

            if (!reader.TryCopyTo(header))
            {
                break;
            }

            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var type = header[3];
            var flags = header[4];
            var streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7FFFFFFF);
            var isHeaderFrame = type == FrameHeaders || type == FrameContinuation;
            if (length > _maxFrameSize || (_inHeaderBlock && type != FrameContinuation) || (!_inHeaderBlock && type == FrameContinuation))
            {
                // Not ours to judge: hand everything on and let Kestrel answer with its error.
                StepAside(target);
                continue;
            }

            if (!isHeaderFrame)
            {
                target.Write(header);
                reader.Advance(FrameHeaderLength);
                _forwardRemaining = length;
                continue;
            }

            if (reader.Remaining < FrameHeaderLength + length)
            {
                break;
            }

            var frame = reader.UnreadSequence.Slice(0, FrameHeaderLength + length);
            reader.Advance(FrameHeaderLength + length);
            if (!AddHeaderFrame(frame, type, flags, streamId, length, target))
            {
                continue;
            }

            if ((flags & FlagEndHeaders) != 0)
            {
                EndHeaderBlock(target);
            }
        }

        return reader.Position;
    }

    private bool AddHeaderFrame(ReadOnlySequence<byte> frame, byte type, byte flags, int streamId, int length, IBufferWriter<byte> target)
    {
        foreach (var segment in frame)
        {
            _pendingFrames.Write(segment.Span);
        }

        var payload = frame.Slice(FrameHeaderLength).ToArray();
        var start = 0;
        var end = length;
        if (type == FrameHeaders)
        {
            _inHeaderBlock = true;
            _firstFlags = flags;
            _streamId = streamId;
            if ((flags & FlagPadded) != 0)
            {
                if (length < 1 || payload[0] >= length)
                {
                    StepAside(target);
                    return false;
                }

                end -= payload[0];
                start = 1;
            }

            if ((flags & FlagPriority) != 0)
            {
                if (end - start < 5)
                {
                    StepAside(target);
                    return false;
                }

                _priority = payload.AsSpan(start, 5).ToArray();
                start += 5;
            }
            else
            {
                _priority = [];
            }
        }
        else if (streamId != _streamId)
        {
            StepAside(target);
            return false;
        }

        _block.Write(payload.AsSpan(start, end - start));
        if (_block.WrittenCount > MaxHeaderBlockBytes)
        {
            StepAside(target);
            return false;
        }

        return true;
    }

    private void EndHeaderBlock(IBufferWriter<byte> target)
    {
        List<HpackField> fields;
        try
        {
            fields = _decoder.Decode(_block.WrittenSpan);
        }
        catch (HpackException)
        {
            StepAside(target);
            return;
        }

        var repaired = false;
        for (var i = 0; i < fields.Count; i++)
        {
            if (fields[i].Name.AsSpan().SequenceEqual(AuthorityName) && RepairAuthority(fields[i].Value) is { } fixedValue)
            {
                fields[i] = fields[i] with { Value = fixedValue };
                repaired = true;
            }
        }

        _rewriting |= repaired;
        if (!_rewriting)
        {
            target.Write(_pendingFrames.WrittenSpan);
        }
        else
        {
            WriteRewritten(fields, target);
        }

        _block.ResetWrittenCount();
        _pendingFrames.ResetWrittenCount();
        _inHeaderBlock = false;
    }

    private void WriteRewritten(List<HpackField> fields, IBufferWriter<byte> target)
    {
        _encoded.ResetWrittenCount();
        foreach (var field in fields)
        {
            HpackLiteralEncoder.Write(_encoded, field);
        }

        var block = _encoded.WrittenSpan;
        var first = true;
        do
        {
            var room = _maxFrameSize - (first ? _priority.Length : 0);
            var take = Math.Min(room, block.Length);
            var last = take == block.Length;
            byte flags;
            if (first)
            {
                // Keep END_STREAM and PRIORITY; padding is dropped; END_HEADERS only on the last frame.
                flags = (byte)(_firstFlags & ~(FlagPadded | FlagEndHeaders));
                flags |= last ? FlagEndHeaders : (byte)0;
            }
            else
            {
                flags = last ? FlagEndHeaders : (byte)0;
            }

            var payloadLength = take + (first ? _priority.Length : 0);
            var span = target.GetSpan(FrameHeaderLength + payloadLength);
            span[0] = (byte)(payloadLength >> 16);
            span[1] = (byte)(payloadLength >> 8);
            span[2] = (byte)payloadLength;
            span[3] = first ? FrameHeaders : FrameContinuation;
            span[4] = flags;
            BinaryPrimitives.WriteUInt32BigEndian(span[5..], (uint)_streamId);
            var offset = FrameHeaderLength;
            if (first)
            {
                _priority.CopyTo(span[offset..]);
                offset += _priority.Length;
            }

            block[..take].CopyTo(span[offset..]);
            target.Advance(FrameHeaderLength + payloadLength);
            block = block[take..];
            first = false;
        }
        while (!block.IsEmpty);
    }

    /// <summary>
    /// The authority Kestrel accepts for one it would reject: <c>scheme://host:port/path</c> → <c>host:port</c>;
    /// null when <paramref name="value"/> has no scheme (left as it is).
    /// </summary>
    internal static byte[]? RepairAuthority(byte[] value)
    {
        var span = value.AsSpan();
        var schemeEnd = span.IndexOf("://"u8);
        if (schemeEnd < 0)
        {
            return null;
        }

        var rest = span[(schemeEnd + 3)..];
        var pathStart = rest.IndexOfAny((byte)'/', (byte)'?', (byte)'#');
        if (pathStart >= 0)
        {
            rest = rest[..pathStart];
        }

        var userInfo = rest.LastIndexOf((byte)'@');
        if (userInfo >= 0)
        {
            rest = rest[(userInfo + 1)..];
        }

        return rest.ToArray();
    }

    private void StepAside(IBufferWriter<byte> target)
    {
        target.Write(_pendingFrames.WrittenSpan);
        _pendingFrames.ResetWrittenCount();
        _block.ResetWrittenCount();
        _passthrough = true;
    }

    private static long Forward(ref SequenceReader<byte> reader, long count, IBufferWriter<byte> target)
    {
        var take = Math.Min(count, reader.Remaining);
        foreach (var segment in reader.UnreadSequence.Slice(0, take))
        {
            target.Write(segment.Span);
        }

        reader.Advance(take);
        return take;
    }

    private sealed class FilteredDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
