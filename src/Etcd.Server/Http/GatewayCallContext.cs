using Etcd.Api.Grpc;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// The call context a JSON gateway request hands to a gRPC service handler: the HTTP request's cancellation, its
/// peer, no deadline, and its <c>Authorization</c> header as the <c>token</c> / <c>authorization</c> metadata
/// (what etcd's grpc-gateway forwards). One instance per request; not thread-safe beyond what the handler needs.
/// </summary>
internal sealed class GatewayCallContext(HttpContext http, string method) : ServerCallContext
{
    public override string Method => method;

    public override Metadata RequestHeaders { get; } = BuildHeaders(http);

    public override DateTime Deadline => DateTime.MaxValue;

    public override CancellationToken CancellationToken => http.RequestAborted;

    public override string Peer => $"ipv4:{http.Connection.RemoteIpAddress}:{http.Connection.RemotePort}";

    public override Metadata ResponseTrailers { get; } = [];

    private static Metadata BuildHeaders(HttpContext http)
    {
        var md = new Metadata();
        if (http.Request.Headers.Authorization is { Count: > 0 } auth)
        {
            md.Add("token", auth.ToString());
            md.Add("authorization", auth.ToString());
        }

        return md;
    }
}
