using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Etcd.Api.Grpc;
using Etcd.Server.Grpc;
using Etcd.Server.Tls;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tests.Grpc;

/// <summary>
/// Clients close their connections in every way a client can (FIN before, inside and after a frame or a request,
/// RST, TLS dropped mid-handshake and after it, HTTP/1.1 cut short) on a <see cref="GrpcHttpServer"/>, and the
/// server's log stays free of warnings and errors: a closed connection is no unhandled exception.
/// </summary>
public sealed class ConnectionCloseTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>How many times each way of closing is repeated; the failure this guards against came 1 in 10.</summary>
    private const int Rounds = 12;

    private static byte[] Frame(byte type, byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(5), (uint)stream);
        payload.CopyTo(frame.AsSpan(9));
        return frame;
    }

    private static byte[] GrpcRequest(int stream, string authority)
    {
        var block = new ArrayBufferWriter<byte>();
        block.Write<byte>([0x83, 0x86]); // :method POST, :scheme http
        foreach (var (name, value) in new[] { (":path", "/etcdserverpb.KV/Range"), (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers") })
        {
            HpackLiteralEncoder.Write(block, new HpackField(Encoding.ASCII.GetBytes(name), Encoding.ASCII.GetBytes(value), HpackIndexing.NotIndexed));
        }

        var message = new byte[] { 0, 0, 0, 0, 3, 0x0A, 0x01, 0x61 }; // RangeRequest{key: "a"}
        return Frame(0x1, 0x4, stream, block.WrittenSpan).Concat(Frame(0x0, 0x1, stream, message)).ToArray();
    }

    /// <summary>The ways a client ends a connection, each a function of (stream, authority).</summary>
    private static IEnumerable<(string Name, byte[] Bytes, bool Reset)> CleartextCloses(string authority)
    {
        var settings = Frame(0x4, 0, 0, []);
        var request = GrpcRequest(1, authority);
        yield return ("nothing sent", [], false);
        yield return ("nothing sent, reset", [], true);
        yield return ("part of the preface", Preface[..10], false);
        yield return ("preface", Preface, false);
        yield return ("preface and settings", [.. Preface, .. settings], false);
        yield return ("inside a frame header", [.. Preface, .. settings, .. request[..5]], false);
        yield return ("inside a header block", [.. Preface, .. settings, .. request[..20]], false);
        yield return ("inside a data frame", [.. Preface, .. settings, .. request[..^3]], false);
        yield return ("after a request", [.. Preface, .. settings, .. request], false);
        yield return ("after a request, reset", [.. Preface, .. settings, .. request], true);
        yield return ("after a GOAWAY", [.. Preface, .. settings, .. request, .. Frame(0x7, 0, 0, new byte[8])], false);
        yield return ("after a scheme authority request", [.. Preface, .. settings, .. GrpcRequest(1, "http://" + authority)], false);
        yield return ("HTTP/1.1 request line", "GET /health HT"u8.ToArray(), false);
        yield return ("HTTP/1.1 request", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), false);
        yield return ("HTTP/1.1 request, reset", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), true);
        yield return ("HTTP/1.1 body cut short", "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\""u8.ToArray(), false);
    }

    [Fact]
    public async Task ClientsClosingConnections_LeaveTheLogClean()
    {
        using var dir = new TempDir();
        var (cert, key) = SelfSignedCertificate.Ensure(dir.Path, ["127.0.0.1"]);
        var tls = EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, selfCert: true);
        var log = new CapturingLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(log));
        var server = new GrpcHttpServer(
            new GrpcHttpServerOptions { Urls = ["http://127.0.0.1:0", "https://127.0.0.1:0"], Tls = tls, LoggerFactory = loggerFactory },
            new GrpcServiceTable(),
            ctx => ctx.Response.WriteAsync("ok"));
        await server.StartAsync();
        var http = server.BoundUrls[0].Port;
        var https = server.BoundUrls[1].Port;
        using var cts = new CancellationTokenSource(Timeout);
        var closes = CleartextCloses($"127.0.0.1:{http}").ToArray();

        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                var tasks = new List<Task>();
                foreach (var (_, bytes, reset) in closes)
                {
                    tasks.Add(CloseAsync(http, tls: false, bytes, reset, readFirst: false, cts.Token));
                    tasks.Add(CloseAsync(http, tls: false, bytes, reset, readFirst: true, cts.Token));
                    tasks.Add(CloseAsync(https, tls: true, bytes, reset, readFirst: round % 2 == 0, cts.Token));
                }

                tasks.Add(TlsHandshakeCutAsync(https, cts.Token));
                await Task.WhenAll(tasks);
            }
        }
        finally
        {
            // Stopping waits for every connection Kestrel holds, so each one's log lines are written by then.
            await server.DisposeAsync();
        }

        // etcd warns of a TLS handshake cut short ("rejected connection"), and so do we: that one is expected.
        var rejected = log.Entries.Count(e => e.Category == "embed/config_logging.go" && e.Text.Contains("rejected connection", StringComparison.Ordinal));
        Assert.InRange(rejected, Rounds, int.MaxValue);
        var noisy = log.Entries
            .Where(e => e.Category != "embed/config_logging.go")
            .Where(e => e.Level >= LogLevel.Warning || e.Text.Contains("Unhandled exception", StringComparison.Ordinal))
            .ToArray();
        Assert.True(noisy.Length == 0, string.Join("\n", noisy.Select(e => $"{e.Level} {e.Category}: {e.Text} {e.Exception}")));
    }

    /// <summary>Connects, sends <paramref name="bytes"/>, optionally reads what the server says, then closes (FIN or RST).</summary>
    private static async Task CloseAsync(int port, bool tls, byte[] bytes, bool reset, bool readFirst, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        if (tls)
        {
            var ssl = new SslStream(stream, leaveInnerStreamOpen: true);
            var h1 = bytes.Length > 0 && bytes[0] != (byte)'P';
            await ssl.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = "127.0.0.1",
                    ApplicationProtocols = [h1 ? SslApplicationProtocol.Http11 : SslApplicationProtocol.Http2],
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                },
                cancellationToken);
            stream = ssl;
        }

        if (bytes.Length > 0)
        {
            await stream.WriteAsync(bytes, cancellationToken);
            await stream.FlushAsync(cancellationToken);
        }

        if (readFirst && Replies(bytes))
        {
            // Whatever comes first (SETTINGS, a response, or the end): the server has seen the bytes.
            var buffer = new byte[256];
            try
            {
                _ = await stream.ReadAsync(buffer, cancellationToken);
            }
            catch (IOException)
            {
            }
        }

        if (reset)
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
            return;
        }

        if (tls)
        {
            await ((SslStream)stream).ShutdownAsync();
        }

        socket.Shutdown(SocketShutdown.Send);
        await DrainAsync(socket, cancellationToken);
    }

    /// <summary>Whether the server answers <paramref name="bytes"/> before the client closes (SETTINGS, an HTTP/1.1 response).</summary>
    private static bool Replies(byte[] bytes) =>
        bytes.AsSpan().StartsWith(Preface) || (bytes.AsSpan().StartsWith("GET "u8) && bytes.AsSpan().EndsWith("\r\n\r\n"u8));

    /// <summary>Reads until the server closes its side, so the server saw the FIN before the socket goes.</summary>
    private static async Task DrainAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Sends half a TLS ClientHello record and closes.</summary>
    private static async Task TlsHandshakeCutAsync(int port, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
        await socket.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }, SocketFlags.None, cancellationToken);
        socket.Shutdown(SocketShutdown.Send);
        await DrainAsync(socket, cancellationToken);
    }

    private sealed record LogEntry(LogLevel Level, string Category, string Text, Exception? Exception);

    /// <summary>Keeps every log entry of every category in memory; thread-safe.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEntry> _entries = new();

        public IReadOnlyCollection<LogEntry> Entries => _entries;

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new LogEntry(logLevel, category, formatter(state, exception), exception));
        }
    }
}
