using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Etcd.Api.Grpc;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Etcd.Server.Auth;

/// <summary>
/// etcd's JWT tokens (<c>auth/jwt.go</c>, <c>--auth-token jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…</c>): a
/// signed token with the claims <c>username</c>, <c>revision</c> and <c>exp</c> (now + ttl, default 5 min), valid on
/// every member holding the key and across restarts; checked for its signature, its algorithm and its expiry. With
/// a public key only (a certificate PEM or a public key PEM) the member verifies tokens but cannot issue them.
/// Thread-safe.
/// </summary>
public sealed class JwtTokenProvider : ITokenProvider
{
    /// <summary>What Authenticate gets from a verify-only member (etcd's <c>ErrVerifyOnly</c>, unmapped: Unknown).</summary>
    public static readonly RpcException VerifyOnly = new(StatusCode.Unknown, "auth: token signing attempted with verify-only key");

    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly SecurityKey _verifyKey;
    private readonly SigningCredentials? _signing;
    private readonly string _algorithm;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    private JwtTokenProvider(string algorithm, SecurityKey verifyKey, SecurityKey? signingKey, TimeSpan ttl, TimeProvider time, ILogger log)
    {
        _algorithm = algorithm;
        _verifyKey = verifyKey;
        _signing = signingKey is null ? null : new SigningCredentials(signingKey, algorithm);
        Ttl = ttl;
        _time = time;
        _log = log;
    }

    /// <summary>Lifetime of a token.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>Whether this member can only verify tokens (no private key).</summary>
    public bool IsVerifyOnly => _signing is null;

    /// <summary>
    /// Builds the provider from the options after <c>jwt,</c> (etcd's <c>newTokenProviderJWT</c>). Throws
    /// <see cref="ArgumentException"/> with etcd's reason: <c>auth: invalid auth signature method</c>,
    /// <c>auth: missing key data</c>, <c>auth: public and private keys don't match</c>, or the key file error.
    /// </summary>
    public static JwtTokenProvider Create(IReadOnlyDictionary<string, string> options, TimeProvider time, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        var ttl = TimeSpan.FromMinutes(5);
        if (options.TryGetValue("ttl", out var ttlText) && ttlText.Length > 0)
        {
            if (!Logging.GoDuration.TryParse(ttlText, out var ns))
            {
                throw new ArgumentException($"time: invalid duration \"{ttlText}\"");
            }

            ttl = TimeSpan.FromTicks(ns / 100);
        }

        var pub = options.TryGetValue("pub-key", out var pubFile) && pubFile.Length > 0 ? ReadKeyFile(pubFile) : null;
        var priv = options.TryGetValue("priv-key", out var privFile) && privFile.Length > 0 ? ReadKeyFile(privFile) : null;
        var method = options.GetValueOrDefault("sign-method") ?? string.Empty;
        var unknown = options.Keys.Where(k => k is not ("ttl" or "pub-key" or "priv-key" or "sign-method")).ToArray();
        if (unknown.Length > 0)
        {
            log.LogWarning("unknown JWT options {keys}", (object)unknown);
        }

        SecurityKey verify;
        SecurityKey? sign;
        switch (method)
        {
            case "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512":
            {
                var privRsa = priv is null ? null : ImportRsa(priv);
                var pubRsa = pub is null ? null : ImportRsa(pub, publicOnly: true);
                if (privRsa is null && pubRsa is null)
                {
                    throw new ArgumentException("auth: missing key data");
                }

                if (privRsa is not null && pubRsa is not null &&
                    !privRsa.ExportParameters(false).Modulus!.AsSpan().SequenceEqual(pubRsa.ExportParameters(false).Modulus))
                {
                    throw new ArgumentException("auth: public and private keys don't match");
                }

                sign = privRsa is null ? null : new RsaSecurityKey(privRsa);
                verify = sign ?? new RsaSecurityKey(pubRsa!);
                break;
            }

            case "ES256" or "ES384" or "ES512":
            {
                var privEc = priv is null ? null : ImportEc(priv);
                var pubEc = pub is null ? null : ImportEc(pub, publicOnly: true);
                if (privEc is null && pubEc is null)
                {
                    throw new ArgumentException("auth: missing key data");
                }

                sign = privEc is null ? null : new ECDsaSecurityKey(privEc);
                verify = sign ?? new ECDsaSecurityKey(pubEc!);
                break;
            }

            case "HS256" or "HS384" or "HS512":
                if (priv is null || priv.Length == 0)
                {
                    throw new ArgumentException("auth: missing key data");
                }

                sign = new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(priv));
                verify = sign;
                break;

            default:
                throw new ArgumentException("auth: invalid auth signature method");
        }

