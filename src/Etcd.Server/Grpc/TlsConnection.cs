using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Etcd.Server.Grpc;

/// <summary>
/// A TLS connection whose handshake <see cref="SniffedPort"/> already did, handed to Kestrel's cleartext lane the
/// ALPN result chose (<c>h2</c> → HTTP/2, otherwise HTTP/1.1): Kestrel reads and writes the decrypted stream
/// through pipes. Abort and dispose close the TLS stream and the socket. Kestrel's usual single-reader,
/// single-writer use of the pipes is what <see cref="SslStream"/> allows. It carries
/// <see cref="ITlsConnectionFeature"/>, so requests see <c>https</c> and <c>HttpContext.Connection.ClientCertificate</c>
/// (etcd takes the user name of client-certificate auth from its common name).
/// </summary>
internal sealed class TlsConnection : ConnectionContext, ITlsConnectionFeature, ITlsApplicationProtocolFeature
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
        _input = new PeerGoneTolerantReader(PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true)), Close);
        _output = new PeerGoneTolerantWriter(PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true)), Close);
        Transport = new DuplexPipe(_input, _output);
        ConnectionId = "tls-" + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
        ClientCertificate = ssl.RemoteCertificate is { } remote ? remote as X509Certificate2 ?? new X509Certificate2(remote) : null;
        ApplicationProtocol = ssl.NegotiatedApplicationProtocol.Protocol;
        Features.Set<ITlsConnectionFeature>(this);
        Features.Set<ITlsApplicationProtocolFeature>(this);
    }

    /// <summary>The ALPN protocol negotiated (<c>h2</c>, <c>http/1.1</c> or empty); Kestrel checks it on the HTTP/2 lane.</summary>
    public ReadOnlyMemory<byte> ApplicationProtocol { get; }

    /// <summary>The client's certificate, verified during the handshake; null when none was asked or sent.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>The client certificate (already known after the handshake).</summary>
    public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(ClientCertificate);

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

    /// <summary>
    /// The output pipe as Kestrel's socket transport behaves: when the client has gone (broken pipe, reset), a flush
    /// closes the connection and reports the pipe completed instead of throwing, so a client hanging up is not
    /// logged as a server error (Go's server does not log it either).
    /// </summary>
    private sealed class PeerGoneTolerantWriter(PipeWriter inner, Action close) : PipeWriter
    {
        public override void Advance(int bytes) => inner.Advance(bytes);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                close();
                return new FlushResult(isCanceled: false, isCompleted: true);
            }
        }

        public override async ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.WriteAsync(source, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                close();
                return new FlushResult(isCanceled: false, isCompleted: true);
            }
        }
    }

    /// <summary>
    /// The input pipe as Kestrel's socket transport behaves: when the client has gone (reset) or the connection was
    /// closed under a pending read (abort, a failed write), the read reports the end of the stream instead of
    /// throwing, so Kestrel ends the connection quietly rather than logging "Connection processing ended abnormally".
    /// </summary>
    private sealed class PeerGoneTolerantReader(PipeReader inner, Action close) : PipeReader
    {
        private bool _gone;

        public override void AdvanceTo(SequencePosition consumed)
        {
            if (!_gone)
            {
                inner.AdvanceTo(consumed);
            }
        }

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            if (!_gone)
            {
                inner.AdvanceTo(consumed, examined);
            }
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            if (_gone)
            {
                return Ended();
            }

            try
            {
                return await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                return Gone();
            }
        }

        public override bool TryRead(out ReadResult result)
        {
            if (_gone)
            {
                result = Ended();
                return true;
            }

            try
            {
                return inner.TryRead(out result);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                result = Gone();
                return true;
            }
        }

        private ReadResult Gone()
        {
            _gone = true;
            close();
            return Ended();
        }

        private static ReadResult Ended() => new(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
