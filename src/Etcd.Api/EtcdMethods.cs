// The gRPC method table of etcd's services, one descriptor per rpc of the .proto declarations.
using Etcd.Api.Grpc;

namespace Etcd.Api;

/// <summary>etcd's gRPC methods by service, with their HTTP/2 paths (e.g. <c>/etcdserverpb.KV/Range</c>).</summary>
public static class EtcdMethods
{
    /// <summary>The <c>etcdserverpb.KV</c> service.</summary>
    public static class KVService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.KV";

        /// <summary><c>/etcdserverpb.KV/Range</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.RangeRequest, Etcdserverpb.RangeResponse> Range = new(MethodType.Unary, ServiceName, "Range");

        /// <summary><c>/etcdserverpb.KV/Put</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.PutRequest, Etcdserverpb.PutResponse> Put = new(MethodType.Unary, ServiceName, "Put");

        /// <summary><c>/etcdserverpb.KV/DeleteRange</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.DeleteRangeRequest, Etcdserverpb.DeleteRangeResponse> DeleteRange = new(MethodType.Unary, ServiceName, "DeleteRange");

        /// <summary><c>/etcdserverpb.KV/Txn</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.TxnRequest, Etcdserverpb.TxnResponse> Txn = new(MethodType.Unary, ServiceName, "Txn");

