using System.Net;
using System.Text;
using Etcd.Api;
using Etcd.Api.Grpc;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// etcd's gRPC-gateway: <c>POST /v3/...</c> (and <c>/v3beta/...</c>) with a proto3-JSON body, dispatched to
/// the same service implementations as gRPC (the <see cref="Grpc.GrpcServiceTable"/>'s generated-base overrides). JSON uses the proto field names
/// (<c>range_end</c>), bytes as base64 and 64-bit integers as strings; zero values are omitted, as etcd's
/// gateway (<c>JSONPb{OrigName: true}</c>) writes them. Errors are written as etcd 3.4's gateway does:
/// <c>{"error":"…","code":N,"message":"…"}</c> with the HTTP status mapped from the gRPC code.
/// Thread-safe (immutable after construction).
/// </summary>
public sealed class JsonGateway
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default);

    /// <summary>Gateway routes (after the <c>/v3</c> prefix) to gRPC methods, from etcd's google.api.http annotations.</summary>
    private static readonly Dictionary<string, IMethod> Routes = new(StringComparer.Ordinal)
    {
        ["/kv/range"] = EtcdMethods.KVService.Range,
        ["/kv/put"] = EtcdMethods.KVService.Put,
        ["/kv/deleterange"] = EtcdMethods.KVService.DeleteRange,
        ["/kv/txn"] = EtcdMethods.KVService.Txn,
        ["/kv/compaction"] = EtcdMethods.KVService.Compact,
        ["/watch"] = EtcdMethods.WatchService.Watch,
        ["/lease/grant"] = EtcdMethods.LeaseService.LeaseGrant,
        ["/lease/revoke"] = EtcdMethods.LeaseService.LeaseRevoke,
        ["/kv/lease/revoke"] = EtcdMethods.LeaseService.LeaseRevoke,
        ["/lease/keepalive"] = EtcdMethods.LeaseService.LeaseKeepAlive,
        ["/lease/timetolive"] = EtcdMethods.LeaseService.LeaseTimeToLive,
        ["/kv/lease/timetolive"] = EtcdMethods.LeaseService.LeaseTimeToLive,
        ["/lease/leases"] = EtcdMethods.LeaseService.LeaseLeases,
        ["/kv/lease/leases"] = EtcdMethods.LeaseService.LeaseLeases,
        ["/cluster/member/add"] = EtcdMethods.ClusterService.MemberAdd,
        ["/cluster/member/remove"] = EtcdMethods.ClusterService.MemberRemove,
        ["/cluster/member/update"] = EtcdMethods.ClusterService.MemberUpdate,
        ["/cluster/member/list"] = EtcdMethods.ClusterService.MemberList,
        ["/cluster/member/promote"] = EtcdMethods.ClusterService.MemberPromote,
        ["/maintenance/alarm"] = EtcdMethods.MaintenanceService.Alarm,
        ["/maintenance/status"] = EtcdMethods.MaintenanceService.Status,
        ["/maintenance/defragment"] = EtcdMethods.MaintenanceService.Defragment,
        ["/maintenance/hash"] = EtcdMethods.MaintenanceService.HashKV,
        ["/maintenance/snapshot"] = EtcdMethods.MaintenanceService.Snapshot,
        ["/maintenance/transfer-leadership"] = EtcdMethods.MaintenanceService.MoveLeader,
        ["/maintenance/downgrade"] = EtcdMethods.MaintenanceService.Downgrade,
        ["/auth/enable"] = EtcdMethods.AuthService.AuthEnable,
        ["/auth/disable"] = EtcdMethods.AuthService.AuthDisable,
        ["/auth/status"] = EtcdMethods.AuthService.AuthStatus,
        ["/auth/authenticate"] = EtcdMethods.AuthService.Authenticate,
        ["/auth/user/add"] = EtcdMethods.AuthService.UserAdd,
        ["/auth/user/get"] = EtcdMethods.AuthService.UserGet,
        ["/auth/user/list"] = EtcdMethods.AuthService.UserList,
        ["/auth/user/delete"] = EtcdMethods.AuthService.UserDelete,
        ["/auth/user/changepw"] = EtcdMethods.AuthService.UserChangePassword,
        ["/auth/user/grant"] = EtcdMethods.AuthService.UserGrantRole,
        ["/auth/user/revoke"] = EtcdMethods.AuthService.UserRevokeRole,
        ["/auth/role/add"] = EtcdMethods.AuthService.RoleAdd,
        ["/auth/role/get"] = EtcdMethods.AuthService.RoleGet,
        ["/auth/role/list"] = EtcdMethods.AuthService.RoleList,
        ["/auth/role/delete"] = EtcdMethods.AuthService.RoleDelete,
        ["/auth/role/grant"] = EtcdMethods.AuthService.RoleGrantPermission,
        ["/auth/role/revoke"] = EtcdMethods.AuthService.RoleRevokePermission,
        ["/election/campaign"] = EtcdMethods.ElectionService.Campaign,
        ["/election/proclaim"] = EtcdMethods.ElectionService.Proclaim,
        ["/election/leader"] = EtcdMethods.ElectionService.Leader,
        ["/election/observe"] = EtcdMethods.ElectionService.Observe,
        ["/election/resign"] = EtcdMethods.ElectionService.Resign,
        ["/lock/lock"] = EtcdMethods.LockService.Lock,
        ["/lock/unlock"] = EtcdMethods.LockService.Unlock,
    };

    private readonly Grpc.GrpcServiceTable _registry;
    private readonly GatewayStreams _streams;

    /// <summary>
    /// Creates a gateway over the handlers of <paramref name="registry"/>; at most <paramref name="maxConcurrentStreams"/>
    /// gateway requests per listener run at once, later ones wait (etcd's <c>--max-concurrent-streams</c>, which bounds
    /// the gateway's one connection to the server; 0 or <see cref="uint.MaxValue"/>: unlimited).
    /// </summary>
    public JsonGateway(Grpc.GrpcServiceTable registry, long maxConcurrentStreams = 0)
    {
        _registry = registry;
        _streams = new GatewayStreams(maxConcurrentStreams);
    }

    /// <summary>Whether <paramref name="path"/> is a gateway path (<c>/v3/…</c> or <c>/v3beta/…</c>).</summary>
    public static bool IsGatewayPath(PathString path, out string route)
    {
        var p = path.Value ?? "";
        foreach (var prefix in (ReadOnlySpan<string>)["/v3beta/", "/v3/"])
        {
            if (p.StartsWith(prefix, StringComparison.Ordinal))
            {
                route = p[(prefix.Length - 1)..];
                return true;
            }
        }

        route = "";
        return false;
    }

    /// <summary>Serves one gateway request; never throws for bad input (answers with etcd's error body).</summary>
    public async Task HandleAsync(HttpContext http, string route)
    {
        if (!Routes.TryGetValue(route, out var method))
        {
            await WriteErrorAsync(http, HttpStatusCode.NotFound, StatusCode.NotFound, "Not Found").ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsPost(http.Request.Method))
        {
            await WriteErrorAsync(http, HttpStatusCode.MethodNotAllowed, StatusCode.Unimplemented, "Method Not Allowed").ConfigureAwait(false);
            return;
        }

        using var slot = await _streams.EnterAsync(http, longLived: method.Type != MethodType.Unary).ConfigureAwait(false);
        if (slot is null)
        {
            if (!http.RequestAborted.IsCancellationRequested)
            {
                await WriteErrorAsync(http, HttpStatusCode.ServiceUnavailable, StatusCode.Unavailable, EtcdErrors.Stopped.Message).ConfigureAwait(false);
            }

            return;
        }

        // The gateway authenticates by the Authorization header only, never by the connection's client certificate.
        Auth.AuthCall.Enter(Auth.CallCredentials.From(GatewayCallContext.Credentials(http), clientCertificate: null));
        if (method.Type != MethodType.Unary && await JsonGatewayLease.TryHandleStreamingAsync(_registry, http, method).ConfigureAwait(false))
        {
            return;
        }

        var served = _registry.Find(method.FullName);
        if (served is not null && route == "/watch")
        {
            await JsonGatewayWatch.HandleAsync(http, served).ConfigureAwait(false);
            return;
        }

        if (served is null || method.Type != MethodType.Unary)
        {
            await WriteErrorAsync(http, HttpStatusCode.NotImplemented, StatusCode.Unimplemented, $"unknown method {method.Name}").ConfigureAwait(false);
            return;
        }

        IMessage request;
        try
        {
            using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
            var body = JsonGatewayLease.QuoteLargeIntegers(await reader.ReadToEndAsync(http.RequestAborted).ConfigureAwait(false));
            request = string.IsNullOrWhiteSpace(body)
                ? method.RequestParser.ParseFrom(ByteString.Empty)
                : Parser.Parse(body, method.RequestParser.ParseFrom(ByteString.Empty).Descriptor);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            await WriteErrorAsync(http, HttpStatusCode.BadRequest, StatusCode.InvalidArgument, e.Message).ConfigureAwait(false);
            return;
        }

        var ctx = new GatewayCallContext(http, method.FullName);
        try
        {
            var response = await served.InvokeUnaryAsync(request, ctx).ConfigureAwait(false);
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(Compact(Formatter.Format(response)), http.RequestAborted).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await WriteErrorAsync(http, HttpStatusFromCode(e.Status), e.Status, e.Detail).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    /// <summary>grpc-gateway's mapping of gRPC codes to HTTP statuses.</summary>
    public static HttpStatusCode HttpStatusFromCode(StatusCode code) => code switch
    {
        StatusCode.OK => HttpStatusCode.OK,
        StatusCode.Cancelled => HttpStatusCode.RequestTimeout,
        StatusCode.InvalidArgument => HttpStatusCode.BadRequest,
        StatusCode.DeadlineExceeded => HttpStatusCode.GatewayTimeout,
        StatusCode.NotFound => HttpStatusCode.NotFound,
        StatusCode.AlreadyExists => HttpStatusCode.Conflict,
        StatusCode.PermissionDenied => HttpStatusCode.Forbidden,
        StatusCode.Unauthenticated => HttpStatusCode.Unauthorized,
        StatusCode.ResourceExhausted => HttpStatusCode.TooManyRequests,
        StatusCode.FailedPrecondition => HttpStatusCode.PreconditionFailed,
        StatusCode.Aborted => HttpStatusCode.Conflict,
        StatusCode.OutOfRange => HttpStatusCode.BadRequest,
        StatusCode.Unimplemented => HttpStatusCode.NotImplemented,
        StatusCode.Unavailable => HttpStatusCode.ServiceUnavailable,
        _ => HttpStatusCode.InternalServerError,
    };

    /// <summary>
    /// Removes the whitespace Google.Protobuf's formatter puts between tokens, so bodies read like Go's
    /// encoder writes them (<c>{"a":1,"b":"x y"}</c>); whitespace inside strings is kept.
    /// </summary>
    internal static string Compact(string json)
    {
        var sb = new StringBuilder(json.Length);
        var inString = false;
        var escaped = false;
        foreach (var c in json)
        {
            if (inString)
            {
                sb.Append(c);
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    inString = false;
                }
            }
            else if (c == '"')
            {
                inString = true;
                sb.Append(c);
            }
            else if (!char.IsWhiteSpace(c))
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private static async Task WriteErrorAsync(HttpContext http, HttpStatusCode status, StatusCode code, string message)
    {
        http.Response.StatusCode = (int)status;
        http.Response.ContentType = "application/json";
        var body = GoJson(System.Text.Json.JsonSerializer.Serialize(new ErrorBody(message, message, (int)code), GatewayJsonContext.Relaxed.ErrorBody));
        await http.Response.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Escapes as Go's encoding/json does: quotes as <c>\"</c>, and &lt; &gt; &amp; as <c>\u003c</c> etc.</summary>
    internal static string GoJson(string relaxedJson)
        => relaxedJson.Replace("<", "\\u003c", StringComparison.Ordinal).Replace(">", "\\u003e", StringComparison.Ordinal).Replace("&", "\\u0026", StringComparison.Ordinal);

    internal sealed record ErrorBody(
        [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
        [property: System.Text.Json.Serialization.JsonPropertyName("message")] string Message,
        [property: System.Text.Json.Serialization.JsonPropertyName("code")] int Code);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonGateway.ErrorBody))]
internal sealed partial class GatewayJsonContext : System.Text.Json.Serialization.JsonSerializerContext
{
    /// <summary>A context that leaves quotes and non-ASCII as Go writes them (see <see cref="JsonGateway.GoJson"/>).</summary>
    public static GatewayJsonContext Relaxed { get; } = new(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
