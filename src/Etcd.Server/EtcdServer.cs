using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Etcd.Api;
using Etcd.Raft;
using Etcd.Server.Transport;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcd.Storage.Wal;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Raftpb;

namespace Etcd.Server;

/// <summary>
/// One etcd member (etcd's <c>etcdserver.EtcdServer</c>): a raft node on its own thread that ticks, steps and
/// persists each Ready to the WAL, an applier on its own thread that applies committed entries to MVCC and
/// membership through the applier chain, proposals with request IDs and waiters, and linearizable reads through
/// ReadIndex.
/// </summary>
/// <remarks>
/// Concurrency: the raft thread (<c>EtcdServer.Loop.cs</c>) alone touches the <see cref="RawNode"/> and writes the
/// WAL's entries; it hands committed entries that are persisted locally to the applier thread
/// (<c>EtcdServer.Apply.cs</c>, <see cref="Apply.ApplierThread"/>) without waiting for them to apply, except for
/// conf changes and raft snapshots, which it waits for (RawNode's configuration is then changed by the applier
/// while the raft thread is parked). All writes to the store happen on the applier thread. Any thread may call the
/// request methods (<see cref="ProposeAsync"/>, <see cref="LinearizableReadNotifyAsync"/>, the KV methods); they
/// hand work to the raft thread through a channel and await the result. Reads of the store run on the caller's
/// thread (MVCC reads are safe concurrently with the applier's writes).
/// </remarks>
public sealed partial class EtcdServer : IAsyncDisposable
{
    /// <summary>The etcd version we report (Status.version, /version, etcd_server_version).</summary>
    public const string Version = "3.4.23";

    /// <summary>The cluster version a new cluster is set to (<c>/0/version</c>), as etcd 3.4 sets it.</summary>
    public const string ClusterVersionValue = "3.4.0";

    /// <summary>Most committed-but-unapplied entries before proposals are refused with "etcdserver: too many requests".</summary>
    private const ulong MaxGapBetweenApplyAndCommitIndex = 5000;

    private readonly EtcdOptions _options;
    private readonly ILogger _log;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Wal _wal;
    private readonly MemoryStorage _raftStorage;
    private readonly RawNode _node;
    private readonly IBackend _backend;
    private readonly IdGenerator _reqIds;
    private readonly Channel<RaftInput> _inputs = Channel.CreateUnbounded<RaftInput>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<object?>> _waiters = new();
    private readonly AppliedWaiters _appliedWaiters = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _readyToServe = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _requestTimeout;
    private Thread? _loopThread;
    private Timer? _ticker;
    private Timer? _purger;

    private long _appliedIndex;
    private long _committedIndex;
    private long _term;
    private long _leaderId;
    private int _isLeader;
    private bool _campaignedAfterReplay;
    private bool _proposedClusterVersion;
    private int _disposeStarted;

