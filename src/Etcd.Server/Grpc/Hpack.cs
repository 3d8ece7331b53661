using System.Buffers;

namespace Etcd.Server.Grpc;

/// <summary>The representation an HPACK header field arrived in (RFC 7541 §6).</summary>
internal enum HpackIndexing
{
    /// <summary>Indexed field or literal with incremental indexing (the field is, or becomes, a table entry).</summary>
    Indexed,

    /// <summary>Literal without indexing.</summary>
    NotIndexed,

    /// <summary>Literal never indexed (intermediaries must keep it a literal).</summary>
    NeverIndexed,
}

/// <summary>One decoded header field: name and value as raw octets.</summary>
internal readonly record struct HpackField(byte[] Name, byte[] Value, HpackIndexing Indexing);

/// <summary>A header block that is not valid HPACK (HTTP/2's COMPRESSION_ERROR).</summary>
internal sealed class HpackException(string message) : Exception(message);

/// <summary>
/// HPACK header block decoder (RFC 7541) for one direction of one HTTP/2 connection: static table, dynamic
/// table with size updates bounded by the SETTINGS_HEADER_TABLE_SIZE the receiver advertised, integer and
/// string literals, Huffman strings. Not thread-safe: blocks are decoded in the order they were sent.
/// </summary>
internal sealed class HpackDecoder
{
    private static readonly (string Name, string Value)[] StaticTable =
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    private static readonly (byte[] Name, byte[] Value)[] StaticEntries =
        StaticTable.Select(e => (System.Text.Encoding.ASCII.GetBytes(e.Name), System.Text.Encoding.ASCII.GetBytes(e.Value))).ToArray();

    // Newest entry first (HPACK index 62 is _dynamic[0]).
    private readonly List<(byte[] Name, byte[] Value)> _dynamic = [];
    private readonly int _maxTableSizeLimit;
    private int _maxTableSize;
    private int _tableSize;

    /// <param name="headerTableSize">The SETTINGS_HEADER_TABLE_SIZE the decoding side advertised, in bytes (HTTP/2's default: 4096).</param>
    public HpackDecoder(int headerTableSize = 4096)
    {
        _maxTableSizeLimit = headerTableSize;
        _maxTableSize = headerTableSize;
    }

    /// <summary>The dynamic table's size in HPACK's measure (name + value + 32 bytes per entry).</summary>
    public int DynamicTableSize => _tableSize;

    /// <summary>Entries in the dynamic table.</summary>
    public int DynamicTableCount => _dynamic.Count;

    /// <summary>
    /// Decodes one complete header block (the fragments of a HEADERS frame and its CONTINUATIONs, joined),
    /// updating the dynamic table. Throws <see cref="HpackException"/> on malformed input; the decoder is
    /// unusable afterwards (HTTP/2 ends the connection on a compression error).
    /// </summary>
    public List<HpackField> Decode(ReadOnlySpan<byte> block)
    {
        var fields = new List<HpackField>();
        var pos = 0;
        var fieldSeen = false;
        while (pos < block.Length)
        {
            var b = block[pos];
            if ((b & 0x80) != 0)
            {
                var index = ReadInteger(block, ref pos, 7);
                var (name, value) = Lookup(index);
                fields.Add(new HpackField(name, value, HpackIndexing.Indexed));
                fieldSeen = true;
            }
            else if ((b & 0xC0) == 0x40)
            {
                var (name, value) = ReadLiteral(block, ref pos, 6);
                fields.Add(new HpackField(name, value, HpackIndexing.Indexed));
                Add(name, value);
                fieldSeen = true;
            }
            else if ((b & 0xE0) == 0x20)
            {
                if (fieldSeen)
                {
                    throw new HpackException("dynamic table size update after a header field");
                }

                var size = ReadInteger(block, ref pos, 5);
                if (size > _maxTableSizeLimit)
                {
                    throw new HpackException($"dynamic table size update {size} above the limit {_maxTableSizeLimit}");
                }

                _maxTableSize = (int)size;
                Evict(0);
            }
            else
            {
                var indexing = (b & 0x10) != 0 ? HpackIndexing.NeverIndexed : HpackIndexing.NotIndexed;
                var (name, value) = ReadLiteral(block, ref pos, 4);
                fields.Add(new HpackField(name, value, indexing));
                fieldSeen = true;
            }
        }

        return fields;
    }

