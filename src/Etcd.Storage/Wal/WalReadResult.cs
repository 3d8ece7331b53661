using Raftpb;

namespace Etcd.Storage.Wal;

/// <summary>
/// What <see cref="Wal.ReadAll()"/> returns: the metadata recorded at the head of the WAL (serialized
/// Etcdserverpb.Metadata for etcd), the last HardState saved (an empty HardState when none), and the entries
/// after the opening snapshot's index, in index order with later-written duplicates replacing earlier ones.
/// </summary>
/// <param name="Metadata">The metadata record's bytes (etcd: Etcdserverpb.Metadata{NodeID, ClusterID}).</param>
/// <param name="State">The last saved HardState.</param>
/// <param name="Entries">Entries with index greater than the snapshot index, contiguous.</param>
public sealed record WalReadResult(byte[] Metadata, HardState State, List<Entry> Entries)
{
    /// <summary>False only from <see cref="Wal.ReadAll(bool)"/> with requireSnapshot false when no record matched the opening snapshot.</summary>
    public bool SnapshotFound { get; init; } = true;
}
