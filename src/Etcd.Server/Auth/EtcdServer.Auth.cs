using Etcd.Api;
using Etcd.Server.Auth;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// The member's auth part (etcd's <c>EtcdServer</c> auth methods, <c>etcdserver/v3_server.go</c>): every Auth RPC
/// through raft, passwords checked and hashed before proposing, the current call's credentials turned into an
/// <see cref="AuthInfo"/> (etcd's <c>AuthInfoFromCtx</c>) and stamped on proposals, serializable reads checked at
/// request time, admin-only operations checked for role root.
/// </summary>
public sealed partial class EtcdServer
{
    private AuthStore? _authStore;
    private AuthApplier? _authApplier;

    /// <summary>The auth store (users, roles, permissions, enabled flag, revision).</summary>
    public AuthStore AuthStore => _authStore ?? throw new InvalidOperationException("the auth store is not open yet");

    /// <summary>Opens the auth store in the backend (start-up, before the loop runs).</summary>
    private void OpenAuthStore(TimeProvider? time = null)
    {
        var log = _loggerFactory.CreateLogger("auth");
        ITokenProvider tokens;
        try
        {
            tokens = TokenProviders.Create(_options.AuthToken, _options.AuthTokenTtl, (index, ct) => WaitAppliedAsync(index, ct), time ?? TimeProvider.System, log);
        }
        catch (ArgumentException e)
        {
            _log.LogWarning("failed to create token provider {error}", e.Message);
            throw new EtcdStartException(e.Message, e);
        }

        _authStore = new AuthStore(_backend, tokens, _options.BcryptCost, log, SaveConsistentIndex);
        _authApplier = new AuthApplier(_authStore, id => Lessor.Lookup(id)?.Keys);
    }

    /// <summary>
    /// Apply-chain hook: checks a committed request against its header's user and applies auth requests (see
    /// <see cref="AuthApplier.Apply"/>). Apply thread only.
    /// </summary>
    private bool ApplyAuth(InternalRaftRequest request, out object? result)
    {
        var handled = _authApplier!.Apply(request, _ci.Applying, out var response);
        result = response;
        return handled;
    }

    /// <summary>
    /// The user the current call acts as (etcd's <c>AuthInfoFromCtx</c>): from its token, else (with
    /// <c>--client-cert-auth</c>) its certificate's CN at the current auth revision; null without credentials.
    /// Throws <c>etcdserver: invalid auth token</c> for a token that is unknown, expired or malformed.
    /// </summary>
    public async ValueTask<AuthInfo?> AuthInfoFromCallAsync(CancellationToken cancellationToken)
    {
        if (AuthCall.Current is not { } c || _authStore is not { } store)
        {
            return null;
        }

        if (c.InternalRoot)
        {
            return new AuthInfo(AuthStore.Root, store.Revision);
        }

        if (c.Token is { } token)
        {
            var info = await store.Tokens.InfoAsync(token, store.Revision, cancellationToken).ConfigureAwait(false);
            if (info is null)
            {
                _log.LogWarning("invalid auth token {token}", token);
                throw EtcdErrors.InvalidAuthToken.ToException();
            }

            return info;
        }

        if (c.CommonName is { } cn && _options.ClientTls.ClientCertAuth)
        {
            return new AuthInfo(cn, store.Revision);
        }

        return null;
    }

    /// <summary>Stamps the current call's user and auth revision on a proposal's header (etcd's processInternalRaftRequestOnce).</summary>
    private async ValueTask StampAuthHeaderAsync(InternalRaftRequest request, CancellationToken cancellationToken)
    {
        if (await AuthInfoFromCallAsync(cancellationToken).ConfigureAwait(false) is { } ai)
        {
            request.Header.Username = ai.Username;
            request.Header.AuthRevision = ai.Revision;
        }
    }

    /// <summary>
    /// A read served from local state under auth (etcd's <c>doSerialize</c>): <paramref name="check"/> the caller's
    /// permission, <paramref name="read"/>, then fail with <c>etcdserver: revision of auth store is old</c> when the
    /// auth store changed meanwhile.
    /// </summary>
    private async ValueTask<T> AuthorizedReadAsync<T>(Action<AuthStore, AuthInfo?> check, Func<T> read, CancellationToken cancellationToken)
    {
        var ai = await AuthInfoFromCallAsync(cancellationToken).ConfigureAwait(false);
        check(AuthStore, ai);
        var result = read();
        if (ai is { Revision: > 0 } a && a.Revision != AuthStore.Revision)
        {
            throw EtcdErrors.AuthOldRevision.ToException();
        }

        return result;
    }

