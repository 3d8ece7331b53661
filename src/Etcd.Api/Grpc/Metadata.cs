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
