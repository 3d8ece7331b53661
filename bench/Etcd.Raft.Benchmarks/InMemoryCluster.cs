using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Benchmarks;

/// <summary>
/// A synchronous in-memory cluster of <see cref="RawNode"/>s: each pump runs every node's Ready cycle (append to
/// MemoryStorage, apply, Advance) and delivers the produced messages directly, until nothing is left.
/// </summary>
public sealed class InMemoryCluster
{
    private readonly RawNode[] _nodes;
    private readonly MemoryStorage[] _storages;
    private readonly ulong[] _applied;
    private readonly List<Message> _inbox = new();

    /// <summary>Creates, bootstraps and elects node 1 leader of a cluster of <paramref name="size"/> voters.</summary>
    public InMemoryCluster(int size)
    {
        _nodes = new RawNode[size];
        _storages = new MemoryStorage[size];
        _applied = new ulong[size];
        var peers = Enumerable.Range(1, size).Select(i => new Peer((ulong)i)).ToArray();
        for (int i = 0; i < size; i++)
        {
            _storages[i] = new MemoryStorage();
            _nodes[i] = new RawNode(new RaftConfig
            {
                Id = (ulong)(i + 1),
                Storage = _storages[i],
                MaxInflightMsgs = 256,
                MaxSizePerMsg = 1024 * 1024,
                CheckQuorum = true,
                PreVote = true,
                Random = new Random(i + 1),
            });
            _nodes[i].Bootstrap(peers);
        }
        Pump();
        _nodes[0].Campaign();
        Pump();
    }

    /// <summary>The leader (node 1).</summary>
    public RawNode Leader => _nodes[0];

    /// <summary>Index applied by the leader's state machine.</summary>
    public ulong LeaderApplied => _applied[0];

    /// <summary>Runs Ready cycles and message delivery until the cluster is quiet.</summary>
    public void Pump()
    {
        for (int round = 0; round < 10_000; round++)
        {
            _inbox.Clear();
            for (int i = 0; i < _nodes.Length; i++)
            {
                var n = _nodes[i];
                while (n.HasReady())
                {
                    var rd = n.GetReady();
                    if (rd.HasHardState) _storages[i].SetHardState(rd.HardState);
                    if (rd.Snapshot is not null) _storages[i].ApplySnapshot(rd.Snapshot);
                    _storages[i].Append(rd.Entries);
                    _inbox.AddRange(rd.Messages);
                    var ce = rd.CommittedEntries;
                    for (int k = 0; k < ce.Count; k++)
                    {
                        var e = ce[k];
                        if (e.Type == EntryType.EntryConfChange) n.ApplyConfChange(ConfChange.Parser.ParseFrom(e.Data));
                        _applied[i] = e.Index;
                    }
                    n.Advance(rd);
                }
            }
            if (_inbox.Count == 0) return;
            foreach (var m in _inbox) _nodes[m.To - 1].Step(m);
        }
        throw new InvalidOperationException("cluster did not quiesce");
    }

    /// <summary>Discards log entries up to the applied index on every node (keeps memory flat across iterations).</summary>
    public void Compact()
    {
        for (int i = 0; i < _nodes.Length; i++)
        {
            ulong a = _applied[i];
            if (a > _storages[i].FirstIndex()) _storages[i].Compact(a);
        }
    }
}