    private (byte[] Name, byte[] Value) Lookup(long index)
    {
        if (index <= 0)
        {
            throw new HpackException("header index 0");
        }

        if (index <= StaticEntries.Length)
        {
            return StaticEntries[index - 1];
        }

        var dynamicIndex = index - StaticEntries.Length - 1;
        if (dynamicIndex >= _dynamic.Count)
        {
            throw new HpackException($"header index {index} beyond the table");
        }

        return _dynamic[(int)dynamicIndex];
    }

    private (byte[] Name, byte[] Value) ReadLiteral(ReadOnlySpan<byte> block, ref int pos, int prefixBits)
    {
        var nameIndex = ReadInteger(block, ref pos, prefixBits);
        var name = nameIndex == 0 ? ReadString(block, ref pos) : Lookup(nameIndex).Name;
        var value = ReadString(block, ref pos);
        return (name, value);
    }

    private void Add(byte[] name, byte[] value)
    {
        var size = name.Length + value.Length + 32;
        if (size > _maxTableSize)
        {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            _dynamic.Clear();
            _tableSize = 0;
            return;
        }

        Evict(size);
        _dynamic.Insert(0, (name, value));
        _tableSize += size;
    }

    private void Evict(int room)
    {
        while (_dynamic.Count > 0 && _tableSize + room > _maxTableSize)
        {
            var last = _dynamic[^1];
            _tableSize -= last.Name.Length + last.Value.Length + 32;
            _dynamic.RemoveAt(_dynamic.Count - 1);
        }
    }

    private static byte[] ReadString(ReadOnlySpan<byte> block, ref int pos)
    {
        if (pos >= block.Length)
        {
            throw new HpackException("truncated string literal");
        }

        var huffman = (block[pos] & 0x80) != 0;
        var length = ReadInteger(block, ref pos, 7);
        if (length > block.Length - pos)
        {
            throw new HpackException("string literal longer than the block");
        }

        var raw = block.Slice(pos, (int)length);
        pos += (int)length;
        return huffman ? HpackHuffman.Decode(raw) : raw.ToArray();
    }

    /// <summary>Reads an HPACK integer with an N-bit prefix (RFC 7541 §5.1), bounded to 2^31 - 1.</summary>
    internal static long ReadInteger(ReadOnlySpan<byte> block, ref int pos, int prefixBits)
    {
        if (pos >= block.Length)
        {
            throw new HpackException("truncated integer");
        }

        var max = (1 << prefixBits) - 1;
        long value = block[pos++] & max;
        if (value < max)
        {
            return value;
        }

        var shift = 0;
        while (true)
        {
            if (pos >= block.Length)
            {
                throw new HpackException("truncated integer");
            }

            var b = block[pos++];
            value += (long)(b & 0x7F) << shift;
            if (value > int.MaxValue)
            {
                throw new HpackException("integer overflow");
            }

            if ((b & 0x80) == 0)
            {
                return value;
            }

            shift += 7;
        }
    }
}

/// <summary>
/// Encodes header fields as HPACK literals that never touch the receiver's dynamic table (RFC 7541 §6.2.2 and
/// §6.2.3), names and values as plain (non-Huffman) strings. Stateless; thread-safe.
/// </summary>
internal static class HpackLiteralEncoder
{
    /// <summary>Appends <paramref name="field"/> to <paramref name="output"/> as a literal without indexing (never indexed when it came so).</summary>
    public static void Write(ArrayBufferWriter<byte> output, HpackField field)
    {
        WriteInteger(output, field.Indexing == HpackIndexing.NeverIndexed ? (byte)0x10 : (byte)0x00, 4, 0);
        WriteString(output, field.Name);
        WriteString(output, field.Value);
    }

    private static void WriteString(ArrayBufferWriter<byte> output, byte[] value)
    {
        WriteInteger(output, 0x00, 7, value.Length);
        output.Write(value);
    }

