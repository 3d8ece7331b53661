using System.Text;

namespace Etcd.Api.Grpc;

/// <summary>
/// Percent-encoding of the <c>grpc-message</c> trailer: the message is UTF-8, and every byte outside
/// printable ASCII (0x20–0x7E) and the byte <c>%</c> itself is sent as <c>%XX</c> (upper-case hex), as
/// PROTOCOL-HTTP2.md specifies. Decoding is lenient: a <c>%</c> not followed by two hex digits is kept as is.
/// Stateless and thread-safe.
/// </summary>
public static class GrpcStatusMessage
{
    /// <summary>Encodes <paramref name="message"/> for the <c>grpc-message</c> header; returns the same string when nothing needs escaping.</summary>
    public static string Encode(string message)
    {
        var needs = false;
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                needs = true;
                break;
            }
        }

        if (!needs)
        {
            return message;
        }

        var bytes = Encoding.UTF8.GetBytes(message);
        var sb = new StringBuilder(bytes.Length * 2);
        foreach (var b in bytes)
        {
            if (b is < 0x20 or > 0x7E or (byte)'%')
            {
                sb.Append('%').Append(HexDigit(b >> 4)).Append(HexDigit(b & 0xF));
            }
            else
            {
                sb.Append((char)b);
            }
        }

        return sb.ToString();
    }

    /// <summary>Decodes a received <c>grpc-message</c> value; invalid UTF-8 becomes U+FFFD.</summary>
    public static string Decode(string value)
    {
        if (value.IndexOf('%') < 0)
        {
            return value;
        }

        var buffer = new byte[value.Length];
        var n = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length && TryHex(value[i + 1], out var hi) && TryHex(value[i + 2], out var lo))
            {
                buffer[n++] = (byte)((hi << 4) | lo);
                i += 2;
            }
            else if (c < 0x80)
            {
                buffer[n++] = (byte)c;
            }
            else
            {
                // Not valid on the wire; keep the character rather than lose it.
                var extra = Encoding.UTF8.GetByteCount(value.AsSpan(i, 1));
                if (n + extra > buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length + extra + 8);
                }

                n += Encoding.UTF8.GetBytes(value.AsSpan(i, 1), buffer.AsSpan(n));
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static char HexDigit(int v) => (char)(v < 10 ? '0' + v : 'A' + v - 10);

    private static bool TryHex(char c, out int v)
    {
        v = c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' => c - 'a' + 10,
            >= 'A' and <= 'F' => c - 'A' + 10,
            _ => -1,
        };
        return v >= 0;
    }
}
