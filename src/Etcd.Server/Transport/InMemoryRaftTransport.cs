using System.Collections.Concurrent;
using Etcd.Raft;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>
/// An in-process network joining <see cref="InMemoryRaftTransport"/>s (multi-member clusters in tests), with
/// fault hooks: cut links one way (<see cref="Cut"/>), isolate a member (<see cref="Isolate"/>), split the
/// members into two sides (<see cref="Partition"/>), or drop by predicate (<see cref="DropFilter"/>).
/// Delivery is synchronous into the receiver's raft-loop queue (a deep copy of each message), in send order.
/// Thread-safe.
/// </summary>
public sealed class InMemoryRaftNetwork
{
    private readonly ConcurrentDictionary<ulong, InMemoryRaftTransport> _members = new();
    private readonly ConcurrentDictionary<(ulong From, ulong To), bool> _cut = new();

    /// <summary>When set, a message for which it returns true is dropped (after the link checks). Called on the sender's loop thread.</summary>
    public Func<Message, bool>? DropFilter { get; set; }

    /// <summary>Messages delivered so far.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    private long _delivered;

    /// <summary>Creates a transport for one member of this network; it joins when the member starts it.</summary>
    public InMemoryRaftTransport CreateTransport() => new(this);

    /// <summary>Drops every message from <paramref name="from"/> to <paramref name="to"/> until <see cref="Heal"/>.</summary>
    public void Cut(ulong from, ulong to) => _cut[(from, to)] = true;

    /// <summary>Cuts <paramref name="id"/> off from every other member, both ways.</summary>
    public void Isolate(ulong id)
    {
        foreach (var other in _members.Keys)
        {
            if (other != id)
            {
                Cut(id, other);
                Cut(other, id);
            }
        }
    }

    /// <summary>Cuts every link between the two sides, both ways.</summary>
    public void Partition(IEnumerable<ulong> sideA, IEnumerable<ulong> sideB)
    {
        var b = sideB.ToList();
        foreach (var a in sideA)
        {
            foreach (var x in b)
            {
                Cut(a, x);
                Cut(x, a);
            }
        }
    }

    /// <summary>Restores every link.</summary>
    public void Heal() => _cut.Clear();

    internal bool IsCut(ulong from, ulong to) => _cut.ContainsKey((from, to));

    internal void Register(ulong id, InMemoryRaftTransport t) => _members[id] = t;

    internal void Unregister(ulong id, InMemoryRaftTransport t) => _members.TryRemove(new KeyValuePair<ulong, InMemoryRaftTransport>(id, t));

    internal bool Deliver(ulong from, Message m)
    {
        if (IsCut(from, m.To) || !_members.TryGetValue(m.To, out var target) || target.Handler is not { } h)
        {
            return false;
        }

        if (DropFilter is { } f && f(m))
        {
            return false;
        }

        if (h.IsRemoved(from))
        {
            return false;
        }

        Interlocked.Increment(ref _delivered);
        return h.Process(m.Clone());
    }

    internal bool IsReachable(ulong from, ulong to) => !IsCut(from, to) && !IsCut(to, from) && _members.ContainsKey(to);

    internal IRaftTransportHandler? HandlerOf(ulong from, ulong id)
        => IsReachable(from, id) && _members.TryGetValue(id, out var t) ? t.Handler : null;

    internal RemoteCluster? Describe(IReadOnlyList<string> peerUrls)
    {
        foreach (var (id, t) in _members)
        {
            if (t.Handler is not { } h)
            {
                continue;
            }

            var c = h.DescribeCluster();
            var self = c.Members.FirstOrDefault(m => m.Id == id);
            if (self is not null && self.PeerUrls.Intersect(peerUrls.Select(u => u.TrimEnd('/'))).Any())
            {
                return c;
            }
        }

        return null;
    }
}

/// <summary>
/// One member's end of an <see cref="InMemoryRaftNetwork"/>. Messages to peers not added with
/// <see cref="AddPeer"/>, or over cut links, are dropped (a dropped MsgSnap reports failure, as a failed
/// snapshot stream would). Thread-safe.
/// </summary>
public sealed class InMemoryRaftTransport : IRaftTransport
{
    private readonly InMemoryRaftNetwork _network;
    private readonly ConcurrentDictionary<ulong, DateTimeOffset> _peers = new();

    internal InMemoryRaftTransport(InMemoryRaftNetwork network) => _network = network;

    internal IRaftTransportHandler? Handler { get; private set; }

    /// <inheritdoc/>
    public void Start(IRaftTransportHandler handler)
    {
        Handler = handler;
        _network.Register(handler.MemberId, this);
    }

    /// <inheritdoc/>
    public void Send(IReadOnlyList<Message> messages)
    {
        if (Handler is not { } h)
        {
            return;
        }

        foreach (var m in messages)
        {
            if (!_peers.ContainsKey(m.To))
            {
                continue;
            }

            var ok = _network.Deliver(h.MemberId, m);
            if (m.Type == MessageType.MsgSnap)
            {
                h.ReportSnapshot(m.To, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
            }
            else if (!ok && m.Type == MessageType.MsgApp)
            {
                h.ReportUnreachable(m.To);
            }
        }
    }

    /// <inheritdoc/>
    public void AddPeer(ulong id, IReadOnlyList<string> peerUrls) => _peers.TryAdd(id, DateTimeOffset.UtcNow);

    /// <inheritdoc/>
    public void RemovePeer(ulong id) => _peers.TryRemove(id, out _);

    /// <inheritdoc/>
    public void UpdatePeer(ulong id, IReadOnlyList<string> peerUrls)
    {
    }

    /// <inheritdoc/>
    public DateTimeOffset? ActiveSince(ulong id)
        => Handler is { } h && _peers.TryGetValue(id, out var since) && _network.IsReachable(h.MemberId, id) ? since : null;

    /// <inheritdoc/>
    public Task<RemoteCluster?> FetchClusterAsync(IReadOnlyList<string> peerUrls, CancellationToken cancellationToken)
        => Task.FromResult(_network.Describe(peerUrls));

    /// <inheritdoc/>
    public async Task<Etcd.Api.EtcdError?> ForwardPromoteAsync(ulong leaderId, ulong learnerId, CancellationToken cancellationToken)
    {
        var leader = Handler is { } h ? _network.HandlerOf(h.MemberId, leaderId) : null;
        if (leader is null)
        {
            throw new IOException($"leader {leaderId:x} is unreachable");
        }

        return await leader.PromoteAsLeaderAsync(learnerId, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<byte[]> ForwardLeaseAsync(ulong leaderId, byte[] request, CancellationToken cancellationToken)
    {
        var leader = Handler is { } h ? _network.HandlerOf(h.MemberId, leaderId) : null;
        if (leader is null)
        {
            throw new IOException($"leader {leaderId:x} is unreachable");
        }

        return await leader.ServeLeaseAsync([.. request], cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<Etcdserverpb.HashKVResponse> FetchHashKvAsync(ulong peerId, long revision, CancellationToken cancellationToken)
    {
        var peer = Handler is { } h ? _network.HandlerOf(h.MemberId, peerId) : null;
        if (peer is null)
        {
            throw new IOException($"member {peerId:x} is unreachable");
        }

        return (await peer.ServeHashKvAsync(revision, cancellationToken).ConfigureAwait(false)).Clone();
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        if (Handler is { } h)
        {
            _network.Unregister(h.MemberId, this);
        }

        return ValueTask.CompletedTask;
    }
}
