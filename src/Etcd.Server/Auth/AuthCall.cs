using System.Security.Cryptography.X509Certificates;
using Etcd.Api.Grpc;

namespace Etcd.Server.Auth;

/// <summary>
/// The credentials a client request arrived with: a token from the <c>token</c> metadata key (or
/// <c>authorization</c>, which etcd 3.4 also reads: grpc-gateway and some clients send it), and, with
/// <c>--client-cert-auth</c>, the common name of the verified client certificate.
/// </summary>
/// <param name="Token">The token, or null.</param>
/// <param name="CommonName">The client certificate's CN, or null (never set for JSON gateway requests).</param>
/// <param name="InternalRoot">The member's own request (lease expiry), which etcd sends as root.</param>
public sealed record CallCredentials(string? Token, string? CommonName, bool InternalRoot = false)
{
    /// <summary>The metadata key etcd reads first (etcd's <c>rpctypes.TokenFieldNameGRPC</c>).</summary>
    public const string TokenKey = "token";

    /// <summary>The metadata key etcd reads second (etcd's <c>rpctypes.TokenFieldNameSwagger</c>).</summary>
    public const string AuthorizationKey = "authorization";

    /// <summary>A member-internal request acting as root (etcd's <c>AuthStore.WithRoot</c>).</summary>
    public static CallCredentials Root { get; } = new(null, null, InternalRoot: true);

    /// <summary>Reads the credentials of a call: its token metadata and, when given, the client certificate's CN.</summary>
    public static CallCredentials From(Metadata headers, X509Certificate2? clientCertificate)
    {
        var token = headers.Get(TokenKey) ?? headers.Get(AuthorizationKey);
        var cn = clientCertificate?.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return new CallCredentials(string.IsNullOrEmpty(token) ? null : token, string.IsNullOrEmpty(cn) ? null : cn);
    }
}

/// <summary>
/// The credentials of the request running on the current async flow (what etcd carries in the request's
/// <c>context.Context</c>). Set once per call by the transport seam (<see cref="AuthCallInterceptor"/> for gRPC,
/// the JSON gateway for its requests) before the handler runs; read by the server where etcd calls
/// <c>AuthInfoFromCtx</c> (proposals, serializable reads, watch creation, admin checks). Flows with the call's
/// awaits; tasks the member starts for itself carry none unless they enter <see cref="CallCredentials.Root"/>.
/// </summary>
public static class AuthCall
{
    private static readonly AsyncLocal<CallCredentials?> s_current = new();

    /// <summary>The current call's credentials, or null outside a client call.</summary>
    public static CallCredentials? Current => s_current.Value;

    /// <summary>
    /// Makes <paramref name="credentials"/> the current call's. Call from the method that then awaits the handler
    /// (a synchronous setter's change stays with its caller's flow).
    /// </summary>
    public static void Enter(CallCredentials? credentials) => s_current.Value = credentials;

    /// <summary>Runs <paramref name="action"/> as the member itself (root), as etcd's <c>WithRoot</c> for lease revokes.</summary>
    public static async Task AsRootAsync(Func<Task> action)
    {
        s_current.Value = CallCredentials.Root;
        await action().ConfigureAwait(false);
    }
}

/// <summary>
/// The gRPC seam, a Grpc.AspNetCore interceptor: reads every call's token metadata (<c>token</c>, else
/// <c>authorization</c>) and, with <c>--client-cert-auth</c>, the verified client certificate's CN into
/// <see cref="AuthCall"/> before the handler runs. Thread-safe.
/// </summary>
/// <param name="clientCertAuth">Whether <c>--client-cert-auth</c> is on (only then is the CN a user).</param>
public sealed class AuthCallInterceptor(bool clientCertAuth) : global::Grpc.Core.Interceptors.Interceptor
{
    /// <inheritdoc/>
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, global::Grpc.Core.ServerCallContext context, global::Grpc.Core.UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Enter(context);
        return await continuation(request, context).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, global::Grpc.Core.IServerStreamWriter<TResponse> responseStream, global::Grpc.Core.ServerCallContext context, global::Grpc.Core.ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Enter(context);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(global::Grpc.Core.IAsyncStreamReader<TRequest> requestStream, global::Grpc.Core.ServerCallContext context, global::Grpc.Core.ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Enter(context);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(global::Grpc.Core.IAsyncStreamReader<TRequest> requestStream, global::Grpc.Core.IServerStreamWriter<TResponse> responseStream, global::Grpc.Core.ServerCallContext context, global::Grpc.Core.DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Enter(context);
        await continuation(requestStream, responseStream, context).ConfigureAwait(false);
    }

    private void Enter(global::Grpc.Core.ServerCallContext context)
    {
        var headers = context.RequestHeaders;
        var token = headers.GetValue(CallCredentials.TokenKey) ?? headers.GetValue(CallCredentials.AuthorizationKey);
        var certificate = clientCertAuth ? global::Grpc.Core.ServerCallContextExtensions.GetHttpContext(context).Connection.ClientCertificate : null;
        var cn = certificate?.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        AuthCall.Enter(new CallCredentials(string.IsNullOrEmpty(token) ? null : token, string.IsNullOrEmpty(cn) ? null : cn));
    }
}
