namespace Etcd.Api.Grpc;

/// <summary>
/// gRPC metadata: an ordered list of ASCII header entries (keys lower-case). Keys ending in <c>-bin</c>
/// carry base64 values on the wire. etcd uses <c>token</c> (auth token) and <c>hasleader</c>.
/// Not thread-safe: build it, then hand it to one call.
/// </summary>
public sealed class Metadata : List<KeyValuePair<string, string>>
{
    /// <summary>Adds an entry; the key is lower-cased as HTTP/2 requires.</summary>
    public void Add(string key, string value) => Add(new KeyValuePair<string, string>(key.ToLowerInvariant(), value));

    /// <summary>
    /// Adds a binary entry: <paramref name="key"/> must end in <c>-bin</c>; the value is stored as its
    /// base64 text, which is what travels on the wire.
    /// </summary>
    public void AddBinary(string key, ReadOnlySpan<byte> value)
    {
        if (!GrpcProtocol.IsBinaryKey(key))
        {
            throw new ArgumentException("binary metadata keys end in -bin", nameof(key));
        }

        Add(key, Convert.ToBase64String(value));
    }

    /// <summary>
    /// The first value of a <c>-bin</c> key decoded from base64 (padded or not, as grpc-go sends it), or null
    /// when absent. Throws <see cref="FormatException"/> when the value is not base64.
    /// </summary>
    public byte[]? GetBinary(string key)
    {
        var text = Get(key);
        if (text is null)
        {
            return null;
        }

        var pad = text.Length % 4;
        if (pad != 0)
        {
            text += new string('=', 4 - pad);
        }

        return Convert.FromBase64String(text);
    }

    /// <summary>The first value for <paramref name="key"/> (case-insensitive), or null.</summary>
    public string? Get(string key)
    {
        foreach (var e in this)
        {
            if (string.Equals(e.Key, key, StringComparison.OrdinalIgnoreCase))
            {
                return e.Value;
            }
        }

        return null;
    }
}
