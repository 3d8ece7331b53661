using System.Buffers.Binary;
using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Lease;

/// <summary>Tunables of a <see cref="Lessor"/>; defaults follow etcd 3.4 (<c>lease/lessor.go</c>).</summary>
public sealed record LessorConfig
{
    /// <summary>Smallest TTL granted, in seconds; a shorter request is raised to it (etcd's <c>minLeaseTTL</c>,
    /// ceil(1.5 × election timeout), see <see cref="MinTtlFor"/>).</summary>
    public long MinLeaseTtlSeconds { get; init; } = 2;

    /// <summary>How often the primary looks for expired leases and due checkpoints. etcd looks every 500 ms; we look
    /// every 100 ms so that leases are revoked closer to their TTL (a peek at the expiry heap when nothing is due).
    /// The revoke rate per second is unchanged: each check hands out at most RevokeRatePerSecond × CheckInterval.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Upper bound of leases revoked per second (etcd's <c>leaseRevokeRate</c>, 1000); also the
    /// threshold and base of the expiry spreading done by <see cref="Lessor.Promote"/>.</summary>
    public int RevokeRatePerSecond { get; init; } = 1000;

    /// <summary>An expired lease handed out for revocation is handed out again after this long if still
    /// present (etcd's <c>expiredLeaseRetryInterval</c>, 3 s).</summary>
    public TimeSpan ExpiredLeaseRetryInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Whether remaining TTLs are checkpointed through raft (<c>--experimental-enable-lease-checkpoint</c>).</summary>
    public bool CheckpointingEnabled { get; init; }

    /// <summary>Whether applied checkpoints are also written to the <c>lease</c> bucket
    /// (<c>--experimental-enable-lease-checkpoint-persist</c>; etcd 3.4 keeps them in memory otherwise).</summary>
    public bool PersistCheckpoints { get; init; }

    /// <summary>Interval between checkpoints of one lease (etcd's default 5 min).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Checkpoints per LeaseCheckpoint proposal (etcd's <c>maxLeaseCheckpointBatchSize</c>, 1000).</summary>
    public int MaxCheckpointBatchSize { get; init; } = 1000;

    /// <summary>Clock for expiry (monotonic timestamps); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>etcd's minimum lease TTL in seconds for a member: ceil(((3 × electionTicks) / 2) × heartbeat),
    /// electionTicks = election timeout / heartbeat (integer divisions as in etcd).</summary>
    public static long MinTtlFor(int electionTimeoutMs, int heartbeatIntervalMs)
    {
        var hb = Math.Max(1, heartbeatIntervalMs);
        var ticks = Math.Max(1, electionTimeoutMs / hb);
        var ms = (3L * ticks / 2) * hb;
        return (ms + 999) / 1000;
    }
}

/// <summary>What a <see cref="Lessor"/> reports about one lease (<see cref="Lessor.Lookup"/>).</summary>
/// <param name="Id">Lease ID.</param>
/// <param name="GrantedTtl">TTL in seconds as granted (after the minimum was applied).</param>
/// <param name="RemainingTtl">Seconds left, truncated toward zero (etcd's <c>int64(Remaining().Seconds())</c>);
/// on a non-primary member a lease never expires and this is <see cref="Lessor.ForeverSeconds"/>.</param>
/// <param name="Keys">Keys attached, in byte order.</param>
public sealed record LeaseInfo(long Id, long GrantedTtl, long RemainingTtl, IReadOnlyList<byte[]> Keys)
{
    /// <summary>The last checkpointed remaining TTL in seconds (applied LeaseCheckpoint), 0 when none: a new
    /// primary starts the lease from it (<c>--experimental-enable-lease-checkpoint</c>).</summary>
    public long CheckpointedTtl { get; init; }
}

