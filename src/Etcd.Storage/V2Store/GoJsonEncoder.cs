using System.Text;
using System.Text.Encodings.Web;

namespace Etcd.Storage.V2Store;

/// <summary>
/// Escapes JSON strings as Go's <c>encoding/json</c> does by default (<c>json.Marshal</c> and an
/// <c>Encoder</c> with HTML escaping on, which is how etcd writes every v2 body and the v2 store in snap files):
/// <c>"</c>, <c>\</c>, <c>\n</c>, <c>\r</c>, <c>\t</c> as two-character escapes; other control characters and
/// <c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>, U+2028, U+2029 as <c>\u00XX</c> with lower-case hex (<c>"a&lt;b"</c> is
/// <c>"a\u003cb"</c>); every other character, ASCII or not, as is. None of .NET's built-in encoders gives this
/// set: the default one also escapes non-ASCII, <c>'</c> and <c>+</c>; the relaxed one escapes no HTML characters.
/// </summary>
/// <remarks>Stateless and thread-safe; use <see cref="Instance"/>.</remarks>
public sealed class GoJsonEncoder : JavaScriptEncoder
{
    /// <summary>The one instance.</summary>
    public static readonly GoJsonEncoder Instance = new();

    private GoJsonEncoder()
    {
    }

    /// <inheritdoc/>
    public override int MaxOutputCharactersPerInputCharacter => 6;

    /// <inheritdoc/>
    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar < 0x20 || unicodeScalar is '"' or '\\' or '<' or '>' or '&' or 0x2028 or 0x2029;

    /// <inheritdoc/>
    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (var i = 0; i < textLength; i++)
        {
            if (WillEncode(text[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <inheritdoc/>
    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        var i = 0;
        while (i < utf8Text.Length)
        {
            var b = utf8Text[i];
            if (b < 0x80)
            {
                if (WillEncode(b))
                {
                    return i;
                }

                i++;
                continue;
            }

            // Invalid UTF-8 goes to the encoder, which writes U+FFFD for it (as Go does).
            if (Rune.DecodeFromUtf8(utf8Text[i..], out var rune, out var consumed) != System.Buffers.OperationStatus.Done
                || WillEncode(rune.Value))
            {
                return i;
            }

            i += consumed;
        }

        return -1;
    }

    /// <inheritdoc/>
    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        numberOfCharactersWritten = 0;
        if (!WillEncode(unicodeScalar))
        {
            if (!Rune.TryCreate(unicodeScalar, out var rune))
            {
                return false;
            }

            var n = rune.Utf16SequenceLength;
            if (bufferLength < n)
            {
                return false;
            }

            rune.EncodeToUtf16(new Span<char>(buffer, bufferLength));
            numberOfCharactersWritten = n;
            return true;
        }

        var shortForm = unicodeScalar switch
        {
            '"' => '"',
            '\\' => '\\',
            '\n' => 'n',
            '\r' => 'r',
            '\t' => 't',
            _ => '\0',
        };
        if (shortForm != '\0')
        {
            if (bufferLength < 2)
            {
                return false;
            }

            buffer[0] = '\\';
            buffer[1] = shortForm;
            numberOfCharactersWritten = 2;
            return true;
        }

        if (bufferLength < 6)
        {
            return false;
        }

        const string hex = "0123456789abcdef";
        buffer[0] = '\\';
        buffer[1] = 'u';
        buffer[2] = hex[(unicodeScalar >> 12) & 0xF];
        buffer[3] = hex[(unicodeScalar >> 8) & 0xF];
        buffer[4] = hex[(unicodeScalar >> 4) & 0xF];
        buffer[5] = hex[unicodeScalar & 0xF];
        numberOfCharactersWritten = 6;
        return true;
    }
}
