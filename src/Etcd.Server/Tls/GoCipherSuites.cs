using System.Net.Security;

namespace Etcd.Server.Tls;

/// <summary>
/// Go's TLS cipher suite names (as <c>--cipher-suites</c> takes them, etcd's <c>pkg/tlsutil/cipher_suites.go</c>)
/// mapped to .NET's <see cref="TlsCipherSuite"/>. Go knows the suites of <c>tls.CipherSuites()</c> and
/// <c>tls.InsecureCipherSuites()</c> plus the short ChaCha20 aliases without <c>_SHA256</c>. Thread-safe (immutable).
/// </summary>
public static class GoCipherSuites
{
    // Go's names; where Go's name is not the IANA one (the short ChaCha20 aliases), the IANA name follows.
    private static readonly Dictionary<string, TlsCipherSuite> ByName = new(StringComparer.Ordinal)
    {
        ["TLS_RSA_WITH_RC4_128_SHA"] = TlsCipherSuite.TLS_RSA_WITH_RC4_128_SHA,
        ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"] = TlsCipherSuite.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
        ["TLS_RSA_WITH_AES_128_CBC_SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
        ["TLS_RSA_WITH_AES_256_CBC_SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
        ["TLS_RSA_WITH_AES_128_CBC_SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
        ["TLS_RSA_WITH_AES_128_GCM_SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        ["TLS_RSA_WITH_AES_256_GCM_SHA384"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
        ["TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
        ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        ["TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        ["TLS_ECDHE_RSA_WITH_RC4_128_SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
        ["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
        ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
        ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
        ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["TLS_AES_128_GCM_SHA256"] = TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        ["TLS_AES_256_GCM_SHA384"] = TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        ["TLS_CHACHA20_POLY1305_SHA256"] = TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    };

    /// <summary>
    /// The TLS 1.3 suites. Go always enables them whatever <c>--cipher-suites</c> says (its list governs TLS 1.2
    /// and below), so a restricted policy keeps them to behave the same.
    /// </summary>
    public static readonly IReadOnlyList<TlsCipherSuite> Tls13 =
    [
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    ];

    /// <summary>Looks up one Go name (case-sensitive, as Go compares).</summary>
    public static bool TryParse(string name, out TlsCipherSuite suite) => ByName.TryGetValue(name, out suite);

    /// <summary>
    /// Maps Go names to suites, keeping their order (etcd's preference order).
    /// </summary>
    /// <exception cref="FormatException">A name Go does not know: <c>unexpected TLS cipher suite "NAME"</c> (etcd's message).</exception>
    public static IReadOnlyList<TlsCipherSuite> Parse(IEnumerable<string> names)
    {
        var list = new List<TlsCipherSuite>();
        foreach (var name in names)
        {
            if (!TryParse(name, out var suite))
            {
                throw new FormatException($"unexpected TLS cipher suite \"{name}\"");
            }

            list.Add(suite);
        }

        return list;
    }

    /// <summary>
    /// The policy for a restricted list: the given suites then the TLS 1.3 ones (see <see cref="Tls13"/>);
    /// null for an empty list (the runtime's defaults).
    /// </summary>
    /// <exception cref="PlatformNotSupportedException">On Windows, where SChannel takes no per-connection suite list.</exception>
    public static CipherSuitesPolicy? Policy(IReadOnlyList<TlsCipherSuite> suites)
    {
        if (suites.Count == 0)
        {
            return null;
        }

        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("--cipher-suites is not supported on Windows");
        }

        return new CipherSuitesPolicy(suites.Concat(Tls13.Where(s => !suites.Contains(s))));
    }
}