        return new JwtTokenProvider(method, verify, sign, ttl, time, log);
    }

    /// <inheritdoc/>
    public void Enable()
    {
    }

    /// <inheritdoc/>
    public void Disable()
    {
    }

    /// <inheritdoc/>
    public void InvalidateUser(string username)
    {
    }

    /// <inheritdoc/>
    public string GenTokenPrefix() => string.Empty;

    /// <inheritdoc/>
    public async ValueTask<AuthInfo?> InfoAsync(string token, ulong currentRevision, CancellationToken cancellationToken)
    {
        var parameters = new TokenValidationParameters
        {
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = true,
            RequireExpirationTime = false,
            ClockSkew = TimeSpan.Zero,
            IssuerSigningKey = _verifyKey,
            ValidAlgorithms = [_algorithm],
            LifetimeValidator = (notBefore, expires, _, _) => expires is null || expires.Value > _time.GetUtcNow().UtcDateTime,
        };
        TokenValidationResult result;
        try
        {
            result = await _handler.ValidateTokenAsync(token, parameters).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException)
        {
            _log.LogWarning("failed to parse a JWT token {token} {error}", token, e.Message);
            return null;
        }

        if (!result.IsValid)
        {
            _log.LogWarning("failed to parse a JWT token {token} {error}", token, result.Exception?.Message);
            return null;
        }

        if (!result.Claims.TryGetValue("username", out var user) || user is not string username ||
            !result.Claims.TryGetValue("revision", out var rev) || !TryRevision(rev, out var revision))
        {
            _log.LogWarning("invalid JWT token {token}", token);
            return null;
        }

        return new AuthInfo(username, revision);
    }

    /// <inheritdoc/>
    /// <exception cref="RpcException"><see cref="VerifyOnly"/> without a private key.</exception>
    public string Assign(string username, ulong revision, string simpleTokenPrefix, ulong index)
    {
        if (_signing is null)
        {
            throw VerifyOnly;
        }

        var payload = JsonSerializer.Serialize(new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["exp"] = (_time.GetUtcNow() + Ttl).ToUnixTimeSeconds(),
            ["revision"] = revision,
            ["username"] = username,
        });
        var token = _handler.CreateToken(payload, _signing);
        _log.LogDebug("created/assigned a new JWT token {user-name} {revision} {token}", username, revision, token);
        return token;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private static bool TryRevision(object value, out ulong revision)
    {
        try
        {
            revision = value switch
            {
                JsonElement { ValueKind: JsonValueKind.Number } e => (ulong)e.GetDouble(),
                IConvertible c => Convert.ToUInt64(c, System.Globalization.CultureInfo.InvariantCulture),
                _ => 0,
            };
            return true;
        }
        catch (Exception e) when (e is FormatException or OverflowException or InvalidCastException)
        {
            revision = 0;
            return false;
        }
    }

    private static string ReadKeyFile(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"open {path}: no such file or directory", e);
        }
    }

    private static RSA ImportRsa(string pem, bool publicOnly = false)
    {
        try
        {
            if (publicOnly && pem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
            {
                using var cert = X509Certificate2.CreateFromPem(pem);
                return cert.GetRSAPublicKey() ?? throw new ArgumentException("auth: missing key data");
            }

            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return rsa;
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException("Invalid Key: Key must be PEM encoded PKCS1 or PKCS8 private key", e);
        }
    }

    private static ECDsa ImportEc(string pem, bool publicOnly = false)
    {
        try
        {
            if (publicOnly && pem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
            {
                using var cert = X509Certificate2.CreateFromPem(pem);
                return cert.GetECDsaPublicKey() ?? throw new ArgumentException("auth: missing key data");
            }

            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return ec;
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException("Invalid Key: Key must be PEM encoded PKCS1 or PKCS8 private key", e);
        }
    }
}
