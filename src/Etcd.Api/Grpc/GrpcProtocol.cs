using System.Globalization;

namespace Etcd.Api.Grpc;

/// <summary>
/// Constants and small helpers of gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): header names, the content
/// type, the <c>grpc-status</c> trailer. Shared by the Kestrel server and the HttpClient client. Stateless and
/// thread-safe.
/// </summary>
public static class GrpcProtocol
{
    /// <summary><c>application/grpc</c>: the content type of every gRPC request and response.</summary>
    public const string ContentType = "application/grpc";

    /// <summary>The status trailer (decimal <see cref="StatusCode"/>).</summary>
    public const string StatusHeader = "grpc-status";

    /// <summary>The status message trailer, percent-encoded (see <see cref="GrpcStatusMessage"/>).</summary>
    public const string MessageHeader = "grpc-message";

    /// <summary>The call timeout request header (see <see cref="GrpcTimeout"/>).</summary>
    public const string TimeoutHeader = "grpc-timeout";

    /// <summary>The message encoding of the sender's compressed messages (<c>identity</c>, <c>gzip</c>).</summary>
    public const string EncodingHeader = "grpc-encoding";

    /// <summary>The encodings the sender can decompress, comma-separated.</summary>
    public const string AcceptEncodingHeader = "grpc-accept-encoding";

    /// <summary>The encodings this implementation decompresses, as sent in <see cref="AcceptEncodingHeader"/>.</summary>
    public const string SupportedEncodings = "identity,gzip";

    /// <summary>The <c>te: trailers</c> request header every gRPC client sends.</summary>
    public const string TeHeader = "te";

    /// <summary>The HTTP/2 connection preface a client with prior knowledge sends first (RFC 9113 §3.4), 24 bytes.</summary>
    public static ReadOnlySpan<byte> Http2Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>
    /// True when <paramref name="contentType"/> is <c>application/grpc</c> or one of its forms
    /// (<c>application/grpc+proto</c>, <c>application/grpc;charset=...</c>), compared case-insensitively.
    /// </summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (contentType.Length == ContentType.Length)
        {
            return true;
        }

        var next = contentType[ContentType.Length];
        return next is '+' or ';';
    }

    /// <summary>
    /// True for headers the gRPC layer owns and never exposes as call metadata: HTTP/2 pseudo-headers,
    /// <c>content-type</c>, <c>te</c>, <c>user-agent</c>, <c>host</c>, and the <c>grpc-</c> reserved ones
    /// (status, message, timeout, encodings).
    /// </summary>
    public static bool IsReservedHeader(string key)
    {
        if (key.Length == 0 || key[0] == ':')
        {
            return true;
        }

        return key.ToLowerInvariant() switch
        {
            "content-type" or "te" or "host" or "user-agent" or "content-length" or "connection" or "transfer-encoding" => true,
            StatusHeader or MessageHeader or TimeoutHeader or EncodingHeader or AcceptEncodingHeader => true,
            _ => false,
        };
    }

    /// <summary>True for metadata keys that carry binary values (suffix <c>-bin</c>, base64 on the wire).</summary>
    public static bool IsBinaryKey(string key) => key.EndsWith("-bin", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Parses a <c>grpc-status</c> value. A missing or malformed value yields false (the caller then reports
    /// <see cref="StatusCode.Unknown"/> or <see cref="StatusCode.Internal"/> as the protocol requires).
    /// </summary>
    public static bool TryParseStatus(string? value, out StatusCode status)
    {
        if (value is not null && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code >= 0)
        {
            status = (StatusCode)code;
            return true;
        }

        status = StatusCode.Unknown;
        return false;
    }

    /// <summary>Formats <paramref name="status"/> as the decimal <c>grpc-status</c> value.</summary>
    public static string FormatStatus(StatusCode status) => ((int)status).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Maps an HTTP status of a response that carried no <c>grpc-status</c> to a gRPC status, as
    /// grpc/doc/http-grpc-status-mapping.md says (400→Internal, 401→Unauthenticated, 403→PermissionDenied,
    /// 404→Unimplemented, 429/502/503/504→Unavailable, others→Unknown).
    /// </summary>
    public static StatusCode FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };
}