    private EtcdServer(
        EtcdOptions options,
        ILoggerFactory loggerFactory,
        ulong memberId,
        Membership.RaftCluster cluster,
        Wal wal,
        MemoryStorage raftStorage,
        RawNode node,
        IBackend backend,
        KvStore kv,
        IRaftTransport transport,
        Metrics.EtcdMetrics metrics)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _log = loggerFactory.CreateLogger("etcdserver");
        MemberId = memberId;
        Cluster = cluster;
        _wal = wal;
        _raftStorage = raftStorage;
        _node = node;
        _backend = backend;
        Kv = kv;
        Watchable = new Etcd.Storage.Mvcc.Watch.WatchableStore(kv);
        kv.SetObserver(Watchable);
        _reqIds = new IdGenerator(memberId, DateTimeOffset.UtcNow);
        _requestTimeout = TimeSpan.FromMilliseconds(5000 + 2 * options.ElectionTimeoutMs);
        Metrics = metrics;
        metrics.Bind(this);
        Transport = transport;
        _transportHandler = new TransportHandler(this);
    }

    /// <summary>The peer transport carrying this member's raft messages.</summary>
    public IRaftTransport Transport { get; }

    /// <summary>
    /// Raft log entries kept behind a raft snapshot for slow followers to catch up from (etcd's
    /// <c>SnapshotCatchUpEntries</c>, 5000). Settable before <see cref="StartLoop"/> (tests use small values).
    /// </summary>
    public ulong SnapshotCatchUpEntries { get; set; } = 5000;

    /// <summary>This member's ID.</summary>
    public ulong MemberId { get; }

    /// <summary>The cluster's membership and version.</summary>
    public Membership.RaftCluster Cluster { get; }

    /// <summary>The MVCC store (reads may be served from any thread).</summary>
    public KvStore Kv { get; }

    /// <summary>The watchable store over <see cref="Kv"/> (etcd's <c>mvcc.watchableStore</c>) that the Watch service serves.</summary>
    public Etcd.Storage.Mvcc.Watch.WatchableStore Watchable { get; }

    /// <summary>The raised alarms (NOSPACE, CORRUPT), persisted in the backend's <c>alarm</c> bucket.</summary>
    public AlarmStore Alarms { get; private set; } = new();

    /// <summary>The member's options.</summary>
    public EtcdOptions Options => _options;

    /// <summary>This member's metrics registry, served on <c>/metrics</c>.</summary>
    public Metrics.EtcdMetrics Metrics { get; }

    /// <summary>Current raft term.</summary>
    public ulong Term => (ulong)Interlocked.Read(ref _term);

    /// <summary>Current leader's ID, 0 when there is none.</summary>
    public ulong Leader => (ulong)Interlocked.Read(ref _leaderId);

    /// <summary>Whether this member is the leader.</summary>
    public bool IsLeader => Volatile.Read(ref _isLeader) == 1;

    /// <summary>Highest raft index known committed.</summary>
    public ulong CommittedIndex => (ulong)Interlocked.Read(ref _committedIndex);

    /// <summary>Highest raft index applied to the state machine.</summary>
    public ulong AppliedIndex => (ulong)Interlocked.Read(ref _appliedIndex);

    /// <summary>The backend (size for Status).</summary>
    public IBackend Backend => _backend;

    /// <summary>Completes once the member has published itself and can serve clients.</summary>
    public Task ReadyToServe => _readyToServe.Task;

    /// <summary>Completes when the raft loop has stopped (by <see cref="DisposeAsync"/> or a fatal error).</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>
    /// Opens or bootstraps the member described by <paramref name="options"/>: a data directory holding a
    /// WAL restarts from it (the initial-cluster flags are then ignored, as in etcd); otherwise a new
    /// member is bootstrapped from <c>--initial-cluster</c>. Starts the raft loop.
    /// </summary>
    /// <param name="options">The member's configuration.</param>
    /// <param name="loggerFactory">Where the member logs.</param>
    /// <param name="startLoop">False to open only; call <see cref="StartLoop"/> once the client listeners are bound,
    /// so nothing is published as ready before clients can connect.</param>
    /// <param name="transport">The peer transport; null = a <see cref="TcpRaftTransport"/> dialling with the peer TLS
    /// settings (the caller serves its listeners: <see cref="TcpRaftTransport.Serve(PeerListener)"/>).</param>
    /// <exception cref="EtcdStartException">The data directory or configuration is unusable; the message says why.</exception>
    public static EtcdServer Start(EtcdOptions options, ILoggerFactory loggerFactory, bool startLoop = true, IRaftTransport? transport = null)
    {
        ValidateMaintenanceOptions(options);
        transport ??= new TcpRaftTransport(loggerFactory.CreateLogger("rafthttp"), Tls.TlsConfig.ForPeers(options));
        var log = loggerFactory.CreateLogger("etcdserver");
        var metrics = new Metrics.EtcdMetrics(extensive: string.Equals(options.Metrics, "extensive", StringComparison.Ordinal));
        if (transport is TcpRaftTransport tcp)
        {
            tcp.Metrics = metrics.Peers;
        }

        var dataDir = options.ResolvedDataDir;
        var walDir = options.ResolvedWalDir;
        try
        {
            Directory.CreateDirectory(dataDir);
            Directory.CreateDirectory(options.SnapDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EtcdStartException($"cannot access data directory: {e.Message}", e);
        }

        var raftStorage = new MemoryStorage();
        Wal wal;
        Membership.RaftCluster cluster;
        ulong memberId;
        RawNode node;
        IReadOnlyList<Membership.Member> joinPeers = [];
        Snapshot? restoredSnap = null;
        var haveWal = Wal.Exist(walDir);
        if (haveWal)
        {
            try
            {
                // A member that was sent a raft snapshot saved it (snap file + WAL record); start from the newest one.
                restoredSnap = new Storage.Snap.Snapshotter(options.SnapDir).LoadNewestAvailable(Wal.ValidSnapshotEntries(walDir));
                wal = Wal.Open(walDir, restoredSnap is null
                    ? new Walpb.Snapshot { Index = 0, Term = 0 }
                    : new Walpb.Snapshot { Index = restoredSnap.Metadata.Index, Term = restoredSnap.Metadata.Term });
                if (restoredSnap is not null)
                {
                    raftStorage.ApplySnapshot(restoredSnap);
                }

                var read = wal.ReadAll();
                var meta = Metadata.Parser.ParseFrom(read.Metadata);
                memberId = meta.NodeID;
                cluster = new Membership.RaftCluster(meta.ClusterID, options.InitialClusterToken);
                IReadOnlyList<Entry> entries = read.Entries;
                var hardState = read.State;
                if (options.ForceNewCluster)
                {
                    (entries, hardState) = ForceNewClusterEntries(memberId, entries, hardState, restoredSnap?.Metadata.ConfState?.Voters);
                    wal.Save(hardState, entries.Where(e => e.Index > read.State.Commit).ToList());
                    log.LogInformation(
                        "forcing restart member {cluster-id} {local-member-id} {commit-index}",
                        Membership.Member.IdString(meta.ClusterID),
                        Membership.Member.IdString(memberId),
                        hardState.Commit);
                }

                raftStorage.SetHardState(hardState);
                raftStorage.Append(entries);
                log.LogInformation(
                    "restarting local member {cluster-id} {local-member-id} {commit-index}",
                    Membership.Member.IdString(meta.ClusterID),
                    Membership.Member.IdString(memberId),
                    read.State.Commit);
            }
            catch (Exception e) when (e is not EtcdStartException)
            {
                throw new EtcdStartException($"failed to open WAL in {walDir}: {e.Message}", e);
            }

            var restartConfig = RaftConfigFor(options, memberId, raftStorage, loggerFactory);
            restartConfig.Applied = restoredSnap?.Metadata.Index ?? 0;
            node = new RawNode(restartConfig);
        }
        else
        {
            Membership.RaftCluster initial;
            try
            {
                initial = Membership.RaftCluster.FromInitialCluster(options.ResolvedInitialCluster, options.InitialClusterToken);
            }
            catch (ArgumentException e)
            {
                throw new EtcdStartException(e.Message, e);
            }

            var self = initial.FindByName(options.Name)
                ?? throw new EtcdStartException($"couldn't find local name \"{options.Name}\" in the initial cluster configuration");
            var advertised = options.InitialAdvertisePeerUrls.Select(u => u.OriginalString.TrimEnd('/')).OrderBy(u => u, StringComparer.Ordinal).ToList();
            if (!advertised.SequenceEqual(self.PeerUrls.Select(u => u.TrimEnd('/'))))
            {
                throw new EtcdStartException(
                    $"--initial-cluster has {options.Name}={string.Join(",", self.PeerUrls)} but missing from --initial-advertise-peer-urls={string.Join(",", advertised)}");
            }

            var joining = string.Equals(options.InitialClusterState, "existing", StringComparison.Ordinal);
            if (joining)
            {
                (cluster, memberId, joinPeers) = JoinExisting(options, initial, self, transport, log);
            }
            else
            {
                cluster = initial;
                memberId = self.Id;
            }

            var metadata = new Metadata { NodeID = memberId, ClusterID = cluster.ClusterId }.ToByteArray();
            try
            {
                wal = Wal.Create(walDir, metadata);
            }
            catch (Exception e)
            {
                throw new EtcdStartException($"failed to create WAL in {walDir}: {e.Message}", e);
            }

            var config = RaftConfigFor(options, memberId, raftStorage, loggerFactory);
            node = new RawNode(config);
            if (!joining)
            {
                var peers = cluster.Members()
                    .Select(m => new Peer(m.Id, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(m)))
                    .ToList();
                node.Bootstrap(peers);
            }

            log.LogInformation(
                "starting local member {local-member-id} {cluster-id}",
                Membership.Member.IdString(memberId),
                Membership.Member.IdString(cluster.ClusterId));
        }

        wal.UnsafeNoFsync = options.UnsafeNoFsync;
        wal.Metrics = metrics.Storage;
        BoltBackend backend;
        try
        {
            backend = OpenBackend(options);
            backend.Metrics = metrics.Storage;
        }
        catch
        {
            wal.Dispose();
            throw;
        }

        EtcdServer server;
        try
        {
            if (restoredSnap is not null)
            {
                RecoverSnapshotBackend(backend, restoredSnap, options, log);
            }

            // Entries at or below the saved consistent index are in the backend already: replay skips them.
            var ci = new ConsistentIndexState { Floor = ReadConsistentIndex(backend) };
            ci.Applying = ci.Floor;
            var lessor = CreateLessor(options, backend, loggerFactory);
            lessor.Metrics = metrics.Server;
            var kv = new KvStore(backend, lessor, new KvStoreOptions
            {
                ConsistentIndexGetter = () => ci.Current,
                Metrics = metrics.Storage,
                CompactionBatchLimit = options.ExperimentalCompactionBatchLimit > 0 ? options.ExperimentalCompactionBatchLimit : 1000,
            });
            lessor.SetStore(kv);
            server = new EtcdServer(options, loggerFactory, memberId, cluster, wal, raftStorage, node, backend, kv, transport, metrics)
            {
                _lessor = lessor,
                _ci = ci,
                _restarted = haveWal,
            };
            server.Alarms = new AlarmStore(backend, server.SaveConsistentIndex);
            server.OpenAuthStore();
            if (ci.Floor > 0)
            {
                log.LogInformation("restored backend {path} {consistent-index} {current-revision}", BackendPath(options), ci.Floor, kv.CurrentRevision);
            }
        }
        catch
        {
            backend.Dispose();
            wal.Dispose();
            throw;
        }

        transport.Start(server._transportHandler);
        if (restoredSnap is not null)
        {
            server.RestoreStateMachine(restoredSnap, dbPath: null);
        }

        foreach (var m in cluster.Members().Concat(joinPeers))
        {
            if (m.Id != memberId && server._transportPeers.Add(m.Id))
            {
                transport.AddPeer(m.Id, m.PeerUrls);
            }
        }

        if (startLoop)
        {
            server.StartLoop();
        }

        return server;
    }

    private static RaftConfig RaftConfigFor(EtcdOptions options, ulong id, MemoryStorage storage, ILoggerFactory loggerFactory) => new()
    {
        Id = id,
        ElectionTick = Math.Max(1, options.ElectionTimeoutMs / Math.Max(1, options.HeartbeatIntervalMs)),
        HeartbeatTick = 1,
        Storage = storage,
        MaxSizePerMsg = 1024 * 1024,
        MaxInflightMsgs = 4096 / 8,
        MaxUncommittedEntriesSize = 1L << 30,
        CheckQuorum = true,
        PreVote = options.PreVote,
        Logger = new RaftLogger(loggerFactory.CreateLogger("raft")),
    };

    /// <summary>Starts the raft loop, the ticker and publishing (once; <see cref="Start"/> does it unless told not to).</summary>
    public void StartLoop()
    {
        if (_loopThread is not null)
        {
            return;
        }

        _applier = CreateApplier();
        _applier.Start();
        _loopThread = new Thread(RunLoop) { IsBackground = true, Name = "etcd-raft-loop" };
        _loopThread.Start();
        var tick = TimeSpan.FromMilliseconds(_options.HeartbeatIntervalMs);
        _ticker = new Timer(_ => _inputs.Writer.TryWrite(RaftInput.TickInput), null, tick, tick);
        _purger = new Timer(_ => PurgeFiles(), null, Storage.FileSystem.FilePurger.Interval, Storage.FileSystem.FilePurger.Interval);
        _ = PublishAsync();
        StartLessor();
        _ = AdjustTicksAsync();
        StartMaintenance();
        StartV2Sync();
    }

    /// <summary>
    /// Proposes <paramref name="request"/> through raft and waits for it to be applied; returns the apply
    /// result (a response message). Throws the <see cref="EtcdException"/> the apply produced,
    /// <see cref="EtcdErrors.RequestTooLarge"/> over <c>--max-request-bytes</c>,
    /// <see cref="EtcdErrors.TooManyRequests"/> while apply lags commit by over 5000 entries,
    /// <see cref="EtcdErrors.LeaderChanged"/> when the leader changed before it applied,
    /// <see cref="EtcdErrors.Timeout"/> when not applied within etcd's request timeout,
    /// <see cref="EtcdErrors.Stopped"/> when the server stops, or <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<object?> ProposeAsync(InternalRaftRequest request, CancellationToken cancellationToken)
    {
        var id = _reqIds.Next();
        request.Header ??= new RequestHeader();
        request.Header.ID = id;
        await StampAuthHeaderAsync(request, cancellationToken).ConfigureAwait(false);
        var data = request.ToByteArray();
        if (data.Length > _options.MaxRequestBytes)
        {
            throw EtcdErrors.RequestTooLarge.ToException();
        }

        // etcd refuses new proposals while apply lags commit by more than maxGapBetweenApplyAndCommitIndex (5000).
        if (CommittedIndex > AppliedIndex + MaxGapBetweenApplyAndCommitIndex)
        {
            throw EtcdErrors.TooManyRequests.ToException();
        }

        return await ProposeDataAsync(id, data, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Proposes an encoded entry (an <see cref="InternalRaftRequest"/>, or a bare v2 <see cref="Request"/>) under
    /// request <paramref name="id"/> and waits for its apply: the applier's result, or etcd's leader-changed, timeout
    /// or stopped error (see <see cref="ProposeAsync"/>).
    /// </summary>
    private async Task<object?> ProposeDataAsync(ulong id, byte[] data, CancellationToken cancellationToken)
    {
        var tcs = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters[id] = tcs;
        var started = Interlocked.Read(ref _leaderChanges);
        Metrics.Server.ProposalsPending.Inc();
        try
        {
            // A stopping raft loop cancels _stopping before it fails the waiters it finds, so a waiter added after that
            // is refused here and every other one is failed by the loop: the wait needs no link to _stopping (one
            // linked token source and two registrations less per proposal).
            if (_stopping.IsCancellationRequested || !_inputs.Writer.TryWrite(RaftInput.Propose(id, data)))
            {
                throw EtcdErrors.Stopped.ToException();
            }

            try
            {
                return await tcs.Task.WaitAsync(_requestTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Metrics.Server.ProposalsFailed.Inc();
                throw ProposeTimeoutError(started).ToException();
            }
        }
        finally
        {
            _waiters.TryRemove(id, out _);
            Metrics.Server.ProposalsPending.Dec();
        }
    }

    /// <summary>
    /// Waits until this member has applied everything committed when the call began, confirmed with the
    /// leader through raft's ReadIndex (etcd's <c>linearizableReadNotify</c>). Concurrent callers share one
    /// ReadIndex round. Throws <see cref="EtcdErrors.Timeout"/> or <see cref="EtcdErrors.Stopped"/>.
    /// </summary>
    public async Task LinearizableReadNotifyAsync(CancellationToken cancellationToken)
    {
        var notifier = _readBatch.Join();
        _inputs.Writer.TryWrite(RaftInput.ReadRequested);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_requestTimeout);
        ulong index;
        try
        {
            index = await notifier.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (!_stopping.IsCancellationRequested)
            {
                // etcd counts a read index that did not come back in time both as slow and as failed.
                Metrics.Server.SlowReadIndexes.Inc();
                Metrics.Server.ReadIndexesFailed.Inc();
            }

            throw (_stopping.IsCancellationRequested ? EtcdErrors.Stopped : EtcdErrors.Timeout).ToException();
        }

        await WaitAppliedAsync(index, timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Completes once the applied index reaches <paramref name="index"/>.</summary>
    public Task WaitAppliedAsync(ulong index, CancellationToken cancellationToken)
        => AppliedIndex >= index ? Task.CompletedTask : _appliedWaiters.WaitAsync(index, () => AppliedIndex, cancellationToken);

    /// <summary>Stops the raft loop, fails pending requests with <see cref="EtcdErrors.Stopped"/> and closes the WAL.</summary>
    public async ValueTask DisposeAsync()
    {
        // Once only; a loop that stopped by itself (fatal error, removal from the cluster) still needs its resources released.
        if (Interlocked.Exchange(ref _disposeStarted, 1) == 1)
        {
            await _stopped.Task.ConfigureAwait(false);
            return;
        }

        _stopping.Cancel();
        await StopMaintenanceAsync().ConfigureAwait(false);
        _ticker?.Dispose();
        _purger?.Dispose();
        StopV2Sync();
        _lessor?.Dispose();
        _inputs.Writer.TryComplete();
        await Transport.DisposeAsync().ConfigureAwait(false);
        if (_loopThread is null)
        {
            _wal.Dispose();
            _stopped.TrySetResult();
        }

        await _stopped.Task.ConfigureAwait(false);
        Watchable.Dispose();
        Kv.Dispose();
        _backend.Dispose();
    }

    private async Task PublishAsync()
    {
        // etcd's publish: put our name and client URLs into the cluster through raft, retrying until it lands.
        var attrs = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["name"] = _options.Name,
            ["clientURLs"] = _options.AdvertiseClientUrls.Select(u => u.OriginalString.TrimEnd('/')).ToArray(),
        });
        var path = $"/0/members/{Membership.Member.IdString(MemberId)}/attributes";
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                var req = new InternalRaftRequest { V2 = new Request { Method = "PUT", Path = path, Val = attrs } };
                await ProposeAsync(req, _stopping.Token).ConfigureAwait(false);
                _log.LogInformation(
                    "published local member to cluster through raft {local-member-id} {local-member-attributes} {request-path} {cluster-id} {publish-timeout}",
                    Membership.Member.IdString(MemberId),
                    $"{{Name:{_options.Name} ClientURLs:[{string.Join(" ", _options.AdvertiseClientUrls.Select(u => u.OriginalString.TrimEnd('/')))}]}}",
                    path,
                    Membership.Member.IdString(Cluster.ClusterId),
                    TimeSpan.FromSeconds(5) + TimeSpan.FromMilliseconds(2.0 * _options.ElectionTimeoutMs)); // etcd's ReqTimeout
                _readyToServe.TrySetResult();
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (EtcdException e) when (e.Error == EtcdErrors.Stopped)
            {
                return;
            }
            catch (EtcdException e)
            {
                _log.LogWarning("failed to publish local member to cluster through raft {error}", e.Message);
            }
        }
    }
}

/// <summary>A member could not start: bad configuration or an unusable data directory.</summary>
public sealed class EtcdStartException : Exception
{
    /// <summary>Creates the exception with the reason etcd would print.</summary>
    public EtcdStartException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
