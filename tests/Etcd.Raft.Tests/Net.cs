using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>
/// A tiny in-test network over internal <see cref="Raft"/> instances: messages produced by one node are delivered
/// synchronously (breadth-first) until the system is quiet. Entries stay in each node's unstable log (nobody
/// persists), which is enough to exercise the algorithm. Connections can be cut and message types ignored.
/// </summary>
internal sealed class Net
{
    public readonly Dictionary<ulong, Raft> Peers = new();
    public readonly Dictionary<ulong, MemoryStorage> Storages = new();
    private readonly HashSet<(ulong from, ulong to)> _cut = new();
    private readonly HashSet<MessageType> _ignored = new();
    public Func<Message, bool>? Filter; // return false to drop
    public readonly List<Message> Delivered = new();

    public Net(params ulong[] ids) : this(null, ids) { }

    public Net(Action<RaftConfig>? configure, params ulong[] ids)
    {
        foreach (var id in ids)
        {
            var st = new MemoryStorage();
            Storages[id] = st;
            Peers[id] = NewRaft(id, ids, st, configure);
        }
    }

    public Raft this[ulong id] => Peers[id];

    public static Raft NewRaft(ulong id, ulong[] voters, MemoryStorage? storage = null, Action<RaftConfig>? configure = null, ulong[]? learners = null)
    {
        var cfg = new RaftConfig
        {
            Id = id,
            ElectionTick = 10,
            HeartbeatTick = 1,
            Storage = storage ?? new MemoryStorage(),
            MaxSizePerMsg = ulong.MaxValue,
            MaxInflightMsgs = 256,
            Random = new Random((int)id * 7919),
        };
        configure?.Invoke(cfg);
        var r = new Raft(cfg);
        // Install the membership without log entries, so test logs start empty (index 0).
        if (r.Prs.Progress.Count == 0)
        {
            foreach (var v in voters)
                r.ApplyConfChange(RaftUtil.AsV2(new ConfChange { Type = ConfChangeType.ConfChangeAddNode, NodeId = v }));
            foreach (var l in learners ?? [])
                r.ApplyConfChange(RaftUtil.AsV2(new ConfChange { Type = ConfChangeType.ConfChangeAddLearnerNode, NodeId = l }));
        }
        return r;
    }

    public static List<Message> Take(Raft r)
    {
        var m = r.Msgs;
        r.Msgs = new List<Message>();
        return m;
    }

    public void Cut(ulong a, ulong b)
    {
        _cut.Add((a, b));
        _cut.Add((b, a));
    }

    public void Isolate(ulong id)
    {
        foreach (var other in Peers.Keys)
            if (other != id) Cut(id, other);
    }

    public void Ignore(MessageType t) => _ignored.Add(t);

    public void Recover()
    {
        _cut.Clear();
        _ignored.Clear();
        Filter = null;
    }

    private bool Pass(Message m) =>
        !_cut.Contains((m.From, m.To)) && !_ignored.Contains(m.Type) && Peers.ContainsKey(m.To) && (Filter?.Invoke(m) ?? true);

    /// <summary>Steps the given messages and everything they cause, until quiet (bounded).</summary>
    public void Send(params Message[] msgs)
    {
        var queue = new Queue<Message>(msgs);
        for (int steps = 0; queue.Count > 0; steps++)
        {
            if (steps > 100_000) throw new InvalidOperationException("network did not quiesce");
            var m = queue.Dequeue();
            if (!Peers.TryGetValue(m.To, out var p)) continue;
            Delivered.Add(m);
            try { p.Step(m); }
            catch (RaftException) { }
            foreach (var o in Take(p))
                if (Pass(o)) queue.Enqueue(o);
        }
    }

    /// <summary>Runs an election on <paramref name="id"/> (MsgHup) and delivers all resulting traffic.</summary>
    public void Campaign(ulong id) => Send(new Message { From = id, To = id, Type = MessageType.MsgHup });

    public void Propose(ulong id, string data) => Send(Prop(id, data));

    public static Message Prop(ulong id, string data)
    {
        var m = new Message { From = id, To = id, Type = MessageType.MsgProp };
        m.Entries.Add(new Entry { Data = ByteString.CopyFromUtf8(data) });
        return m;
    }

    /// <summary>Ticks one node n times, delivering its output after each tick.</summary>
    public void Tick(ulong id, int n = 1)
    {
        for (int i = 0; i < n; i++)
        {
            Peers[id].Tick();
            var outMsgs = Take(Peers[id]).Where(Pass).ToArray();
            Send(outMsgs);
        }
    }

    public void Heartbeat(ulong leader) => Send(new Message { From = leader, To = leader, Type = MessageType.MsgBeat });

    /// <summary>Data of all entries in r's log (empty entries skipped).</summary>
    public static string[] LogData(Raft r) =>
        r.Log.AllEntries().Where(e => e.Data.Length > 0 && e.Type == EntryType.EntryNormal).Select(e => e.Data.ToStringUtf8()).ToArray();

    public static string Describe(Raft r) =>
        string.Join(",", r.Log.AllEntries().Select(e => $"{e.Index}@{e.Term}"));
}
