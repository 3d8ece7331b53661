using System.Collections.Concurrent;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Linearizability;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>Settings of a <see cref="Workload"/>. Immutable.</summary>
public sealed record WorkloadOptions
{
    /// <summary>Concurrent clients spread over the members (client i starts at member i mod n and moves on after a failure).</summary>
    public int Clients { get; init; } = 8;

    /// <summary>Register keys the clients contend on.</summary>
    public int Keys { get; init; } = 8;

    /// <summary>Key prefix.</summary>
    public string Prefix { get; init; } = "reg/";

    /// <summary>Fraction of operations that are puts (the rest are linearizable gets).</summary>
    public double PutFraction { get; init; } = 0.5;

    /// <summary>Per-operation deadline; an operation past it has an unknown outcome.</summary>
    public TimeSpan OpTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Upper bound on operations per client (the run is also bounded by the caller's stop).</summary>
    public int MaxOpsPerClient { get; init; } = 20_000;
}

/// <summary>An acknowledged put: it must be in every member's history at <see cref="Revision"/>.</summary>
public sealed record AckedPut(string Key, string Value, long Revision);

/// <summary>
/// Concurrent client load on a <see cref="ProcessCluster"/>: puts of unique values and linearizable gets on a few
/// register keys, every operation recorded in <see cref="History"/> with its call and return times (unknown
/// outcome for puts that failed or timed out; failed gets are not recorded). Clients also may be pinned to one
/// member (<see cref="AddPinned"/>), e.g. to keep asking a stale leader. Thread-safe; started once, stopped once.
/// </summary>
public sealed class Workload : IAsyncDisposable
{
    private readonly ProcessCluster _cluster;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly ConcurrentDictionary<string, EtcdClient> _clients = new();
    private int _nextClientId;
    private long _ok;
    private long _unknown;
    private long _failedReads;

    /// <summary>Creates the load (not started).</summary>
    public Workload(ProcessCluster cluster, WorkloadOptions? options = null)
    {
        _cluster = cluster;
        Options = options ?? new WorkloadOptions();
    }

    /// <summary>The settings.</summary>
    public WorkloadOptions Options { get; }

    /// <summary>The recorded history.</summary>
    public HistoryRecorder History { get; } = new();

    /// <summary>Acknowledged puts.</summary>
    public ConcurrentBag<AckedPut> Acked { get; } = [];

    /// <summary>Operations answered successfully so far.</summary>
    public long Succeeded => Interlocked.Read(ref _ok);

    /// <summary>Puts with unknown outcome so far.</summary>
    public long UnknownPuts => Interlocked.Read(ref _unknown);

    /// <summary>Gets that failed (not recorded) so far.</summary>
    public long FailedReads => Interlocked.Read(ref _failedReads);

    /// <summary>Starts <see cref="WorkloadOptions.Clients"/> roaming clients.</summary>
    public void Start()
    {
        for (var i = 0; i < Options.Clients; i++)
        {
            var id = Interlocked.Increment(ref _nextClientId);
            var start = i;
            _tasks.Add(Task.Run(() => RunAsync(id, () => _cluster.Members.Where(m => m.IsRunning).ToList(), start)));
        }
    }

    /// <summary>Starts <paramref name="count"/> clients that only ever talk to <paramref name="member"/>; returns their client IDs.</summary>
    /// <param name="member">The only member these clients talk to.</param>
    /// <param name="count">Number of clients.</param>
    /// <param name="serializableReadsOnly">Only serializable gets (local reads, which may be stale by design): the harness's positive control.</param>
    public IReadOnlyList<int> AddPinned(ClusterMember member, int count, bool serializableReadsOnly = false)
    {
        var ids = new List<int>();
        for (var i = 0; i < count; i++)
        {
            var id = Interlocked.Increment(ref _nextClientId);
            ids.Add(id);
            _tasks.Add(Task.Run(() => RunAsync(id, () => [member], 0, serializableReadsOnly)));
        }

        return ids;
    }

