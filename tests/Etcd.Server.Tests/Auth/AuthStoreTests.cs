using Authpb;
using Etcd.Api;
using Etcd.Server.Auth;
using Etcd.Storage.Backend;
using Etcd.Storage.Schema;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Auth;

/// <summary>
/// The auth store over a real bbolt backend file: etcd's schema (buckets auth/authUsers/authRoles, authEnabled,
/// authRevision, authpb values with bcrypt hashes), revisions, etcd's errors, and everything back after a reopen.
/// </summary>
public sealed class AuthStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private BoltBackend OpenBackend() => new(new BoltBackendOptions { Path = Path.Combine(_dir.Path, "db") });

    private static AuthStore Open(IBackend backend) =>
        new(backend, new SimpleTokenProvider(TimeSpan.FromMinutes(5), (_, _) => Task.CompletedTask, TimeProvider.System, NullLogger.Instance), 4, NullLogger.Instance);

    private static void Expect(EtcdError error, Action action) =>
        Assert.Same(error, Assert.Throws<EtcdException>(action).Error);

    [Fact]
    public void NewStore_HasRevisionOne_AndEtcdsBuckets()
    {
        using var backend = OpenBackend();
        var store = Open(backend);
        Assert.Equal(1UL, store.Revision);
        Assert.False(store.IsEnabled);
        using var tx = backend.ConcurrentReadTx();
        Assert.True(tx.BucketExists(Buckets.AuthUsers));
        Assert.True(tx.BucketExists(Buckets.AuthRoles));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 1 }, tx.Get(Buckets.Auth, AuthStore.RevisionKey));
    }

    [Fact]
    public void UsersRolesAndPermissions_PersistInEtcdsSchema_AndSurviveReopen()
    {
        using (var backend = OpenBackend())
        {
            var store = Open(backend);
            store.UserAdd("root", store.HashPassword("rootpw"), null);
            store.RoleAdd("root");
            store.UserGrantRole("root", "root");
            store.UserAdd("alice", store.HashPassword("pw"), null);
            store.RoleAdd("app");
            store.RoleGrantPermission("app", new Permission { Key = B("b"), RangeEnd = B("c"), PermType = Permission.Types.Type.Read });
            store.RoleGrantPermission("app", new Permission { Key = B("a"), PermType = Permission.Types.Type.Write });
            store.UserGrantRole("alice", "app");
            store.Enable();
            Assert.Equal(9UL, store.Revision);
            backend.ForceCommit();

            using var tx = backend.ConcurrentReadTx();
            Assert.Equal(new byte[] { 1 }, tx.Get(Buckets.Auth, AuthStore.EnabledKey));
            var alice = User.Parser.ParseFrom(tx.Get(Buckets.AuthUsers, "alice"u8));
            Assert.StartsWith("$2a$04$", alice.Password.ToStringUtf8());
            Assert.Equal(["app"], alice.Roles);
            var app = Role.Parser.ParseFrom(tx.Get(Buckets.AuthRoles, "app"u8));
            Assert.Equal(["a", "b"], app.KeyPermission.Select(p => p.Key.ToStringUtf8()));
        }

        using (var backend = OpenBackend())
        {
            var store = Open(backend);
            Assert.True(store.IsEnabled);
            Assert.Equal(9UL, store.Revision);
            Assert.Equal(9UL, store.CheckPassword("alice", "pw"));
            Expect(EtcdErrors.AuthFailed, () => store.CheckPassword("alice", "wrong"));
            Expect(EtcdErrors.AuthFailed, () => store.CheckPassword("nobody", "pw"));
            var alice = new AuthInfo("alice", store.Revision);
            store.CheckRange(alice, B("b"), B("bz"));
            store.CheckPut(alice, "a"u8);
            Expect(EtcdErrors.PermissionDenied, () => store.CheckPut(alice, "b"u8));
            Expect(EtcdErrors.PermissionDenied, () => store.CheckRange(alice, B("a"), ByteString.Empty));
            Expect(EtcdErrors.AuthOldRevision, () => store.CheckRange(new AuthInfo("alice", 8), B("b"), ByteString.Empty));
            Expect(EtcdErrors.UserEmpty, () => store.CheckRange(null, B("b"), ByteString.Empty));
            Expect(EtcdErrors.PermissionDenied, () => store.CheckAdmin(alice));
            store.CheckAdmin(new AuthInfo("root", store.Revision));
            store.CheckPut(new AuthInfo("root", store.Revision), "anything"u8);
        }
    }

    [Fact]
    public void Management_GetsEtcdsErrors()
    {
        using var backend = OpenBackend();
        var store = Open(backend);
        Expect(EtcdErrors.UserEmpty, () => store.UserAdd("", "", null));
        Expect(EtcdErrors.RoleEmpty, () => store.RoleAdd(""));
        Expect(EtcdErrors.RootUserNotExist, store.Enable);
        store.UserAdd("root", store.HashPassword("x"), null);
        Expect(EtcdErrors.RootRoleNotExist, store.Enable);
        Expect(EtcdErrors.UserAlreadyExist, () => store.UserAdd("root", "", null));
        Expect(EtcdErrors.RoleNotFound, () => store.UserGrantRole("root", "nope"));
        Expect(EtcdErrors.UserNotFound, () => store.UserGrantRole("nope", "root"));
        store.UserGrantRole("root", "root");
        store.Enable();
        Expect(EtcdErrors.InvalidAuthMgmt, () => store.UserDelete("root"));
        Expect(EtcdErrors.InvalidAuthMgmt, () => store.UserRevokeRole("root", "root"));
        Expect(EtcdErrors.InvalidAuthMgmt, () => store.RoleDelete("root"));
        store.RoleAdd("r");
        Expect(EtcdErrors.RoleAlreadyExist, () => store.RoleAdd("r"));
        Expect(EtcdErrors.PermissionNotGranted, () => store.RoleRevokePermission("r", B("k"), ByteString.Empty));
        Expect(EtcdErrors.RoleNotGranted, () => store.UserRevokeRole("root", "r"));
        store.UserAdd("np", "", new UserAddOptions { NoPassword = true });
        Assert.Same(AuthStore.NoPasswordUser, Assert.Throws<Etcd.Api.Grpc.RpcException>(() => store.CheckPassword("np", "")));
    }

    [Fact]
    public void RoleDelete_RevokesItFromEveryUser_AndDisableRaisesTheRevision()
    {
        using var backend = OpenBackend();
        var store = Open(backend);
        store.RoleAdd("r");
        store.RoleGrantPermission("r", new Permission { Key = B("k"), PermType = Permission.Types.Type.Readwrite });
        store.UserAdd("u", store.HashPassword("pw"), null);
        store.UserGrantRole("u", "r");
        store.UserAdd("root", store.HashPassword("pw"), null);
        store.UserGrantRole("root", "root");
        store.Enable();
        store.CheckPut(new AuthInfo("u", store.Revision), "k"u8);
        store.RoleDelete("r");
        Assert.Empty(store.UserGet("u").Roles);
        Expect(EtcdErrors.PermissionDenied, () => store.CheckPut(new AuthInfo("u", store.Revision), "k"u8));
        var before = store.Revision;
        store.Disable();
        Assert.Equal(before + 1, store.Revision);
        store.CheckPut(null, "k"u8);
    }
}
