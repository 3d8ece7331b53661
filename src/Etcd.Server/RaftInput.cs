namespace Etcd.Server;

/// <summary>What a non-loop thread asks of the raft loop.</summary>
internal enum RaftInputKind
{
    Tick,
    Propose,
    ReadRequested,

    /// <summary>A message from a peer (Payload: raftpb.Message).</summary>
    Step,

    /// <summary>A peer could not be reached (Id: the peer).</summary>
    Unreachable,

    /// <summary>A snapshot send finished (Id: the peer, Payload: SnapshotStatus).</summary>
    SnapshotStatus,

    /// <summary>A conf change to propose (Id: its waiter, Payload: raftpb.ConfChange).</summary>
    ProposeConfChange,

    /// <summary>Run a delegate on the loop thread (Payload: Action).</summary>
    Run,

    /// <summary>Stop the loop (the member was removed from the cluster).</summary>
    Stop,
}

/// <summary>One request to the raft loop; immutable.</summary>
internal readonly record struct RaftInput(RaftInputKind Kind, ulong Id, byte[]? Data, object? Payload = null)
{
    public static readonly RaftInput TickInput = new(RaftInputKind.Tick, 0, null);

    public static readonly RaftInput ReadRequested = new(RaftInputKind.ReadRequested, 0, null);

    public static RaftInput Propose(ulong id, byte[] data) => new(RaftInputKind.Propose, id, data);

    public static RaftInput Step(Raftpb.Message m) => new(RaftInputKind.Step, 0, null, m);

    public static RaftInput Unreachable(ulong id) => new(RaftInputKind.Unreachable, id, null);

    public static RaftInput SnapshotReport(ulong id, Etcd.Raft.SnapshotStatus status) => new(RaftInputKind.SnapshotStatus, id, null, status);

    public static RaftInput ProposeConfChange(ulong id, Raftpb.ConfChange cc) => new(RaftInputKind.ProposeConfChange, id, null, cc);

    public static RaftInput Run(Action action) => new(RaftInputKind.Run, 0, null, action);
}

/// <summary>
/// Groups concurrent linearizable reads onto one ReadIndex round (etcd's read notifier): readers
/// <see cref="Join"/> the pending batch; the raft loop <see cref="Take"/>s it when it sends a ReadIndex.
/// Thread-safe.
/// </summary>
internal sealed class ReadBatch
{
    private readonly object _lock = new();
    private TaskCompletionSource<ulong>? _pending;

    public TaskCompletionSource<ulong> Join()
    {
        lock (_lock)
        {
            return _pending ??= new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public TaskCompletionSource<ulong>? Take()
    {
        lock (_lock)
        {
            var p = _pending;
            _pending = null;
            return p;
        }
    }

    public void FailAll(Exception e) => Take()?.TrySetException(e);
}

/// <summary>Waiters for the applied index to reach a value. Thread-safe.</summary>
internal sealed class AppliedWaiters
{
    private readonly object _lock = new();
    private readonly SortedDictionary<ulong, List<TaskCompletionSource>> _waiters = new();
    private Exception? _failed;

    public Task WaitAsync(ulong index, Func<ulong> applied, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_failed is not null)
            {
                return Task.FromException(_failed);
            }

            if (applied() >= index)
            {
                return Task.CompletedTask;
            }

            if (!_waiters.TryGetValue(index, out var list))
            {
                _waiters[index] = list = [];
            }

            list.Add(tcs);
        }

        return ct.CanBeCanceled ? tcs.Task.WaitAsync(ct) : tcs.Task;
    }

    public void Trigger(ulong applied)
    {
        List<TaskCompletionSource>? done = null;
        lock (_lock)
        {
            while (_waiters.Count > 0)
            {
                var first = _waiters.First();
                if (first.Key > applied)
                {
                    break;
                }

                (done ??= []).AddRange(first.Value);
                _waiters.Remove(first.Key);
            }
        }

        if (done is not null)
        {
            foreach (var t in done)
            {
                t.TrySetResult();
            }
        }
    }

    public void FailAll(Exception e)
    {
        List<TaskCompletionSource> all;
        lock (_lock)
        {
            _failed = e;
            all = _waiters.Values.SelectMany(l => l).ToList();
            _waiters.Clear();
        }

        foreach (var t in all)
        {
            t.TrySetException(e);
        }
    }
}