    /// <summary>Acknowledged operations (not unknown) of <paramref name="clients"/> invoked after <paramref name="from"/> and answered before <paramref name="to"/> (history clock).</summary>
    public IReadOnlyList<Operation> AcknowledgedWithin(IReadOnlyCollection<int> clients, long from, long to) =>
        History.Operations.Where(o => clients.Contains(o.ClientId) && !o.Unknown && o.Call > from && o.Return < to).ToList();

    /// <summary>Waits until at least <paramref name="count"/> more operations succeed (bounded); false on timeout.</summary>
    public async Task<bool> WaitForProgressAsync(long count, TimeSpan timeout)
    {
        var target = Succeeded + count;
        var deadline = DateTime.UtcNow + timeout;
        while (Succeeded < target)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    /// <summary>Waits until at least <paramref name="count"/> more puts are acknowledged (bounded); false on timeout.</summary>
    public async Task<bool> WaitForAckedPutsAsync(int count, TimeSpan timeout)
    {
        var target = Acked.Count + count;
        var deadline = DateTime.UtcNow + timeout;
        while (Acked.Count < target)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    /// <summary>Stops every client and waits for them (each stops within one operation timeout).</summary>
    public async Task StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_tasks);
    }

    /// <summary>A one-line summary.</summary>
    public string Summary() =>
        $"{History.Count} ops recorded ({Succeeded} ok, {UnknownPuts} unknown puts, {FailedReads} failed gets not recorded), {Acked.Count} acked puts";

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        foreach (var c in _clients.Values)
        {
            c.Dispose();
        }

        _stop.Dispose();
    }

    private EtcdClient ClientFor(int clientId, ClusterMember m) =>
        _clients.GetOrAdd($"{clientId}|{m.ClientUrl}", _ => EtcdClient.Create(new EtcdClientOptions { Endpoints = [m.ClientUrl], DialTimeout = TimeSpan.FromSeconds(1) }));

    private async Task RunAsync(int clientId, Func<List<ClusterMember>> targets, int position, bool serializableReadsOnly = false)
    {
        var rnd = new Random(clientId * 7919);
        var token = _stop.Token;
        for (var seq = 0; seq < Options.MaxOpsPerClient && !token.IsCancellationRequested; seq++)
        {
            var members = targets();
            if (members.Count == 0)
            {
                await Pause(token);
                continue;
            }

            var client = ClientFor(clientId, members[position % members.Count]);
            var key = Options.Prefix + rnd.Next(Options.Keys).ToString("D2");
            var call = new CallOptions { Timeout = Options.OpTimeout };
            if (!serializableReadsOnly && rnd.NextDouble() < Options.PutFraction)
            {
                var value = $"c{clientId}-{seq}";
                var t0 = HistoryRecorder.Now();
                try
                {
                    var resp = await client.Kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) }, call);
                    var t1 = HistoryRecorder.Now();
                    History.Add(Operation.Put(clientId, key, value, t0, t1));
                    Acked.Add(new AckedPut(key, value, resp.Header.Revision));
                    Interlocked.Increment(ref _ok);
                }
                catch (Exception e) when (IsClientFailure(e))
                {
                    // The request may have been applied (or may still be): its outcome is unknown.
                    History.Add(Operation.UnknownPut(clientId, key, value, t0));
                    Interlocked.Increment(ref _unknown);
                    position++;
                    await Pause(token);
                }
            }
            else
            {
                var t0 = HistoryRecorder.Now();
                try
                {
                    var resp = await client.Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key), Serializable = serializableReadsOnly }, call);
                    var t1 = HistoryRecorder.Now();
                    History.Add(Operation.Get(clientId, key, resp.Kvs.Count == 0 ? null : resp.Kvs[0].Value.ToStringUtf8(), t0, t1));
                    Interlocked.Increment(ref _ok);
                }
                catch (Exception e) when (IsClientFailure(e))
                {
                    Interlocked.Increment(ref _failedReads);
                    position++;
                    await Pause(token);
                }
            }
        }
    }

    private static bool IsClientFailure(Exception e) => e is RpcException or OperationCanceledException or HttpRequestException or IOException;

    // Back-off after a failure so a dead endpoint is not hammered; not used for synchronisation.
    private static async Task Pause(CancellationToken token)
    {
        try
        {
            await Task.Delay(50, token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
