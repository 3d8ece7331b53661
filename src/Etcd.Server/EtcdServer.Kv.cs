using Etcd.Api;
using Etcd.Storage.Mvcc;
using Etcdserverpb;

namespace Etcd.Server;

public sealed partial class EtcdServer
{
    /// <summary>
    /// Range (etcd's <c>EtcdServer.Range</c>): serializable reads run on local state; others first wait for a
    /// linearizable read barrier. Request validation (empty key, sort options) is the caller's
    /// (<see cref="KvStore.ValidateRange"/>). Errors: <see cref="EtcdErrors.Compacted"/>, <see cref="EtcdErrors.FutureRev"/>.
    /// </summary>
    public async Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken)
    {
        var start = SlowStart();
        RangeResponse? resp = null;
        Exception? error = null;
        try
        {
            if (!request.Serializable)
            {
                ThrowIfLearner();
                await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
            }

            resp = await AuthorizedRangeAsync(request, cancellationToken).ConfigureAwait(false);
            FillHeader(resp.Header ??= new ResponseHeader());
            return resp;
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            WarnIfSlowRange(start, request, resp, error);
        }
    }

    /// <summary>Put through raft. Errors: <see cref="EtcdErrors.LeaseNotFound"/>, <see cref="EtcdErrors.KeyNotFound"/> (ignore_value/lease), proposal errors.</summary>
    public async Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken)
    {
        ThrowIfLearner();
        var req = new InternalRaftRequest { Put = request };
        await CheckQuotaAsync(req, cancellationToken).ConfigureAwait(false);
        var resp = (PutResponse)(await ProposeAsync(req, cancellationToken).ConfigureAwait(false))!;
        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>DeleteRange through raft.</summary>
    public async Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken)
    {
        ThrowIfLearner();
        var resp = (DeleteRangeResponse)(await ProposeAsync(new InternalRaftRequest { DeleteRange = request }, cancellationToken).ConfigureAwait(false))!;
        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>
    /// Txn: a read-only txn is served locally (after a linearizable barrier unless every range in it is
    /// serializable), any other goes through raft, as etcd's <c>EtcdServer.Txn</c>.
    /// </summary>
    public async Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken)
    {
        TxnResponse resp;
        if (IsTxnReadOnly(request))
        {
            var start = SlowStart();
            TxnResponse? local = null;
            Exception? error = null;
            try
            {
                if (!IsTxnSerializable(request))
                {
                    ThrowIfLearner();
                    await LinearizableReadNotifyAsync(cancellationToken).ConfigureAwait(false);
                }

                resp = local = await AuthorizedReadTxnAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error = e;
                throw;
            }
            finally
            {
                WarnIfSlowReadOnlyTxn(start, request, local, error);
            }
        }
        else
        {
            ThrowIfLearner();
            var req = new InternalRaftRequest { Txn = request };
            await CheckQuotaAsync(req, cancellationToken).ConfigureAwait(false);
            resp = (TxnResponse)(await ProposeAsync(req, cancellationToken).ConfigureAwait(false))!;
        }

        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>
    /// Compact through raft; with <c>physical</c> it returns once the compacted revisions are removed from the backend.
    /// Errors: <see cref="EtcdErrors.Compacted"/>, <see cref="EtcdErrors.FutureRev"/>, <see cref="EtcdErrors.Corrupt"/>.
    /// </summary>
    public async Task<CompactionResponse> CompactAsync(CompactionRequest request, CancellationToken cancellationToken)
    {
        ThrowIfLearner();
        var result = await ProposeAsync(new InternalRaftRequest { Compaction = request }, cancellationToken).ConfigureAwait(false);
        CompactionResponse resp;
        if (result is PhysicalCompaction physical)
        {
            // etcd's Compact with physical=true answers once the removal from the backend is done, however long it takes.
            await physical.Removed.WaitAsync(cancellationToken).ConfigureAwait(false);
            resp = physical.Response;
        }
        else
        {
            resp = (CompactionResponse)result!;
        }

        FillHeader(resp.Header ??= new ResponseHeader());
        return resp;
    }

    /// <summary>
    /// Fills cluster and member ID, raft term and (when unset and <paramref name="withRevision"/>) the current
    /// revision, as etcd's v3rpc header filler; the Cluster service's headers carry no revision in etcd.
    /// </summary>
    public void FillHeader(ResponseHeader header, bool withRevision = true)
    {
        header.ClusterId = Cluster.ClusterId;
        header.MemberId = MemberId;
        header.RaftTerm = Term;
        if (withRevision && header.Revision == 0)
        {
            header.Revision = Kv.CurrentRevision;
        }
    }

    private static bool IsTxnReadOnly(TxnRequest r)
    {
        foreach (var op in r.Success.Concat(r.Failure))
        {
            if (op.RequestCase != RequestOp.RequestOneofCase.RequestRange &&
                !(op.RequestCase == RequestOp.RequestOneofCase.RequestTxn && IsTxnReadOnly(op.RequestTxn)))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsTxnSerializable(TxnRequest r)
    {
        foreach (var op in r.Success.Concat(r.Failure))
        {
            if (op.RequestCase == RequestOp.RequestOneofCase.RequestRange && !op.RequestRange.Serializable)
            {
                return false;
            }

            if (op.RequestCase == RequestOp.RequestOneofCase.RequestTxn && !IsTxnSerializable(op.RequestTxn))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Status of this member (etcd's Maintenance.Status).</summary>
    public StatusResponse Status()
    {
        var resp = new StatusResponse
        {
            Header = new ResponseHeader(),
            Version = Version,
            DbSize = _backend.Size,
            DbSizeInUse = _backend.SizeInUse,
            Leader = Leader,
            RaftIndex = CommittedIndex,
            RaftTerm = Term,
            RaftAppliedIndex = AppliedIndex,
            IsLearner = Cluster.Find(MemberId)?.IsLearner ?? false,
        };
        foreach (var a in Alarms.Get(AlarmType.None))
        {
            resp.Errors.Add($"memberID:{a.MemberID} alarm:{a.Alarm.ToString().ToUpperInvariant()} ");
        }

        FillHeader(resp.Header);
        return resp;
    }
}
