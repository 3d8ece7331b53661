using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Etcd.Storage.Backend;

namespace Etcd.Server;

/// <summary>
/// The crash-critical points of the member where a crash test can kill the process (etcd's gofail failpoints,
/// which etcd's own robustness tests arm through <c>GOFAIL_FAILPOINTS</c>). Each name is what
/// <see cref="Failpoints.EnvironmentVariable"/> spells.
/// </summary>
public enum Failpoint
{
    /// <summary>
    /// <c>raftBeforeSave</c>: a Ready's hard state and entries are about to be written to the WAL (raft thread; a
    /// leader has already sent the Ready's messages, a follower has not).
    /// </summary>
    RaftBeforeSave,

    /// <summary>
    /// <c>raftAfterSave</c>: the Ready's entries and hard state are in the WAL (fsynced when raft asked for it); its
    /// committed entries are not handed to the applier yet, and a follower has not sent its messages (raft thread).
    /// </summary>
    RaftAfterSave,

    /// <summary>
    /// <c>raftAfterApply</c>: a batch of committed entries handed over by the raft thread is applied to the state
    /// machine (their writes sit in the backend's uncommitted batch, waiting for the next batch commit); the raft
    /// thread may be further on (applier thread).
    /// </summary>
    RaftAfterApply,

    /// <summary><c>beforeApplyOneConfChange</c>: a committed conf-change entry is about to be applied (applier thread).</summary>
    BeforeApplyOneConfChange,

    /// <summary>
    /// <c>afterApplyOneConfChange</c>: a conf-change entry changed raft's configuration and the membership (its
    /// members-bucket write is in the backend batch, not committed) (applier thread).
    /// </summary>
    AfterApplyOneConfChange,

    /// <summary>
    /// <c>raftBeforeSaveSnap</c>: a raft snapshot (every <c>--snapshot-count</c> entries) is about to be written as a
    /// <c>%016x-%016x.snap</c> file (applier thread).
    /// </summary>
    RaftBeforeSaveSnap,

    /// <summary>
    /// <c>raftAfterSaveSnap</c>: the snap file and the WAL's snapshot record are written; the WAL segments before it
    /// are not released yet, and for a snapshot received from the leader its db is not swapped in yet (applier thread).
    /// </summary>
    RaftAfterSaveSnap,

    /// <summary><c>raftAfterWALRelease</c>: WAL segments older than the snapshot were released (applier thread).</summary>
    RaftAfterWalRelease,

    /// <summary><c>beforeCommit</c>: a backend batch is about to be committed (<see cref="BackendFailpoints.BeforeCommit"/>).</summary>
    BackendBeforeCommit,

    /// <summary>
    /// <c>boltBeforeMetaWrite</c>: inside a backend batch commit, the data pages are written and synced, the meta page
    /// is not (<see cref="BackendFailpoints.BeforeMetaWrite"/>).
    /// </summary>
    BoltBeforeMetaWrite,

    /// <summary><c>afterCommit</c>: a backend batch commit is durable (<see cref="BackendFailpoints.AfterCommit"/>).</summary>
    BackendAfterCommit,
}

/// <summary>
/// Failpoints for crash tests: at a configured pass through a <see cref="Failpoint"/> the process kills itself with
/// SIGKILL. Off unless <see cref="EnvironmentVariable"/> is set when the process starts; then it costs one test of a
/// <c>static readonly</c> flag per point, which the JIT folds away.
/// </summary>
/// <remarks>
/// <para>Syntax of <c>GOFAIL_FAILPOINTS</c>: <c>name=action[;name=action...]</c> (<c>,</c> also separates), names as in
/// <see cref="Failpoint"/>'s docs (<c>raftAfterSave</c>, <c>beforeCommit</c>, ...; case-insensitive). Actions:</para>
/// <list type="bullet">
/// <item><c>N</c> (a positive integer): kill on the N-th pass through the point.</item>
/// <item><c>kill</c> or <c>panic</c>: kill on the first pass.</item>
/// <item><c>K*off-&gt;kill</c> or <c>K*off-&gt;panic</c> (gofail's chain form): let K passes through, kill on pass K+1.</item>
/// <item><c>off</c>: the point is counted but never fires.</item>
/// </list>
/// <para>Example: <c>GOFAIL_FAILPOINTS="raftAfterSave=3"</c> kills the member right after the third WAL save. Unknown names
/// and malformed actions are reported on stderr and ignored. The variable has gofail's name (not an <c>ETCD_*</c> one,
/// which etcd's flag parser would warn about as an unrecognised flag).</para>
/// <para>Why SIGKILL of our own pid: it is exactly the crash the durability claim is about. The kernel stops every thread
/// at once; no <c>finally</c> block, finaliser, <c>Dispose</c>, log flush or file close of ours runs; writes already
/// handed to the kernel stay in the page cache (as after any process crash), nothing still in a managed buffer
/// reaches the disk. <see cref="Environment.FailFast(string)"/> was not chosen: on Linux it aborts through SIGABRT,
/// prints a stack trace and may write a core dump (slow, and not what a crash looks like to the data directory);
/// an exception would run <c>finally</c> blocks and disposal. A power loss (dropping the page cache) is not
/// simulated; the WAL and the backend fsync what they claim anyway.</para>
/// <para>One line <c>failpoint: {name} fired at pass {n}, killing pid {pid}</c> goes to stderr just before the kill.
/// Passes are counted per point across all threads (<see cref="Interlocked"/>).</para>
/// </remarks>
public static partial class Failpoints
{
    /// <summary>The environment variable read once at start: <c>GOFAIL_FAILPOINTS</c>.</summary>
    public const string EnvironmentVariable = "GOFAIL_FAILPOINTS";

