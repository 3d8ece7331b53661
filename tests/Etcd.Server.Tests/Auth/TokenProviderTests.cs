using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Etcd.Api.Grpc;
using Etcd.Server.Auth;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Etcd.Server.Tests.Auth;

/// <summary>
/// Token providers with an injected clock: etcd's simple tokens (format, idle expiry, invalidation, a token from an
/// entry not applied yet) and JWT (claims, signature, algorithm, expiry, verify-only members, malformed tokens).
/// </summary>
public sealed class TokenProviderTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task SimpleToken_IsPrefixDotIndex_AndExpiresAfterItsIdleTtl()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        using var p = new SimpleTokenProvider(TimeSpan.FromSeconds(10), (_, _) => Task.CompletedTask, time, NullLogger.Instance);
        p.Enable();
        var prefix = p.GenTokenPrefix();
        Assert.Matches("^[a-zA-Z]{16}$", prefix);
        var token = p.Assign("alice", 5, prefix, 42);
        Assert.Equal(prefix + ".42", token);
        Assert.Equal(new AuthInfo("alice", 7), await p.InfoAsync(token, 7, CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(8));
        Assert.NotNull(await p.InfoAsync(token, 7, CancellationToken.None)); // use resets the idle time
        time.Advance(TimeSpan.FromSeconds(8));
        Assert.NotNull(await p.InfoAsync(token, 7, CancellationToken.None));
        time.Advance(TimeSpan.FromSeconds(12));
        Assert.Null(await p.InfoAsync(token, 7, CancellationToken.None));
        Assert.Equal(0, p.Count);
    }

    [Fact]
    public async Task SimpleToken_InvalidatedByUserChanges_AndByDisable_MalformedOnesAreInvalid()
    {
        using var p = new SimpleTokenProvider(TimeSpan.FromMinutes(5), (_, _) => Task.CompletedTask, TimeProvider.System, NullLogger.Instance);
        p.Enable();
        var a = p.Assign("alice", 1, p.GenTokenPrefix(), 1);
        var b = p.Assign("bob", 1, p.GenTokenPrefix(), 2);
        p.InvalidateUser("alice");
        Assert.Null(await p.InfoAsync(a, 1, CancellationToken.None));
        Assert.NotNull(await p.InfoAsync(b, 1, CancellationToken.None));
        foreach (var bad in new[] { "", ".", "abc", "abc.", "abc.x", "a.b.c", b + "0", b[..^1] })
        {
            Assert.Null(await p.InfoAsync(bad, 1, CancellationToken.None));
        }

        p.Disable();
        Assert.Null(await p.InfoAsync(b, 1, CancellationToken.None));
    }

    [Fact]
    public async Task SimpleToken_FromAnEntryNotAppliedYet_WaitsForIt()
    {
        var applied = new TaskCompletionSource();
        using var p = new SimpleTokenProvider(TimeSpan.FromMinutes(5), (index, ct) => index <= 10 ? Task.CompletedTask : applied.Task.WaitAsync(ct), TimeProvider.System, NullLogger.Instance);
        p.Enable();
        var prefix = p.GenTokenPrefix();
        var pending = p.InfoAsync(prefix + ".11", 1, CancellationToken.None).AsTask();
        Assert.False(pending.IsCompleted);
        p.Assign("alice", 1, prefix, 11);
        applied.SetResult();
        Assert.Equal("alice", (await pending.WaitAsync(TimeSpan.FromSeconds(10)))?.Username);

        using var cancelled = new CancellationTokenSource();
        var never = p.InfoAsync(prefix + ".99", 1, cancelled.Token).AsTask();
        cancelled.Cancel();
        Assert.Null(await never.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private (string Cert, string Key) RsaKeyFiles(string name)
    {
        using var rsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=" + name, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(_dir.Path, name + ".crt");
        var keyPath = Path.Combine(_dir.Path, name + ".key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, rsa.ExportRSAPrivateKeyPem());
        return (certPath, keyPath);
    }

    [Fact]
    public async Task Jwt_CarriesUserAndRevision_VerifiedByAnyMemberWithTheKey_UntilItExpires()
    {
        var (cert, key) = RsaKeyFiles("server");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var opts = new Dictionary<string, string> { ["pub-key"] = cert, ["priv-key"] = key, ["sign-method"] = "RS256", ["ttl"] = "1s" };
        using var signer = JwtTokenProvider.Create(opts, time, NullLogger.Instance);
        using var verifier = JwtTokenProvider.Create(new Dictionary<string, string> { ["pub-key"] = cert, ["sign-method"] = "RS256" }, time, NullLogger.Instance);
        Assert.True(verifier.IsVerifyOnly);
        Assert.Equal(TimeSpan.FromSeconds(1), signer.Ttl);

        var token = signer.Assign("alice", 9, "", 1);
        Assert.Equal(3, token.Split('.').Length);
        Assert.Equal(new AuthInfo("alice", 9), await signer.InfoAsync(token, 100, CancellationToken.None));
        Assert.Equal(new AuthInfo("alice", 9), await verifier.InfoAsync(token, 100, CancellationToken.None));
        Assert.Same(JwtTokenProvider.VerifyOnly, Assert.Throws<RpcException>(() => verifier.Assign("alice", 9, "", 1)));

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await signer.InfoAsync(token, 100, CancellationToken.None));
    }

    [Fact]
    public async Task Jwt_TamperedTruncatedForeignOrOtherAlgorithmTokens_AreInvalid()
    {
        var (cert, key) = RsaKeyFiles("a");
        var (_, otherKey) = RsaKeyFiles("b");
        using var p = JwtTokenProvider.Create(new Dictionary<string, string> { ["pub-key"] = cert, ["priv-key"] = key, ["sign-method"] = "RS256" }, TimeProvider.System, NullLogger.Instance);
        using var foreign = JwtTokenProvider.Create(new Dictionary<string, string> { ["priv-key"] = otherKey, ["sign-method"] = "RS256" }, TimeProvider.System, NullLogger.Instance);
        using var ps = JwtTokenProvider.Create(new Dictionary<string, string> { ["priv-key"] = key, ["sign-method"] = "PS256" }, TimeProvider.System, NullLogger.Instance);
        var token = p.Assign("alice", 3, "", 1);
        var parts = token.Split('.');
        var forged = parts[0] + "." + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("{\"exp\":9999999999,\"revision\":3,\"username\":\"root\"}")).TrimEnd('=').Replace('+', '-').Replace('/', '_') + "." + parts[2];
        foreach (var bad in new[] { "", "x", "a.b", "a.b.c", token[..^5], token + "x", forged, foreign.Assign("alice", 3, "", 1), ps.Assign("alice", 3, "", 1) })
        {
            Assert.Null(await p.InfoAsync(bad, 1, CancellationToken.None));
        }

        Assert.NotNull(await p.InfoAsync(token, 1, CancellationToken.None));
    }

    [Theory]
    [InlineData("sign-method=XX256", "auth: invalid auth signature method")]
    [InlineData("sign-method=RS256", "auth: missing key data")]
    [InlineData("sign-method=HS256", "auth: missing key data")]
    public void Jwt_BadOptions_GetEtcdsErrors(string option, string error)
    {
        var pair = option.Split('=');
        var e = Assert.Throws<ArgumentException>(() => JwtTokenProvider.Create(new Dictionary<string, string> { [pair[0]] = pair[1] }, TimeProvider.System, NullLogger.Instance));
        Assert.Equal(error, e.Message);
        Assert.Equal(TokenProviders.InvalidAuthOptions, Assert.Throws<ArgumentException>(() => TokenProviders.Create("jwt,sign-method", TimeSpan.Zero, (_, _) => Task.CompletedTask, TimeProvider.System, NullLogger.Instance)).Message);
        Assert.Equal(TokenProviders.InvalidAuthOptions, Assert.Throws<ArgumentException>(() => TokenProviders.Create("oauth", TimeSpan.Zero, (_, _) => Task.CompletedTask, TimeProvider.System, NullLogger.Instance)).Message);
    }
}
