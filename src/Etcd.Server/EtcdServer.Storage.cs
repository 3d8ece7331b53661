using System.Buffers.Binary;
using System.Text;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcd.Storage.Schema;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

/// <summary>
/// The member's durable state machine: the bbolt-format backend at <c>member/snap/db</c> with etcd 3.4's
/// schema, the consistent index written in the same batch as the data it covers, membership and the cluster
/// version persisted as etcd's <c>etcdserver/api/membership/store.go</c> does, and the db carried in raft
/// snapshots sent to lagging members.
/// </summary>
public sealed partial class EtcdServer
{
    /// <summary>Magic of the state-machine part of a raft snapshot we send: membership JSON, then the bbolt db.</summary>
    private static ReadOnlySpan<byte> MergedSnapshotMagic => "ECS2"u8;

    /// <summary>Magic of the membership-only data older builds kept in snap files (an image may follow it; ignored).</summary>
    private static ReadOnlySpan<byte> SnapFileMagic => "ECS1"u8;

    private ConsistentIndexState _ci = new();

    /// <summary>The database file of a data directory: <c>{data-dir}/member/snap/db</c>.</summary>
    public static string BackendPath(EtcdOptions options) => Path.Combine(options.SnapDir, "db");

    /// <summary>
    /// The raft index saved with the backend (<c>meta/consistent_index</c>) when the member started or last
    /// restored a snapshot: committed entries at or below it are already in the backend and are not applied
    /// to it again.
    /// </summary>
    public ulong ConsistentIndexAtStart => _ci.Floor;