    private const int SigKill = 9;

    private static readonly string[] s_names =
    [
        "raftBeforeSave", "raftAfterSave", "raftAfterApply", "beforeApplyOneConfChange", "afterApplyOneConfChange",
        "raftBeforeSaveSnap", "raftAfterSaveSnap", "raftAfterWALRelease",
        BackendFailpoints.BeforeCommit, BackendFailpoints.BeforeMetaWrite, BackendFailpoints.AfterCommit,
    ];

    /// <summary>Per point: the pass that kills (0 = never).</summary>
    private static readonly long[] s_killAt = new long[s_names.Length];

    private static readonly long[] s_passes = new long[s_names.Length];

    /// <summary>True when at least one failpoint is armed (read once from the environment).</summary>
    public static readonly bool Enabled = Configure(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>The <c>GOFAIL_FAILPOINTS</c> spelling of <paramref name="point"/>.</summary>
    public static string NameOf(Failpoint point) => s_names[(int)point];

    /// <summary>Passes through <paramref name="point"/>: kills the process if this is the configured pass. Thread-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Hit(Failpoint point)
    {
        if (Enabled)
        {
            Pass((int)point);
        }
    }

    /// <summary>
    /// Connects the backend's commit points (<see cref="BackendFailpoints"/>) to this facility. Call before the backend
    /// opens; a no-op when no failpoint is armed. Idempotent.
    /// </summary>
    public static void Install()
    {
        if (Enabled && BackendFailpoints.Hook is null)
        {
            BackendFailpoints.Hook = static name =>
            {
                var i = Array.IndexOf(s_names, name);
                if (i >= 0)
                {
                    Pass(i);
                }
            };
        }
    }

    /// <summary>
    /// Parses a <c>GOFAIL_FAILPOINTS</c> value into the per-point kill passes, writing one stderr line per term it cannot
    /// use. Returns whether any point is armed.
    /// </summary>
    internal static bool Configure(string? spec) => Parse(spec, s_killAt, Console.Error);

    /// <summary>Parses <paramref name="spec"/> into <paramref name="killAt"/> (indexed by <see cref="Failpoint"/>); problems go to <paramref name="errors"/>.</summary>
    internal static bool Parse(string? spec, long[] killAt, TextWriter errors)
    {
        if (string.IsNullOrWhiteSpace(spec))
        {
            return false;
        }

        var armed = false;
        foreach (var term in spec.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = term.IndexOf('=');
            var name = eq < 0 ? term : term[..eq].Trim();
            var index = Array.FindIndex(s_names, n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
            if (index < 0)
            {
                errors.WriteLine($"failpoint: unknown failpoint {name} in {EnvironmentVariable} (known: {string.Join(", ", s_names)})");
                continue;
            }

            var pass = eq < 0 ? -1 : ParseAction(term[(eq + 1)..].Trim());
            if (pass < 0)
            {
                errors.WriteLine($"failpoint: bad action in '{term}' (use N, kill, panic, K*off->kill or off)");
                continue;
            }

            killAt[index] = pass;
            armed |= pass > 0;
        }

        return armed;
    }

    /// <summary>The pass that kills for one action (0 = never, -1 = malformed).</summary>
    private static long ParseAction(string action)
    {
        if (action is "kill" or "panic")
        {
            return 1;
        }

        if (action == "off")
        {
            return 0;
        }

        if (long.TryParse(action, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
        {
            return n > 0 ? n : -1;
        }

        var arrow = action.IndexOf("->", StringComparison.Ordinal);
        if (arrow > 0 && action[(arrow + 2)..] is "kill" or "panic")
        {
            var head = action[..arrow];
            if (head.EndsWith("*off", StringComparison.Ordinal)
                && long.TryParse(head[..^4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var skip))
            {
                return skip + 1;
            }
        }

        return -1;
    }

    private static void Pass(int index)
    {
        var killAt = s_killAt[index];
        var pass = Interlocked.Increment(ref s_passes[index]);
        if (killAt > 0 && pass == killAt)
        {
            Die(s_names[index], pass);
        }
    }

    private static void Die(string name, long pass)
    {
        var pid = Environment.ProcessId;

        // Console.Error flushes every write; the line is out before the signal.
        Console.Error.WriteLine($"failpoint: {name} fired at pass {pass}, killing pid {pid}");
        if (OperatingSystem.IsWindows() || Kill(pid, SigKill) != 0)
        {
            Environment.FailFast($"failpoint {name} fired (SIGKILL unavailable)");
        }

        // SIGKILL of ourselves is delivered before kill() returns to any thread; never get past here.
        Thread.Sleep(Timeout.Infinite);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
