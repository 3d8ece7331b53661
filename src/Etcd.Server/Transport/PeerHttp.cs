using System.Globalization;
using System.Text;

namespace Etcd.Server.Transport;

/// <summary>
/// The HTTP/1.1 that etcd's peers speak to each other (Go's <c>net/http</c> client and server on the peer URL), reduced to
/// what rafthttp uses: a request or status line with headers, bodies framed by <c>Content-Length</c>, by
/// <c>Transfer-Encoding: chunked</c> or by the end of the connection, and long-lived streaming responses flushed chunk by
/// chunk. Both ends of our peer transport use it over a plain or TLS connection set up by the transport.
/// </summary>
internal static class PeerHttp
{
    /// <summary>Largest request or status line plus headers accepted (Go's DefaultMaxHeaderBytes is 1 MiB).</summary>
    public const int MaxHeadBytes = 1 << 20;

    /// <summary>
    /// Reads a message head: the start line and the headers up to the empty line. Returns null at a clean end of the
    /// connection before the first byte.
    /// </summary>
    /// <exception cref="InvalidDataException">A malformed or oversized head.</exception>
    public static async Task<HttpHead?> ReadHeadAsync(PeerConnectionReader reader, CancellationToken ct)
    {
        var start = await reader.ReadLineAsync(MaxHeadBytes, ct).ConfigureAwait(false);
        if (start is null)
        {
            return null;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var total = start.Length;
        while (true)
        {
            var line = await reader.ReadLineAsync(MaxHeadBytes, ct).ConfigureAwait(false)
                ?? throw new EndOfStreamException("connection ended inside an HTTP head");
            if (line.Length == 0)
            {
                break;
            }

            total += line.Length;
            if (total > MaxHeadBytes)
            {
                throw new InvalidDataException("HTTP head too large");
            }

            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                throw new InvalidDataException($"malformed HTTP header line {line}");
            }

            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            headers[name] = headers.TryGetValue(name, out var prev) ? prev + "," + value : value;
        }

        return new HttpHead(start, headers);
    }

