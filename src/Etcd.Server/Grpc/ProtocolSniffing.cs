using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.ComponentModel;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Etcd.Server.Logging;
using Etcd.Server.Tls;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Grpc;

/// <summary>
/// One listening TCP socket shared by two Kestrel endpoints ("lanes"): connections whose first bytes are the
/// HTTP/2 preface (<c>PRI * HTTP/2.0</c>) go to the HTTP/2-only lane, all others to the HTTP/1.1-only lane.
/// The bytes are only peeked (<see cref="SocketFlags.Peek"/>), so Kestrel reads the connection from its first
/// byte. This is how one cleartext port serves gRPC (h2c prior knowledge) and HTTP/1.1 as etcd does.
/// With TLS (an https URL), a connection starting with a TLS handshake record (0x16) — every connection when the
/// port has no http URL — is handshaken here with the <see cref="EtcdTlsInfo"/>'s server options, and its
/// decrypted stream goes to the lane ALPN chose (<c>h2</c> → HTTP/2, else HTTP/1.1), as etcd's cmux + TLS
/// listener serve http and https URLs of one address on one port. Rejected handshakes are logged as etcd's
/// <c>rejected connection</c> warnings.
/// Thread-safe: Kestrel binds and unbinds lanes from its own tasks; the accept loop runs on the thread pool.
/// </summary>
internal sealed class SniffedPort : IAsyncDisposable
{
    // The first bytes of the HTTP/2 preface; no HTTP/1.1 method is "PRI", so four bytes decide.
    private static readonly byte[] PrefacePrefix = "PRI "u8.ToArray();

    private static readonly TimeSpan SniffTimeout = TimeSpan.FromSeconds(10);

    // The content type of a TLS handshake record; no HTTP/1.x method or HTTP/2 preface starts with it.
    private const byte TlsHandshakeRecord = 0x16;

    private readonly object _gate = new();
    private readonly IPEndPoint _requested;
    private readonly ILogger _logger;
    private readonly ILogger _tlsLogger;
    private readonly bool _cleartext;
    private readonly EtcdTlsInfo? _tls;
    private readonly SocketConnectionContextFactory _contexts;
    private readonly Channel<ConnectionContext> _http1 = Channel.CreateUnbounded<ConnectionContext>();
    private readonly Channel<ConnectionContext> _http2 = Channel.CreateUnbounded<ConnectionContext>();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _socket;
    private Task? _acceptLoop;
    private int _openLanes;