    /// <summary>Writes an HPACK integer with an N-bit prefix after the pattern bits <paramref name="flags"/>.</summary>
    internal static void WriteInteger(ArrayBufferWriter<byte> output, byte flags, int prefixBits, int value)
    {
        var max = (1 << prefixBits) - 1;
        var span = output.GetSpan(6);
        if (value < max)
        {
            span[0] = (byte)(flags | value);
            output.Advance(1);
            return;
        }

        span[0] = (byte)(flags | max);
        var n = 1;
        value -= max;
        while (value >= 0x80)
        {
            span[n++] = (byte)((value & 0x7F) | 0x80);
            value >>= 7;
        }

        span[n++] = (byte)value;
        output.Advance(n);
    }
}

/// <summary>
/// HPACK's static Huffman code (RFC 7541 Appendix B). The code is canonical, so it is rebuilt from the code
/// lengths alone: within a length, codes ascend with the symbol. Thread-safe (immutable tables).
/// </summary>
internal static class HpackHuffman
{
    // Code length in bits of symbols 0..255 and EOS (256), RFC 7541 Appendix B.
    private static readonly byte[] CodeLengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    private const int MaxCodeLength = 30;
    private const int Eos = 256;

    // For each length L: the first canonical code of that length, how many codes have it, and where its
    // symbols start in SymbolsByCode.
    private static readonly uint[] FirstCode = new uint[MaxCodeLength + 1];
    private static readonly int[] CountOfLength = new int[MaxCodeLength + 1];
    private static readonly int[] FirstSymbolIndex = new int[MaxCodeLength + 1];
    private static readonly int[] SymbolsByCode;
    private static readonly uint[] Codes = new uint[257];

    static HpackHuffman()
    {
        SymbolsByCode = Enumerable.Range(0, 257).OrderBy(s => CodeLengths[s]).ThenBy(s => s).ToArray();
        uint code = 0;
        var previousLength = (int)CodeLengths[SymbolsByCode[0]];
        for (var i = 0; i < SymbolsByCode.Length; i++)
        {
            var symbol = SymbolsByCode[i];
            int length = CodeLengths[symbol];
            if (i > 0)
            {
                code = (code + 1) << (length - previousLength);
                previousLength = length;
            }

            Codes[symbol] = code;
            if (CountOfLength[length]++ == 0)
            {
                FirstCode[length] = code;
                FirstSymbolIndex[length] = i;
            }
        }
    }

    /// <summary>Decodes a Huffman-coded string; throws <see cref="HpackException"/> on EOS, bad padding or an unknown code.</summary>
    public static byte[] Decode(ReadOnlySpan<byte> encoded)
    {
        var output = new byte[(encoded.Length * 8 / 5) + 1];
        var written = 0;
        uint code = 0;
        var length = 0;
        foreach (var b in encoded)
        {
            for (var bit = 7; bit >= 0; bit--)
            {
                code = (code << 1) | (uint)((b >> bit) & 1);
                length++;
                if (length > MaxCodeLength)
                {
                    throw new HpackException("invalid Huffman code");
                }

                var count = CountOfLength[length];
                if (count == 0 || code < FirstCode[length] || code - FirstCode[length] >= (uint)count)
                {
                    continue;
                }

                var symbol = SymbolsByCode[FirstSymbolIndex[length] + (int)(code - FirstCode[length])];
                if (symbol == Eos)
                {
                    throw new HpackException("EOS in a Huffman string");
                }

                output[written++] = (byte)symbol;
                code = 0;
                length = 0;
            }
        }

        // Padding: fewer than 8 bits, all ones (a prefix of EOS).
        if (length > 7 || code != (1u << length) - 1)
        {
            throw new HpackException("invalid Huffman padding");
        }

        return output.AsSpan(0, written).ToArray();
    }

    /// <summary>Huffman-encodes <paramref name="value"/> (for tests and for writers that want the short form).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> value)
    {
        var bits = 0L;
        foreach (var b in value)
        {
            bits += CodeLengths[b];
        }

        var output = new byte[(bits + 7) / 8];
        ulong accumulator = 0;
        var pending = 0;
        var n = 0;
        foreach (var b in value)
        {
            accumulator = (accumulator << CodeLengths[b]) | Codes[b];
            pending += CodeLengths[b];
            while (pending >= 8)
            {
                pending -= 8;
                output[n++] = (byte)(accumulator >> pending);
            }
        }

        if (pending > 0)
        {
            output[n] = (byte)((accumulator << (8 - pending)) | (0xFFu >> pending));
        }

        return output;
    }
}