    private static BoltBackend OpenBackend(EtcdOptions options)
    {
        Failpoints.Install();
        try
        {
            return new BoltBackend(new BoltBackendOptions
            {
                Path = BackendPath(options),
                BatchInterval = options.BackendBatchInterval > TimeSpan.Zero ? options.BackendBatchInterval : TimeSpan.FromMilliseconds(100),
                BatchLimit = options.BackendBatchLimit > 0 ? options.BackendBatchLimit : 10000,
                UnsafeNoFsync = options.UnsafeNoFsync,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Storage.Bolt.BoltException)
        {
            throw new EtcdStartException($"failed to open backend {BackendPath(options)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// etcd's file purging (every 30 s while running): keeps at most <c>--max-snapshots</c> <c>*.snap</c> and
    /// <c>*.snap.db</c> files and <c>--max-wals</c> <c>*.wal</c> segments, removing the oldest ones that are not
    /// locked (WAL segments stay locked until a snapshot releases them). Thread-safe; returns the paths removed.
    /// </summary>
    public IReadOnlyList<string> PurgeFiles()
    {
        var removed = new List<string>();
        try
        {
            removed.AddRange(Storage.FileSystem.FilePurger.PurgeOnce(_options.SnapDir, "snap.db", _options.MaxSnapshots));
            removed.AddRange(Storage.FileSystem.FilePurger.PurgeOnce(_options.SnapDir, "snap", _options.MaxSnapshots));
            removed.AddRange(Storage.FileSystem.FilePurger.PurgeOnce(_options.ResolvedWalDir, "wal", _options.MaxWals));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("failed to purge files {error}", e.Message);
        }

        foreach (var path in removed)
        {
            _log.LogInformation("purged {path}", path);
        }

        return removed;
    }

    /// <summary>Reads <c>meta/consistent_index</c> (0 when absent).</summary>
    private static ulong ReadConsistentIndex(IBackend backend)
    {
        using var rtx = backend.ConcurrentReadTx();
        var v = rtx.Get(MvccSchema.MetaBucket, MvccSchema.ConsistentIndexKey);
        return v is { Length: 8 } ? BinaryPrimitives.ReadUInt64BigEndian(v) : 0;
    }

    /// <summary>
    /// etcd's <c>recoverSnapshotBackend</c>: when the newest raft snapshot is ahead of the backend (the member
    /// crashed after saving a received snapshot but before swapping in its db), the snapshot's
    /// <c>%016x.snap.db</c> becomes the backend.
    /// </summary>
    private static void RecoverSnapshotBackend(BoltBackend backend, Snapshot snap, EtcdOptions options, ILogger log)
    {
        var index = snap.Metadata.Index;
        if (ReadConsistentIndex(backend) >= index)
        {
            return;
        }

        var dbPath = Path.Combine(options.SnapDir, $"{index:x16}.snap.db");
        if (!File.Exists(dbPath))
        {
            return;
        }

        log.LogInformation("recovering backend from snapshot {snapshot-index} {path}", index, dbPath);
        backend.ReplaceDatabase(dbPath);
    }

    /// <summary>Puts the consistent index into a locked batch (the hook alarms, the lessor and the auth store use).</summary>
    private void SaveConsistentIndex(IBatchTx tx) => Kv.SaveConsistentIndex(tx);

    /// <summary>Applier thread: persists a member as etcd's <c>mustSaveMemberToBackend</c> (key = hex ID, value = member JSON).</summary>
    private void PersistMember(ulong id)
    {
        var m = Cluster.Find(id);
        if (m is null)
        {
            return;
        }

        var record = new MemberRecord(m.Id, m.PeerUrls, m.Name ?? "", m.ClientUrls ?? [], m.IsLearner);
        WriteMembership(tx => tx.Put(Buckets.Members, MembershipSchema.MemberKey(id), Encoding.UTF8.GetBytes(record.ToJson())));
    }

    /// <summary>Applier thread: etcd's <c>mustDeleteMemberFromBackend</c>: removed from <c>members</c>, marked in <c>members_removed</c>.</summary>
    private void PersistMemberRemoved(ulong id)
        => WriteMembership(tx =>
        {
            var key = MembershipSchema.MemberKey(id);
            tx.Delete(Buckets.Members, key);
            tx.Put(Buckets.MembersRemoved, key, MembershipSchema.RemovedValue);
        });

    /// <summary>Applier thread: etcd's <c>mustSaveClusterVersionToBackend</c> (<c>cluster/clusterVersion</c> = "X.Y.Z").</summary>
    private void PersistClusterVersion(string version)
        => WriteMembership(tx => tx.Put(Buckets.Cluster, Encoding.ASCII.GetBytes(ClusterKeys.ClusterVersion), Encoding.ASCII.GetBytes(version)));

    private void WriteMembership(Action<IBatchTx> write)
    {
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            foreach (var b in Buckets.MembershipBuckets)
            {
                tx.CreateBucket(b);
            }

            // No consistent index here: etcd 3.4 saves it only with MVCC writes, auth writes and snapshots, so a
            // member whose last committed batch held only membership leaves the index at its last KV write. The
            // real `etcdctl backup --with-v3` depends on that: it renumbers the WAL's entries (dropping conf changes
            // and member attributes) but keeps the db's index, and a membership-advanced index would then cover (and
            // skip on replay) KV entries the db never got.
            write(tx);
        }
        finally
        {
            tx.Unlock();
        }
    }

    /// <summary>
    /// Applier thread: the state-machine data of a raft snapshot sent to a lagging member: <c>"ECS2"</c>, u32
    /// big-endian length, the membership JSON, then the whole bbolt database (<see cref="BoltBackend.Snapshot"/>,
    /// after committing the consistent index of the applied state).
    /// </summary>
    private byte[] MergedSnapshotData()
    {
        Kv.Commit();
        using var ms = new MemoryStream();
        ms.Write(MergedSnapshotMagic);
        var membership = WithV2Store(Cluster.ExportState());
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)membership.Length);
        ms.Write(len);
        ms.Write(membership);
        if (_backend is BoltBackend bolt)
        {
            bolt.Snapshot(ms);
        }
        else
        {
            throw new InvalidOperationException("raft snapshots need the bbolt backend");
        }

        return ms.ToArray();
    }

    /// <summary>
    /// Applier thread: <paramref name="m"/> (a MsgSnap) as etcd's createMergedSnapshotMessage makes it: the snapshot at the
    /// applied index with the v2 store JSON as data, and the backend image pinned now (after committing the consistent
    /// index) to be streamed after it by the transport.
    /// </summary>
    private Transport.OutgoingSnapshot OutgoingMergedSnapshot(Message m)
    {
        Kv.Commit();
        if (_backend is not BoltBackend bolt)
        {
            throw new InvalidOperationException("raft snapshots need the bbolt backend");
        }

        var image = bolt.CreateSnapshot();
        var applied = AppliedIndex;
        var send = m.Clone();
        send.Snapshot = new Snapshot
        {
            Metadata = new SnapshotMetadata { Index = applied, Term = _raftStorage.Term(applied), ConfState = _confState.Clone() },
            Data = UnsafeByteOperations.UnsafeWrap(V2StoreWithMembership(MembershipAsV2Store(Cluster.ExportState()))),
        };
        return new Transport.OutgoingSnapshot(send, image.Size, image.WriteTo, image);
    }

    /// <summary>Our membership JSON (<see cref="Membership.RaftCluster.ExportState"/>) as etcd's v2 store JSON, the data of snap files.</summary>
    private static byte[] MembershipAsV2Store(ReadOnlySpan<byte> exported)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(exported.ToArray());
        var root = doc.RootElement;
        var members = root.GetProperty("members").EnumerateArray()
            .Select(e => System.Text.Json.JsonSerializer.Deserialize<Membership.Member>(e)!)
            .Select(m => new MemberRecord(m.Id, m.PeerUrls, m.Name ?? "", m.ClientUrls ?? [], m.IsLearner))
            .ToList();
        var removed = root.GetProperty("removed").EnumerateArray().Select(e => e.GetUInt64()).ToList();
        var version = root.TryGetProperty("version", out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
        return V2StoreSnapshot.BuildMembership(members, removed, version);
    }

    /// <summary>The membership in etcd's v2 store JSON (a snap file of ours or of real etcd) as <see cref="Membership.RaftCluster.RestoreState"/> reads it.</summary>
    private static byte[] V2StoreAsMembership(ReadOnlySpan<byte> v2)
    {
        var (members, removed, version) = V2StoreSnapshot.ReadMembership(v2);
        return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new
        {
            members = members.Select(m => new Membership.Member
            {
                Id = m.Id,
                PeerUrls = [.. m.PeerUrls],
                IsLearner = m.IsLearner,
                Name = m.Name.Length > 0 ? m.Name : null,
                ClientUrls = m.ClientUrls.Count > 0 ? [.. m.ClientUrls] : null,
            }).ToList(),
            removed,
            version,
        });
    }

    /// <summary>
    /// Splits snapshot data into its membership JSON and (for a snapshot received from a peer) the db bytes.
    /// Snap files hold etcd's v2 store JSON (ours and real etcd's); older files of ours start with <c>"ECS1"</c>.
    /// </summary>
    /// <exception cref="InvalidDataException">Not snapshot data we understand.</exception>
    private static (ReadOnlyMemory<byte> Membership, ReadOnlyMemory<byte> Db) SplitSnapshotData(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        if (data.Length > 0 && span[0] == (byte)'{')
        {
            try
            {
                return (V2StoreAsMembership(span), ReadOnlyMemory<byte>.Empty);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
            {
                throw new InvalidDataException("raft snapshot holds malformed v2 store JSON", e);
            }
        }

        if (data.Length < 8 || !(span[..4].SequenceEqual(MergedSnapshotMagic) || span[..4].SequenceEqual(SnapFileMagic)))
        {
            throw new InvalidDataException("raft snapshot does not carry our state-machine image");
        }

        var mlen = (int)BinaryPrimitives.ReadUInt32BigEndian(span[4..]);
        if (mlen < 0 || 8L + mlen > data.Length)
        {
            throw new InvalidDataException("raft snapshot membership is truncated");
        }

        var membership = data.Slice(8, mlen);
        var db = span[..4].SequenceEqual(MergedSnapshotMagic) ? data[(8 + mlen)..] : ReadOnlyMemory<byte>.Empty;
        return (membership, db);
    }

    /// <summary>
    /// Applier thread: swaps in the db received with a raft snapshot (already saved as <paramref name="dbPath"/>)
    /// and rebuilds everything cached from the backend: leases, the key index, watchers, alarms.
    /// </summary>
    private void RestoreBackend(string dbPath, ulong snapIndex)
    {
        if (_backend is not BoltBackend bolt)
        {
            throw new InvalidOperationException("raft snapshots need the bbolt backend");
        }

        bolt.ReplaceDatabase(dbPath);
        Lessor.Recover(_backend);
        Kv.Restore(_backend);
        Watchable.OnRestored();
        Alarms.Recover();
        _authStore?.Recover();
        _ci.Floor = Math.Max(ReadConsistentIndex(_backend), snapIndex);
        _ci.Applying = _ci.Floor;
    }

    /// <summary>
    /// The raft index of the entry being applied (what the backend saves as <c>consistent_index</c>), and the
    /// index the backend already held at start (entries at or below it are skipped). Written by the loop
    /// thread only.
    /// </summary>
    private sealed class ConsistentIndexState
    {
        private long _applying;
        private long _floor;

        public ulong Applying
        {
            get => (ulong)Volatile.Read(ref _applying);
            set => Volatile.Write(ref _applying, (long)value);
        }

        public ulong Floor
        {
            get => (ulong)Volatile.Read(ref _floor);
            set => Volatile.Write(ref _floor, (long)value);
        }

        /// <summary>The value saved: never below what the backend held, so replaying old entries cannot move it back.</summary>
        public ulong Current => Math.Max(Applying, Floor);
    }
}
