using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft;

/// <summary>A pending ReadIndex request on the leader and the heartbeat acks collected for it (read_only.go).</summary>
internal sealed class ReadIndexStatus
{
    public required Message Req;
    public ulong Index;
    public readonly Dictionary<ulong, bool> Acks = new();
}

/// <summary>Queue of ReadIndex requests awaiting quorum confirmation, keyed by request context (read_only.go).</summary>
internal sealed class ReadOnly
{
    public readonly ReadOnlyOption Option;
    private readonly Dictionary<ByteString, ReadIndexStatus> _pending = new();
    private readonly List<ByteString> _queue = new();

    public ReadOnly(ReadOnlyOption option) => Option = option;

    /// <summary>Queues a request read at commit index <paramref name="index"/>; duplicates of a pending context are ignored.</summary>
    public void AddRequest(ulong index, Message m)
    {
        var ctx = m.Entries[0].Data;
        if (_pending.ContainsKey(ctx)) return;
        _pending[ctx] = new ReadIndexStatus { Req = m, Index = index };
        _queue.Add(ctx);
    }

    /// <summary>Records a heartbeat ack from <paramref name="id"/> for the request with <paramref name="context"/>;
    /// returns the acks so far, or null when the context is unknown.</summary>
    public Dictionary<ulong, bool>? RecvAck(ulong id, ByteString context)
    {
        if (!_pending.TryGetValue(context, out var rs)) return null;
        rs.Acks[id] = true;
        return rs.Acks;
    }

    /// <summary>Dequeues every request up to and including the one with m.Context (all are confirmed by it).</summary>
    public List<ReadIndexStatus>? Advance(Message m)
    {
        var ctx = m.Context;
        int found = -1;
        for (int i = 0; i < _queue.Count; i++)
        {
            if (_queue[i].Equals(ctx)) { found = i; break; }
        }
        if (found < 0) return null;
        var rss = new List<ReadIndexStatus>(found + 1);
        for (int i = 0; i <= found; i++)
        {
            if (!_pending.Remove(_queue[i], out var rs))
                throw new InvalidOperationException("cannot find corresponding read state from pending map");
            rss.Add(rs);
        }
        _queue.RemoveRange(0, found + 1);
        return rss;
    }

    /// <summary>Context of the newest pending request, or null.</summary>
    public ByteString? LastPendingRequestCtx() => _queue.Count == 0 ? null : _queue[^1];
}
