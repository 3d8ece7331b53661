using Etcd.Raft;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>RawNode-level cluster: every node runs the full Ready/persist/apply/Advance cycle.</summary>
internal sealed class RawCluster
{
    public readonly SortedDictionary<ulong, TestNode> Nodes = new();
    public readonly HashSet<ulong> Down = new();
    public Func<Message, bool>? Filter { get; set; }

    public RawCluster(ulong[] ids, Action<RaftConfig>? configure = null)
    {
        foreach (var id in ids) Nodes[id] = TestNode.Bootstrapped(id, ids, configure);
        Pump();
    }

    public TestNode this[ulong id] => Nodes[id];

    /// <summary>Adds a node with an empty log (to be added by a conf change).</summary>
    public TestNode AddEmpty(ulong id, Action<RaftConfig>? configure = null)
    {
        var n = new TestNode(id, configure: configure);
        Nodes[id] = n;
        return n;
    }

    /// <summary>Runs Ready cycles and delivers messages until nothing is left (bounded).</summary>
    public void Pump(int maxRounds = 1000)
    {
        for (int round = 0; round < maxRounds; round++)
        {
            var msgs = new List<Message>();
            foreach (var (id, n) in Nodes)
                if (!Down.Contains(id)) msgs.AddRange(n.HandleReady());
            if (msgs.Count == 0) return;
            foreach (var m in msgs)
            {
                if (Down.Contains(m.To) || Down.Contains(m.From) || !Nodes.TryGetValue(m.To, out var target)) continue;
                if (Filter is not null && !Filter(m)) continue;
                try { target.Node.Step(m); }
                catch (RaftException) { }
            }
        }
        throw new InvalidOperationException("cluster did not quiesce");
    }

    public void Tick(int n = 1)
    {
        for (int i = 0; i < n; i++)
        {
            foreach (var (id, node) in Nodes)
                if (!Down.Contains(id)) node.Node.Tick();
            Pump();
        }
    }

    public ulong Leader() => Nodes.Values.Where(n => !Down.Contains(n.Id) && n.Node.GetBasicStatus().RaftState == StateType.Leader)
        .Select(n => n.Id).OrderByDescending(id => Nodes[id].Node.GetBasicStatus().Term).FirstOrDefault();

    public ulong ElectLeader(ulong id)
    {
        Nodes[id].Node.Campaign();
        Pump();
        return Leader();
    }
}
