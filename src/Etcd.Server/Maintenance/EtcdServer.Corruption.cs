using Etcd.Api;
using Etcdserverpb;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// Corruption checks (etcd 3.4's <c>etcdserver/corrupt.go</c>): the initial check a restarting member makes before it
/// serves (<c>--experimental-initial-corrupt-check</c>), the leader's periodic check of its followers
/// (<c>--experimental-corrupt-check-time</c>) that raises the CORRUPT alarm through raft, and the alarm's effect on
/// apply (etcd's <c>applierV3Corrupt</c>).
/// </summary>
/// <remarks>
/// etcd asks each peer over its peer URL (<c>GET /members/hashkv</c> with a JSON <c>HashKVRequest</c>). Our peers do not
/// speak etcd's rafthttp, so the question travels on our own peer transport instead, as one more request/response
/// kind beside the lease and promote forwards (<see cref="Transport.IRaftTransport.FetchHashKvAsync"/>): it needs no
/// extra listener and is authenticated exactly as raft traffic is (peer TLS, cluster ID in the hello), which is what
/// etcd's peer URL gives its hashkv handler; asking the member's client URL would need client credentials that a
/// member does not necessarily hold (client-cert auth) and would bypass the peer trust domain.
/// </remarks>
public sealed partial class EtcdServer
{
    private CancellationTokenSource? _corruptMonitorStop;
    private Task _corruptMonitor = Task.CompletedTask;
    private bool _restarted;

    /// <summary>
    /// This member's HashKV as a peer asks for it (etcd's <c>hashKVHandler</c>): the hash at <paramref name="revision"/>
    /// (0 = current), the compacted revision, and the current revision in the header.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.Compacted"/> or <see cref="EtcdErrors.FutureRev"/>.</exception>
    internal HashKVResponse PeerHashKv(long revision)
    {
        var h = Kv.HashByRevision(revision);
        return new HashKVResponse
        {
            Header = new ResponseHeader { Revision = h.CurrentRevision, MemberId = MemberId, ClusterId = Cluster.ClusterId },
            Hash = h.Hash,
            CompactRevision = h.CompactRevision,
        };
    }

    /// <summary>
    /// etcd's <c>CheckInitialHashKV</c>, for a member restarting from its data (a new member has nothing to compare):
    /// with <c>--experimental-initial-corrupt-check</c>, compares this member's HashKV at its current revision with each
    /// peer's at the same revision, and fails when a peer with the same compacted revision has another hash. Peers that
    /// cannot answer (down, behind, compacted further) are logged and skipped. Call before the member serves.
    /// </summary>
    /// <exception cref="EtcdStartException"><c>{member-id} found data inconsistency with peers</c>, or
    /// <c>{member-id} failed to fetch hash (...)</c>.</exception>
    public async Task CheckInitialHashKvAsync(CancellationToken cancellationToken)
    {
        if (!_options.ExperimentalInitialCorruptCheck || !_restarted)
        {
            return;
        }

        var id = Hex(MemberId);
        LogEither(
            LogLevel.Information,
            $"{id} starting initial corruption check with timeout {Logging.GoDuration.Format(_requestTimeout)}...",
            "starting initial corruption check",
            ("local-member-id", id),
            ("timeout", _requestTimeout));
        Storage.Mvcc.KvHash local;
        try
        {
            local = Kv.HashByRevision(0);
        }
        catch (EtcdException e)
        {
            throw new EtcdStartException($"{id} failed to fetch hash ({e.Error.Message})", e);
        }

        var mismatch = 0;
        foreach (var p in await GetPeerHashKvsAsync(local.CurrentRevision, cancellationToken).ConfigureAwait(false))
        {
            var eps = string.Join(",", p.Urls);
            if (p.Response is { } r)
            {
                if (r.Hash == local.Hash)
                {
                    continue;
                }

                (string, object?)[] fields =
                [
                    ("local-member-id", id), ("local-member-revision", local.CurrentRevision), ("local-member-compact-revision", local.CompactRevision),
                    ("local-member-hash", local.Hash), ("remote-peer-id", Hex(p.Id)), ("remote-peer-endpoints", p.Urls),
                    ("remote-peer-revision", r.Header?.Revision ?? 0), ("remote-peer-compact-revision", r.CompactRevision), ("remote-peer-hash", r.Hash),
                ];
                if (r.CompactRevision == local.CompactRevision)
                {
                    LogEither(
                        LogLevel.Error,
                        $"{id}'s hash {local.Hash} != {Hex(p.Id)}'s hash {r.Hash} (revision {local.CurrentRevision}, peer revision {r.Header?.Revision ?? 0}, compact revision {local.CompactRevision})",
                        "found different hash values from remote peer",
                        fields);
                    mismatch++;
                }
                else
                {
                    LogEither(
                        LogLevel.Warning,
                        $"{id} cannot check hash of peer({Hex(p.Id)}): peer has a different compact revision {r.CompactRevision} (revision:{local.CurrentRevision})",
                        "found different compact revision values from remote peer",
                        fields);
                }

                continue;
            }

            if (p.Error is EtcdException { Error: var err } && ReferenceEquals(err, EtcdErrors.FutureRev))
            {
                LogEither(
                    LogLevel.Warning,
                    $"{id} cannot check the hash of peer([\"{eps}\"]) at revision {local.CurrentRevision}: peer is lagging behind(\"{err.Message}\")",
                    "cannot fetch hash from slow remote peer",
                    ("local-member-id", id), ("local-member-revision", local.CurrentRevision), ("remote-peer-id", Hex(p.Id)), ("remote-peer-endpoints", p.Urls));
            }
            else if (p.Error is EtcdException { Error: var cerr } && ReferenceEquals(cerr, EtcdErrors.Compacted))
            {
                LogEither(
                    LogLevel.Warning,
                    $"{id} cannot check the hash of peer([\"{eps}\"]) at revision {local.CurrentRevision}: local node is lagging behind(\"{cerr.Message}\")",
                    "cannot fetch hash from remote peer; local member is behind",
                    ("local-member-id", id), ("local-member-revision", local.CurrentRevision), ("remote-peer-id", Hex(p.Id)), ("remote-peer-endpoints", p.Urls));
            }
        }

        if (mismatch > 0)
        {
            throw new EtcdStartException($"{id} found data inconsistency with peers");
        }

        LogEither(
            LogLevel.Information,
            $"{id} succeeded on initial corruption checking: no corruption",
            "initial corruption checking passed; no corruption",
            ("local-member-id", id));
    }