/// <summary>
/// etcd's lessor (<c>lease/lessor.go</c>): the granted leases, their attached keys and — on the primary
/// (the raft leader) only — their expiry. Grant, Revoke and Checkpoint are state changes applied from
/// committed raft entries on the apply thread; Renew, Lookup and Leases serve clients from any thread.
/// Expired leases are not removed here: the primary hands them (at most
/// <see cref="LessorConfig.RevokeRatePerSecond"/> per second) to the revoke proposer, which proposes
/// LeaseRevoke through raft, so every member deletes the keys in the same revision.
/// </summary>
/// <remarks>
/// Concurrency: one internal lock guards all state. The <see cref="ILeaseLookup"/> methods are called by
/// <see cref="KvStore"/> under its write lock and the backend's batch lock and take only the lessor lock; the
/// lessor never calls the store or the backend while holding its lock (lock order: store, backend, lessor).
/// Grant, Revoke and Checkpoint are meant to be called from one thread (the apply thread).
/// Persistence: each lease is a <c>leasepb.Lease</c> in the <c>lease</c> bucket under its 8-byte big-endian ID.
/// </remarks>
public sealed class Lessor : ILeaseLookup, IDisposable
{
    /// <summary>Largest TTL accepted in seconds (etcd's <c>MaxLeaseTTL</c>).</summary>
    public const long MaxLeaseTtl = 9_000_000_000;

    /// <summary>Remaining seconds reported for a lease that does not expire (etcd's forever: max int64 ns in seconds).</summary>
    public const long ForeverSeconds = long.MaxValue / 1_000_000_000;

    /// <summary>The backend bucket holding leases.</summary>
    public const string LeaseBucket = "lease";

    private const long Forever = long.MaxValue;

    private readonly object _mu = new();
    private readonly IBackend _backend;
    private readonly LessorConfig _config;
    private readonly ILogger? _log;
    private readonly TimeProvider _time;
    private readonly long _epoch;
    private readonly Dictionary<long, LeaseEntry> _leases = new();
    private readonly PriorityQueue<long, long> _expiryHeap = new();
    private readonly PriorityQueue<long, long> _checkpointHeap = new();
    private KvStore? _store;
    private bool _primary;
    private TaskCompletionSource _demoted = NewSignal();
    private ITimer? _timer;
    private Func<long, Task>? _proposeRevoke;
    private Func<LeaseCheckpointRequest, Task>? _proposeCheckpoint;
    private bool _disposed;

    /// <summary>Creates the lessor over <paramref name="backend"/>: creates the <c>lease</c> bucket and recovers
    /// the leases in it (TTL raised to the minimum, no expiry until <see cref="Promote"/>).</summary>
    public Lessor(IBackend backend, LessorConfig? config = null, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
        _config = config ?? new LessorConfig();
        _log = log;
        _time = _config.TimeProvider;
        _epoch = _time.GetTimestamp();
        Recover();
    }

    /// <summary>Whether this lessor is the primary (expires leases, accepts renewals).</summary>
    public bool IsPrimary
    {
        get
        {
            lock (_mu)
            {
                return _primary;
            }
        }
    }

    /// <summary>Number of granted leases.</summary>
    public int Count
    {
        get
        {
            lock (_mu)
            {
                return _leases.Count;
            }
        }
    }

    /// <summary>The configuration in use.</summary>
    public LessorConfig Config => _config;

    /// <summary>Sets the store whose keys revocation deletes (once, right after the store is built over this lessor).</summary>
    public void SetStore(KvStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
    }

    /// <summary>
    /// Sets where expired leases and checkpoints go (the server proposes LeaseRevoke / LeaseCheckpoint through
    /// raft) and, when <paramref name="startTimer"/>, starts the periodic check every
    /// <see cref="LessorConfig.CheckInterval"/> on the configured <see cref="TimeProvider"/>.
    /// </summary>
    public void Start(Func<long, Task> proposeRevoke, Func<LeaseCheckpointRequest, Task>? proposeCheckpoint, bool startTimer = true)
    {
        ArgumentNullException.ThrowIfNull(proposeRevoke);
        _proposeRevoke = proposeRevoke;
        _proposeCheckpoint = proposeCheckpoint;
        if (startTimer && _timer is null)
        {
            _timer = _time.CreateTimer(_ => RunChecks(), null, _config.CheckInterval, _config.CheckInterval);
        }
    }

