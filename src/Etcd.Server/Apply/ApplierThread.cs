using Raftpb;

namespace Etcd.Server.Apply;

/// <summary>
/// The applier's own thread (etcd's apply goroutine: <c>EtcdServer.run</c> / <c>applyAll</c> in
/// <c>etcdserver/server.go</c>): the raft node hands it batches of committed, locally persisted entries and goes on
/// ticking, stepping and persisting while they are applied here, one batch at a time, in the order handed over.
/// Other work that must see the state machine between two batches (a raft snapshot to install, a snapshot message
/// to build) is queued the same way, so it runs in order with the entries.
/// </summary>
/// <remarks>
/// Concurrency: <see cref="Apply"/>, <see cref="Post"/> and <see cref="RunAndWait"/> may be called from any thread
/// (the raft node calls them); every job runs on this thread. A job that throws stops the thread: the failure goes
/// to the callback given at construction, and later calls to <see cref="RunAndWait"/> throw
/// <see cref="ApplierStoppedException"/>. <see cref="Stop"/> drops jobs not yet started (their entries are in the
/// WAL and are applied again by the next start) and waits for the running one.
/// </remarks>
internal sealed class ApplierThread
{
    private readonly object _lock = new();
    private readonly Queue<Job> _jobs = new();
    private readonly Action<IReadOnlyList<Entry>> _applyEntries;
    private readonly Action<Exception> _onFailure;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _stopping;
    private bool _started;
    private Exception? _failure;

    /// <summary>Creates the thread (not started).</summary>
    /// <param name="name">The thread's name.</param>
    /// <param name="applyEntries">Applies one batch of committed entries, in index order.</param>
    /// <param name="onFailure">Called once on this thread when a job throws; the thread then stops.</param>
    public ApplierThread(string name, Action<IReadOnlyList<Entry>> applyEntries, Action<Exception> onFailure)
    {
        _applyEntries = applyEntries;
        _onFailure = onFailure;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Jobs queued and not yet finished (the running one included).</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _jobs.Count;
            }
        }
    }

    /// <summary>Completes when <see cref="Stop"/> is first called (jobs not started by then are dropped).</summary>
    public Task StopRequested => _stopRequested.Task;

    /// <summary>Starts the thread (once).</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_started)
            {
                return;
            }

            _started = true;
        }

        _thread.Start();
    }

    /// <summary>Queues a batch of committed entries (already persisted locally) to apply after everything queued before.</summary>
    public void Apply(IReadOnlyList<Entry> entries) => Enqueue(new Job(entries, null));

    /// <summary>Queues <paramref name="action"/> to run on the applier thread after everything queued before; does not wait.</summary>
    public void Post(Action action) => Enqueue(new Job(null, action));

    /// <summary>
    /// Runs <paramref name="action"/> on the applier thread after everything queued before, and waits until it has
    /// run: on return every batch handed over earlier is applied. The caller must not be the applier thread.
    /// </summary>
    /// <exception cref="ApplierStoppedException">The applier stopped or failed before the action ran.</exception>
    public void RunAndWait(Action action)
    {
        var job = new Job(null, action) { Done = new ManualResetEventSlim() };
        Enqueue(job);
        job.Done.Wait();
        job.Done.Dispose();
        if (!job.Ran)
        {
            throw new ApplierStoppedException(_failure);
        }

        if (job.Error is { } e)
        {
            throw new ApplierStoppedException(e);
        }
    }

    /// <summary>Waits until every job queued before this call has run (<see cref="RunAndWait"/> of nothing).</summary>
    /// <exception cref="ApplierStoppedException">The applier stopped or failed first.</exception>
    public void WaitIdle() => RunAndWait(static () => { });

    /// <summary>Stops the thread: drops the jobs not started, waits for the running one. Idempotent.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }

        _stopRequested.TrySetResult();

        if (_started && Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        ReleaseDropped();
    }

    private void Enqueue(Job job)
    {
        lock (_lock)
        {
            if (_stopping)
            {
                job.Done?.Set();
                return;
            }

            _jobs.Enqueue(job);
            if (_jobs.Count == 1)
            {
                Monitor.Pulse(_lock);
            }
        }
    }

    private void Run()
    {
        while (true)
        {
            Job job;
            lock (_lock)
            {
                while (_jobs.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_lock);
                }

                if (_stopping)
                {
                    break;
                }

                job = _jobs.Peek();
            }

            try
            {
                if (job.Entries is { } entries)
                {
                    _applyEntries(entries);
                }

                job.Action?.Invoke();
                job.Ran = true;
            }
            catch (Exception e)
            {
                job.Ran = true;
                job.Error = e;
                lock (_lock)
                {
                    _failure = e;
                    _stopping = true;
                    _jobs.Dequeue();
                }

                job.Done?.Set();
                _onFailure(e);
                break;
            }

            lock (_lock)
            {
                _jobs.Dequeue();
            }

            job.Done?.Set();
        }

        ReleaseDropped();
    }

    /// <summary>Wakes the waiters of jobs that will never run.</summary>
    private void ReleaseDropped()
    {
        List<Job> dropped;
        lock (_lock)
        {
            dropped = [.. _jobs];
            _jobs.Clear();
        }

        foreach (var j in dropped)
        {
            j.Done?.Set();
        }
    }

    private sealed class Job(IReadOnlyList<Entry>? entries, Action? action)
    {
        public IReadOnlyList<Entry>? Entries { get; } = entries;

        public Action? Action { get; } = action;

        public ManualResetEventSlim? Done { get; init; }

        public bool Ran { get; set; }

        public Exception? Error { get; set; }
    }
}

/// <summary>The applier thread stopped (the member is stopping, or an apply failed: <see cref="Exception.InnerException"/>).</summary>
public sealed class ApplierStoppedException(Exception? cause)
    : Exception(cause is null ? "the applier has stopped" : $"the applier has stopped: {cause.Message}", cause);
