using System.Globalization;

namespace Etcd.Api.Grpc;

/// <summary>
/// Constants and small helpers of gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): header names, the content
/// type, the <c>grpc-status</c> trailer, the metadata Grpc.AspNetCore and Grpc.Net.Client leave to us. Stateless and
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
            StatusHeader or MessageHeader or TimeoutHeader or "grpc-encoding" or "grpc-accept-encoding" => true,
            _ => false,
        };
    }

    /// <summary>True for metadata keys that carry binary values (suffix <c>-bin</c>, base64 on the wire).</summary>
    public static bool IsBinaryKey(string key) => key.EndsWith("-bin", StringComparison.OrdinalIgnoreCase);

    /// <summary>Formats <paramref name="status"/> as the decimal <c>grpc-status</c> value.</summary>
    public static string FormatStatus(StatusCode status) => ((int)status).ToString(CultureInfo.InvariantCulture);
}
