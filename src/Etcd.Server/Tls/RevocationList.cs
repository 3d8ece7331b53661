using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Server.Tls;

/// <summary>
/// The revoked serial numbers of an X.509 CRL file (PEM <c>X509 CRL</c> or DER), checked against the certificates
/// a client presents, as etcd's <c>pkg/transport/listener_tls.go</c> does: the signature and dates of the CRL are
/// not checked, only whether any presented certificate's serial number is listed. Immutable; thread-safe.
/// </summary>
public sealed class RevocationList
{
    private readonly HashSet<BigInteger> _revoked;

    private RevocationList(HashSet<BigInteger> revoked) => _revoked = revoked;

    /// <summary>How many serial numbers are revoked.</summary>
    public int Count => _revoked.Count;

    /// <summary>Reads and parses a CRL file (etcd re-reads it on every connection; callers may cache).</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="FormatException">Not a CRL.</exception>
    public static RevocationList Load(string path) => Parse(File.ReadAllBytes(path));

    /// <summary>Parses a CRL in PEM (<c>-----BEGIN X509 CRL-----</c>) or DER form.</summary>
    /// <exception cref="FormatException">Not a CRL.</exception>
    public static RevocationList Parse(ReadOnlySpan<byte> data)
    {
        byte[] der = data.ToArray();
        var text = System.Text.Encoding.ASCII.GetString(der);
        if (text.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            if (!PemEncoding.TryFind(text, out var fields))
            {
                throw new FormatException("x509: malformed crl");
            }

            der = Convert.FromBase64String(text[fields.Base64Data]);
        }

        try
        {
            var revoked = new HashSet<BigInteger>();
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var certList = reader.ReadSequence();
            var tbs = certList.ReadSequence();
            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                tbs.ReadInteger(); // version
            }

            tbs.ReadSequence(); // signature algorithm
            tbs.ReadSequence(); // issuer
            ReadTime(tbs); // thisUpdate
            if (tbs.HasData && IsTime(tbs.PeekTag()))
            {
                ReadTime(tbs); // nextUpdate
            }

            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                var entries = tbs.ReadSequence();
                while (entries.HasData)
                {
                    var entry = entries.ReadSequence();
                    revoked.Add(BigInteger.Abs(entry.ReadInteger()));
                }
            }

            return new RevocationList(revoked);
        }
        catch (AsnContentException e)
        {
            throw new FormatException("x509: malformed crl", e);
        }
    }

    /// <summary>Whether <paramref name="certificate"/>'s serial number is revoked.</summary>
    public bool IsRevoked(X509Certificate2 certificate) => _revoked.Contains(Serial(certificate));

    /// <summary>
    /// etcd's rejection for the first revoked certificate in <paramref name="certificates"/>
    /// (<c>transport: certificate serial SERIAL revoked</c>, the serial in lower-case hex), or null.
    /// </summary>
    public string? Check(IEnumerable<X509Certificate2> certificates)
    {
        foreach (var c in certificates)
        {
            if (IsRevoked(c))
            {
                return $"transport: certificate serial {Convert.ToHexStringLower(Serial(c).ToByteArray(isUnsigned: true, isBigEndian: true))} revoked";
            }
        }

        return null;
    }

    private static BigInteger Serial(X509Certificate2 certificate) =>
        BigInteger.Abs(new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true));

    private static bool IsTime(Asn1Tag tag) => tag.HasSameClassAndValue(Asn1Tag.UtcTime) || tag.HasSameClassAndValue(Asn1Tag.GeneralizedTime);

    private static void ReadTime(AsnReader reader)
    {
        if (reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime))
        {
            reader.ReadUtcTime();
        }
        else
        {
            reader.ReadGeneralizedTime();
        }
    }
}
