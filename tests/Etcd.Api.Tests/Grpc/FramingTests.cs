using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using Etcd.Api.Grpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Etcd.Api.Tests.Grpc;

public sealed class FramingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private static byte[] Frame(IMessage message, byte flag = 0)
    {
        var payload = message.ToByteArray();
        return Frame(payload, flag, payload.Length);
    }

    private static byte[] Frame(byte[] payload, byte flag, long declaredLength)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)declaredLength);
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static GrpcMessageReader ReaderOver(byte[] bytes, int max = 1 << 20, string? encoding = null)
    {
        var pipe = new Pipe();
        pipe.Writer.Write(bytes.AsSpan());
        pipe.Writer.Complete();
        return new GrpcMessageReader(pipe.Reader, max, encoding);
    }

    [Fact]
    public async Task Writer_Then_Reader_RoundTrip_ManyMessages_IncludingEmpty()
    {
        var pipe = new Pipe();
        GrpcFraming.WriteMessage(pipe.Writer, new StringValue { Value = "one" });
        GrpcFraming.WriteMessage(pipe.Writer, new StringValue());
        GrpcFraming.WriteMessage(pipe.Writer, new StringValue { Value = new string('x', 100_000) });
        await pipe.Writer.CompleteAsync();

        var reader = new GrpcMessageReader(pipe.Reader, 1 << 20, null);
        Assert.Equal("one", (await reader.ReadMessageAsync(StringValue.Parser))!.Value);
        var empty = await reader.ReadMessageAsync(StringValue.Parser);
        Assert.NotNull(empty);
        Assert.Equal(string.Empty, empty.Value);
        Assert.Equal(100_000, (await reader.ReadMessageAsync(StringValue.Parser))!.Value.Length);
        Assert.Null(await reader.ReadMessageAsync(StringValue.Parser));
    }

    [Fact]
    public void ZeroLength_Frame_IsFiveBytes()
    {
        var pipe = new Pipe();
        var size = GrpcFraming.WriteMessage(pipe.Writer, new StringValue());
        Assert.Equal(0, size);
        pipe.Writer.Complete();
        Assert.True(pipe.Reader.TryRead(out var result));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, result.Buffer.ToArray());
    }

    [Fact]
    public async Task Message_SplitAcrossManyReads_ByteByByte()
    {
        var bytes = Frame(new StringValue { Value = "split me across reads" }).Concat(Frame(new StringValue { Value = "second" })).ToArray();
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var reader = new GrpcMessageReader(pipe.Reader, 1024, null);
        var first = reader.ReadMessageAsync(StringValue.Parser).AsTask();
        var i = 0;
        for (; i < bytes.Length && !first.IsCompleted; i++)
        {
            await pipe.Writer.WriteAsync(bytes.AsMemory(i, 1));
            await Task.Yield();
        }

        Assert.Equal("split me across reads", (await first.WaitAsync(Bound))!.Value);
        var second = reader.ReadMessageAsync(StringValue.Parser).AsTask();
        for (; i < bytes.Length; i++)
        {
            await pipe.Writer.WriteAsync(bytes.AsMemory(i, 1));
        }

        await pipe.Writer.CompleteAsync();
        Assert.Equal("second", (await second.WaitAsync(Bound))!.Value);
        Assert.Null(await reader.ReadMessageAsync(StringValue.Parser));
    }

    [Fact]
    public async Task Oversize_IsResourceExhausted_WithGrpcGoWording_BeforeThePayloadArrives()
    {
        var pipe = new Pipe();
        var header = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), 2000);
        await pipe.Writer.WriteAsync(header); // no payload, no completion: the reader must not wait for it
        var reader = new GrpcMessageReader(pipe.Reader, 1000, null);
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask().WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
        Assert.Equal("grpc: received message larger than max (2000 vs. 1000)", e.Detail);
    }

    [Fact]
    public async Task Exactly_Max_IsAccepted()
    {
        var msg = new BytesValue { Value = ByteString.CopyFrom(new byte[97]) }; // 2 bytes of tag+length + 97 = 99... computed below
        var size = msg.CalculateSize();
        var reader = ReaderOver(Frame(msg), max: size);
        Assert.Equal(97, (await reader.ReadMessageAsync(BytesValue.Parser))!.Value.Length);
        var e = await Assert.ThrowsAsync<RpcException>(() => ReaderOver(Frame(msg), max: size - 1).ReadMessageAsync(BytesValue.Parser).AsTask());
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(255)]
    public async Task BadFlag_IsInternal(byte flag)
    {
        var reader = ReaderOver(Frame(new StringValue { Value = "x" }, flag));
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.Equal($"grpc: received unexpected payload format {flag}", e.Detail);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("identity")]
    public async Task CompressedFlag_WithoutEncoding_IsInternal(string? encoding)
    {
        var reader = ReaderOver(Frame(new StringValue { Value = "x" }, 1), encoding: encoding);
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.Equal("grpc: compressed flag set with identity or empty encoding", e.Detail);
    }

    [Fact]
    public async Task CompressedFlag_UnknownEncoding_IsUnimplemented()
    {
        var reader = ReaderOver(Frame(new StringValue { Value = "x" }, 1), encoding: "snappy");
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Unimplemented, e.Status);
        Assert.Equal("grpc: Decompressor is not installed for grpc-encoding \"snappy\"", e.Detail);
    }

    [Fact]
    public async Task Gzip_Compressed_Message_IsDecompressed()
    {
        var text = string.Concat(Enumerable.Repeat("compress me ", 500));
        var pipe = new Pipe();
        GrpcFraming.WriteCompressedMessage(pipe.Writer, new StringValue { Value = text });
        GrpcFraming.WriteMessage(pipe.Writer, new StringValue { Value = "plain" });
        await pipe.Writer.CompleteAsync();
        var reader = new GrpcMessageReader(pipe.Reader, 1 << 20, "gzip");
        Assert.Equal(text, (await reader.ReadMessageAsync(StringValue.Parser))!.Value);
        Assert.Equal("plain", (await reader.ReadMessageAsync(StringValue.Parser))!.Value);
    }

    [Fact]
    public async Task Gzip_DecompressedOverMax_IsResourceExhausted()
    {
        var pipe = new Pipe();
        var compressedSize = GrpcFraming.WriteCompressedMessage(pipe.Writer, new StringValue { Value = new string('a', 10_000) });
        await pipe.Writer.CompleteAsync();
        Assert.True(compressedSize < 1000);
        var reader = new GrpcMessageReader(pipe.Reader, 1000, "gzip");
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
        Assert.StartsWith("grpc: received message after decompression larger than max (", e.Detail);
    }

    [Fact]
    public async Task Gzip_Garbage_IsInternal()
    {
        var reader = ReaderOver(Frame([1, 2, 3, 4, 5, 6, 7, 8], 1, 8), encoding: "gzip");
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.StartsWith("grpc: failed to decompress the received message", e.Detail);
    }

    [Fact]
    public async Task Truncated_Payload_IsInternal()
    {
        var reader = ReaderOver(Frame([1, 2, 3], 0, 10));
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.Equal("grpc: received truncated message (got 3 of 10 bytes)", e.Detail);
    }

    [Fact]
    public async Task Truncated_Header_IsInternal()
    {
        var reader = ReaderOver([0, 0, 0]);
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.Contains("truncated message header", e.Detail);
    }

    [Fact]
    public async Task Unparsable_Payload_IsInternal()
    {
        var reader = ReaderOver(Frame([0x0A, 0x05, 0x61], 0, 3)); // field 1, length 5, only 1 byte
        var e = await Assert.ThrowsAsync<RpcException>(() => reader.ReadMessageAsync(StringValue.Parser).AsTask());
        Assert.Equal(StatusCode.Internal, e.Status);
        Assert.StartsWith("grpc: failed to unmarshal the received message", e.Detail);
    }

    [Fact]
    public void Writer_RejectsOversize()
    {
        var pipe = new Pipe();
        var e = Assert.Throws<RpcException>(() => GrpcFraming.WriteMessage(pipe.Writer, new StringValue { Value = new string('b', 100) }, 50));
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
        Assert.Equal("grpc: trying to send message larger than max (102 vs. 50)", e.Detail);
    }

    [Theory]
    [InlineData("100m", 100 * TimeSpan.TicksPerMillisecond)]
    [InlineData("5S", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("2M", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("10u", 10 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("1n", 1)]
    [InlineData("200n", 2)]
    [InlineData("0S", 0)]
    [InlineData("99999999S", 99_999_999 * TimeSpan.TicksPerSecond)]
    public void Timeout_Parse(string text, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(text, out var t));
        Assert.Equal(ticks, t.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("S")]
    [InlineData("123456789S")]
    [InlineData("-1S")]
    [InlineData("5x")]
    [InlineData("1.5S")]
    [InlineData(" 5S")]
    public void Timeout_Parse_Rejects(string text) => Assert.False(GrpcTimeout.TryParse(text, out _));

    [Theory]
    [InlineData(0L, "0n")]
    [InlineData(-5L, "0n")]
    [InlineData(1L, "100n")]
    [InlineData(100 * TimeSpan.TicksPerMillisecond, "100000u")]
    [InlineData(5 * TimeSpan.TicksPerSecond, "5000000u")]
    [InlineData(3 * TimeSpan.TicksPerHour, "10800000m")]
    [InlineData(2000 * TimeSpan.TicksPerHour, "7200000S")]
    [InlineData(50000 * TimeSpan.TicksPerHour, "3000000M")]
    [InlineData(99_999_999L * TimeSpan.TicksPerMinute + 1, "1666667H")]
    [InlineData(long.MaxValue, "99999999H")]
    public void Timeout_Format(long ticks, string expected) => Assert.Equal(expected, GrpcTimeout.Format(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void Timeout_Format_RoundTrips_NeverShorter()
    {
        var rng = new Random(42);
        for (var i = 0; i < 1000; i++)
        {
            var t = TimeSpan.FromTicks((long)(rng.NextDouble() * TimeSpan.TicksPerDay * 400));
            var text = GrpcTimeout.Format(t);
            Assert.True(text.Length <= 9, text);
            Assert.True(GrpcTimeout.TryParse(text, out var back), text);
            Assert.True(back >= t, $"{t} -> {text} -> {back}");
            Assert.True(back - t <= TimeSpan.FromMinutes(1) + TimeSpan.FromTicks(t.Ticks / 10_000_000), $"{t} -> {text}");
        }
    }

    [Theory]
    [InlineData("plain ascii", "plain ascii")]
    [InlineData("100%", "100%25")]
    [InlineData("line\nbreak", "line%0Abreak")]
    [InlineData("héllo", "h%C3%A9llo")]
    [InlineData("ключ ✓", "%D0%BA%D0%BB%D1%8E%D1%87 %E2%9C%93")]
    [InlineData("tilde~ and space", "tilde~ and space")]
    public void StatusMessage_Encode_Decode(string message, string wire)
    {
        Assert.Equal(wire, GrpcStatusMessage.Encode(message));
        Assert.Equal(message, GrpcStatusMessage.Decode(wire));
    }

    [Theory]
    [InlineData("%", "%")]
    [InlineData("%4", "%4")]
    [InlineData("%zz", "%zz")]
    [InlineData("a%2", "a%2")]
    [InlineData("%41%42", "AB")]
    [InlineData("%c3%a9", "é")]
    public void StatusMessage_Decode_IsLenient(string wire, string expected) => Assert.Equal(expected, GrpcStatusMessage.Decode(wire));

    [Fact]
    public void Metadata_Binary_RoundTrips_PaddedOrNot()
    {
        var md = new Metadata();
        md.AddBinary("Trace-Bin", [1, 2, 3, 4]);
        Assert.Equal("trace-bin", md[0].Key);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, md.GetBinary("trace-bin"));
        var unpadded = new Metadata { { "x-bin", "AQIDBA" } };
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, unpadded.GetBinary("x-bin"));
        Assert.Throws<ArgumentException>(() => md.AddBinary("plain", [1]));
        Assert.Null(md.GetBinary("absent-bin"));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("Application/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void ContentType_Detection(string? contentType, bool expected) => Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));

    [Fact]
    public void Gzip_Helper_ProducesRealGzip()
    {
        var pipe = new Pipe();
        GrpcFraming.WriteCompressedMessage(pipe.Writer, new StringValue { Value = "zip" });
        pipe.Writer.Complete();
        Assert.True(pipe.Reader.TryRead(out var r));
        var bytes = r.Buffer.ToArray();
        Assert.Equal(1, bytes[0]);
        using var gz = new GZipStream(new MemoryStream(bytes, 5, bytes.Length - 5), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        Assert.Equal("zip", StringValue.Parser.ParseFrom(ms.ToArray()).Value);
    }
}
