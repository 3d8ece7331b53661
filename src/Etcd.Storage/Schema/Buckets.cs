namespace Etcd.Storage.Schema;

/// <summary>
/// etcd's bbolt bucket names and the well-known keys inside them (etcd 3.5 <c>server/storage/schema</c>;
/// 3.4 spreads them over mvcc, lease, auth and membership). Every name is ASCII.
/// </summary>
public static class Buckets
{
    /// <summary>Bucket of MVCC revision keys (17 bytes, 18 for tombstones) → serialized mvccpb.KeyValue.</summary>
    public const string Key = "key";

    /// <summary>Bucket of store metadata: consistent index, term, compaction revisions.</summary>
    public const string Meta = "meta";

    /// <summary>Bucket of leases: 8-byte big-endian lease ID → serialized leasepb.Lease.</summary>
    public const string Lease = "lease";

    /// <summary>Bucket of auth state (authEnabled, authRevision).</summary>
    public const string Auth = "auth";

    /// <summary>Bucket of auth users.</summary>
    public const string AuthUsers = "authUsers";

    /// <summary>Bucket of auth roles.</summary>
    public const string AuthRoles = "authRoles";

    /// <summary>Bucket of cluster members: member ID in lower-case hex without padding → member JSON.</summary>
    public const string Members = "members";

    /// <summary>Bucket of removed members: member ID in hex → <c>removed</c>.</summary>
    public const string MembersRemoved = "members_removed";

    /// <summary>Bucket of cluster-wide settings (<c>clusterVersion</c>, 3.5: <c>downgrade</c>).</summary>
    public const string Cluster = "cluster";

    /// <summary>Bucket of etcd 3.5 alarms.</summary>
    public const string Alarm = "alarm";

    /// <summary>The buckets etcd's membership store creates at start (<c>mustCreateBackendBuckets</c>).</summary>
    public static IReadOnlyList<string> MembershipBuckets { get; } = [Members, MembersRemoved, Cluster];
}

/// <summary>Keys of the <c>meta</c> bucket (etcd 3.5 <c>schema.Meta*</c>).</summary>
public static class MetaKeys
{
    /// <summary>8-byte big-endian raft index of the last entry applied to the backend.</summary>
    public const string ConsistentIndex = "consistent_index";

    /// <summary>8-byte big-endian raft term of that entry (written by etcd 3.5+, ignored by 3.4).</summary>
    public const string Term = "term";

    /// <summary>17-byte revision key of the last scheduled compaction.</summary>
    public const string ScheduledCompactRev = "scheduledCompactRev";

    /// <summary>17-byte revision key of the last finished compaction.</summary>
    public const string FinishedCompactRev = "finishedCompactRev";

    /// <summary>The storage version string (etcd 3.6 <c>storageVersion</c>).</summary>
    public const string StorageVersion = "storageVersion";
}

/// <summary>Keys of the <c>cluster</c> bucket.</summary>
public static class ClusterKeys
{
    /// <summary>The cluster version as <c>MAJOR.MINOR.PATCH</c> text, e.g. <c>3.4.0</c>.</summary>
    public const string ClusterVersion = "clusterVersion";

    /// <summary>etcd 3.5's downgrade info JSON.</summary>
    public const string Downgrade = "downgrade";
}
