using Microsoft.Extensions.Logging;

namespace Etcd.Server.Auth;

/// <summary>
/// Builds the token provider named by <c>--auth-token</c> (etcd's <c>NewTokenProvider</c>): <c>simple</c>,
/// <c>jwt,key=value,…</c>, or empty (no tokens at all). Options are <c>key=value</c> pairs after the type, each key once.
/// </summary>
public static class TokenProviders
{
    /// <summary>etcd's error for a malformed or unknown <c>--auth-token</c>.</summary>
    public const string InvalidAuthOptions = "auth: invalid auth options";

    /// <summary>
    /// Creates the provider. Throws <see cref="ArgumentException"/> with etcd's message (<c>auth: invalid auth options</c>,
    /// or the JWT key error) when the options cannot be used.
    /// </summary>
    /// <param name="authToken">The <c>--auth-token</c> value.</param>
    /// <param name="simpleTtl">The <c>--auth-token-ttl</c> of simple tokens.</param>
    /// <param name="waitApplied">Completes once the member applied a raft index (simple tokens).</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">The auth logger.</param>
    public static ITokenProvider Create(string authToken, TimeSpan simpleTtl, Func<ulong, CancellationToken, Task> waitApplied, TimeProvider time, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(authToken);
        var parts = authToken.Split(',');
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in parts.Skip(1))
        {
            var pair = part.Split('=');
            if (pair.Length != 2 || !options.TryAdd(pair[0], pair[1]))
            {
                log.LogWarning("invalid token option {option}", authToken);
                throw new ArgumentException(InvalidAuthOptions);
            }
        }

        switch (parts[0])
        {
            case "simple":
                log.LogWarning("simple token is not cryptographically signed");
                return new SimpleTokenProvider(simpleTtl, waitApplied, time, log);
            case "jwt":
                return JwtTokenProvider.Create(options, time, log);
            case "":
                return new NopTokenProvider();
            default:
                log.LogWarning("unknown token type {type} {error}", parts[0], InvalidAuthOptions);
                throw new ArgumentException(InvalidAuthOptions);
        }
    }
}

/// <summary>No tokens (an empty <c>--auth-token</c>, etcd's <c>tokenNop</c>): none is valid, none is issued.</summary>
public sealed class NopTokenProvider : ITokenProvider
{
    /// <inheritdoc/>
    public void Enable()
    {
    }

    /// <inheritdoc/>
    public void Disable()
    {
    }

    /// <inheritdoc/>
    public ValueTask<AuthInfo?> InfoAsync(string token, ulong currentRevision, CancellationToken cancellationToken) => ValueTask.FromResult<AuthInfo?>(null);

    /// <inheritdoc/>
    /// <exception cref="Etcd.Api.EtcdException">Always: <c>etcdserver: authentication failed, invalid user ID or password</c>.</exception>
    public string Assign(string username, ulong revision, string simpleTokenPrefix, ulong index) => throw Etcd.Api.EtcdErrors.AuthFailed.ToException();

    /// <inheritdoc/>
    public void InvalidateUser(string username)
    {
    }

    /// <inheritdoc/>
    public string GenTokenPrefix() => string.Empty;

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
