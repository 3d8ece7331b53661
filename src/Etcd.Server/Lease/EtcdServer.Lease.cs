using Etcd.Api;
using Etcd.Server.Lease;
using Etcd.Server.Transport;
using Etcd.Storage.Backend;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// Forwards lease requests that only the leader can serve (etcd forwards them over the peer transport to
/// the leader's <c>/leases</c> and <c>/leases/internal</c> handlers). The member uses one over its peer transport
/// (<see cref="IRaftTransport.ForwardLeaseAsync"/>) unless <see cref="EtcdServer.LeaseForwarder"/> was set before
/// <see cref="EtcdServer.StartLoop"/>. Implementations throw <see cref="IOException"/> when the leader cannot be
/// reached and <see cref="LessorNotPrimaryException"/> when it is not (yet) the primary; the caller retries both.
/// </summary>
public interface ILeaseForwarder
{
    /// <summary>Renews lease <paramref name="id"/> on member <paramref name="leaderId"/>; returns its TTL in seconds
    /// (throws <see cref="EtcdErrors.LeaseNotFound"/> as the leader does).</summary>
    Task<long> RenewAsync(ulong leaderId, long id, CancellationToken cancellationToken);

    /// <summary>Asks member <paramref name="leaderId"/> for the TimeToLive of a lease.</summary>
    Task<LeaseTimeToLiveResponse> TimeToLiveAsync(ulong leaderId, LeaseTimeToLiveRequest request, CancellationToken cancellationToken);
}

public sealed partial class EtcdServer
{
    private Lessor? _lessor;

    /// <summary>The member's lessor (leases, their keys and expiry).</summary>
    public Lessor Lessor => _lessor ?? throw new InvalidOperationException("lessor not set");

    /// <summary>Where a follower forwards keep-alives and TimeToLive (set to the peer-transport forwarder by
    /// <see cref="StartLoop"/> when still null; see <see cref="ILeaseForwarder"/>).</summary>
    public ILeaseForwarder? LeaseForwarder { get; set; }