    /// <summary>
    /// Grants lease <paramref name="id"/> (apply of LeaseGrant; etcd's <c>lessor.Grant</c>): persisted; on the
    /// primary it expires <paramref name="ttl"/> seconds from now. Returns the granted TTL (at least the minimum).
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.LeaseNotFound"/> for ID 0,
    /// <see cref="EtcdErrors.LeaseTtlTooLarge"/> over <see cref="MaxLeaseTtl"/>, <see cref="EtcdErrors.LeaseExist"/>.</exception>
    public long Grant(long id, long ttl)
    {
        var granted = GrantCore(id, ttl);
        if (Metrics is { } m)
        {
            m.LeasesGranted.Inc();
            m.LeaseTtl.Observe(granted);
        }

        return granted;
    }

    /// <summary>Where grants, revocations and renewals are counted (etcd's <c>lease/metrics.go</c>); null = not counted.</summary>
    public Etcd.Server.Metrics.ServerMetrics? Metrics { get; set; }

    private long GrantCore(long id, long ttl)
    {
        if (id == 0)
        {
            throw EtcdErrors.LeaseNotFound.ToException();
        }

        if (ttl > MaxLeaseTtl)
        {
            throw EtcdErrors.LeaseTtlTooLarge.ToException();
        }

        LeaseEntry l;
        lock (_mu)
        {
            if (_leases.ContainsKey(id))
            {
                throw EtcdErrors.LeaseExist.ToException();
            }

            l = new LeaseEntry(id, Math.Max(ttl, _config.MinLeaseTtlSeconds));
            _leases[id] = l;
            if (_primary)
            {
                Refresh(l, 0);
                _expiryHeap.Enqueue(id, l.Expiry);
                ScheduleCheckpoint(l);
            }
        }

        // Outside the lessor lock: the store takes the backend lock before calling Attach/Detach.
        Persist(l);
        return l.Ttl;
    }

    /// <summary>
    /// Revokes lease <paramref name="id"/> (apply of LeaseRevoke; etcd's <c>lessor.Revoke</c>): its keys are
    /// deleted in one revision and the lease leaves the <c>lease</c> bucket in the same backend batch.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.LeaseNotFound"/>.</exception>
    public void Revoke(long id)
    {
        LeaseEntry l;
        byte[][] keys;
        lock (_mu)
        {
            if (!_leases.TryGetValue(id, out l!))
            {
                throw EtcdErrors.LeaseNotFound.ToException();
            }

            keys = l.Keys is { Count: > 0 } attached ? [.. attached] : [];
        }

        var idKey = IdKey(id);
        var store = _store ?? throw new InvalidOperationException("lessor: no store set");
        if (keys.Length == 0)
        {
            // Nothing to delete: no revision is written (as etcd's empty write txn), only the lease record goes.
            var tx = _backend.BatchTx;
            tx.Lock();
            try
            {
                tx.Delete(LeaseBucket, idKey);
            }
            finally
            {
                tx.Unlock();
            }
        }
        else
        {
            Array.Sort(keys, static (a, b) => a.AsSpan().SequenceCompareTo(b));
            store.DeleteKeys(keys, tx => tx.Delete(LeaseBucket, idKey));
        }

        TaskCompletionSource? revoked;
        lock (_mu)
        {
            _leases.Remove(id);
            revoked = l.Revoked;
        }

        revoked?.TrySetResult();
        Metrics?.LeasesRevoked.Inc();
    }

    /// <summary>
    /// Records checkpointed remaining TTLs (apply of LeaseCheckpoint; etcd's <c>lessor.Checkpoint</c>): a later
    /// <see cref="Promote"/> starts the lease from that remainder instead of its full TTL. 0 clears it.
    /// Unknown leases are skipped.
    /// </summary>
    public void Checkpoint(LeaseCheckpointRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var changed = new List<LeaseEntry>(request.Checkpoints.Count);
        lock (_mu)
        {
            foreach (var cp in request.Checkpoints)
            {
                if (_leases.TryGetValue(cp.ID, out var l))
                {
                    l.RemainingTtl = cp.RemainingTTL;
                    changed.Add(l);
                    if (_primary)
                    {
                        ScheduleCheckpoint(l);
                    }
                }
            }
        }

        if (_config.PersistCheckpoints)
        {
            foreach (var l in changed)
            {
                Persist(l);
            }
        }
    }

