using Etcd.Api;
using Etcd.Server.Lease;
using Etcd.Storage.Backend;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// Forwards lease requests that only the leader can serve (etcd forwards them over the peer transport to
/// the leader's <c>/leases</c> and <c>/leases/internal</c> handlers). Set <see cref="EtcdServer.LeaseForwarder"/>
/// once the peer transport exists; without one, a follower answers after the member becomes leader or
/// with a timeout.
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

    /// <summary>Where a follower forwards keep-alives and TimeToLive (null: none yet, see <see cref="ILeaseForwarder"/>).</summary>
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
    /// <see cref="LeaseForwarder"/>. Returns the TTL in seconds. Errors: <see cref="EtcdErrors.LeaseNotFound"/>,
    /// <see cref="EtcdErrors.Timeout"/> when no leader answers within the request timeout.
    /// </summary>
    public async Task<long> LeaseRenewAsync(long id, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        cts.CancelAfter(_requestTimeout);
        try
        {
            while (true)
            {
                if (IsLeader)
                {
                    await WaitAppliedAsync(CommittedIndex, cts.Token).ConfigureAwait(false);
                    try
                    {
                        return await Lessor.RenewAsync(id, cts.Token).ConfigureAwait(false);
                    }
                    catch (LessorNotPrimaryException)
                    {
                        // Lost leadership (or not promoted yet): go round again.
                    }
                }
                else if (LeaseForwarder is { } fwd && Leader != 0)
                {
                    return await fwd.RenewAsync(Leader, id, cts.Token).ConfigureAwait(false);
                }

                await Task.Delay(Math.Max(10, _options.HeartbeatIntervalMs), cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw (_stopping.IsCancellationRequested ? EtcdErrors.Stopped : EtcdErrors.Timeout).ToException();
        }
    }

    /// <summary>
    /// LeaseTimeToLive (etcd's <c>EtcdServer.LeaseTimeToLive</c>): served by the leader, forwarded by a follower.
    /// TTL is the remaining whole seconds, GrantedTTL the granted TTL, Keys the attached keys when asked.
    /// Errors: <see cref="EtcdErrors.LeaseNotFound"/> (the gRPC layer turns it into TTL -1).
    /// </summary>
    public async Task<LeaseTimeToLiveResponse> LeaseTimeToLiveAsync(LeaseTimeToLiveRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!IsLeader && LeaseForwarder is { } fwd && Leader != 0)
        {
            return await fwd.TimeToLiveAsync(Leader, request, cancellationToken).ConfigureAwait(false);
        }

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
            },
            loggerFactory.CreateLogger("lessor"));

    /// <summary>Connects the lessor's expiry and checkpoints to raft proposals and starts its timer.</summary>
    private void StartLessor()
    {
        Lessor.Start(
            id => ProposeAsync(new InternalRaftRequest { LeaseRevoke = new LeaseRevokeRequest { ID = id } }, _stopping.Token),
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
