using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>
/// Carries raft messages between members (etcd's <c>rafthttp.Transporter</c>).
/// Implementations: <see cref="InMemoryRaftTransport"/> (in-process clusters in tests, with fault hooks) and
/// <see cref="TcpRaftTransport"/> (etcd 3.4's rafthttp over HTTP/1.1, optionally TLS, so etcd's members and ours mix).
/// </summary>
/// <remarks>
/// Concurrency: every method is thread-safe and non-blocking (<see cref="Send"/> only enqueues). Received
/// messages and delivery feedback are handed to the <see cref="IRaftTransportHandler"/> given to
/// <see cref="Start"/>, from transport threads; the handler hands them on to the raft loop.
/// </remarks>
public interface IRaftTransport : IAsyncDisposable
{
    /// <summary>Binds the transport to its member; messages are delivered to <paramref name="handler"/> from now on.</summary>
    void Start(IRaftTransportHandler handler);

    /// <summary>
    /// Queues <paramref name="messages"/> for their peers (<c>Message.To</c>). Messages to unknown peers are dropped.
    /// A full per-peer queue drops the message and reports the peer unreachable (etcd's back-pressure).
    /// MsgSnap travels on its own stream; its outcome comes back through <see cref="IRaftTransportHandler.ReportSnapshot"/>.
    /// </summary>
    void Send(IReadOnlyList<Message> messages);

    /// <summary>
    /// Whether MsgSnap should come through <see cref="SendSnapshot"/> as etcd sends it: the v2 store JSON as the message's
    /// snapshot data and the bbolt database streamed after it. False = the database travels inside the message's data.
    /// </summary>
    bool SendsSnapshotDb => false;

    /// <summary>
    /// Sends a MsgSnap with its database image (only when <see cref="SendsSnapshotDb"/>); the outcome comes back through
    /// <see cref="IRaftTransportHandler.ReportSnapshot"/>. Takes ownership of <paramref name="snapshot"/>.
    /// </summary>
    void SendSnapshot(OutgoingSnapshot snapshot)
    {
        snapshot.Dispose();
        throw new NotSupportedException("this transport carries the database inside MsgSnap");
    }

    /// <summary>Adds a peer reachable at <paramref name="peerUrls"/> (ignored when already known).</summary>
    void AddPeer(ulong id, IReadOnlyList<string> peerUrls);

    /// <summary>Forgets a peer and closes its streams.</summary>
    void RemovePeer(ulong id);

    /// <summary>Changes a known peer's URLs (member update).</summary>
    void UpdatePeer(ulong id, IReadOnlyList<string> peerUrls);

    /// <summary>Since when the peer's stream has been connected; null when not connected (etcd's <c>ActiveSince</c>).</summary>
    DateTimeOffset? ActiveSince(ulong id);

