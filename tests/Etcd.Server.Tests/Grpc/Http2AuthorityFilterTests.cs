using System.Buffers;
using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Etcd.Api.Grpc;
using Etcd.Server.Grpc;
using Etcd.Server.Tls;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Tests.Grpc;

/// <summary>
/// The <c>:authority: http://host:port</c> clientv3 sends on single-endpoint dials: the filter alone (frames in,
/// frames out) and a raw HTTP/2 client against <see cref="GrpcHttpServer"/> over h2c and TLS.
/// </summary>
public sealed class Http2AuthorityFilterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

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

    /// <summary>A literal with incremental indexing whose name is static entry <paramref name="nameIndex"/>.</summary>
    private static byte[] IndexedLiteral(int nameIndex, string value, bool huffman = false)
    {
        var output = new ArrayBufferWriter<byte>();
        HpackLiteralEncoder.WriteInteger(output, 0x40, 6, nameIndex);
        var bytes = Encoding.ASCII.GetBytes(value);
        if (huffman)
        {
            bytes = HpackHuffman.Encode(bytes);
        }

        HpackLiteralEncoder.WriteInteger(output, huffman ? (byte)0x80 : (byte)0x00, 7, bytes.Length);
        output.Write(bytes);
        return output.WrittenSpan.ToArray();
    }

    private static List<(byte Type, byte Flags, int Stream, byte[] Payload)> Frames(ReadOnlySpan<byte> bytes)
    {
        var frames = new List<(byte, byte, int, byte[])>();
        while (bytes.Length >= 9)
        {
            var length = (bytes[0] << 16) | (bytes[1] << 8) | bytes[2];
            frames.Add((bytes[3], bytes[4], (int)(BinaryPrimitives.ReadUInt32BigEndian(bytes[5..]) & 0x7FFFFFFF), bytes.Slice(9, length).ToArray()));
            bytes = bytes[(9 + length)..];
        }

        Assert.Equal(0, bytes.Length);
        return frames;
    }

    private static byte[] Run(Http2AuthorityFilter filter, params byte[][] chunks)
    {
        // Feed the input byte-split at awkward places (every chunk is cut in two) to exercise partial frames.
        var all = chunks.SelectMany(c => c).ToArray();
        var output = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        for (var start = 0; start < all.Length; start += 7)
        {
            var input = pending.Concat(all.Skip(start).Take(7)).ToArray();
            var consumed = filter.Process(new ReadOnlySequence<byte>(input), output);
            pending = input[(int)new ReadOnlySequence<byte>(input).Slice(0, consumed).Length..];
        }

        Assert.Empty(pending);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void Filter_AuthorityWithoutScheme_PassesBytesUnchanged()
    {
        var block = new byte[] { 0x83, 0x86, 0x84 }.Concat(IndexedLiteral(1, "127.0.0.1:2379")).ToArray();
        var input = new[] { Preface, Frame(0x4, 0, 0, []), Frame(0x1, 0x5, 1, block), Frame(0x0, 0x1, 1, new byte[100]) };
        var filter = new Http2AuthorityFilter(16384, 4096);
        Assert.Equal(input.SelectMany(b => b).ToArray(), Run(filter, input));
        Assert.False(filter.Rewriting);
    }

    [Fact]
    public void Filter_AuthorityWithScheme_IsRewritten_AndLaterBlocksDecodeAgainstTheClientsTable()
    {
        var filter = new Http2AuthorityFilter(16384, 4096);
        // Stream 1: the authority enters the client's table; stream 3 refers to it by index 62; stream 5 has a
        // padded, prioritised HEADERS with a Huffman-coded path split over a CONTINUATION.
        var first = new byte[] { 0x83, 0x86 }.Concat(IndexedLiteral(4, "/etcdserverpb.Maintenance/HashKV")).Concat(IndexedLiteral(1, "http://127.0.0.1:2379")).ToArray();
        var second = new byte[] { 0x83, 0x86, 0xBF, 0xBE };
        var third = new byte[] { 0x83, 0x86, 0xBE }.Concat(IndexedLiteral(4, "/third", huffman: true)).ToArray();
        var padded = new byte[] { 3 }.Concat(new byte[] { 0x80, 0, 0, 1, 15 }).Concat(third[..4]).Concat(new byte[3]).ToArray();
        var output = Run(
            filter,
            Preface,
            Frame(0x4, 0, 0, []),
            Frame(0x1, 0x4, 1, first),
            Frame(0x0, 0x1, 1, "data"u8),
            Frame(0x1, 0x5, 3, second),
            Frame(0x1, 0x8 | 0x20, 5, padded),
            Frame(0x9, 0x4, 5, third[4..]));
        Assert.True(filter.Rewriting);
        Assert.Equal(Preface, output[..24]);

        var frames = Frames(output.AsSpan(24));
        Assert.Equal([0x4, 0x1, 0x0, 0x1, 0x1], frames.Select(f => f.Type).ToArray());
        var decoder = new HpackDecoder();
        string Get(byte[] block, string name)
        {
            var field = decoder.Decode(block).Single(f => Encoding.ASCII.GetString(f.Name) == name);
            return Encoding.ASCII.GetString(field.Value);
        }

        Assert.Equal("127.0.0.1:2379", Get(frames[1].Payload, ":authority"));
        Assert.Equal(0x4, frames[1].Flags);
        Assert.Equal("data", Encoding.ASCII.GetString(frames[2].Payload));
        Assert.Equal("127.0.0.1:2379", Get(frames[3].Payload, ":authority"));
        Assert.Equal(0x5, frames[3].Flags);

        // Padding dropped, priority kept, one frame with END_HEADERS.
        Assert.Equal(0x20 | 0x4, frames[4].Flags);
        Assert.Equal(new byte[] { 0x80, 0, 0, 1, 15 }, frames[4].Payload[..5]);
        var fields = new HpackDecoder().Decode(frames[4].Payload.AsSpan(5));
        Assert.Equal("/third", Encoding.ASCII.GetString(fields.Single(f => Encoding.ASCII.GetString(f.Name) == ":path").Value));
        Assert.Equal("127.0.0.1:2379", Encoding.ASCII.GetString(fields.Single(f => Encoding.ASCII.GetString(f.Name) == ":authority").Value));
        Assert.Equal(0, decoder.DynamicTableCount);
    }

    [Fact]
    public void Filter_RewrittenBlockAboveFrameSize_IsSplitIntoContinuations()
    {
        var filter = new Http2AuthorityFilter(16384, 4096);
        // Each indexed reference to the 4000-byte entry becomes a 4000-byte literal: 9 of them need 3 frames.
        var first = new byte[] { 0x83, 0x86 }.Concat(IndexedLiteral(1, "http://h:1")).Concat(IndexedLiteral(58, new string('u', 4000))).ToArray();
        var repeat = new byte[] { 0x83, 0x86, 0xBF }.Concat(Enumerable.Repeat((byte)0xBE, 9)).ToArray();
        var output = Run(filter, Preface, Frame(0x1, 0x4, 1, first), Frame(0x1, 0x5, 3, repeat));
        var frames = Frames(output.AsSpan(24));
        Assert.Equal([0x1, 0x1, 0x9, 0x9], frames.Select(f => f.Type).ToArray());
        Assert.All(frames, f => Assert.True(f.Payload.Length <= 16384));
        Assert.Equal(0x1, frames[1].Flags);
        Assert.Equal(0x0, frames[2].Flags);
        Assert.Equal(0x4, frames[3].Flags);
        Assert.Equal([3, 3, 3], frames.Skip(1).Select(f => f.Stream).ToArray());
        var fields = new HpackDecoder().Decode(frames.Skip(1).SelectMany(f => f.Payload).ToArray());
        Assert.Equal(9, fields.Count(f => Encoding.ASCII.GetString(f.Name) == "user-agent" && f.Value.Length == 4000));
    }

    [Fact]
    public void Filter_ContinuationOutOfSequence_StepsAside()
    {
        var filter = new Http2AuthorityFilter(16384, 4096);
        var input = new[] { Preface, Frame(0x9, 0x4, 1, [0x82]), Frame(0x1, 0x5, 3, IndexedLiteral(1, "http://h:1")) };
        Assert.Equal(input.SelectMany(b => b).ToArray(), Run(filter, input));
    }

    [Theory]
    [InlineData("http://127.0.0.1:2379", "127.0.0.1:2379")]
    [InlineData("https://user@[::1]:2379/path?q", "[::1]:2379")]
    [InlineData("unix://localhost:1234", "localhost:1234")]
    [InlineData("127.0.0.1:2379", null)]
    public void RepairAuthority_CutsSchemeAndPath(string value, string? expected)
    {
        var repaired = Http2AuthorityFilter.RepairAuthority(Encoding.ASCII.GetBytes(value));
        Assert.Equal(expected, repaired is null ? null : Encoding.ASCII.GetString(repaired));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Server_RequestsWithSchemeInAuthority_AreServed(bool tls)
    {
        using var dir = new TempDir();
        EtcdTlsInfo? tlsInfo = null;
        if (tls)
        {
            var (cert, key) = SelfSignedCertificate.Ensure(dir.Path, ["127.0.0.1"]);
            tlsInfo = EtcdTlsInfo.Create(new TlsSettings { CertFile = cert, KeyFile = key }, selfCert: true);
        }

        var server = new GrpcHttpServer(
            new GrpcHttpServerOptions { Urls = [tls ? "https://127.0.0.1:0" : "http://127.0.0.1:0"], Tls = tlsInfo },
            new GrpcServiceTable(),
            ctx => ctx.Response.WriteAsync($"host={ctx.Request.Host} path={ctx.Request.Path}"));
        await server.StartAsync();
        await using var _ = server;
        var port = server.BoundUrls[0].Port;
        using var cts = new CancellationTokenSource(Timeout);

        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port, cts.Token);
        Stream stream = client.GetStream();
        if (tls)
        {
            var ssl = new SslStream(stream);
            await ssl.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = "127.0.0.1",
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                },
                cts.Token);
            Assert.Equal(SslApplicationProtocol.Http2, ssl.NegotiatedApplicationProtocol);
            stream = ssl;
        }

        var authority = $"{(tls ? "https" : "http")}://127.0.0.1:{port}";
        var first = new byte[] { 0x82, (byte)(tls ? 0x87 : 0x86) }.Concat(IndexedLiteral(4, "/one")).Concat(IndexedLiteral(1, authority)).ToArray();
        var second = new byte[] { 0x82, (byte)(tls ? 0x87 : 0x86), 0xBE }.Concat(IndexedLiteral(4, "/two", huffman: true)).ToArray();
        await stream.WriteAsync(Preface.Concat(Frame(0x4, 0, 0, [])).Concat(Frame(0x1, 0x5, 1, first)).Concat(Frame(0x1, 0x5, 3, second)).ToArray(), cts.Token);

        var bodies = await ReadResponsesAsync(stream, [1, 3], cts.Token);
        Assert.Equal($"host=127.0.0.1:{port} path=/one", bodies[1]);
        Assert.Equal($"host=127.0.0.1:{port} path=/two", bodies[3]);
    }

    /// <summary>Reads frames until every stream in <paramref name="streams"/> ended; returns each one's ":status body".</summary>
    private static async Task<Dictionary<int, string>> ReadResponsesAsync(Stream stream, int[] streams, CancellationToken cancellationToken)
    {
        var decoder = new HpackDecoder();
        var bodies = streams.ToDictionary(s => s, _ => new StringBuilder());
        var open = new HashSet<int>(streams);
        var header = new byte[9];
        for (var frames = 0; open.Count > 0; frames++)
        {
            Assert.True(frames < 1000, "too many frames");
            await stream.ReadExactlyAsync(header, cancellationToken);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var payload = new byte[length];
            await stream.ReadExactlyAsync(payload, cancellationToken);
            var (type, flags, id) = (header[3], header[4], (int)(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF));
            switch (type)
            {
                case 0x4 when (flags & 0x1) == 0:
                    await stream.WriteAsync(Frame(0x4, 0x1, 0, []), cancellationToken);
                    break;
                case 0x3:
                    Assert.Fail($"stream {id} reset with error {BinaryPrimitives.ReadUInt32BigEndian(payload)}");
                    break;
                case 0x7:
                    Assert.Fail($"GOAWAY error {BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4))}");
                    break;
                case 0x1:
                    var status = decoder.Decode(payload).Single(f => Encoding.ASCII.GetString(f.Name) == ":status");
                    Assert.Equal("200", Encoding.ASCII.GetString(status.Value));
                    break;
                case 0x0:
                    bodies[id].Append(Encoding.ASCII.GetString(payload));
                    break;
            }

            if (type is 0x0 or 0x1 && (flags & 0x1) != 0)
            {
                open.Remove(id);
            }
        }

        return bodies.ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
    }
}
