using Etcd.Api.Grpc;

namespace Etcd.Api.Tests.Grpc;

/// <summary>
/// The gRPC protocol texts we still write and read ourselves: <c>grpc-timeout</c> (parsed by the server before
/// Grpc.AspNetCore sees it, so deadlines end with Go's status), <c>grpc-message</c> percent-encoding (the server's
/// unknown-method answer), binary metadata and the content types that send a request to gRPC.
/// </summary>
public sealed class GrpcProtocolTests
{
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
}