    /// <summary>
    /// Asks the members at <paramref name="peerUrls"/> for the cluster they belong to (used by
    /// <c>--initial-cluster-state existing</c>, as etcd 3.4 reads a peer's <c>/members</c>). Returns the first answer,
    /// or null when none answers within <paramref name="cancellationToken"/>.
    /// </summary>
    Task<RemoteCluster?> FetchClusterAsync(IReadOnlyList<string> peerUrls, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the leader <paramref name="leaderId"/> to promote learner <paramref name="learnerId"/> (etcd forwards MemberPromote
    /// from followers to the leader, which alone knows whether the learner is in sync). Returns the leader's error, or null
    /// on success. Throws <see cref="IOException"/> when the leader cannot be reached.
    /// </summary>
    Task<Etcd.Api.EtcdError?> ForwardPromoteAsync(ulong leaderId, ulong learnerId, CancellationToken cancellationToken);

    /// <summary>
    /// Hands an opaque lease request to member <paramref name="leaderId"/> and returns its opaque answer (a follower
    /// forwards keep-alives and TimeToLive to the leader, as etcd does over its peer <c>/leases</c> handlers; the
    /// payload format belongs to the server, see <see cref="IRaftTransportHandler.ServeLeaseAsync"/>). Throws
    /// <see cref="IOException"/> when the member cannot be reached.
    /// </summary>
    Task<byte[]> ForwardLeaseAsync(ulong leaderId, byte[] request, CancellationToken cancellationToken)
        => Task.FromException<byte[]>(new IOException("this transport does not forward lease requests"));

    /// <summary>
    /// Asks member <paramref name="peerId"/> for its HashKV at <paramref name="revision"/> (0 = its current revision), as
    /// etcd's corruption checks ask a peer's <c>/members/hashkv</c>. The answer carries the hash, the peer's compacted
    /// revision and its current revision (<c>Header.Revision</c>). Throws <see cref="Etcd.Api.EtcdException"/> with
    /// <see cref="Etcd.Api.EtcdErrors.Compacted"/> or <see cref="Etcd.Api.EtcdErrors.FutureRev"/> when the peer cannot hash
    /// that revision, <see cref="IOException"/> when it cannot be reached.
    /// </summary>
    Task<Etcdserverpb.HashKVResponse> FetchHashKvAsync(ulong peerId, long revision, CancellationToken cancellationToken)
        => Task.FromException<Etcdserverpb.HashKVResponse>(new IOException("this transport does not ask peers for hashes"));
}

/// <summary>The receiving side of an <see cref="IRaftTransport"/>: the member. Methods are called from transport threads.</summary>
public interface IRaftTransportHandler
{
    /// <summary>This member's ID.</summary>
    ulong MemberId { get; }

    /// <summary>The cluster ID every connection must carry (else "request cluster ID mismatch").</summary>
    ulong ClusterId { get; }

    /// <summary>Hands a received message to the raft loop. Returns false when the member stopped.</summary>
    bool Process(Message message);

    /// <summary>The last message to <paramref name="id"/> could not be delivered.</summary>
    void ReportUnreachable(ulong id);

    /// <summary>The outcome of sending a snapshot to <paramref name="id"/>.</summary>
    void ReportSnapshot(ulong id, Etcd.Raft.SnapshotStatus status);

    /// <summary>
    /// An append (MsgApp) to <paramref name="to"/> was written to its stream in <paramref name="elapsed"/>
    /// (<paramref name="succeeded"/>), or dropped undelivered (etcd's <c>FollowerStats.Succ</c>/<c>Fail</c>, shown by
    /// <c>/v2/stats/leader</c>). Called on the hot path: must not block.
    /// </summary>
    void ReportAppendSent(ulong to, TimeSpan elapsed, bool succeeded)
    {
    }

    /// <summary>Whether <paramref name="id"/> was removed from the cluster (its streams are rejected).</summary>
    bool IsRemoved(ulong id);

    /// <summary>A peer told us we were removed from the cluster; the member stops.</summary>
    void OnRemovedByPeer();

    /// <summary>Promotes a learner on behalf of a follower (this member is expected to lead); returns the error or null.</summary>
    Task<Etcd.Api.EtcdError?> PromoteAsLeaderAsync(ulong learnerId, CancellationToken cancellationToken);

    /// <summary>Serves a lease request forwarded by a follower (<see cref="IRaftTransport.ForwardLeaseAsync"/>); returns the answer bytes.</summary>
    Task<byte[]> ServeLeaseAsync(byte[] request, CancellationToken cancellationToken)
        => Task.FromException<byte[]>(new NotSupportedException("lease requests are not served here"));

    /// <summary>
    /// Serves a peer's HashKV request (<see cref="IRaftTransport.FetchHashKvAsync"/>) from this member's store. Throws
    /// <see cref="Etcd.Api.EtcdException"/> (compacted or future revision), which the transport hands back to the asker.
    /// </summary>
    Task<Etcdserverpb.HashKVResponse> ServeHashKvAsync(long revision, CancellationToken cancellationToken)
        => Task.FromException<Etcdserverpb.HashKVResponse>(new NotSupportedException("hash requests are not served here"));

    /// <summary>
    /// Saves the database image that follows a MsgSnap on the wire as <c>member/snap/%016x.snap.db</c> for
    /// <paramref name="index"/> (etcd's <c>SaveDBFrom</c>), before the message is handed to raft. Returns the bytes saved.
    /// </summary>
    Task<long> SaveSnapshotDbAsync(Stream db, ulong index, CancellationToken cancellationToken)
        => Task.FromException<long>(new NotSupportedException("snapshot databases are not saved here"));

    /// <summary>The cluster version as decided ("3.4.0"), or null when not decided yet; served on the peer <c>/version</c>.</summary>
    string? ClusterVersion => null;

    /// <summary>The cluster as this member sees it, for peers that join (<see cref="IRaftTransport.FetchClusterAsync"/>).</summary>
    RemoteCluster DescribeCluster();
}

/// <summary>A cluster as a peer describes it: its ID and members (with their IDs, names and URLs).</summary>
/// <param name="ClusterId">The cluster ID.</param>
/// <param name="Members">The members.</param>
public sealed record RemoteCluster(ulong ClusterId, IReadOnlyList<Membership.Member> Members);
