using Authpb;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Tests.Auth;

/// <summary>
/// The Auth service and its enforcement on an in-process member through our gRPC client: tokens in the <c>token</c>
/// and <c>authorization</c> metadata keys, etcd's errors for missing, wrong and stale credentials, permission checks
/// on KV (incl. txn branches and serializable reads), watch, lease revoke, maintenance and user/role reads.
/// </summary>
public sealed class AuthServiceTests() : InProcessMemberTests("auth")
{
    /// <summary>etcd 3.4's Maintenance admin check answers with the auth store's untranslated error (status Unknown).</summary>
    private static readonly EtcdError MaintenanceDenied = new(StatusCode.Unknown, "auth: permission denied");

    private static CallOptions As(string token, string key = "token") => new() { Headers = new Etcd.Api.Grpc.Metadata { { key, token } } };

    private Task<TResponse> Call<TRequest, TResponse>(Method<TRequest, TResponse> m, TRequest req, CallOptions? o = null)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => Client.UnaryAsync(m, req, o);

    private static async Task ExpectAsync(EtcdError error, Func<Task> call)
    {
        var e = await Assert.ThrowsAnyAsync<RpcException>(call);
        Assert.Equal(error.Code, e.Status);
        Assert.Equal(error.Message, e.Detail);
    }

