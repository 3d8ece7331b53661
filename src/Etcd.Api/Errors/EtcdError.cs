using Etcd.Api.Grpc;

namespace Etcd.Api;

/// <summary>
/// One of etcd's client-visible errors: the gRPC code and the exact message etcd sends
/// (etcd's <c>api/v3rpc/rpctypes/error.go</c>). Compare by reference or by <see cref="Message"/>.
/// </summary>
/// <param name="Code">gRPC status code.</param>
/// <param name="Message">The exact grpc-message string, e.g. <c>etcdserver: key is not provided</c>.</param>
public sealed record EtcdError(StatusCode Code, string Message)
{
    /// <summary>Creates the exception that carries this error.</summary>
    public EtcdException ToException() => new(this);
}

/// <summary>
/// An etcd error raised anywhere below the services (storage, apply, server); the gRPC layer sends
/// <see cref="EtcdError.Code"/> and <see cref="EtcdError.Message"/> as the call's status.
/// </summary>
public sealed class EtcdException : RpcException
{
    /// <summary>Wraps <paramref name="error"/>.</summary>
    public EtcdException(EtcdError error)
        : base(error.Code, error.Message)
    {
        Error = error;
    }

    /// <summary>The error from <see cref="EtcdErrors"/>.</summary>
    public EtcdError Error { get; }
}

