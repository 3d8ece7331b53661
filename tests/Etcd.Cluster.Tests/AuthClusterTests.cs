using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Authpb;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Harness;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Cluster.Tests;

/// <summary>
/// Auth tokens across a 3-member cluster, with simple tokens and with JWT (RS256, the same key pair on every member).
/// etcd 3.4 issues a simple token through raft (every member's applier registers it) and a JWT is checked by
/// signature, so a token from any member is accepted by every other one: writes, linearizable reads, serializable
/// reads served by the follower itself, and watches, each within the user's permissions and refused outside them. The
/// same scenario runs against real etcd 3.4.23 (<c>/usr/bin/etcd</c>) to pin the behaviour down.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class AuthClusterTests : IDisposable
{
    private const string ReferenceEtcd = "/usr/bin/etcd";
    private static readonly CallOptions Bounded = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _keys = Directory.CreateTempSubdirectory("etcd-auth-keys-").FullName;

    public void Dispose() => Directory.Delete(_keys, recursive: true);

    [Theory]
    [InlineData("simple", false)]
    [InlineData("jwt", false)]
    [InlineData("simple", true)]
    [InlineData("jwt", true)]
    public async Task TokenFromOneMember_IsAcceptedByEveryMember_WithinItsPermissions(string tokenKind, bool referenceEtcd)
    {
        var binary = referenceEtcd ? ReferenceEtcd : ClusterEnvironment.RequireUnderTest();
        Assert.True(File.Exists(binary), $"{binary} not found (real etcd 3.4.23, installed by scripts/setup.sh)");
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { Binary = binary, ExtraArgs = TokenArgs(tokenKind) });
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(20));
        var first = cluster.Members[0].Client;

        await Call(first, EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "root", Password = "rootpw" });
        await Call(first, EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "root" });
        await Call(first, EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "root", Role = "root" });
        await Call(first, EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "alice", Password = "alicepw" });
        await Call(first, EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "app" });
        await Call(first, EtcdMethods.AuthService.RoleGrantPermission, new AuthRoleGrantPermissionRequest { Name = "app", Perm = new Permission { Key = B("a"), RangeEnd = B("c"), PermType = Permission.Types.Type.Readwrite } });
        await Call(first, EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "alice", Role = "app" });
        await Call(first, EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("s") });
        await Call(first, EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest());

        // A token from each member, used on each member.
        foreach (var issuer in cluster.Members)
        {
            var token = (await Call(issuer.Client, EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "alice", Password = "alicepw" })).Token;
            foreach (var m in cluster.Members)
            {
                var what = $"{tokenKind} token of {issuer.Name} on {m.Name}{(m == leader ? " (leader)" : string.Empty)}";
                var key = $"a/{issuer.Name}/{m.Name}";
                var put = await Call(m.Client, EtcdMethods.KVService.Put, new PutRequest { Key = B(key), Value = B("v") }, token);
                Assert.Equal("v", (await Call(m.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = B(key) }, token)).Kvs.Single().Value.ToStringUtf8());

                // A serializable read is served by the member itself: once it has applied the put it sees the key.
                var local = await ProcessCluster.RetryAsync(async () =>
                {
                    var r = await Call(m.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = B(key), Serializable = true }, token);
                    return r.Header.Revision >= put.Header.Revision ? r : throw new RpcException(StatusCode.Unavailable, "not applied yet");
                }, TimeSpan.FromSeconds(10));
                Assert.True(local.Kvs.Count == 1, what);

                // Outside alice's permissions nothing is readable or writable on any member, serializable or not.
                await DeniedAsync(what, () => Call(m.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, token));
                await DeniedAsync(what, () => Call(m.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret"), Serializable = true }, token));
                await DeniedAsync(what, () => Call(m.Client, EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("x") }, token));
                Assert.Equal("rpc error: code = PermissionDenied desc = etcdserver: permission denied", await WatchCancelReasonAsync(m.Client, token, "secret"));
            }
        }

        // Nothing outside the permitted range changed, on any member.
        var rootToken = (await Call(first, EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "root", Password = "rootpw" })).Token;
        foreach (var m in cluster.Members)
        {
            var all = await Call(m.Client, EtcdMethods.KVService.Range, new RangeRequest { Key = B("\0"), RangeEnd = B("\0") }, rootToken);
            Assert.Equal(10, all.Kvs.Count);
            Assert.Equal("s", all.Kvs.Single(kv => kv.Key.ToStringUtf8() == "secret").Value.ToStringUtf8());
        }
    }

    /// <summary>The member flags for <paramref name="kind"/>: nothing for simple tokens; for JWT one RS256 key pair shared by every member.</summary>
    private string[] TokenArgs(string kind)
    {
        if (kind == "simple")
        {
            return [];
        }

        using var rsa = RSA.Create(2048);
        var req = new CertificateRequest("CN=jwt", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(_keys, "jwt.crt");
        var keyPath = Path.Combine(_keys, "jwt.key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, rsa.ExportRSAPrivateKeyPem());
        return ["--auth-token", $"jwt,pub-key={certPath},priv-key={keyPath},sign-method=RS256,ttl=10m"];
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static Task<TResponse> Call<TRequest, TResponse>(EtcdClient client, Method<TRequest, TResponse> m, TRequest req, string? token = null)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => client.UnaryAsync(m, req, token is null ? Bounded : Bounded with { Headers = new Etcd.Api.Grpc.Metadata { { "token", token } } });

    private static async Task DeniedAsync(string what, Func<Task> call)
    {
        var e = await Assert.ThrowsAnyAsync<RpcException>(call);
        Assert.True(e.Status == StatusCode.PermissionDenied && e.Detail == "etcdserver: permission denied", $"{what}: {e}");
    }

    private static async Task<string> WatchCancelReasonAsync(EtcdClient client, string token, string key)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var watch = client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, new CallOptions { Headers = new Etcd.Api.Grpc.Metadata { { "token", token } } }, timeout.Token);
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B(key), StartRevision = 1 } });
        await foreach (var resp in watch.ResponseStream.ReadAllAsync(timeout.Token))
        {
            Assert.Empty(resp.Events);
            return resp.Canceled ? resp.CancelReason : $"not cancelled: {resp}";
        }

        return "stream ended";
    }
}
