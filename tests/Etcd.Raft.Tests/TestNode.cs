using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>A RawNode plus its "disk" (a MemoryStorage) and state machine (applied entries), driven by hand.</summary>
internal sealed class TestNode
{
    public ulong Id { get; }
    public MemoryStorage Storage { get; private set; }
    public RawNode Node { get; private set; }
    public RaftConfig Config { get; }
    public List<Entry> Applied { get; } = new();
    public List<ReadState> ReadStates { get; } = new();
    public ConfState? LastConfState { get; private set; }
    public List<ConfState> ConfStates { get; } = new();
    public HardState PersistedHardState { get; private set; } = new();
    public List<SoftState> SoftStates { get; } = new();

    public TestNode(ulong id, MemoryStorage? storage = null, Action<RaftConfig>? configure = null, int seed = 0)
    {
        Id = id;
        Storage = storage ?? new MemoryStorage();
        Config = new RaftConfig
        {
            Id = id,
            ElectionTick = 10,
            HeartbeatTick = 1,
            Storage = Storage,
            MaxInflightMsgs = 256,
            Random = new Random(seed == 0 ? (int)id : seed),
        };
        configure?.Invoke(Config);
        Node = new RawNode(Config);
    }

    public static TestNode Bootstrapped(ulong id, ulong[] peers, Action<RaftConfig>? configure = null)
    {
        var n = new TestNode(id, configure: configure);
        n.Node.Bootstrap(peers.Select(p => new Peer(p)).ToArray());
        return n;
    }

    public Etcd.Raft.Raft Raft => Node.Raft;

    /// <summary>Processes one Ready as an etcd server would: persist, apply, advance. Returns its messages.</summary>
    public List<Message> HandleReady()
    {
        var msgs = new List<Message>();
        for (int guard = 0; guard < 100 && Node.HasReady(); guard++)
        {
            var rd = Node.GetReady();
            if (rd.SoftState is not null) SoftStates.Add(rd.SoftState);
            if (rd.HasHardState)
            {
                Storage.SetHardState(rd.HardState);
                PersistedHardState = rd.HardState.Clone();
            }
            if (rd.Snapshot is not null)
            {
                Storage.ApplySnapshot(rd.Snapshot);
                LastConfState = rd.Snapshot.Metadata.ConfState;
            }
            Storage.Append(rd.Entries);
            msgs.AddRange(rd.Messages);
            foreach (var e in rd.CommittedEntries)
            {
                // After a restart raft replays committed entries; the state machine skips what it already has,
                // but configuration changes are always re-applied to raft (as etcd's server does).
                if (Applied.Count == 0 || e.Index > Applied[^1].Index) Applied.Add(e);
                if (e.Type == EntryType.EntryConfChange)
                    ConfStates.Add(LastConfState = Node.ApplyConfChange(ConfChange.Parser.ParseFrom(e.Data)));
                else if (e.Type == EntryType.EntryConfChangeV2)
                    ConfStates.Add(LastConfState = Node.ApplyConfChange(ConfChangeV2.Parser.ParseFrom(e.Data)));
            }
            ReadStates.AddRange(rd.ReadStates);
            Node.Advance(rd);
        }
        return msgs;
    }

    /// <summary>Simulates a crash and restart: a new RawNode over storage rebuilt from what was persisted.</summary>
    public void Restart(Action<RaftConfig>? configure = null)
    {
        var fresh = new MemoryStorage();
        var snap = Storage.Snapshot();
        if (snap.Metadata.Index > 0) fresh.ApplySnapshot(snap);
        ulong first = Storage.FirstIndex(), last = Storage.LastIndex();
        if (last >= first) fresh.Append(Storage.Entries(first, last + 1, ulong.MaxValue));
        fresh.SetHardState(PersistedHardState);
        var cfg = new RaftConfig
        {
            Id = Id, ElectionTick = Config.ElectionTick, HeartbeatTick = Config.HeartbeatTick, Storage = fresh,
            MaxInflightMsgs = Config.MaxInflightMsgs,
            CheckQuorum = Config.CheckQuorum, PreVote = Config.PreVote, ReadOnlyOption = Config.ReadOnlyOption,
            MaxSizePerMsg = Config.MaxSizePerMsg, Random = Config.Random,
        };
        configure?.Invoke(cfg);
        Storage = fresh;
        Node = new RawNode(cfg);
    }

    public List<byte[]> AppliedData() =>
        Applied.Where(e => e.Type == EntryType.EntryNormal && e.Data.Length > 0).Select(e => e.Data.ToByteArray()).ToList();

    public static byte[] B(string s) => System.Text.Encoding.UTF8.GetBytes(s);
}
