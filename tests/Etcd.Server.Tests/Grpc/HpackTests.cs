using System.Buffers;
using System.Text;
using Etcd.Server.Grpc;

namespace Etcd.Server.Tests.Grpc;

/// <summary>The HPACK decoder against RFC 7541 Appendix C's examples, and the Huffman code both ways.</summary>
public sealed class HpackTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", "", StringComparison.Ordinal));

    private static string[] Text(List<HpackField> fields) =>
        fields.Select(f => Encoding.ASCII.GetString(f.Name) + ": " + Encoding.ASCII.GetString(f.Value)).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Decode_RequestExamples_TrackDynamicTable(bool huffman)
    {
        // RFC 7541 C.3 (plain strings) and C.4 (Huffman): three requests on one connection.
        string[] blocks = huffman
            ? ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf", "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"]
            : ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865", "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"];
        var decoder = new HpackDecoder();

        Assert.Equal([":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"], Text(decoder.Decode(Hex(blocks[0]))));
        Assert.Equal(57, decoder.DynamicTableSize);

        Assert.Equal([":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com", "cache-control: no-cache"], Text(decoder.Decode(Hex(blocks[1]))));
        Assert.Equal(110, decoder.DynamicTableSize);

        Assert.Equal([":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"], Text(decoder.Decode(Hex(blocks[2]))));
        Assert.Equal(164, decoder.DynamicTableSize);
        Assert.Equal(3, decoder.DynamicTableCount);
    }

    [Fact]
    public void Decode_ResponseExamples_EvictOldestEntries()
    {
        // RFC 7541 C.5: responses with a 256-byte table; the third evicts down to three entries (215 bytes).
        var decoder = new HpackDecoder(256);
        decoder.Decode(Hex("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
        Assert.Equal(222, decoder.DynamicTableSize);
        var second = decoder.Decode(Hex("4803 3330 37c1 c0bf"));
        Assert.Equal(":status: 307", Text(second)[0]);
        Assert.Equal(222, decoder.DynamicTableSize);
        Assert.Equal(4, decoder.DynamicTableCount);
    }

    [Theory]
    [InlineData("")]
    [InlineData("www.example.com")]
    [InlineData("custom-value")]
    [InlineData("http://127.0.0.1:2379")]
    public void Huffman_RoundTrips(string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        Assert.Equal(bytes, HpackHuffman.Decode(HpackHuffman.Encode(bytes)));
    }

    [Fact]
    public void Huffman_EveryOctet_RoundTrips()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var encoded = HpackHuffman.Encode(all);
        Assert.Equal(all, HpackHuffman.Decode(encoded));
        Assert.Equal("f1e3c2e5f23a6ba0ab90f4ff", Convert.ToHexString(HpackHuffman.Encode("www.example.com"u8)).ToLowerInvariant());
    }

    [Theory]
    [InlineData("80")] // index 0
    [InlineData("be")] // dynamic index 62 on an empty table
    [InlineData("418c f1e3")] // string longer than the block
    [InlineData("4181 00")] // Huffman padding of zeros
    [InlineData("8220 3f e1 1f")] // size update after a field
    [InlineData("3fe2 1f")] // size update above the limit (4096)
    public void Decode_Malformed_Throws(string block)
    {
        Assert.Throws<HpackException>(() => new HpackDecoder().Decode(Hex(block)));
    }

    [Fact]
    public void LiteralEncoder_IsDecodedBack_WithoutTouchingTheTable()
    {
        var output = new ArrayBufferWriter<byte>();
        HpackLiteralEncoder.Write(output, new HpackField(":authority"u8.ToArray(), "127.0.0.1:2379"u8.ToArray(), HpackIndexing.Indexed));
        HpackLiteralEncoder.Write(output, new HpackField("x-long"u8.ToArray(), new byte[300], HpackIndexing.NeverIndexed));
        var decoder = new HpackDecoder();
        var fields = decoder.Decode(output.WrittenSpan);
        Assert.Equal(":authority: 127.0.0.1:2379", Text(fields)[0]);
        Assert.Equal(HpackIndexing.NotIndexed, fields[0].Indexing);
        Assert.Equal(HpackIndexing.NeverIndexed, fields[1].Indexing);
        Assert.Equal(300, fields[1].Value.Length);
        Assert.Equal(0, decoder.DynamicTableCount);
    }
}