    /// <param name="requested">Address to bind.</param>
    /// <param name="cleartext">Whether an http URL uses the port (h2c and HTTP/1.1 in the clear).</param>
    /// <param name="tls">TLS for https URLs on the port; null when none does.</param>
    /// <param name="loggerFactory">Logging.</param>
    public SniffedPort(IPEndPoint requested, bool cleartext, EtcdTlsInfo? tls, ILoggerFactory loggerFactory)
    {
        _requested = requested;
        _cleartext = cleartext || tls is null;
        _tls = tls;
        _logger = loggerFactory.CreateLogger("Etcd.Server.Grpc.SniffedPort");
        _tlsLogger = loggerFactory.CreateLogger("embed/config_logging.go");
        _contexts = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions(), _logger);
    }

    /// <summary>The bound address (the real port when 0 was asked for); null before the first bind.</summary>
    public IPEndPoint? BoundEndPoint { get; private set; }

    /// <summary>Binds the socket on the first lane's bind and starts accepting; returns the lane's listener.</summary>
    public IConnectionListener BindLane(SniffedEndPoint endPoint)
    {
        lock (_gate)
        {
            if (_socket is null)
            {
                var socket = new Socket(_requested.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    if (_requested.AddressFamily == AddressFamily.InterNetworkV6 && _requested.Address.Equals(IPAddress.IPv6Any))
                    {
                        socket.DualMode = true;
                    }

                    socket.Bind(_requested);
                    socket.Listen(512);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    socket.Dispose();
                    throw new AddressInUseException(e.Message, e);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                _socket = socket;
                BoundEndPoint = (IPEndPoint)socket.LocalEndPoint!;
                _acceptLoop = Task.Run(AcceptLoopAsync);
            }

            _openLanes++;
            return new LaneListener(this, endPoint, endPoint.Lane == HttpProtocols.Http2 ? _http2 : _http1);
        }
    }

    private async Task AcceptLoopAsync()
    {
        var socket = _socket!;
        while (!_stopping.IsCancellationRequested)
        {
            Socket accepted;
            try
            {
                accepted = await socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || _stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                // Transient accept failures (e.g. a connection reset before accept) must not stop the listener.
                _logger.LogDebug(e, "accept failed on {EndPoint}", BoundEndPoint);
                continue;
            }

            _ = SniffAsync(accepted);
        }
    }

    private async Task SniffAsync(Socket socket)
    {
        var buffer = new byte[4];
        try
        {
            socket.NoDelay = true;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(SniffTimeout);
            if (!_cleartext)
            {
                await HandshakeAsync(socket, timeout.Token).ConfigureAwait(false);
                return;
            }

            var delay = 1;
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.Peek, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    socket.Dispose();
                    return;
                }

                if (_tls is not null && buffer[0] == TlsHandshakeRecord)
                {
                    await HandshakeAsync(socket, timeout.Token).ConfigureAwait(false);
                    return;
                }

                if (!buffer.AsSpan(0, n).SequenceEqual(PrefacePrefix.AsSpan(0, n)))
                {
                    Hand(socket, _http1);
                    return;
                }

                if (n == PrefacePrefix.Length)
                {
                    Hand(socket, _http2);
                    return;
                }

                // A prefix of the preface arrived; peeking again returns at once, so back off a little.
                await Task.Delay(delay, timeout.Token).ConfigureAwait(false);
                delay = Math.Min(delay * 2, 50);
            }
        }
        catch (Exception e)
        {
            _logger.LogDebug(e, "dropping a connection on {EndPoint} before its protocol was known", BoundEndPoint);
            socket.Dispose();
        }
    }

    private async Task HandshakeAsync(Socket socket, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        string? rejection = null;
        try
        {
            var options = _tls!.ServerOptions(reason => rejection = reason);
            await ssl.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException or Win32Exception)
        {
            if (!_stopping.IsCancellationRequested)
            {
                LogRejected(socket, ssl, rejection ?? HandshakeError(e));
            }

            await ssl.DisposeAsync().ConfigureAwait(false);
            return;
        }

        var lane = ssl.NegotiatedApplicationProtocol == SslApplicationProtocol.Http2 ? _http2 : _http1;
        var connection = new TlsConnection(ssl, socket);
        if (!lane.Writer.TryWrite(connection))
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static string HandshakeError(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        return e is OperationCanceledException ? "tls: handshake timed out" : inner.Message;
    }

    private void LogRejected(Socket socket, SslStream ssl, string error)
    {
        string remote;
        try
        {
            remote = socket.RemoteEndPoint?.ToString() ?? "";
        }
        catch (ObjectDisposedException)
        {
            remote = "";
        }

        string serverName;
        try
        {
            serverName = ssl.TargetHostName;
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            serverName = "";
        }

        _tlsLogger.LogFields(LogLevel.Warning, "rejected connection", ("remote-addr", remote), ("server-name", serverName), ("error", error));
    }

    private void Hand(Socket socket, Channel<ConnectionContext> lane)
    {
        var connection = _contexts.Create(socket);
        if (!lane.Writer.TryWrite(connection))
        {
            _ = connection.DisposeAsync();
        }
    }

    internal async ValueTask UnbindLaneAsync(Channel<ConnectionContext> lane)
    {
        lane.Writer.TryComplete();
        bool last;
        lock (_gate)
        {
            last = --_openLanes == 0;
        }

        if (last)
        {
            await StopAcceptingAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Closes the listening socket; connections already handed to Kestrel live on.</summary>
    public async ValueTask StopAcceptingAsync()
    {
        Task? loop;
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            _stopping.Cancel();
            _socket?.Dispose();
            loop = _acceptLoop;
        }

        _http1.Writer.TryComplete();
        _http2.Writer.TryComplete();
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }

        while (_http1.Reader.TryRead(out var c1))
        {
            await c1.DisposeAsync().ConfigureAwait(false);
        }

        while (_http2.Reader.TryRead(out var c2))
        {
            await c2.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops accepting and frees the transport's memory pools; call after Kestrel has stopped.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAcceptingAsync().ConfigureAwait(false);
        _contexts.Dispose();
    }

    private sealed class LaneListener : IConnectionListener
    {
        private readonly SniffedPort _port;
        private readonly Channel<ConnectionContext> _lane;
        private int _unbound;

        public LaneListener(SniffedPort port, SniffedEndPoint endPoint, Channel<ConnectionContext> lane)
        {
            _port = port;
            _lane = lane;
            EndPoint = endPoint;
        }

        public EndPoint EndPoint { get; }

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await _lane.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) =>
            Interlocked.Exchange(ref _unbound, 1) == 0 ? _port.UnbindLaneAsync(_lane) : ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => UnbindAsync();
    }
}

/// <summary>A Kestrel endpoint that is one lane (HTTP/1.1 or HTTP/2) of a <see cref="SniffedPort"/>.</summary>
internal sealed class SniffedEndPoint : EndPoint
{
    public SniffedEndPoint(SniffedPort port, HttpProtocols lane)
    {
        Port = port;
        Lane = lane;
    }

    public SniffedPort Port { get; }

    public HttpProtocols Lane { get; }

    public override string ToString() => $"{Port.BoundEndPoint?.ToString() ?? "unbound"} ({(Lane == HttpProtocols.Http2 ? "h2c" : "http/1.1")})";
}

/// <summary>Kestrel's transport for <see cref="SniffedEndPoint"/>s; binds nothing else.</summary>
internal sealed class SniffingListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is SniffedEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not SniffedEndPoint sniffed)
        {
            throw new NotSupportedException($"{endpoint} is not a sniffed endpoint");
        }

        return ValueTask.FromResult(sniffed.Port.BindLane(sniffed));
    }
}
