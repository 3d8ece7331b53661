using Microsoft.AspNetCore.Http;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Http;

/// <summary>
/// The call context a JSON gateway request hands to a gRPC service implementation: the HTTP request's cancellation, its
/// peer, no deadline, and its <c>Authorization</c> header as the <c>token</c> / <c>authorization</c> metadata
/// (what etcd's grpc-gateway forwards). One instance per request; not thread-safe beyond what the handler needs.
/// </summary>
internal sealed class GatewayCallContext(HttpContext http, string method) : GrpcCore.ServerCallContext
{
    private readonly GrpcCore.Metadata _requestHeaders = BuildHeaders(http);
    private readonly GrpcCore.Metadata _trailers = [];
    private readonly Dictionary<object, object> _userState = [];
    private GrpcCore.Status _status;

    /// <summary>The request's credentials as the project's metadata (for <see cref="Auth.CallCredentials.From"/>).</summary>
    public static Etcd.Api.Grpc.Metadata Credentials(HttpContext http)
    {
        var md = new Etcd.Api.Grpc.Metadata();
        if (http.Request.Headers.Authorization is { Count: > 0 } auth)
        {
            md.Add("token", auth.ToString());
            md.Add("authorization", auth.ToString());
        }

        return md;
    }

    protected override string MethodCore => method;

    protected override string HostCore => http.Request.Host.Value ?? string.Empty;

    protected override string PeerCore => $"ipv4:{http.Connection.RemoteIpAddress}:{http.Connection.RemotePort}";

    protected override DateTime DeadlineCore => DateTime.MaxValue;

    protected override GrpcCore.Metadata RequestHeadersCore => _requestHeaders;

    protected override CancellationToken CancellationTokenCore => http.RequestAborted;

    protected override GrpcCore.Metadata ResponseTrailersCore => _trailers;

    protected override GrpcCore.Status StatusCore
    {
        get => _status;
        set => _status = value;
    }

    protected override GrpcCore.WriteOptions? WriteOptionsCore { get; set; }

    protected override GrpcCore.AuthContext AuthContextCore => new(null, []);

    protected override IDictionary<object, object> UserStateCore => _userState;

    protected override Task WriteResponseHeadersAsyncCore(GrpcCore.Metadata responseHeaders) => Task.CompletedTask;

    protected override GrpcCore.ContextPropagationToken CreatePropagationTokenCore(GrpcCore.ContextPropagationOptions? options)
        => throw new NotSupportedException("gateway calls do not propagate");

    private static GrpcCore.Metadata BuildHeaders(HttpContext http)
    {
        var md = new GrpcCore.Metadata();
        if (http.Request.Headers.Authorization is { Count: > 0 } auth)
        {
            md.Add("token", auth.ToString());
            md.Add("authorization", auth.ToString());
        }

        return md;
    }
}