    /// <summary>Starts etcd's <c>monitorKVHash</c> when <c>--experimental-corrupt-check-time</c> is set.</summary>
    private void StartCorruptionMonitor()
    {
        var interval = _options.ExperimentalCorruptCheckTime;
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        LogEither(
            LogLevel.Information,
            $"enabled corruption checking with {Logging.GoDuration.Format(interval)} interval",
            "enabled corruption checking",
            ("local-member-id", Hex(MemberId)),
            ("interval", interval));
        _corruptMonitorStop = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        var stop = _corruptMonitorStop.Token;
        _corruptMonitor = Task.Run(async () =>
        {
            while (true)
            {
                await Task.Delay(interval, MaintenanceTime, stop).ConfigureAwait(false);
                if (!IsLeader)
                {
                    continue;
                }

                try
                {
                    await CheckHashKvAsync(stop).ConfigureAwait(false);
                }
                catch (Exception e) when (e is EtcdException or Api.Grpc.RpcException or IOException || (e is OperationCanceledException && !stop.IsCancellationRequested))
                {
                    LogEither(LogLevel.Debug, $"check hash kv failed {e.Message}", "failed to check hash KV", ("error", e.Message));
                }
            }
        });
    }

    private async Task StopCorruptionMonitorAsync()
    {
        _corruptMonitorStop?.Cancel();
        try
        {
            await _corruptMonitor.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _corruptMonitorStop?.Dispose();
    }

    /// <summary>
    /// One pass of etcd's <c>checkHashKV</c> (the leader): hashes its store, asks every follower for its hash at that
    /// revision, confirms its own hash after a linearizable read barrier, and raises the CORRUPT alarm (member 0, as
    /// etcd 3.4 does) through raft when its own hash changed at the same revision, when a follower is ahead of it (revision
    /// or compacted revision), or when a follower with the same compacted revision has another hash. Returns whether a
    /// mismatch was found.
    /// </summary>
    public async Task<bool> CheckHashKvAsync(CancellationToken cancellationToken)
    {
        var h1 = Kv.HashByRevision(0);
        var peers = await GetPeerHashKvsAsync(h1.CurrentRevision, cancellationToken).ConfigureAwait(false);
        await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
        var h2 = Kv.HashByRevision(0);
        var alarmed = false;
        void Mismatch()
        {
            if (alarmed)
            {
                return;
            }

            alarmed = true;
            var raise = new InternalRaftRequest
            {
                Alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Activate, MemberID = 0, Alarm = AlarmType.Corrupt },
            };
            _ = Task.Run(async () =>
            {
                try
                {
                    await ProposeAsync(raise, _stopping.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is EtcdException or Api.Grpc.RpcException or OperationCanceledException)
                {
                    _log.LogWarning("failed to raise the CORRUPT alarm {error}", e.Message);
                }
            });
        }

        if (h2.Hash != h1.Hash && h2.CurrentRevision == h1.CurrentRevision && h2.CompactRevision == h1.CompactRevision)
        {
            LogEither(
                LogLevel.Warning,
                $"mismatched hashes {h1.Hash} and {h2.Hash} for revision {h1.CurrentRevision}",
                "found hash mismatch",
                ("revision-1", h1.CurrentRevision), ("compact-revision-1", h1.CompactRevision), ("hash-1", h1.Hash),
                ("revision-2", h2.CurrentRevision), ("compact-revision-2", h2.CompactRevision), ("hash-2", h2.Hash));
            Mismatch();
        }

        var checkedCount = 0;
        foreach (var p in peers)
        {
            if (p.Response is not { } r)
            {
                continue;
            }

            checkedCount++;
            var peerRev = r.Header?.Revision ?? 0;
            if (peerRev > h2.CurrentRevision)
            {
                LogEither(
                    LogLevel.Warning,
                    $"revision {peerRev} from member {Hex(p.Id)}, expected at most {h2.CurrentRevision}",
                    "revision from follower must be less than or equal to leader's",
                    ("leader-revision", h2.CurrentRevision), ("follower-revision", peerRev), ("follower-peer-id", Hex(p.Id)));
                Mismatch();
            }

            if (r.CompactRevision > h2.CompactRevision)
            {
                LogEither(
                    LogLevel.Warning,
                    $"compact revision {r.CompactRevision} from member {Hex(p.Id)}, expected at most {h2.CompactRevision}",
                    "compact revision from follower must be less than or equal to leader's",
                    ("leader-compact-revision", h2.CompactRevision), ("follower-compact-revision", r.CompactRevision), ("follower-peer-id", Hex(p.Id)));
                Mismatch();
            }

            if (r.CompactRevision == h1.CompactRevision && r.Hash != h1.Hash)
            {
                LogEither(
                    LogLevel.Warning,
                    $"hash {r.Hash} at revision {h1.CurrentRevision} from member {Hex(p.Id)}, expected hash {h1.Hash}",
                    "same compact revision then hashes must match",
                    ("leader-compact-revision", h2.CompactRevision), ("leader-hash", h1.Hash), ("follower-compact-revision", r.CompactRevision),
                    ("follower-hash", r.Hash), ("follower-peer-id", Hex(p.Id)));
                Mismatch();
            }
        }

        LogEither(LogLevel.Information, "finished peer corruption check", "finished peer corruption check", ("number-of-peers-checked", checkedCount));
        return alarmed;
    }

    /// <summary>One peer's answer to a HashKV request: the response, or the error (etcd's <c>peerHashKVResp</c>).</summary>
    private sealed record PeerHashKvAnswer(ulong Id, IReadOnlyList<string> Urls, HashKVResponse? Response, Exception? Error);

    /// <summary>
    /// etcd's <c>getPeerHashKVs</c>: asks every other member (as this member's membership lists them) for its HashKV at
    /// <paramref name="revision"/>, each within the request timeout; failures are logged and returned as errors.
    /// </summary>
    private async Task<List<PeerHashKvAnswer>> GetPeerHashKvsAsync(long revision, CancellationToken cancellationToken)
    {
        var answers = new List<PeerHashKvAnswer>();
        foreach (var m in Cluster.Members().Where(m => m.Id != MemberId && m.PeerUrls.Count > 0))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_requestTimeout);
            try
            {
                var resp = await Transport.FetchHashKvAsync(m.Id, revision, timeout.Token).ConfigureAwait(false);
                answers.Add(new PeerHashKvAnswer(m.Id, m.PeerUrls, resp, null));
            }
            catch (Exception e) when (e is EtcdException or IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException
                || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                var text = e is EtcdException ee ? ee.Error.Message : e is OperationCanceledException ? "context deadline exceeded" : e.Message;
                LogEither(
                    LogLevel.Warning,
                    $"{Hex(MemberId)} hash-kv error \"{text}\" on peer \"{string.Join(",", m.PeerUrls)}\" with revision {revision}",
                    "failed hash kv request",
                    ("local-member-id", Hex(MemberId)), ("requested-revision", revision), ("remote-peer-endpoint", string.Join(",", m.PeerUrls)), ("error", text));
                answers.Add(new PeerHashKvAnswer(m.Id, m.PeerUrls, null, e));
            }
        }

        return answers;
    }
}