    /// <summary>Range under auth: read permission on the range.</summary>
    private ValueTask<RangeResponse> AuthorizedRangeAsync(RangeRequest request, CancellationToken cancellationToken) =>
        AuthorizedReadAsync((s, ai) => s.CheckRange(ai, request.Key, request.RangeEnd), () => Kv.Range(request), cancellationToken);

    /// <summary>A read-only txn under auth: read permission on every compare and range.</summary>
    private ValueTask<TxnResponse> AuthorizedReadTxnAsync(TxnRequest request, CancellationToken cancellationToken) =>
        AuthorizedReadAsync((s, ai) => AuthApplier.CheckTxn(s, request, ai), () => Kv.Txn(request), cancellationToken);

    /// <summary>
    /// The current call's user has role root (maintenance: defragment, snapshot, hash; membership changes).
    /// Errors: <c>etcdserver: user name is empty</c>, <c>etcdserver: user name not found</c>, <c>etcdserver: permission denied</c>,
    /// <c>etcdserver: invalid auth token</c>.
    /// </summary>
    public async ValueTask CheckAdminAsync(CancellationToken cancellationToken)
    {
        var ai = await AuthInfoFromCallAsync(cancellationToken).ConfigureAwait(false);
        AuthStore.CheckAdmin(ai);
    }

    /// <summary>
    /// The admin check of the Maintenance RPCs Defragment, Snapshot, Hash and HashKV (etcd 3.4's
    /// <c>authMaintenanceServer.isAuthenticated</c>). etcd returns the auth store's own error there without
    /// translating it, so a client sees status Unknown with <c>auth: user name is empty</c>, <c>auth: invalid auth
    /// token</c>, <c>auth: user name not found</c> or <c>auth: permission denied</c>, not the <c>etcdserver:</c> form.
    /// </summary>
    public ValueTask CheckMaintenanceAdminAsync(CancellationToken cancellationToken) =>
        new(WithUntranslatedAuthErrorsAsync(async () =>
        {
            await CheckAdminAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }));

    /// <summary>
    /// Runs <paramref name="call"/>, turning an auth error into the auth store's untranslated form (status Unknown,
    /// <c>auth: …</c>), as etcd 3.4 answers where its gRPC handler returns <c>AuthInfoFromCtx</c>'s or the auth store's
    /// error as is: the Maintenance admin checks and Alarm (whose proposal fails with <c>auth: invalid auth token</c>).
    /// </summary>
    public static async Task<T> WithUntranslatedAuthErrorsAsync<T>(Func<Task<T>> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (EtcdException e) when (IsAuthError(e.Error))
        {
            throw new Etcd.Api.Grpc.RpcException(Etcd.Api.Grpc.StatusCode.Unknown, "auth: " + e.Error.Message["etcdserver: ".Length..], e);
        }
    }

    private static bool IsAuthError(EtcdError error) =>
        error == EtcdErrors.UserEmpty || error == EtcdErrors.UserNotFound || error == EtcdErrors.PermissionDenied ||
        error == EtcdErrors.InvalidAuthToken || error == EtcdErrors.AuthOldRevision;

    /// <summary>
    /// Read permission of the current call on [key, rangeEnd) (watch creation, etcd's <c>isWatchPermitted</c>).
    /// Throws the auth error.
    /// </summary>
    public async ValueTask CheckRangePermittedAsync(ByteString key, ByteString rangeEnd, CancellationToken cancellationToken)
    {
        var ai = await AuthInfoFromCallAsync(cancellationToken).ConfigureAwait(false);
        AuthStore.CheckRange(ai, key, rangeEnd);
    }

    /// <summary>
    /// Why a watch on [key, rangeEnd) may not be created for the current call (etcd's <c>isWatchPermitted</c>): the
    /// cancel reason, or null when permitted. etcd 3.4 puts the gRPC error's text there, code included:
    /// <c>rpc error: code = Unauthenticated desc = etcdserver: invalid auth token</c>, <c>rpc error: code =
    /// InvalidArgument desc = etcdserver: revision of auth store is old</c>, <c>rpc error: code = InvalidArgument desc =
    /// etcdserver: user name is empty</c>, else <c>rpc error: code = PermissionDenied desc = etcdserver: permission
    /// denied</c>. An empty key means <c>\0</c>, as etcd's watch server reads it.
    /// </summary>
    public async ValueTask<string?> WatchDeniedReasonAsync(ByteString key, ByteString rangeEnd, CancellationToken cancellationToken)
    {
        try
        {
            var ai = await AuthInfoFromCallAsync(cancellationToken).ConfigureAwait(false);
            AuthStore.CheckRange(ai, key.IsEmpty ? ByteString.CopyFrom(0) : key, rangeEnd);
            return null;
        }
        catch (EtcdException e) when (e.Error == EtcdErrors.InvalidAuthToken || e.Error == EtcdErrors.AuthOldRevision || e.Error == EtcdErrors.UserEmpty)
        {
            return GrpcErrorText(e.Error);
        }
        catch (EtcdException)
        {
            return GrpcErrorText(EtcdErrors.PermissionDenied);
        }
    }