    /// <summary>
    /// Renews lease <paramref name="id"/> on the primary (etcd's <c>lessor.Renew</c>): its expiry becomes now + TTL;
    /// returns the TTL in seconds. A lease that already expired is not renewed: the call waits until its
    /// revocation is applied and then fails. Thread-safe.
    /// </summary>
    /// <exception cref="EtcdException"><see cref="EtcdErrors.LeaseNotFound"/> (unknown, or expired and revoked);
    /// <see cref="LessorNotPrimaryException"/> when this member is not (or stops being) the primary.</exception>
    public async Task<long> RenewAsync(long id, CancellationToken cancellationToken)
    {
        LeaseEntry? l;
        Task demoted;
        bool clearRemaining;
        lock (_mu)
        {
            if (!_primary)
            {
                throw new LessorNotPrimaryException();
            }

            demoted = _demoted.Task;
            if (!_leases.TryGetValue(id, out l))
            {
                throw EtcdErrors.LeaseNotFound.ToException();
            }

            clearRemaining = _config.CheckpointingEnabled && l.RemainingTtl > 0;
            if (l.ExpiredSeen || l.Expiry <= NowTicks())
            {
                l = null;
            }
        }

        if (l is null)
        {
            Task revoked;
            lock (_mu)
            {
                // Created under the lock that Revoke removes the lease under: a revocation cannot slip in between.
                revoked = _leases.TryGetValue(id, out var lease)
                    ? (lease.Revoked ??= NewSignal()).Task
                    : throw EtcdErrors.LeaseNotFound.ToException();
            }

            var done = await Task.WhenAny(revoked, demoted, Task.Delay(Timeout.Infinite, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (done == demoted)
            {
                throw new LessorNotPrimaryException();
            }

            throw EtcdErrors.LeaseNotFound.ToException();
        }

        if (clearRemaining && _proposeCheckpoint is { } cp)
        {
            var req = new LeaseCheckpointRequest();
            req.Checkpoints.Add(new LeaseCheckpoint { ID = id, RemainingTTL = 0 });
            _ = ProposeQuietly(() => cp(req));
        }

        lock (_mu)
        {
            if (!_leases.ContainsKey(id))
            {
                throw EtcdErrors.LeaseNotFound.ToException();
            }

            Refresh(l, 0);
            _expiryHeap.Enqueue(id, l.Expiry);
            CompactHeapIfBloated();
            Metrics?.LeasesRenewed.Inc();
            return l.Ttl;
        }
    }

    /// <summary>The lease <paramref name="id"/> with its keys, or null when unknown. Thread-safe.</summary>
    public LeaseInfo? Lookup(long id)
    {
        lock (_mu)
        {
            if (!_leases.TryGetValue(id, out var l))
            {
                return null;
            }

            var keys = l.Keys?.ToArray() ?? [];
            Array.Sort(keys, static (a, b) => a.AsSpan().SequenceCompareTo(b));
            return new LeaseInfo(l.Id, l.Ttl, RemainingSeconds(l), keys) { CheckpointedTtl = l.RemainingTtl };
        }
    }

    /// <summary>IDs of all leases, soonest expiry first (etcd's <c>Leases()</c> order). Thread-safe.</summary>
    public IReadOnlyList<long> Leases()
    {
        lock (_mu)
        {
            return _leases.Values.OrderBy(l => l.Expiry).ThenBy(l => l.Id).Select(l => l.Id).ToList();
        }
    }

    /// <summary>
    /// Makes this lessor the primary (the member became leader; etcd's <c>Promote</c>): every lease expires
    /// <paramref name="extend"/> (the election timeout) after its TTL — or its checkpointed remainder — counted
    /// from now. With at least <see cref="LessorConfig.RevokeRatePerSecond"/> leases, expiries are spread so that
    /// no one-second window holds more than three quarters of that rate (etcd#9888).
    /// </summary>
    public void Promote(TimeSpan extend)
    {
        lock (_mu)
        {
            _primary = true;
            _expiryHeap.Clear();
            _checkpointHeap.Clear();
            var extendTicks = extend.Ticks;
            foreach (var l in _leases.Values)
            {
                Refresh(l, extendTicks);
            }

            if (_leases.Count >= _config.RevokeRatePerSecond)
            {
                SpreadExpiries(extendTicks);
            }

            foreach (var l in _leases.Values)
            {
                _expiryHeap.Enqueue(l.Id, l.Expiry);
                ScheduleCheckpoint(l);
            }
        }
    }

    /// <summary>Stops being the primary (etcd's <c>Demote</c>): no lease expires here; pending renewals of
    /// expired leases fail with <see cref="LessorNotPrimaryException"/>.</summary>
    public void Demote()
    {
        TaskCompletionSource demoted;
        lock (_mu)
        {
            _primary = false;
            foreach (var l in _leases.Values)
            {
                l.Expiry = Forever;
            }

            _expiryHeap.Clear();
            _checkpointHeap.Clear();
            demoted = _demoted;
            _demoted = NewSignal();
        }

        demoted.TrySetResult();
    }

    /// <summary>
    /// One expiry/checkpoint round (what the timer runs): on the primary, finds up to
    /// RevokeRatePerSecond × CheckInterval expired leases and hands each to the revoke proposer; then
    /// proposes due checkpoints. Returns the lease IDs handed out. Thread-safe.
    /// </summary>
    public IReadOnlyList<long> RunChecks()
    {
        var expired = FindExpired(RevokeLimitPerCheck());
        if (_proposeRevoke is { } revoke)
        {
            foreach (var id in expired)
            {
                _ = ProposeQuietly(() => revoke(id));
            }
        }

        if (_config.CheckpointingEnabled && _proposeCheckpoint is { } cp)
        {
            foreach (var batch in FindDueCheckpoints())
            {
                _ = ProposeQuietly(() => cp(batch));
            }
        }

        return expired;
    }

    /// <summary>Up to <paramref name="limit"/> expired leases (primary only); each is not handed out again for
    /// <see cref="LessorConfig.ExpiredLeaseRetryInterval"/>.</summary>
    public IReadOnlyList<long> FindExpired(int limit)
    {
        var found = new List<long>();
        lock (_mu)
        {
            if (!_primary)
            {
                return found;
            }

            var now = NowTicks();
            while (found.Count < limit && _expiryHeap.TryPeek(out var id, out var when))
            {
                if (!_leases.TryGetValue(id, out var l) || l.Expiry != when)
                {
                    _expiryHeap.Dequeue(); // revoked, or renewed since this entry was queued
                    continue;
                }

                if (when > now)
                {
                    break;
                }

                _expiryHeap.Dequeue();
                found.Add(id);

                // Hand it out again later if its revocation got lost (leader change, failed proposal).
                l.Expiry = now + _config.ExpiredLeaseRetryInterval.Ticks;
                l.ExpiredSeen = true;
                _expiryHeap.Enqueue(id, l.Expiry);
            }
        }

        return found;
    }

    /// <inheritdoc/>
    public bool Exists(long leaseId)
    {
        lock (_mu)
        {
            return _leases.ContainsKey(leaseId);
        }
    }

    /// <inheritdoc/>
    public void Attach(long leaseId, ReadOnlySpan<byte> key)
    {
        lock (_mu)
        {
            if (_leases.TryGetValue(leaseId, out var l))
            {
                (l.Keys ??= new HashSet<byte[]>(ByteArrayComparer.Instance)).Add(key.ToArray());
            }
        }
    }

    /// <inheritdoc/>
    public void Detach(long leaseId, ReadOnlySpan<byte> key)
    {
        lock (_mu)
        {
            if (_leases.TryGetValue(leaseId, out var l))
            {
                l.Keys?.Remove(key.ToArray());
            }
        }
    }

    /// <summary>Stops the timer; pending renew waits fail as on demotion.</summary>
    public void Dispose()
    {
        lock (_mu)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _timer?.Dispose();
        _demoted.TrySetResult();
    }

    /// <summary>The 8-byte big-endian key of lease <paramref name="id"/> in the <c>lease</c> bucket.</summary>
    public static byte[] IdKey(long id)
    {
        var k = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(k, id);
        return k;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int RevokeLimitPerCheck()
        => (int)Math.Max(1, Math.Min(int.MaxValue, _config.RevokeRatePerSecond * _config.CheckInterval.TotalSeconds));

    private async Task ProposeQuietly(Func<Task> propose)
    {
        try
        {
            await propose().ConfigureAwait(false);
        }
        catch (Exception e) when (e is Api.Grpc.RpcException or OperationCanceledException)
        {
            // A lost revoke is retried after ExpiredLeaseRetryInterval; a lost checkpoint by the next one.
            _log?.LogDebug("lease proposal failed {error}", e.Message);
        }
    }

    private long NowTicks() => _time.GetElapsedTime(_epoch).Ticks;

    private void Refresh(LeaseEntry l, long extendTicks)
    {
        var ttl = l.RemainingTtl > 0 ? l.RemainingTtl : l.Ttl;
        l.Expiry = NowTicks() + extendTicks + (ttl * TimeSpan.TicksPerSecond);
        l.ExpiredSeen = false;
    }

    private long RemainingSeconds(LeaseEntry l)
        => l.Expiry == Forever ? ForeverSeconds : (l.Expiry - NowTicks()) / TimeSpan.TicksPerSecond;

    private void SpreadExpiries(long extendTicks)
    {
        // Order by expiry; walk one-second windows. Within a window, leases beyond the target rate are pushed
        // back proportionally so that the revocations after promotion are spread over time.
        var now = NowTicks();
        var leases = _leases.Values.OrderBy(l => l.Expiry).ToList();
        var target = Math.Max(1, 3 * _config.RevokeRatePerSecond / 4);
        var baseWindow = leases[0].Expiry - now;
        var nextWindow = baseWindow + TimeSpan.TicksPerSecond;
        var inWindow = 0;
        foreach (var l in leases)
        {
            var remaining = l.Expiry - now;
            if (remaining > nextWindow)
            {
                baseWindow = remaining;
                nextWindow = baseWindow + TimeSpan.TicksPerSecond;
                inWindow = 1;
                continue;
            }

            inWindow++;
            if (inWindow <= target)
            {
                continue;
            }

            var delay = (long)(TimeSpan.TicksPerSecond * ((double)inWindow / target)) - (remaining - baseWindow);
            nextWindow = baseWindow + delay;
            Refresh(l, delay + extendTicks);
        }
    }

    private void ScheduleCheckpoint(LeaseEntry l)
    {
        if (!_config.CheckpointingEnabled)
        {
            return;
        }

        var ttl = l.RemainingTtl > 0 ? l.RemainingTtl : l.Ttl;
        if (ttl > (long)_config.CheckpointInterval.TotalSeconds)
        {
            _checkpointHeap.Enqueue(l.Id, NowTicks() + _config.CheckpointInterval.Ticks);
        }
    }

    private List<LeaseCheckpointRequest> FindDueCheckpoints()
    {
        var batches = new List<LeaseCheckpointRequest>();
        lock (_mu)
        {
            if (!_primary)
            {
                return batches;
            }

            var now = NowTicks();
            var later = new List<long>();
            LeaseCheckpointRequest? cur = null;
            while (_checkpointHeap.TryPeek(out var id, out var due) && due <= now)
            {
                _checkpointHeap.Dequeue();
                if (!_leases.TryGetValue(id, out var l) || l.Expiry == Forever)
                {
                    continue;
                }

                // Remaining seconds rounded up, as etcd's findDueScheduledCheckpoints.
                var remaining = (l.Expiry - now + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
                if (remaining >= l.Ttl)
                {
                    // Nothing to record yet (just renewed or promoted with the extension): etcd 3.4 drops the lease from
                    // the schedule here, so it would never be checkpointed again; look again one interval later.
                    later.Add(id);
                    continue;
                }

                if (cur is null || cur.Checkpoints.Count >= _config.MaxCheckpointBatchSize)
                {
                    cur = new LeaseCheckpointRequest();
                    batches.Add(cur);
                }

                cur.Checkpoints.Add(new LeaseCheckpoint { ID = id, RemainingTTL = remaining });
            }

            foreach (var id in later)
            {
                _checkpointHeap.Enqueue(id, now + _config.CheckpointInterval.Ticks);
            }
        }

        return batches;
    }

    private void CompactHeapIfBloated()
    {
        // Renewals leave stale heap entries behind (skipped lazily); rebuild when they dominate.
        if (_expiryHeap.Count <= (2 * _leases.Count) + 1024)
        {
            return;
        }

        _expiryHeap.Clear();
        foreach (var l in _leases.Values)
        {
            if (l.Expiry != Forever)
            {
                _expiryHeap.Enqueue(l.Id, l.Expiry);
            }
        }
    }

    private void Persist(LeaseEntry l)
    {
        var value = new Leasepb.Lease { ID = l.Id, TTL = l.Ttl, RemainingTTL = l.RemainingTtl }.ToByteArray();
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            tx.Put(LeaseBucket, IdKey(l.Id), value);

            // The raft index of the entry being applied goes into the same batch (exactly-once apply after a crash).
            _store?.SaveConsistentIndex(tx);
        }
        finally
        {
            tx.Unlock();
        }
    }

    /// <summary>
    /// Reloads the leases from the backend's <c>lease</c> bucket, dropping those held in memory (etcd's
    /// <c>lessor.Recover</c> after a raft snapshot replaced the backend). Key attachments are rebuilt by the
    /// store's restore that follows (<see cref="KvStore.Restore(IBackend)"/>). Loop thread only; expiry
    /// restarts when the lessor is next promoted.
    /// </summary>
    public void Recover(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!ReferenceEquals(backend, _backend))
        {
            throw new ArgumentException("the lessor recovers only from the backend it was created over", nameof(backend));
        }

        lock (_mu)
        {
            _leases.Clear();
            _expiryHeap.Clear();
            _checkpointHeap.Clear();
        }

        Recover();
    }

    private void Recover()
    {
        var tx = _backend.BatchTx;
        tx.Lock();
        try
        {
            tx.CreateBucket(LeaseBucket);
            tx.ForEach(LeaseBucket, (k, v) =>
            {
                var pb = Leasepb.Lease.Parser.ParseFrom(v.ToArray());
                var l = new LeaseEntry(pb.ID, Math.Max(pb.TTL, _config.MinLeaseTtlSeconds)) { RemainingTtl = pb.RemainingTTL };
                lock (_mu)
                {
                    _leases[pb.ID] = l;
                }

                return true;
            });
        }
        finally
        {
            tx.Unlock();
        }
    }

    private sealed class LeaseEntry(long id, long ttl)
    {
        public long Id { get; } = id;

        public long Ttl { get; } = ttl;

        public long RemainingTtl { get; set; }

        /// <summary>Expiry in ticks since the lessor's epoch; <see cref="Forever"/> when not primary.</summary>
        public long Expiry { get; set; } = Forever;

        public bool ExpiredSeen { get; set; }

        /// <summary>Attached keys; null until the first is attached (most leases in bulk carry none or one).</summary>
        public HashSet<byte[]>? Keys { get; set; }

        /// <summary>Completed when revoked; created (under the lessor lock) only when a renewal waits for it.</summary>
        public TaskCompletionSource? Revoked { get; set; }
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var h = new HashCode();
            h.AddBytes(obj);
            return h.ToHashCode();
        }
    }
}

/// <summary>The lessor is not the primary (etcd's <c>lease.ErrNotPrimary</c>): the request must go to the leader.</summary>
public sealed class LessorNotPrimaryException : Exception
{
    /// <summary>Creates the exception with etcd's message "not a primary lessor".</summary>
    public LessorNotPrimaryException()
        : base("not a primary lessor")
    {
    }
}