    /// <summary>
    /// LeaseGrant through raft (etcd's <c>EtcdServer.LeaseGrant</c>): a request ID of 0 is replaced by a
    /// positive ID from the member's request ID generator before proposing. Errors:
    /// <see cref="EtcdErrors.LeaseExist"/>, <see cref="EtcdErrors.LeaseTtlTooLarge"/>, proposal errors.
    /// </summary>
    public async Task<LeaseGrantResponse> LeaseGrantAsync(LeaseGrantRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        while (request.ID == 0)
        {
            request.ID = (long)(_reqIds.Next() & long.MaxValue);
        }

        var resp = (LeaseGrantResponse)(await ProposeAsync(new InternalRaftRequest { LeaseGrant = request }, cancellationToken).ConfigureAwait(false))!;
        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>LeaseRevoke through raft; the lease's keys go in one revision. Errors: <see cref="EtcdErrors.LeaseNotFound"/>.</summary>
    public async Task<LeaseRevokeResponse> LeaseRevokeAsync(LeaseRevokeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var resp = (LeaseRevokeResponse)(await ProposeAsync(new InternalRaftRequest { LeaseRevoke = request }, cancellationToken).ConfigureAwait(false))!;
        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>
    /// Renews lease <paramref name="id"/> (etcd's <c>EtcdServer.LeaseRenew</c>): on the leader after its applied
    /// index caught up with the commit index; a follower forwards to the leader through
    /// <see cref="LeaseForwarder"/> (by default over the peer transport). While there is no leader, the leader is
    /// unreachable or not yet promoted, the call retries until the request timeout. Returns the TTL in seconds.
    /// Errors: <see cref="EtcdErrors.LeaseNotFound"/>, <see cref="EtcdErrors.Timeout"/> when no leader answers within
    /// the request timeout, <see cref="EtcdErrors.Stopped"/>.
    /// </summary>
    public Task<long> LeaseRenewAsync(long id, CancellationToken cancellationToken) =>
        OnLeaderAsync(
            ct => RenewAsLeaderAsync(id, ct),
            (fwd, leader, ct) => fwd.RenewAsync(leader, id, ct),
            localWithoutForwarder: false,
            cancellationToken);

    /// <summary>
    /// LeaseTimeToLive (etcd's <c>EtcdServer.LeaseTimeToLive</c>): served by the leader, forwarded by a follower
    /// (retried as <see cref="LeaseRenewAsync"/> while the leader is unknown or unreachable).
    /// TTL is the remaining whole seconds, GrantedTTL the granted TTL, Keys the attached keys when asked.
    /// Errors: <see cref="EtcdErrors.LeaseNotFound"/> (the gRPC layer turns it into TTL -1), <see cref="EtcdErrors.Timeout"/>.
    /// </summary>
    public Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return OnLeaderAsync(
            ct => TimeToLiveLocalAsync(request, ct),
            (fwd, leader, ct) => fwd.TimeToLiveAsync(leader, request, ct),
            localWithoutForwarder: true,
            cancellationToken);
    }

    /// <summary>
    /// Runs a lease request where the leader's lessor is: <paramref name="local"/> on the leader (or, with
    /// <paramref name="localWithoutForwarder"/>, on any member without a <see cref="LeaseForwarder"/>), else
    /// <paramref name="forward"/> to the known leader. While there is no leader, or it cannot be reached or is not
    /// promoted yet, retries every heartbeat until the request timeout: <see cref="EtcdErrors.Timeout"/>, or
    /// <see cref="EtcdErrors.Stopped"/> when the server stops.
    /// </summary>
    private async Task<T> OnLeaderAsync<T>(
        Func<CancellationToken, Task<T>> local,
        Func<ILeaseForwarder, ulong, CancellationToken, Task<T>> forward,
        bool localWithoutForwarder,
        CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        cts.CancelAfter(_requestTimeout);
        try
        {
            while (true)
            {
                try
                {
                    var forwarder = LeaseForwarder;
                    if (IsLeader || (forwarder is null && localWithoutForwarder))
                    {
                        return await local(cts.Token).ConfigureAwait(false);
                    }

                    if (forwarder is not null && Leader is var leader and not 0)
                    {
                        return await forward(forwarder, leader, cts.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is LessorNotPrimaryException or IOException)
                {
                    // leadership moved, the leader is not promoted yet, or it cannot be reached: go round again
                }

                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(10, _options.HeartbeatIntervalMs)), _options.Time, cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw (_stopping.IsCancellationRequested ? EtcdErrors.Stopped : EtcdErrors.Timeout).ToException();
        }
    }

    private async Task<long> RenewAsLeaderAsync(long id, CancellationToken cancellationToken)
    {
        await WaitAppliedAsync(CommittedIndex, cancellationToken).ConfigureAwait(false);
        return await Lessor.RenewAsync(id, cancellationToken).ConfigureAwait(false);
    }

    private async Task<LeaseTimeToLiveResponse> TimeToLiveLocalAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        await WaitAppliedAsync(CommittedIndex, cancellationToken).ConfigureAwait(false);
        var l = Lessor.Lookup(request.ID) ?? throw EtcdErrors.LeaseNotFound.ToException();
        var resp = new LeaseTimeToLiveResponse { Header = new ResponseHeader(), ID = l.Id, TTL = l.RemainingTtl, GrantedTTL = l.GrantedTtl };
        if (request.Keys)
        {
            foreach (var k in l.Keys)
            {
                resp.Keys.Add(Google.Protobuf.ByteString.CopyFrom(k));
            }
        }

        FillHeader(resp.Header);
        return resp;
    }

    /// <summary>
    /// Serves a lease request a follower forwarded over the peer transport (<see cref="TransportLeaseForwarder"/> wrote
    /// it): renewals and TimeToLive are answered only while this member leads and its lessor is primary.
    /// </summary>
    internal async Task<byte[]> ServeForwardedLeaseAsync(byte[] request, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        cts.CancelAfter(_requestTimeout);
        try
        {
            if (request.Length == 0 || !IsLeader)
            {
                return ForwardedLease.NotPrimary();
            }

            var body = request.AsSpan(1);
            switch (request[0])
            {
                case ForwardedLease.Renew:
                    var ka = LeaseKeepAliveRequest.Parser.ParseFrom(body);
                    var ttl = await RenewAsLeaderAsync(ka.ID, cts.Token).ConfigureAwait(false);
                    return ForwardedLease.Ok(new LeaseKeepAliveResponse { ID = ka.ID, TTL = ttl });
                case ForwardedLease.TimeToLive:
                    var ttlReq = LeaseTimeToLiveRequest.Parser.ParseFrom(body);
                    return ForwardedLease.Ok(await TimeToLiveLocalAsync(ttlReq, cts.Token).ConfigureAwait(false));
                default:
                    return ForwardedLease.NotPrimary();
            }
        }
        catch (LessorNotPrimaryException)
        {
            return ForwardedLease.NotPrimary();
        }
        catch (EtcdException e)
        {
            return ForwardedLease.Error(e.Error);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ForwardedLease.Error(EtcdErrors.Timeout);
        }
    }

    /// <summary>LeaseLeases: the IDs of all leases this member knows (etcd serves it locally).</summary>
    public LeaseLeasesResponse LeaseLeases()
    {
        var resp = new LeaseLeasesResponse { Header = new ResponseHeader() };
        foreach (var id in Lessor.Leases())
        {
            resp.Leases.Add(new LeaseStatus { ID = id });
        }

        FillHeader(resp.Header);
        return resp;
    }

    /// <summary>The lessor a member with <paramref name="options"/> uses over <paramref name="backend"/>.</summary>
    internal static Lessor CreateLessor(EtcdOptions options, IBackend backend, ILoggerFactory loggerFactory)
        => new(
            backend,
            new LessorConfig
            {
                MinLeaseTtlSeconds = LessorConfig.MinTtlFor(options.ElectionTimeoutMs, options.HeartbeatIntervalMs),
                CheckpointingEnabled = options.ExperimentalEnableLeaseCheckpoint,
                PersistCheckpoints = options.ExperimentalEnableLeaseCheckpointPersist,
                CheckpointInterval = options.LeaseCheckpointInterval > TimeSpan.Zero ? options.LeaseCheckpointInterval : TimeSpan.FromMinutes(5),
                TimeProvider = options.Time,
            },
            loggerFactory.CreateLogger("lessor"));

    /// <summary>Connects the lessor's expiry and checkpoints to raft proposals and starts its timer.</summary>
    private void StartLessor()
    {
        LeaseForwarder ??= new TransportLeaseForwarder(Transport);
        Lessor.Start(
            async id =>
            {
                await Auth.AuthCall.AsRootAsync(() => ProposeAsync(new InternalRaftRequest { LeaseRevoke = new LeaseRevokeRequest { ID = id } }, _stopping.Token)).ConfigureAwait(false);
                Metrics.Server.LeasesExpired.Inc();
            },
            cp => ProposeAsync(new InternalRaftRequest { LeaseCheckpoint = cp }, _stopping.Token));
    }

    /// <summary>Applies LeaseGrant / LeaseRevoke / LeaseCheckpoint; false for other requests.</summary>
    private bool TryApplyLease(InternalRaftRequest req, out object? result)
    {
        if (req.LeaseGrant is { } g)
        {
            var ttl = Lessor.Grant(g.ID, g.TTL);
            result = new LeaseGrantResponse { Header = new ResponseHeader(), ID = g.ID, TTL = ttl };
            return true;
        }

        if (req.LeaseRevoke is { } r)
        {
            Lessor.Revoke(r.ID);
            result = new LeaseRevokeResponse { Header = new ResponseHeader() };
            return true;
        }

        if (req.LeaseCheckpoint is { } c)
        {
            Lessor.Checkpoint(c);
            result = new LeaseCheckpointResponse { Header = new ResponseHeader() };
            return true;
        }

        result = null;
        return false;
    }

    /// <summary>The leader applied its term's empty entry: promote the lessor (etcd's applyEntryNormal).</summary>
    private void PromoteLessorIfLeader()
    {
        if (IsLeader && !Lessor.IsPrimary)
        {
            Lessor.Promote(TimeSpan.FromMilliseconds(_options.ElectionTimeoutMs));
        }
    }

    /// <summary>Leadership changed in raft's soft state: a member that is not leader stops expiring leases.</summary>
    private void DemoteLessorUnlessLeader()
    {
        if (!IsLeader && _lessor is { IsPrimary: true })
        {
            _lessor.Demote();
        }
    }
}

/// <summary>
/// The payloads of lease requests forwarded between members (our own format, carried opaquely by the peer
/// transport): request = one op byte (<see cref="Renew"/>, <see cref="TimeToLive"/>) + the protobuf request; answer =
/// status byte 0 + the protobuf response, 1 = not the primary lessor (the follower retries), or 2 + gRPC status code
/// byte + etcd's error string.
/// </summary>
internal static class ForwardedLease
{
    public const byte Renew = 1;
    public const byte TimeToLive = 2;

    private const byte StatusOk = 0;
    private const byte StatusNotPrimary = 1;
    private const byte StatusError = 2;

    public static byte[] Request(byte op, Google.Protobuf.IMessage body)
    {
        var b = new byte[1 + body.CalculateSize()];
        b[0] = op;
        Google.Protobuf.MessageExtensions.WriteTo(body, b.AsSpan(1));
        return b;
    }

    public static byte[] Ok(Google.Protobuf.IMessage body) => Request(StatusOk, body);

    public static byte[] NotPrimary() => [StatusNotPrimary];

    public static byte[] Error(EtcdError e) => [StatusError, (byte)e.Code, .. System.Text.Encoding.UTF8.GetBytes(e.Message)];

    /// <summary>Parses an answer: the response, or throws what the leader reported (<see cref="LessorNotPrimaryException"/>
    /// for a retry, the leader's <see cref="EtcdException"/> with etcd's known error when the message matches one).</summary>
    public static T Parse<T>(byte[] answer, Google.Protobuf.MessageParser<T> parser)
        where T : Google.Protobuf.IMessage<T>
    {
        if (answer.Length == 0)
        {
            throw new IOException("empty forwarded lease answer");
        }

        switch (answer[0])
        {
            case StatusOk:
                return parser.ParseFrom(answer.AsSpan(1));
            case StatusError when answer.Length >= 2:
                var message = System.Text.Encoding.UTF8.GetString(answer.AsSpan(2));
                var known = message == EtcdErrors.LeaseNotFound.Message ? EtcdErrors.LeaseNotFound
                    : message == EtcdErrors.Timeout.Message ? EtcdErrors.Timeout
                    : new EtcdError((Api.Grpc.StatusCode)answer[1], message);
                throw known.ToException();
            default:
                throw new LessorNotPrimaryException();
        }
    }
}

/// <summary>
/// The default <see cref="ILeaseForwarder"/>: sends keep-alives and TimeToLive to the leader over the peer transport
/// (<see cref="IRaftTransport.ForwardLeaseAsync"/>), as etcd posts them to the leader's peer <c>/leases</c> handlers.
/// Thread-safe. Throws <see cref="IOException"/> when the leader cannot be reached and
/// <see cref="LessorNotPrimaryException"/> when the member asked is not (yet) the primary.
/// </summary>
internal sealed class TransportLeaseForwarder(IRaftTransport transport) : ILeaseForwarder
{
    public async Task<long> RenewAsync(ulong leaderId, long id, CancellationToken cancellationToken)
    {
        var answer = await transport.ForwardLeaseAsync(leaderId, ForwardedLease.Request(ForwardedLease.Renew, new LeaseKeepAliveRequest { ID = id }), cancellationToken).ConfigureAwait(false);
        return ForwardedLease.Parse(answer, LeaseKeepAliveResponse.Parser).TTL;
    }

    public async Task<LeaseTimeToLiveResponse> TimeToLiveAsync(ulong leaderId, LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        var answer = await transport.ForwardLeaseAsync(leaderId, ForwardedLease.Request(ForwardedLease.TimeToLive, request), cancellationToken).ConfigureAwait(false);
        return ForwardedLease.Parse(answer, LeaseTimeToLiveResponse.Parser);
    }
}
