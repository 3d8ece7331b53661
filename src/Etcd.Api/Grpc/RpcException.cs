namespace Etcd.Api.Grpc;

/// <summary>
/// A gRPC call's failure: the status code and message carried in the <c>grpc-status</c> and
/// (percent-encoded) <c>grpc-message</c> trailers. Thrown by server handlers to fail a call and by the
/// client when a call ends with a non-OK status.
/// </summary>
public class RpcException : Exception
{
    /// <summary>Creates the exception for <paramref name="status"/> with <paramref name="detail"/> as the grpc-message.</summary>
    public RpcException(StatusCode status, string detail, Exception? inner = null)
        : base(detail, inner)
    {
        Status = status;
        Detail = detail;
    }

    /// <summary>The gRPC status code.</summary>
    public StatusCode Status { get; }

    /// <summary>The status message (the decoded grpc-message trailer).</summary>
    public string Detail { get; }

    /// <inheritdoc />
    public override string ToString() => $"Status(StatusCode=\"{Status}\", Detail=\"{Detail}\")";
}
