using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Etcd.Server.Grpc;

/// <summary>
/// A TLS connection whose handshake <see cref="SniffedPort"/> already did, handed to Kestrel's cleartext lane the
/// ALPN result chose (<c>h2</c> → HTTP/2, otherwise HTTP/1.1): Kestrel reads and writes the decrypted stream
/// through pipes. Abort and dispose close the TLS stream and the socket. Kestrel's usual single-reader,
/// single-writer use of the pipes is what <see cref="SslStream"/> allows.
/// </summary>
internal sealed class TlsConnection : ConnectionContext
{
    private static long _nextId;

    private readonly SslStream _ssl;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _closed = new();
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private int _disposed;

    public TlsConnection(SslStream ssl, Socket socket)
    {
        _ssl = ssl;
        _socket = socket;
        _input = PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true));
        _output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
        Transport = new DuplexPipe(_input, _output);
        ConnectionId = "tls-" + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    /// <summary>The negotiated TLS session (protocol, cipher, peer certificate).</summary>
    public SslStream Ssl => _ssl;

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Close();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _input.CompleteAsync().ConfigureAwait(false);
        try
        {
            await _output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The peer went away while the last bytes were flushed.
        }

        Close();
        _closed.Dispose();
    }

    private void Close()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        _ssl.Dispose();
        _socket.Dispose();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
