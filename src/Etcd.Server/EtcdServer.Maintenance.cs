using System.IO.Pipelines;
using System.Security.Cryptography;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.Backend;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>Maintenance over the backend: snapshot streaming, online defragmentation, hash, and the backend quota.</summary>
public sealed partial class EtcdServer
{
    /// <summary>Bytes of database per Snapshot message (etcd's <c>snapshotSendBufferSize</c>, 32 KiB).</summary>
    public const int SnapshotSendBufferSize = 32 * 1024;

    /// <summary>etcd's default <c>--quota-backend-bytes</c> (2 GiB), used when the option is 0.</summary>
    public const long DefaultQuotaBytes = 2L * 1024 * 1024 * 1024;

    /// <summary>Estimated bytes of a key's metadata in a put's quota cost (etcd's <c>kvOverhead</c>).</summary>
    private const int KvOverhead = 256;

    /// <summary>Estimated bytes of a lease in a grant's quota cost (etcd's <c>leaseOverhead</c>).</summary>
    private const int LeaseOverhead = 64;

    private BoltBackend Bolt => _backend as BoltBackend ?? throw new InvalidOperationException("maintenance needs the bbolt backend");

    /// <summary>The backend quota in bytes: <c>--quota-backend-bytes</c>, 2 GiB when 0, none (long.MaxValue) when negative.</summary>
    public long QuotaBackendBytes => _options.QuotaBackendBytes switch
    {
        0 => DefaultQuotaBytes,
        < 0 => long.MaxValue,
        var q => q,
    };

    /// <summary>
    /// Maintenance.Snapshot (etcd's <c>maintenanceServer.Snapshot</c>): streams a consistent image of the
    /// database in messages of at most 32 KiB with <c>remaining_bytes</c> counting down to 0, then one last
    /// message whose blob is the SHA-256 of everything sent (remaining_bytes 0), which etcdctl appends to the file
    /// and <c>snapshot restore</c> verifies. Writes go on meanwhile.
    /// </summary>
    public async Task SnapshotAsync(IAsyncStreamWriter<SnapshotResponse> responses, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(responses);
        using var snap = Bolt.CreateSnapshot();
        var total = snap.Size;
        _log.LogInformation("sending database snapshot to client {total-bytes}", total);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 4 * SnapshotSendBufferSize, resumeWriterThreshold: 2 * SnapshotSendBufferSize, useSynchronizationContext: false));
        var producer = Task.Run(() =>
        {
            try
            {
                using var w = pipe.Writer.AsStream(leaveOpen: true);
                snap.WriteTo(w);
                w.Flush();
                pipe.Writer.Complete();
            }
            catch (Exception e)
            {
                pipe.Writer.Complete(e);
            }
        }, CancellationToken.None);

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[SnapshotSendBufferSize];
        long sent = 0;
        try
        {
            await using var r = pipe.Reader.AsStream();
            while (total - sent > 0)
            {
                var n = await r.ReadAtLeastAsync(buf, buf.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new RpcException(StatusCode.Internal, "snapshot ended early");
                }

                sent += n;
                sha.AppendData(buf, 0, n);
                await responses.WriteAsync(new SnapshotResponse { RemainingBytes = (ulong)(total - sent), Blob = ByteString.CopyFrom(buf, 0, n) }, cancellationToken).ConfigureAwait(false);
            }

            await responses.WriteAsync(new SnapshotResponse { RemainingBytes = 0, Blob = ByteString.CopyFrom(sha.GetHashAndReset()) }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            try
            {
                await producer.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // The reader stopped early (client went away): the producer's write failed; nothing to report.
            }
        }

        _log.LogInformation("successfully sent database snapshot to client {total-bytes}", total);
    }

    /// <summary>
    /// Maintenance.Defragment (etcd's <c>backend.Defrag</c>): compacts the database file online — reads and writes
    /// go on while it copies (<see cref="BoltBackend.Defrag()"/>).
    /// </summary>
    public async Task<DefragmentResponse> DefragmentAsync(CancellationToken cancellationToken)
    {
        _log.LogInformation("starting to defragment the storage backend...");
        var before = _backend.Size;
        await Task.Run(() => Bolt.Defrag(out var stall), cancellationToken).ConfigureAwait(false);
        _log.LogInformation("finished defragmenting the storage backend {size-before} {size-after}", before, _backend.Size);
        var resp = new DefragmentResponse { Header = new ResponseHeader() };
        FillHeader(resp.Header);
        return resp;
    }

    /// <summary>
    /// Maintenance.Hash (etcd's <c>store.Hash</c>): commits the backend and returns the CRC-32C of every bucket
    /// except <c>meta/consistent_index</c>, with the current revision in the header.
    /// </summary>
    public HashResponse Hash()
    {
        var rev = Kv.CurrentRevision;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var h = Bolt.Hash(BoltBackend.EtcdDefaultHashIgnore);
        Metrics.Storage.HashDuration.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds);
        var resp = new HashResponse { Header = new ResponseHeader { Revision = rev }, Hash = h };
        FillHeader(resp.Header);
        return resp;
    }

    /// <summary>etcd's quota cost of a request: put = 256 + key + value, txn = the larger of its put branches, lease grant = 64, else 0.</summary>
    private static int QuotaCost(InternalRaftRequest req)
        => req.Put is { } p ? CostPut(p)
        : req.Txn is { } t ? CostTxn(t)
        : req.LeaseGrant is not null ? LeaseOverhead
        : 0;

    private static int CostPut(PutRequest p) => KvOverhead + p.Key.Length + p.Value.Length;

    private static int CostTxn(TxnRequest t)
    {
        var success = t.Success.Sum(op => op.RequestPut is { } p ? CostPut(p) : 0);
        var failure = t.Failure.Sum(op => op.RequestPut is { } p ? CostPut(p) : 0);
        return Math.Max(success, failure);
    }

    /// <summary>Whether <paramref name="req"/> fits in the backend quota (etcd's <c>backendQuota.Available</c>).</summary>
    private bool QuotaAvailable(InternalRaftRequest req)
    {
        var cost = QuotaCost(req);
        return cost == 0 || _backend.Size + cost < QuotaBackendBytes;
    }

    /// <summary>
    /// The client-side quota check of etcd's <c>quotaKVServer</c>: a put or txn that would not fit raises the
    /// NOSPACE alarm through raft and fails with <see cref="EtcdErrors.NoSpace"/> before it is proposed.
    /// </summary>
    private async Task CheckQuotaAsync(InternalRaftRequest req, CancellationToken cancellationToken)
    {
        if (QuotaAvailable(req))
        {
            return;
        }

        await RaiseNoSpaceAlarmAsync(cancellationToken).ConfigureAwait(false);
        throw EtcdErrors.NoSpace.ToException();
    }

    private async Task RaiseNoSpaceAlarmAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ProposeAsync(
                new InternalRaftRequest { Alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Activate, MemberID = MemberId, Alarm = AlarmType.Nospace } },
                cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            _log.LogWarning("failed to raise the NOSPACE alarm {error}", e.Message);
        }
    }
}
