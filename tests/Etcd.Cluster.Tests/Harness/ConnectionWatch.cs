using System.Net.Sockets;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>
/// Watches the client side of every HTTP/2 connection an <see cref="Etcd.Client.EtcdClient"/> opens: its
/// <see cref="CreateHandler"/> builds a <see cref="SocketsHttpHandler"/> (one connection, as clientv3 keeps one per
/// endpoint) whose streams record how each connection ended — a TCP reset (ECONNRESET / EPIPE on a read or write)
/// or a clean end of stream — and which HTTP/2 frame types the server sent (GOAWAY is type 7). Thread-safe.
/// </summary>
public sealed class ConnectionWatch
{
    /// <summary>HTTP/2 GOAWAY frame type.</summary>
    public const byte GoAway = 0x7;

    private readonly Lock _gate = new();
    private readonly List<WatchedStream> _streams = [];

    /// <summary>Connections opened so far.</summary>
    public int Connections
    {
        get
        {
            lock (_gate)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>Connections that saw a TCP reset (or a write to a connection the peer had reset).</summary>
    public IReadOnlyList<string> Resets
    {
        get
        {
            lock (_gate)
            {
                return _streams.Where(s => s.Reset is not null).Select(s => $"connection {s.Ordinal}: {s.Reset}").ToList();
            }
        }
    }

    /// <summary>Connections whose read side ended (EOF or reset) without a GOAWAY from the server before it.</summary>
    public IReadOnlyList<int> EndedWithoutGoAway
    {
        get
        {
            lock (_gate)
            {
                return _streams.Where(s => s.Ended && !s.SawGoAwayBeforeEnd).Select(s => s.Ordinal).ToList();
            }
        }
    }

    /// <summary>Connections on which the server sent GOAWAY.</summary>
    public int GoAways
    {
        get
        {
            lock (_gate)
            {
                return _streams.Count(s => s.FrameTypes.Contains(GoAway));
            }
        }
    }

    /// <summary>A handler that dials through watched streams; plain h2c, one connection per endpoint.</summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        EnableMultipleHttp2Connections = false,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        UseProxy = false,
        UseCookies = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            lock (_gate)
            {
                var stream = new WatchedStream(new NetworkStream(socket, ownsSocket: true), _streams.Count, _gate);
                _streams.Add(stream);
                return stream;
            }
        },
    };

    /// <summary>
    /// A connection's stream: reads are parsed as HTTP/2 frames (9-byte headers; the server sends no preface), so the
    /// frame types the server sent are known; I/O errors with ECONNRESET/EPIPE are recorded as resets.
    /// </summary>
    private sealed class WatchedStream(NetworkStream inner, int ordinal, Lock gate) : Stream
    {
        private readonly byte[] _header = new byte[9];
        private int _headerFill;
        private long _payloadLeft;

        public int Ordinal { get; } = ordinal;

        public string? Reset { get; private set; }

        public bool Ended { get; private set; }

        public bool SawGoAwayBeforeEnd { get; private set; }

        public HashSet<byte> FrameTypes { get; } = [];

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n;
            try
            {
                n = await inner.ReadAsync(buffer, cancellationToken);
            }
            catch (Exception e) when (IsReset(e))
            {
                Record(e, ended: true);
                throw;
            }

            lock (gate)
            {
                // SocketsHttpHandler waits for data with zero-byte reads; only an empty read into a real buffer is EOF.
                if (n == 0 && buffer.Length > 0)
                {
                    Ended = true;
                }

                Parse(buffer.Span[..n]);
            }

            return n;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                await inner.WriteAsync(buffer, cancellationToken);
            }
            catch (Exception e) when (IsReset(e))
            {
                Record(e, ended: false);
                throw;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private static bool IsReset(Exception e)
        {
            var socket = e as SocketException ?? e.InnerException as SocketException;
            return socket?.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted;
        }

        private void Record(Exception e, bool ended)
        {
            lock (gate)
            {
                Reset ??= (e.InnerException ?? e).Message;
                Ended |= ended;
            }
        }

        private void Parse(ReadOnlySpan<byte> data)
        {
            while (data.Length > 0)
            {
                if (_payloadLeft > 0)
                {
                    var skip = (int)Math.Min(_payloadLeft, data.Length);
                    _payloadLeft -= skip;
                    data = data[skip..];
                    continue;
                }

                var take = Math.Min(_header.Length - _headerFill, data.Length);
                data[..take].CopyTo(_header.AsSpan(_headerFill));
                _headerFill += take;
                data = data[take..];
                if (_headerFill == _header.Length)
                {
                    _headerFill = 0;
                    _payloadLeft = (_header[0] << 16) | (_header[1] << 8) | _header[2];
                    FrameTypes.Add(_header[3]);
                    if (_header[3] == GoAway && !Ended)
                    {
                        SawGoAwayBeforeEnd = true;
                    }
                }
            }
        }
    }
}
