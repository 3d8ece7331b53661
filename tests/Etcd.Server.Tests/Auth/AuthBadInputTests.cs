using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Authpb;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Auth;

/// <summary>
/// Bad credentials against an in-process member with JWT tokens (RS256) through our gRPC client: a thousand wrong
/// passwords, malformed, truncated, forged and foreign tokens, tokens of deleted users and tokens from before a role
/// change. Each gets etcd 3.4's error (<c>etcdserver: authentication failed, invalid user ID or password</c>,
/// <c>etcdserver: invalid auth token</c>, <c>etcdserver: revision of auth store is old</c>), returns no data, writes
/// nothing, and the member serves puts and ranges afterwards.
/// </summary>
public sealed class AuthBadInputTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private EtcdHost _host = null!;
    private Etcd.Client.EtcdClient _client = null!;
    private string _certPath = null!;
    private string _keyPath = null!;

    public async Task InitializeAsync()
    {
        using var rsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=jwt", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _certPath = Path.Combine(_dir.Path, "jwt.crt");
        _keyPath = Path.Combine(_dir.Path, "jwt.key");
        await File.WriteAllTextAsync(_certPath, cert.ExportCertificatePem());
        await File.WriteAllTextAsync(_keyPath, rsa.ExportRSAPrivateKeyPem());

        // bcrypt cost 4 (the least etcd accepts) keeps a thousand password checks within the test's time bound.
        var options = TestMember.Options("authbad", Path.Combine(_dir.Path, "data")) with
        {
            AuthToken = $"jwt,pub-key={_certPath},priv-key={_keyPath},sign-method=RS256,ttl=1h",
            BcryptCost = 4,
        };
        _host = await EtcdHost.StartAsync(options, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        await _host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(20));
        _client = Etcd.Client.EtcdClient.Create(new Etcd.Client.EtcdClientOptions { Endpoints = [_host.ClientUrls[0].ToString()] });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static CallOptions As(string token) => new() { Headers = new Etcd.Api.Grpc.Metadata { { "token", token } } };

    private Task<TResponse> Call<TRequest, TResponse>(Method<TRequest, TResponse> m, TRequest req, CallOptions? o = null)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => _client.UnaryAsync(m, req, o);

    private static async Task ExpectAsync(EtcdError error, Func<Task> call)
    {
        var e = await Assert.ThrowsAnyAsync<RpcException>(call);
        Assert.Equal((error.Code, error.Message), (e.Status, e.Detail));
    }

    private Task<string> LoginAsync(string user, string password) =>
        Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = user, Password = password }).ContinueWith(t => t.Result.Token, TaskScheduler.Default);

    /// <summary>root, and alice with readwrite on [a, c); keys a1 and secret; auth enabled. Returns root's token.</summary>
    private async Task<string> SetUpAsync()
    {
        await Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "root", Password = "rootpw" });
        await Call(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "root" });
        await Call(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "root", Role = "root" });
        await Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "alice", Password = "alicepw" });
        await Call(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "app" });
        await Call(EtcdMethods.AuthService.RoleGrantPermission, new AuthRoleGrantPermissionRequest { Name = "app", Perm = new Permission { Key = B("a"), RangeEnd = B("c"), PermType = Permission.Types.Type.Readwrite } });
        await Call(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "alice", Role = "app" });
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a1"), Value = B("1") });
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("s") });
        await Call(EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest());
        return await LoginAsync("root", "rootpw");
    }

    /// <summary>The member still writes and reads (as root, freshly logged in), and nothing the bad calls sent took effect.</summary>
    private async Task AssertHealthyAndUnchangedAsync()
    {
        var root = await LoginAsync("root", "rootpw");
        var put = await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("health"), Value = B("ok") }, As(root));
        var all = await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("\0"), RangeEnd = B("\0") }, As(root));
        Assert.Equal(["a1=1", "health=ok", "secret=s"], all.Kvs.Select(kv => kv.Key.ToStringUtf8() + "=" + kv.Value.ToStringUtf8()));
        Assert.Equal(put.Header.Revision, all.Header.Revision);
    }

    [Fact]
    public async Task AThousandWrongPasswords_AreRefusedWithinTheBound_AndTheMemberStaysHealthy()
    {
        await SetUpAsync();
        var watch = Stopwatch.StartNew();
        var refused = 0;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = bound.Token }, async (i, _) =>
        {
            // Wrong passwords of existing users, and users that do not exist (etcd answers both alike).
            var (user, password) = (i % 3) switch { 0 => ("alice", "wrong" + i), 1 => ("root", string.Empty), _ => ("nobody" + i, "alicepw") };
            await ExpectAsync(EtcdErrors.AuthFailed, () => Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = user, Password = password }));
            Interlocked.Increment(ref refused);
        });
        Assert.Equal(1000, refused);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(120), $"1000 refusals took {watch.Elapsed}");

        // The right password still works, and the member serves.
        var alice = await LoginAsync("alice", "alicepw");
        Assert.Equal("1", (await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }, As(alice))).Kvs.Single().Value.ToStringUtf8());
        await AssertHealthyAndUnchangedAsync();
    }

    [Fact]
    public async Task MalformedTruncatedForgedAndForeignJwts_AreInvalidAuthTokens_AndLeakNothing()
    {
        var root = await SetUpAsync();
        var alice = await LoginAsync("alice", "alicepw");
        var parts = alice.Split('.');
        var forgedPayload = Base64Url($"{{\"exp\":{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()},\"revision\":99,\"username\":\"root\"}}");
        using var otherKey = RSA.Create(2048);
        var foreign = parts[0] + "." + parts[1] + "." + Base64Url(otherKey.SignData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        var bad = new (string Name, string Token)[]
        {
            ("one segment", "x"),
            ("three empty segments", ".."),
            ("not base64", "a.b.c"),
            ("truncated signature", alice[..^10]),
            ("truncated to header and payload", parts[0] + "." + parts[1]),
            ("truncated payload", parts[0] + "." + parts[1][..(parts[1].Length / 2)] + "." + parts[2]),
            ("payload swapped to root", parts[0] + "." + forgedPayload + "." + parts[2]),
            ("alg none", Base64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + forgedPayload + "."),
            ("signed by another key", foreign),
            ("simple token shape", "abcdefghijklmnop.12"),
            ("16 KiB of garbage", new string('A', 16 * 1024)),
        };

        foreach (var (name, token) in bad)
        {
            var range = await Assert.ThrowsAnyAsync<RpcException>(() => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, As(token)));
            Assert.True((EtcdErrors.InvalidAuthToken.Code, EtcdErrors.InvalidAuthToken.Message) == (range.Status, range.Detail), $"{name}: range got {range}");
            await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret"), Serializable = true }, As(token)));
            await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("leaked") }, As(token)));
            await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.DeleteRange, new DeleteRangeRequest { Key = B("a1") }, As(token)));
            await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "mallory", Password = "x" }, As(token)));
            Assert.Equal("rpc error: code = Unauthenticated desc = etcdserver: invalid auth token", await WatchCancelReasonAsync(token, "secret"));
        }

        await AssertHealthyAndUnchangedAsync();
        Assert.Equal(["alice", "root"], (await Call(EtcdMethods.AuthService.UserList, new AuthUserListRequest(), As(root))).Users);
    }

    [Fact]
    public async Task JwtsFromBeforeARoleChange_OrOfADeletedUser_AreOld_AndANewLoginWorks()
    {
        var root = await SetUpAsync();
        var before = await LoginAsync("alice", "alicepw");
        Assert.Single((await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }, As(before))).Kvs);

        // A role change raises the auth revision: the token still names alice but carries the old revision.
        await Call(EtcdMethods.AuthService.RoleGrantPermission, new AuthRoleGrantPermissionRequest { Name = "app", Perm = new Permission { Key = B("secret"), PermType = Permission.Types.Type.Read } }, As(root));
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, As(before)));
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1"), Serializable = true }, As(before)));
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a1"), Value = B("stale") }, As(before)));
        var txn = new TxnRequest();
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B("a2"), Value = B("stale") } });
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Txn, txn, As(before)));
        Assert.Equal("rpc error: code = InvalidArgument desc = etcdserver: revision of auth store is old", await WatchCancelReasonAsync(before, "a1"));

        // A new login sees the new permission.
        var after = await LoginAsync("alice", "alicepw");
        Assert.Equal("s", (await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, As(after))).Kvs.Single().Value.ToStringUtf8());

        // The token of a deleted user is refused the same way, and the user cannot log in again.
        await Call(EtcdMethods.AuthService.UserDelete, new AuthUserDeleteRequest { Name = "alice" }, As(root));
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }, As(after)));
        await ExpectAsync(EtcdErrors.AuthOldRevision, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a1"), Value = B("gone") }, As(after)));
        await ExpectAsync(EtcdErrors.AuthFailed, () => Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "alice", Password = "alicepw" }));
        await AssertHealthyAndUnchangedAsync();
    }

    /// <summary>Opens a watch on <paramref name="key"/> from revision 1 with <paramref name="token"/>; returns its cancel reason (no event may arrive).</summary>
    private async Task<string> WatchCancelReasonAsync(string token, string key)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var watch = _client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, As(token), timeout.Token);
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B(key), StartRevision = 1 } });
        await foreach (var resp in watch.ResponseStream.ReadAllAsync(timeout.Token))
        {
            Assert.Empty(resp.Events);
            Assert.True(resp.Canceled, $"watch with a bad token was not cancelled: {resp}");
            return resp.CancelReason;
        }

        throw new InvalidOperationException("the watch stream ended without a response");
    }

    private static string Base64Url(string s) => Base64Url(Encoding.UTF8.GetBytes(s));

    private static string Base64Url(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