    /// <summary>grpc-go's text of a status error (<c>rpc error: code = &lt;Code&gt; desc = &lt;message&gt;</c>).</summary>
    private static string GrpcErrorText(EtcdError error) => $"rpc error: code = {error.Code} desc = {error.Message}";

    /// <summary>
    /// Authenticate (etcd's <c>EtcdServer.Authenticate</c>): after a linearizable barrier the password is checked
    /// here (bcrypt, off the apply thread), then the token is issued through raft without the password; retried when
    /// the auth store changed in between. Errors: authentication is not enabled, authentication failed.
    /// </summary>
    public async Task<AuthenticateResponse> AuthenticateAsync(AuthenticateRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
        while (true)
        {
            ulong checkedRevision;
            try
            {
                checkedRevision = AuthStore.CheckPassword(request.Name, request.Password);
            }
            catch (EtcdException e) when (e.Error != EtcdErrors.AuthNotEnabled)
            {
                _log.LogWarning("invalid authentication was requested {user} {error}", request.Name, e.Message);
                throw;
            }
            catch (Etcd.Api.Grpc.RpcException e) when (e is not EtcdException)
            {
                _log.LogWarning("invalid authentication was requested {user} {error}", request.Name, e.Detail);
                throw;
            }

            var internalReq = new InternalAuthenticateRequest { Name = request.Name, SimpleToken = AuthStore.Tokens.GenTokenPrefix() };
            var resp = (AuthenticateResponse)(await ProposeAsync(new InternalRaftRequest { Authenticate = internalReq }, cancellationToken).ConfigureAwait(false))!;
            if (checkedRevision == AuthStore.Revision)
            {
                FillHeader(resp.Header ??= new ResponseHeader());
                return resp;
            }

            _log.LogInformation("revision when password checked became stale; retrying");
        }
    }

    /// <summary>UserAdd: the password is hashed here, before the proposal, and only the hash goes through raft.</summary>
    public Task<AuthUserAddResponse> UserAddAsync(AuthUserAddRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var r = request.Clone();
        if (r.Options?.NoPassword != true && r.HashedPassword.Length == 0)
        {
            r.HashedPassword = AuthStore.HashPassword(r.Password);
        }

        r.Password = string.Empty;
        return ProposeAuthAsync<AuthUserAddResponse>(new InternalRaftRequest { AuthUserAdd = r }, cancellationToken);
    }

    /// <summary>UserChangePassword: hashed before the proposal, as UserAdd.</summary>
    public Task<AuthUserChangePasswordResponse> UserChangePasswordAsync(AuthUserChangePasswordRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var r = request.Clone();
        if (r.HashedPassword.Length == 0)
        {
            r.HashedPassword = AuthStore.HashPassword(r.Password);
        }

        r.Password = string.Empty;
        return ProposeAuthAsync<AuthUserChangePasswordResponse>(new InternalRaftRequest { AuthUserChangePassword = r }, cancellationToken);
    }

    /// <summary>
    /// Proposes an auth request and waits for its apply (AuthEnable/Disable/Status, User*, Role*); the response
    /// header is filled as etcd's applier does. Errors: the auth errors of <see cref="Auth.AuthStore"/>, proposal errors.
    /// </summary>
    public async Task<TResponse> ProposeAuthAsync<TResponse>(InternalRaftRequest request, CancellationToken cancellationToken)
        where TResponse : class, IMessage
    {
        ArgumentNullException.ThrowIfNull(request);
        var resp = (TResponse)(await ProposeAsync(request, cancellationToken).ConfigureAwait(false))!;
        var field = resp.Descriptor.FindFieldByName("header");
        if (field?.Accessor.GetValue(resp) is ResponseHeader header)
        {
            FillHeader(header);
        }

        return resp;
    }
}