    /// <summary>root (role root) and alice (readwrite on [a, c), read on prefix r/), auth enabled; returns (root, alice) tokens.</summary>
    private async Task<(string Root, string Alice)> SetUpAsync()
    {
        await Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "root", Password = "rootpw" });
        await Call(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "root" });
        await Call(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "root", Role = "root" });
        await Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "alice", Password = "alicepw" });
        await Call(EtcdMethods.AuthService.RoleAdd, new AuthRoleAddRequest { Name = "app" });
        await Call(EtcdMethods.AuthService.RoleGrantPermission, new AuthRoleGrantPermissionRequest { Name = "app", Perm = new Permission { Key = B("a"), RangeEnd = B("c"), PermType = Permission.Types.Type.Readwrite } });
        await Call(EtcdMethods.AuthService.RoleGrantPermission, new AuthRoleGrantPermissionRequest { Name = "app", Perm = new Permission { Key = B("r/"), RangeEnd = B("r0"), PermType = Permission.Types.Type.Read } });
        await Call(EtcdMethods.AuthService.UserGrantRole, new AuthUserGrantRoleRequest { User = "alice", Role = "app" });
        await Call(EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest());
        var root = (await Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "root", Password = "rootpw" })).Token;
        var alice = (await Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "alice", Password = "alicepw" })).Token;
        return (root, alice);
    }

    [Fact]
    public async Task EnableNeedsRootWithRoleRoot()
    {
        await ExpectAsync(EtcdErrors.RootUserNotExist, () => Call(EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest()));
        await Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "root", Password = "pw" });
        await ExpectAsync(EtcdErrors.RootRoleNotExist, () => Call(EtcdMethods.AuthService.AuthEnable, new AuthEnableRequest()));
        var status = await Call(EtcdMethods.AuthService.AuthStatus, new AuthStatusRequest());
        Assert.False(status.Enabled);
        Assert.Equal(2UL, status.AuthRevision);
        Assert.NotEqual(0UL, status.Header.ClusterId);
    }

    [Fact]
    public async Task Tokens_AreSimpleTokens_ReadFromTokenOrAuthorization()
    {
        var (root, alice) = await SetUpAsync();
        Assert.Matches("^[a-zA-Z]{16}\\.[0-9]+$", alice);
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a1"), Value = B("v") }, As(alice));
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("b1"), Value = B("v") }, As(alice, "authorization"));
        var got = await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a"), RangeEnd = B("c") }, As(alice));
        Assert.Equal(2, got.Kvs.Count);
        await ExpectAsync(EtcdErrors.UserEmpty, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }));
        await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }, As("bogus")));
        await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a1") }, As(alice[..10] + ".1")));
        await ExpectAsync(EtcdErrors.AuthFailed, () => Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "alice", Password = "wrong" }));
        await ExpectAsync(EtcdErrors.AuthFailed, () => Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "nobody", Password = "x" }));
        Assert.NotEmpty((await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("zz") }, As(root))).Header.ClusterId.ToString());
    }

    [Fact]
    public async Task KvChecks_CoverRangesTxnBranchesAndSerializableReads()
    {
        var (root, alice) = await SetUpAsync();
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("s") }, As(root));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("c"), Value = B("v") }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("r/x"), Value = B("v") }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret"), Serializable = true }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("a"), RangeEnd = B("d") }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.DeleteRange, new DeleteRangeRequest { Key = B("a"), RangeEnd = ByteString.CopyFrom(0) }, As(alice)));
        Assert.Empty((await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("r/"), RangeEnd = B("r0") }, As(alice))).Kvs);

        // The failure branch, a compare and a nested txn are checked as well as the success branch.
        var readsSecretOnFailure = new TxnRequest();
        readsSecretOnFailure.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B("a"), Value = B("1") } });
        readsSecretOnFailure.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = B("secret") } });
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Txn, readsSecretOnFailure, As(alice)));
        var comparesSecret = new TxnRequest();
        comparesSecret.Compare.Add(new Compare { Key = B("secret"), Target = Compare.Types.CompareTarget.Version, Version = 0 });
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Txn, comparesSecret, As(alice)));
        var nested = new TxnRequest();
        var inner = new TxnRequest();
        inner.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B("secret") } });
        nested.Success.Add(new RequestOp { RequestTxn = inner });
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Txn, nested, As(alice)));
        var readOnly = new TxnRequest();
        readOnly.Success.Add(new RequestOp { RequestRange = new RangeRequest { Key = B("secret"), Serializable = true } });
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Txn, readOnly, As(alice)));
        Assert.Equal("s", (await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, As(root))).Kvs[0].Value.ToStringUtf8());
    }

    [Fact]
    public async Task AuthChanges_MakeOldTokensStale_AndDeletedUsersTokensInvalid()
    {
        var (root, alice) = await SetUpAsync();
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a"), Value = B("1") }, As(alice));
        await Call(EtcdMethods.AuthService.RoleRevokePermission, new AuthRoleRevokePermissionRequest { Role = "app", Key = B("a"), RangeEnd = B("c") }, As(root));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a"), Value = B("2") }, As(alice)));
        await Call(EtcdMethods.AuthService.UserDelete, new AuthUserDeleteRequest { Name = "alice" }, As(root));
        await ExpectAsync(EtcdErrors.InvalidAuthToken, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a"), Value = B("3") }, As(alice)));
        await ExpectAsync(EtcdErrors.InvalidAuthMgmt, () => Call(EtcdMethods.AuthService.UserDelete, new AuthUserDeleteRequest { Name = "root" }, As(root)));
        await ExpectAsync(EtcdErrors.InvalidAuthMgmt, () => Call(EtcdMethods.AuthService.RoleDelete, new AuthRoleDeleteRequest { Role = "root" }, As(root)));
        await Call(EtcdMethods.AuthService.AuthDisable, new AuthDisableRequest(), As(root));
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("free"), Value = B("1") });
        await ExpectAsync(EtcdErrors.AuthNotEnabled, () => Call(EtcdMethods.AuthService.Authenticate, new AuthenticateRequest { Name = "root", Password = "rootpw" }));
    }

    [Fact]
    public async Task AdminOnlyOperations_NeedRoleRoot_AUserMayReadItselfAndItsRoles()
    {
        var (root, alice) = await SetUpAsync();
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.AuthService.UserList, new AuthUserListRequest(), As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.AuthService.UserAdd, new AuthUserAddRequest { Name = "x", Password = "x" }, As(alice)));
        await ExpectAsync(EtcdErrors.UserEmpty, () => Call(EtcdMethods.AuthService.RoleList, new AuthRoleListRequest()));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.AuthService.UserGet, new AuthUserGetRequest { Name = "root" }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.AuthService.RoleGet, new AuthRoleGetRequest { Role = "root" }, As(alice)));
        Assert.Equal(["app"], (await Call(EtcdMethods.AuthService.UserGet, new AuthUserGetRequest { Name = "alice" }, As(alice))).Roles);
        Assert.Equal(2, (await Call(EtcdMethods.AuthService.RoleGet, new AuthRoleGetRequest { Role = "app" }, As(alice))).Perm.Count);
        await ExpectAsync(MaintenanceDenied, () => Call(EtcdMethods.MaintenanceService.Defragment, new DefragmentRequest(), As(alice)));
        await ExpectAsync(MaintenanceDenied, () => Call(EtcdMethods.MaintenanceService.Hash, new HashRequest(), As(alice)));
        await ExpectAsync(MaintenanceDenied, () => Call(EtcdMethods.MaintenanceService.HashKV, new HashKVRequest(), As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.ClusterService.MemberAdd, new MemberAddRequest { PeerURLs = { "http://127.0.0.1:1" } }, As(alice)));
        await Call(EtcdMethods.MaintenanceService.Hash, new HashRequest(), As(root));
        Assert.Equal(["alice", "root"], (await Call(EtcdMethods.AuthService.UserList, new AuthUserListRequest(), As(root))).Users);
        Assert.Equal(["app", "root"], (await Call(EtcdMethods.AuthService.RoleList, new AuthRoleListRequest(), As(root))).Roles);
    }

    [Fact]
    public async Task LeaseRevoke_NeedsWritePermissionOnTheLeasesKeys()
    {
        var (root, alice) = await SetUpAsync();
        var lease = await Call(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = 60 }, As(alice));
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("secret"), Value = B("s"), Lease = lease.ID }, As(root));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = lease.ID }, As(alice)));
        await ExpectAsync(EtcdErrors.PermissionDenied, () => Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("a"), Value = B("s"), Lease = lease.ID }, As(alice)));
        await Call(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = lease.ID }, As(root));
        Assert.Empty((await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("secret") }, As(root))).Kvs);
    }

    [Fact]
    public async Task ExpiredLease_IsRevokedUnderAuth()
    {
        var (root, _) = await SetUpAsync();
        var lease = await Call(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = 1 }, As(root));
        await Call(EtcdMethods.KVService.Put, new PutRequest { Key = B("short"), Value = B("s"), Lease = lease.ID }, As(root));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var watch = Client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, As(root), timeout.Token);
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("short") } });
        await foreach (var resp in watch.ResponseStream.ReadAllAsync(timeout.Token))
        {
            if (resp.Events.Any(e => e.Type == Mvccpb.Event.Types.EventType.Delete))
            {
                break;
            }
        }

        watch.Dispose();
        Assert.Empty((await Call(EtcdMethods.KVService.Range, new RangeRequest { Key = B("short") }, As(root))).Kvs);
    }

    [Fact]
    public async Task Watch_WithoutReadPermission_IsCancelledWithEtcdsReason()
    {
        var (_, alice) = await SetUpAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var watch = Client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, As(alice), timeout.Token);
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("secret") } });
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B("a"), RangeEnd = B("c") } });
        var responses = new List<WatchResponse>();
        await foreach (var resp in watch.ResponseStream.ReadAllAsync(timeout.Token))
        {
            responses.Add(resp);
            if (responses.Count == 2)
            {
                break;
            }
        }

        watch.Dispose();
        Assert.True(responses[0].Canceled);
        Assert.True(responses[0].Created);
        Assert.Equal(-1, responses[0].WatchId);
        Assert.Equal("rpc error: code = PermissionDenied desc = etcdserver: permission denied", responses[0].CancelReason);
        Assert.True(responses[1].Created);
        Assert.False(responses[1].Canceled);
    }
}