/// <summary>etcd's error table: codes and exact strings as etcd 3.4 sends them.</summary>
public static class EtcdErrors
{
#pragma warning disable CS1591 // the names are etcd's own (ErrGRPC...) and the strings say what they mean
    public static readonly EtcdError EmptyKey = new(StatusCode.InvalidArgument, "etcdserver: key is not provided");
    public static readonly EtcdError KeyNotFound = new(StatusCode.InvalidArgument, "etcdserver: key not found");
    public static readonly EtcdError ValueProvided = new(StatusCode.InvalidArgument, "etcdserver: value is provided");
    public static readonly EtcdError LeaseProvided = new(StatusCode.InvalidArgument, "etcdserver: lease is provided");
    public static readonly EtcdError TooManyOps = new(StatusCode.InvalidArgument, "etcdserver: too many operations in txn request");
    public static readonly EtcdError DuplicateKey = new(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request");
    public static readonly EtcdError Compacted = new(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted");
    public static readonly EtcdError FutureRev = new(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision");
    public static readonly EtcdError NoSpace = new(StatusCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded");

    public static readonly EtcdError LeaseNotFound = new(StatusCode.NotFound, "etcdserver: requested lease not found");
    public static readonly EtcdError LeaseExist = new(StatusCode.FailedPrecondition, "etcdserver: lease already exists");
    public static readonly EtcdError LeaseTtlTooLarge = new(StatusCode.OutOfRange, "etcdserver: too large lease TTL");

    public static readonly EtcdError WatchCanceled = new(StatusCode.Cancelled, "etcdserver: watch canceled");

    public static readonly EtcdError MemberExist = new(StatusCode.FailedPrecondition, "etcdserver: member ID already exist");
    public static readonly EtcdError PeerUrlExist = new(StatusCode.FailedPrecondition, "etcdserver: Peer URLs already exists");
    public static readonly EtcdError MemberNotEnoughStarted = new(StatusCode.FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members");
    public static readonly EtcdError MemberBadUrls = new(StatusCode.InvalidArgument, "etcdserver: given member URLs are invalid");
    public static readonly EtcdError MemberNotFound = new(StatusCode.NotFound, "etcdserver: member not found");
    public static readonly EtcdError MemberNotLearner = new(StatusCode.FailedPrecondition, "etcdserver: can only promote a learner member");
    public static readonly EtcdError LearnerNotReady = new(StatusCode.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader");
    public static readonly EtcdError TooManyLearners = new(StatusCode.FailedPrecondition, "etcdserver: too many learner members in cluster");

    public static readonly EtcdError RequestTooLarge = new(StatusCode.InvalidArgument, "etcdserver: request is too large");
    public static readonly EtcdError TooManyRequests = new(StatusCode.ResourceExhausted, "etcdserver: too many requests");

    public static readonly EtcdError RootUserNotExist = new(StatusCode.FailedPrecondition, "etcdserver: root user does not exist");
    public static readonly EtcdError RootRoleNotExist = new(StatusCode.FailedPrecondition, "etcdserver: root user does not have root role");
    public static readonly EtcdError UserAlreadyExist = new(StatusCode.FailedPrecondition, "etcdserver: user name already exists");
    public static readonly EtcdError UserEmpty = new(StatusCode.InvalidArgument, "etcdserver: user name is empty");
    public static readonly EtcdError UserNotFound = new(StatusCode.FailedPrecondition, "etcdserver: user name not found");
    public static readonly EtcdError RoleAlreadyExist = new(StatusCode.FailedPrecondition, "etcdserver: role name already exists");
    public static readonly EtcdError RoleNotFound = new(StatusCode.FailedPrecondition, "etcdserver: role name not found");
    public static readonly EtcdError RoleEmpty = new(StatusCode.InvalidArgument, "etcdserver: role name is empty");
    public static readonly EtcdError AuthFailed = new(StatusCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password");
    public static readonly EtcdError PermissionDenied = new(StatusCode.PermissionDenied, "etcdserver: permission denied");
    public static readonly EtcdError RoleNotGranted = new(StatusCode.FailedPrecondition, "etcdserver: role is not granted to the user");
    public static readonly EtcdError PermissionNotGranted = new(StatusCode.FailedPrecondition, "etcdserver: permission is not granted to the role");
    public static readonly EtcdError AuthNotEnabled = new(StatusCode.FailedPrecondition, "etcdserver: authentication is not enabled");
    public static readonly EtcdError InvalidAuthToken = new(StatusCode.Unauthenticated, "etcdserver: invalid auth token");
    public static readonly EtcdError InvalidAuthMgmt = new(StatusCode.InvalidArgument, "etcdserver: invalid auth management");
    public static readonly EtcdError AuthOldRevision = new(StatusCode.InvalidArgument, "etcdserver: revision of auth store is old");

    public static readonly EtcdError NoLeader = new(StatusCode.Unavailable, "etcdserver: no leader");
    public static readonly EtcdError NotLeader = new(StatusCode.FailedPrecondition, "etcdserver: not leader");
    public static readonly EtcdError LeaderChanged = new(StatusCode.Unavailable, "etcdserver: leader changed");
    public static readonly EtcdError NotCapable = new(StatusCode.Unavailable, "etcdserver: not capable");
    public static readonly EtcdError Stopped = new(StatusCode.Unavailable, "etcdserver: server stopped");
    public static readonly EtcdError Timeout = new(StatusCode.Unavailable, "etcdserver: request timed out");
    public static readonly EtcdError TimeoutDueToLeaderFail = new(StatusCode.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure");
    public static readonly EtcdError TimeoutDueToConnectionLost = new(StatusCode.Unavailable, "etcdserver: request timed out, possibly due to connection lost");
    public static readonly EtcdError TimeoutWaitAppliedIndex = new(StatusCode.Unavailable, "etcdserver: request timed out, waiting for the applied index took too long");
    public static readonly EtcdError Unhealthy = new(StatusCode.Unavailable, "etcdserver: unhealthy cluster");
    public static readonly EtcdError Corrupt = new(StatusCode.DataLoss, "etcdserver: corrupt cluster");
    public static readonly EtcdError NotSupportedForLearner = new(StatusCode.Unavailable, "etcdserver: rpc not supported for learner");
    public static readonly EtcdError BadLeaderTransferee = new(StatusCode.FailedPrecondition, "etcdserver: bad leader transferee");

    /// <summary>Range with an unknown sort order or target (etcd's apply returns this from the gRPC layer as InvalidArgument).</summary>
    public static readonly EtcdError InvalidSortOption = new(StatusCode.InvalidArgument, "etcdserver: invalid sort option");
#pragma warning restore CS1591

    /// <summary>All errors of the table, for lookups by message (clients map a received message back to its error).</summary>
    public static IReadOnlyList<EtcdError> All { get; } = typeof(EtcdErrors)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(EtcdError))
        .Select(f => (EtcdError)f.GetValue(null)!)
        .ToArray();

    /// <summary>The table entry whose message is <paramref name="message"/>, or null.</summary>
    public static EtcdError? FromMessage(string message) => All.FirstOrDefault(e => e.Message == message);
}
