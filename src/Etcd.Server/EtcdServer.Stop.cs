using Etcd.Api;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>The graceful half of stopping (etcd's <c>EtcdServer.Stop</c>): leadership handed over before the hard stop (<see cref="DisposeAsync"/>).</summary>
public sealed partial class EtcdServer
{
    /// <summary>
    /// How long a client request may take before etcd gives up on it (etcd's <c>ReqTimeout</c>: 5 s plus two election
    /// timeouts); also the bound of a graceful stop's drain and leadership transfer.
    /// </summary>
    public TimeSpan RequestTimeout => _requestTimeout;

    /// <summary>
    /// etcd's <c>TransferLeadership</c> on stop: a leader of more than one voting member hands leadership to the voter
    /// whose peer stream has been connected longest (etcd's <c>longestConnected</c>) and waits until it leads, bounded by
    /// <see cref="RequestTimeout"/>; the remaining members then have a leader without waiting out an election timeout.
    /// A follower or a single voter skips it. Returns whether leadership was handed over; failures are logged
    /// ("leadership transfer failed", e.g. "etcdserver: unhealthy cluster" when no voter is connected), never thrown.
    /// Thread-safe; meant to be called once, after client traffic has stopped.
    /// </summary>
    public async Task<bool> TransferLeadershipAsync(CancellationToken cancellationToken = default)
    {
        if (!IsLeader)
        {
            _log.LogInformation("skipped leadership transfer; local server is not leader {local-member-id} {current-leader-member-id}", Hex(MemberId), Hex(Leader));
            return false;
        }

        var voters = Cluster.Members().Where(m => !m.IsLearner).Select(m => m.Id).ToList();
        if (voters.Count <= 1)
        {
            _log.LogInformation("skipped leadership transfer; it's a single-node cluster {local-member-id} {current-leader-member-id}", Hex(MemberId), Hex(Leader));
            return false;
        }

        var transferee = LongestConnected(voters);
        if (transferee is not { } id)
        {
            _log.LogWarning("leadership transfer failed {local-member-id} {error}", Hex(MemberId), EtcdErrors.Unhealthy.Message);
            return false;
        }

        try
        {
            await MoveLeaderAsync(id, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is Api.Grpc.RpcException or OperationCanceledException)
        {
            _log.LogWarning("leadership transfer failed {local-member-id} {error}", Hex(MemberId), e.Message);
            return false;
        }
    }

    /// <summary>The voter (not this member) whose peer stream has been up longest; null when none is connected.</summary>
    private ulong? LongestConnected(IReadOnlyList<ulong> voters)
    {
        ulong? best = null;
        DateTimeOffset bestSince = DateTimeOffset.MaxValue;
        foreach (var id in voters)
        {
            if (id == MemberId || Transport.ActiveSince(id) is not { } since)
            {
                continue;
            }

            if (since < bestSince)
            {
                (best, bestSince) = (id, since);
            }
        }

        return best;
    }
}