    /// <summary>
    /// The body that follows <paramref name="head"/>: <c>Content-Length</c> bytes, chunked, or (a response only, when
    /// <paramref name="untilClose"/>) everything up to the end of the connection; an empty body otherwise.
    /// </summary>
    public static Stream Body(HttpHead head, PeerConnectionReader reader, bool untilClose)
    {
        if (head.Headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            return new ChunkedReadStream(reader);
        }

        if (head.Headers.TryGetValue("Content-Length", out var cl))
        {
            if (!long.TryParse(cl, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                throw new InvalidDataException($"bad Content-Length {cl}");
            }

            return new LengthReadStream(reader, n);
        }

        return untilClose ? new LengthReadStream(reader, long.MaxValue) : new LengthReadStream(reader, 0);
    }

    /// <summary>Writes a request head; <paramref name="contentLength"/> null = a chunked body follows (or none for GET).</summary>
    public static byte[] RequestHead(string method, string host, string path, IEnumerable<KeyValuePair<string, string>> headers, long? contentLength, bool chunked)
    {
        var sb = new StringBuilder();
        sb.Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\nHost: ").Append(host).Append("\r\nUser-Agent: Go-http-client/1.1\r\n");
        foreach (var (k, v) in headers)
        {
            sb.Append(k).Append(": ").Append(v).Append("\r\n");
        }

        if (contentLength is { } n)
        {
            sb.Append("Content-Length: ").Append(n.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }
        else if (chunked)
        {
            sb.Append("Transfer-Encoding: chunked\r\n");
        }

        sb.Append("\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>A response head with Go's date-less shape; <paramref name="contentLength"/> null = a chunked body follows.</summary>
    public static byte[] ResponseHead(int status, IEnumerable<KeyValuePair<string, string>> headers, long? contentLength, bool close)
    {
        var sb = new StringBuilder();
        sb.Append("HTTP/1.1 ").Append(status.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(ReasonPhrase(status)).Append("\r\n");
        foreach (var (k, v) in headers)
        {
            sb.Append(k).Append(": ").Append(v).Append("\r\n");
        }

        sb.Append("Date: ").Append(DateTime.UtcNow.ToString("r", CultureInfo.InvariantCulture)).Append("\r\n");
        if (contentLength is { } n)
        {
            sb.Append("Content-Length: ").Append(n.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }
        else
        {
            sb.Append("Transfer-Encoding: chunked\r\n");
        }

        if (close)
        {
            sb.Append("Connection: close\r\n");
        }

        sb.Append("\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>Go's status texts for the codes the peer handlers answer with.</summary>
    public static string ReasonPhrase(int status) => status switch
    {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
}

/// <summary>A request line or status line with its headers (names compared case-insensitively).</summary>
/// <param name="StartLine">The first line, without CRLF.</param>
/// <param name="Headers">The headers; repeated names joined with commas.</param>
internal sealed record HttpHead(string StartLine, Dictionary<string, string> Headers)
{
    /// <summary>The method of a request line.</summary>
    public string Method => StartLine.Split(' ')[0];

    /// <summary>The path of a request line, without the query.</summary>
    public string Path
    {
        get
        {
            var parts = StartLine.Split(' ');
            var target = parts.Length > 1 ? parts[1] : "/";
            var q = target.IndexOf('?');
            return q >= 0 ? target[..q] : target;
        }
    }

    /// <summary>The status code of a status line (0 when malformed).</summary>
    public int Status
    {
        get
        {
            var parts = StartLine.Split(' ');
            return parts.Length > 1 && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0;
        }
    }

    /// <summary>A header's value, or "" when absent.</summary>
    public string Header(string name) => Headers.TryGetValue(name, out var v) ? v : "";

    /// <summary>Whether the sender asked to close the connection after this message.</summary>
    public bool WantsClose => Header("Connection").Contains("close", StringComparison.OrdinalIgnoreCase) || StartLine.EndsWith("HTTP/1.0", StringComparison.Ordinal);
}

/// <summary>Buffered reading of one connection: lines for heads, raw bytes for bodies. Single reader.</summary>
internal sealed class PeerConnectionReader(Stream inner)
{
    private readonly byte[] _buf = new byte[64 * 1024];
    private int _pos;
    private int _len;

    /// <summary>The connection.</summary>
    public Stream Inner => inner;

    /// <summary>Bytes already read from the connection and not yet consumed.</summary>
    public ReadOnlySpan<byte> Buffered => _buf.AsSpan(_pos, _len - _pos);

    /// <summary>Fills the buffer when empty; returns false at the end of the connection.</summary>
    public async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_pos < _len)
        {
            return true;
        }

        _pos = 0;
        _len = await inner.ReadAsync(_buf, ct).ConfigureAwait(false);
        return _len > 0;
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes (0 at the end of the connection).</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        if (_pos < _len)
        {
            var n = Math.Min(buffer.Length, _len - _pos);
            _buf.AsMemory(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        // Large reads go straight to the caller's buffer.
        if (buffer.Length >= _buf.Length)
        {
            return await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
        }

        if (!await FillAsync(ct).ConfigureAwait(false))
        {
            return 0;
        }

        return await ReadAsync(buffer, ct).ConfigureAwait(false);
    }

    /// <summary>Reads one line ending in LF (CR dropped); null at the end of the connection before any byte.</summary>
    public async ValueTask<string?> ReadLineAsync(int max, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var any = false;
        while (true)
        {
            if (!await FillAsync(ct).ConfigureAwait(false))
            {
                return any ? throw new EndOfStreamException("connection ended inside a line") : null;
            }

            any = true;
            var span = _buf.AsSpan(_pos, _len - _pos);
            var lf = span.IndexOf((byte)'\n');
            var take = lf >= 0 ? lf : span.Length;
            sb.Append(Encoding.Latin1.GetString(span[..take]));
            _pos += lf >= 0 ? lf + 1 : take;
            if (sb.Length > max)
            {
                throw new InvalidDataException("HTTP line too long");
            }

            if (lf >= 0)
            {
                if (sb.Length > 0 && sb[^1] == '\r')
                {
                    sb.Length--;
                }

                return sb.ToString();
            }
        }
    }
}

/// <summary>
/// The members every read-only, forward-only body stream of the peer transport shares: subclasses supply
/// <see cref="Stream.ReadAsync(Memory{byte}, CancellationToken)"/>; the rest reads through it or is not supported.
/// </summary>
internal abstract class PeerReadStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A body of a known length (or up to the end of the connection when the length is <see cref="long.MaxValue"/>).</summary>
internal sealed class LengthReadStream(PeerConnectionReader reader, long length) : PeerReadStream
{
    private long _left = length;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_left == 0 || buffer.Length == 0)
        {
            return 0;
        }

        var want = (int)Math.Min(buffer.Length, _left);
        var n = await reader.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
        if (n == 0)
        {
            if (_left != long.MaxValue)
            {
                throw new EndOfStreamException("connection ended inside a body");
            }

            _left = 0;
            return 0;
        }

        if (_left != long.MaxValue)
        {
            _left -= n;
        }

        return n;
    }
}

/// <summary>A <c>Transfer-Encoding: chunked</c> body.</summary>
internal sealed class ChunkedReadStream(PeerConnectionReader reader) : PeerReadStream
{
    private long _chunkLeft;
    private bool _done;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_done || buffer.Length == 0)
        {
            return 0;
        }

        if (_chunkLeft == 0)
        {
            var line = await reader.ReadLineAsync(4096, cancellationToken).ConfigureAwait(false)
                ?? throw new EndOfStreamException("connection ended before a chunk");
            var semi = line.IndexOf(';');
            var hex = (semi >= 0 ? line[..semi] : line).Trim();
            if (!long.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _chunkLeft) || _chunkLeft < 0)
            {
                throw new InvalidDataException($"malformed chunk size {line}");
            }

            if (_chunkLeft == 0)
            {
                // Trailers up to the empty line.
                while (!string.IsNullOrEmpty(await reader.ReadLineAsync(4096, cancellationToken).ConfigureAwait(false)))
                {
                }

                _done = true;
                return 0;
            }
        }

        var want = (int)Math.Min(buffer.Length, _chunkLeft);
        var n = await reader.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
        if (n == 0)
        {
            throw new EndOfStreamException("connection ended inside a chunk");
        }

        _chunkLeft -= n;
        if (_chunkLeft == 0)
        {
            var crlf = await reader.ReadLineAsync(16, cancellationToken).ConfigureAwait(false);
            if (crlf is not "")
            {
                throw new InvalidDataException("chunk not followed by CRLF");
            }
        }

        return n;
    }
}

/// <summary>
/// Writes a chunked body: bytes are buffered and each <see cref="FlushAsync(CancellationToken)"/> sends them as one chunk
/// (Go's <c>http.Flusher</c> on a streaming response). <see cref="CompleteAsync"/> sends the last chunk. Single writer.
/// </summary>
internal sealed class ChunkedWriteStream(Stream inner) : Stream
{
    private readonly MemoryStream _pending = new();
    private byte[] _frame = new byte[64 * 1024];

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Bytes written and not yet flushed.</summary>
    public long Pending => _pending.Length;

    public override void Write(byte[] buffer, int offset, int count) => _pending.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _pending.Write(buffer);

    public override void WriteByte(byte value) => _pending.WriteByte(value);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _pending.Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        _pending.Write(buffer, offset, count);
        return Task.CompletedTask;
    }

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_pending.Length == 0)
        {
            return;
        }

        // One write per chunk (size line, data, CRLF): a flushed batch leaves as one segment, not three.
        var head = Encoding.ASCII.GetBytes(_pending.Length.ToString("x", CultureInfo.InvariantCulture) + "\r\n");
        var total = head.Length + (int)_pending.Length + 2;
        if (_frame.Length < total)
        {
            _frame = new byte[Math.Max(total, _frame.Length * 2)];
        }

        head.CopyTo(_frame, 0);
        _pending.GetBuffer().AsSpan(0, (int)_pending.Length).CopyTo(_frame.AsSpan(head.Length));
        _frame[total - 2] = (byte)'\r';
        _frame[total - 1] = (byte)'\n';
        await inner.WriteAsync(_frame.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (_frame.Length > 4 * 1024 * 1024)
        {
            _frame = new byte[64 * 1024];
        }

        _pending.SetLength(0);
        if (_pending.Capacity > 4 * 1024 * 1024)
        {
            _pending.Capacity = 64 * 1024;
        }
    }

    /// <summary>Flushes what is pending and ends the body with the zero-length chunk.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        await inner.WriteAsync("0\r\n\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