        /// <summary><c>/etcdserverpb.KV/Compact</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.CompactionRequest, Etcdserverpb.CompactionResponse> Compact = new(MethodType.Unary, ServiceName, "Compact");
    }

    /// <summary>The <c>etcdserverpb.Watch</c> service.</summary>
    public static class WatchService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.Watch";

        /// <summary><c>/etcdserverpb.Watch/Watch</c> (DuplexStreaming).</summary>
        public static readonly Method<Etcdserverpb.WatchRequest, Etcdserverpb.WatchResponse> Watch = new(MethodType.DuplexStreaming, ServiceName, "Watch");
    }

    /// <summary>The <c>etcdserverpb.Lease</c> service.</summary>
    public static class LeaseService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.Lease";

        /// <summary><c>/etcdserverpb.Lease/LeaseGrant</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.LeaseGrantRequest, Etcdserverpb.LeaseGrantResponse> LeaseGrant = new(MethodType.Unary, ServiceName, "LeaseGrant");

        /// <summary><c>/etcdserverpb.Lease/LeaseRevoke</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.LeaseRevokeRequest, Etcdserverpb.LeaseRevokeResponse> LeaseRevoke = new(MethodType.Unary, ServiceName, "LeaseRevoke");

        /// <summary><c>/etcdserverpb.Lease/LeaseKeepAlive</c> (DuplexStreaming).</summary>
        public static readonly Method<Etcdserverpb.LeaseKeepAliveRequest, Etcdserverpb.LeaseKeepAliveResponse> LeaseKeepAlive = new(MethodType.DuplexStreaming, ServiceName, "LeaseKeepAlive");

        /// <summary><c>/etcdserverpb.Lease/LeaseTimeToLive</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.LeaseTimeToLiveRequest, Etcdserverpb.LeaseTimeToLiveResponse> LeaseTimeToLive = new(MethodType.Unary, ServiceName, "LeaseTimeToLive");

        /// <summary><c>/etcdserverpb.Lease/LeaseLeases</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.LeaseLeasesRequest, Etcdserverpb.LeaseLeasesResponse> LeaseLeases = new(MethodType.Unary, ServiceName, "LeaseLeases");
    }

    /// <summary>The <c>etcdserverpb.Cluster</c> service.</summary>
    public static class ClusterService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.Cluster";

        /// <summary><c>/etcdserverpb.Cluster/MemberAdd</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MemberAddRequest, Etcdserverpb.MemberAddResponse> MemberAdd = new(MethodType.Unary, ServiceName, "MemberAdd");

        /// <summary><c>/etcdserverpb.Cluster/MemberRemove</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MemberRemoveRequest, Etcdserverpb.MemberRemoveResponse> MemberRemove = new(MethodType.Unary, ServiceName, "MemberRemove");

        /// <summary><c>/etcdserverpb.Cluster/MemberUpdate</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MemberUpdateRequest, Etcdserverpb.MemberUpdateResponse> MemberUpdate = new(MethodType.Unary, ServiceName, "MemberUpdate");

        /// <summary><c>/etcdserverpb.Cluster/MemberList</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MemberListRequest, Etcdserverpb.MemberListResponse> MemberList = new(MethodType.Unary, ServiceName, "MemberList");

        /// <summary><c>/etcdserverpb.Cluster/MemberPromote</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MemberPromoteRequest, Etcdserverpb.MemberPromoteResponse> MemberPromote = new(MethodType.Unary, ServiceName, "MemberPromote");
    }

    /// <summary>The <c>etcdserverpb.Maintenance</c> service.</summary>
    public static class MaintenanceService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.Maintenance";

        /// <summary><c>/etcdserverpb.Maintenance/Alarm</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AlarmRequest, Etcdserverpb.AlarmResponse> Alarm = new(MethodType.Unary, ServiceName, "Alarm");

        /// <summary><c>/etcdserverpb.Maintenance/Status</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.StatusRequest, Etcdserverpb.StatusResponse> Status = new(MethodType.Unary, ServiceName, "Status");

        /// <summary><c>/etcdserverpb.Maintenance/Defragment</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.DefragmentRequest, Etcdserverpb.DefragmentResponse> Defragment = new(MethodType.Unary, ServiceName, "Defragment");

        /// <summary><c>/etcdserverpb.Maintenance/Hash</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.HashRequest, Etcdserverpb.HashResponse> Hash = new(MethodType.Unary, ServiceName, "Hash");

        /// <summary><c>/etcdserverpb.Maintenance/HashKV</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.HashKVRequest, Etcdserverpb.HashKVResponse> HashKV = new(MethodType.Unary, ServiceName, "HashKV");

        /// <summary><c>/etcdserverpb.Maintenance/Snapshot</c> (ServerStreaming).</summary>
        public static readonly Method<Etcdserverpb.SnapshotRequest, Etcdserverpb.SnapshotResponse> Snapshot = new(MethodType.ServerStreaming, ServiceName, "Snapshot");

        /// <summary><c>/etcdserverpb.Maintenance/MoveLeader</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.MoveLeaderRequest, Etcdserverpb.MoveLeaderResponse> MoveLeader = new(MethodType.Unary, ServiceName, "MoveLeader");

        /// <summary><c>/etcdserverpb.Maintenance/Downgrade</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.DowngradeRequest, Etcdserverpb.DowngradeResponse> Downgrade = new(MethodType.Unary, ServiceName, "Downgrade");
    }

    /// <summary>The <c>etcdserverpb.Auth</c> service.</summary>
    public static class AuthService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "etcdserverpb.Auth";

        /// <summary><c>/etcdserverpb.Auth/AuthEnable</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthEnableRequest, Etcdserverpb.AuthEnableResponse> AuthEnable = new(MethodType.Unary, ServiceName, "AuthEnable");

        /// <summary><c>/etcdserverpb.Auth/AuthDisable</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthDisableRequest, Etcdserverpb.AuthDisableResponse> AuthDisable = new(MethodType.Unary, ServiceName, "AuthDisable");

        /// <summary><c>/etcdserverpb.Auth/AuthStatus</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthStatusRequest, Etcdserverpb.AuthStatusResponse> AuthStatus = new(MethodType.Unary, ServiceName, "AuthStatus");

        /// <summary><c>/etcdserverpb.Auth/Authenticate</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthenticateRequest, Etcdserverpb.AuthenticateResponse> Authenticate = new(MethodType.Unary, ServiceName, "Authenticate");

        /// <summary><c>/etcdserverpb.Auth/UserAdd</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserAddRequest, Etcdserverpb.AuthUserAddResponse> UserAdd = new(MethodType.Unary, ServiceName, "UserAdd");

        /// <summary><c>/etcdserverpb.Auth/UserGet</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserGetRequest, Etcdserverpb.AuthUserGetResponse> UserGet = new(MethodType.Unary, ServiceName, "UserGet");

        /// <summary><c>/etcdserverpb.Auth/UserList</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserListRequest, Etcdserverpb.AuthUserListResponse> UserList = new(MethodType.Unary, ServiceName, "UserList");

        /// <summary><c>/etcdserverpb.Auth/UserDelete</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserDeleteRequest, Etcdserverpb.AuthUserDeleteResponse> UserDelete = new(MethodType.Unary, ServiceName, "UserDelete");

        /// <summary><c>/etcdserverpb.Auth/UserChangePassword</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserChangePasswordRequest, Etcdserverpb.AuthUserChangePasswordResponse> UserChangePassword = new(MethodType.Unary, ServiceName, "UserChangePassword");

        /// <summary><c>/etcdserverpb.Auth/UserGrantRole</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserGrantRoleRequest, Etcdserverpb.AuthUserGrantRoleResponse> UserGrantRole = new(MethodType.Unary, ServiceName, "UserGrantRole");

        /// <summary><c>/etcdserverpb.Auth/UserRevokeRole</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthUserRevokeRoleRequest, Etcdserverpb.AuthUserRevokeRoleResponse> UserRevokeRole = new(MethodType.Unary, ServiceName, "UserRevokeRole");

        /// <summary><c>/etcdserverpb.Auth/RoleAdd</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleAddRequest, Etcdserverpb.AuthRoleAddResponse> RoleAdd = new(MethodType.Unary, ServiceName, "RoleAdd");

        /// <summary><c>/etcdserverpb.Auth/RoleGet</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleGetRequest, Etcdserverpb.AuthRoleGetResponse> RoleGet = new(MethodType.Unary, ServiceName, "RoleGet");

        /// <summary><c>/etcdserverpb.Auth/RoleList</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleListRequest, Etcdserverpb.AuthRoleListResponse> RoleList = new(MethodType.Unary, ServiceName, "RoleList");

        /// <summary><c>/etcdserverpb.Auth/RoleDelete</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleDeleteRequest, Etcdserverpb.AuthRoleDeleteResponse> RoleDelete = new(MethodType.Unary, ServiceName, "RoleDelete");

        /// <summary><c>/etcdserverpb.Auth/RoleGrantPermission</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleGrantPermissionRequest, Etcdserverpb.AuthRoleGrantPermissionResponse> RoleGrantPermission = new(MethodType.Unary, ServiceName, "RoleGrantPermission");

        /// <summary><c>/etcdserverpb.Auth/RoleRevokePermission</c> (Unary).</summary>
        public static readonly Method<Etcdserverpb.AuthRoleRevokePermissionRequest, Etcdserverpb.AuthRoleRevokePermissionResponse> RoleRevokePermission = new(MethodType.Unary, ServiceName, "RoleRevokePermission");
    }

    /// <summary>The <c>v3electionpb.Election</c> service.</summary>
    public static class ElectionService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "v3electionpb.Election";

        /// <summary><c>/v3electionpb.Election/Campaign</c> (Unary).</summary>
        public static readonly Method<V3Electionpb.CampaignRequest, V3Electionpb.CampaignResponse> Campaign = new(MethodType.Unary, ServiceName, "Campaign");

        /// <summary><c>/v3electionpb.Election/Proclaim</c> (Unary).</summary>
        public static readonly Method<V3Electionpb.ProclaimRequest, V3Electionpb.ProclaimResponse> Proclaim = new(MethodType.Unary, ServiceName, "Proclaim");

        /// <summary><c>/v3electionpb.Election/Leader</c> (Unary).</summary>
        public static readonly Method<V3Electionpb.LeaderRequest, V3Electionpb.LeaderResponse> Leader = new(MethodType.Unary, ServiceName, "Leader");

        /// <summary><c>/v3electionpb.Election/Observe</c> (ServerStreaming).</summary>
        public static readonly Method<V3Electionpb.LeaderRequest, V3Electionpb.LeaderResponse> Observe = new(MethodType.ServerStreaming, ServiceName, "Observe");

        /// <summary><c>/v3electionpb.Election/Resign</c> (Unary).</summary>
        public static readonly Method<V3Electionpb.ResignRequest, V3Electionpb.ResignResponse> Resign = new(MethodType.Unary, ServiceName, "Resign");
    }

    /// <summary>The <c>v3lockpb.Lock</c> service.</summary>
    public static class LockService
    {
        /// <summary>The service's full name.</summary>
        public const string ServiceName = "v3lockpb.Lock";

        /// <summary><c>/v3lockpb.Lock/Lock</c> (Unary).</summary>
        public static readonly Method<V3Lockpb.LockRequest, V3Lockpb.LockResponse> Lock = new(MethodType.Unary, ServiceName, "Lock");

        /// <summary><c>/v3lockpb.Lock/Unlock</c> (Unary).</summary>
        public static readonly Method<V3Lockpb.UnlockRequest, V3Lockpb.UnlockResponse> Unlock = new(MethodType.Unary, ServiceName, "Unlock");
    }
}
