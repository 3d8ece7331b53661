using System.Runtime.CompilerServices;
using Etcd.Storage.Bolt;

namespace Etcd.Storage.Backend;

/// <summary>
/// Crash-test hooks inside <see cref="BoltBackend"/>'s batch commit. The storage layer only names the points; the
/// server's failpoint facility (<c>Etcd.Server.Failpoints</c>, driven by the <c>GOFAIL_FAILPOINTS</c> environment
/// variable) installs <see cref="Hook"/> when any failpoint is configured. With no hook installed a point costs one
/// static field load and a null test per batch commit.
/// </summary>
/// <remarks>
/// Points, in the order a commit passes them (etcd's <c>mvcc/backend/batch_tx.go</c> names the first and last
/// <c>beforeCommit</c> / <c>afterCommit</c>):
/// <list type="bullet">
/// <item><see cref="BeforeCommit"/>: the batch (data plus <c>meta/consistent_index</c>) is complete in memory, nothing of
/// it is on disk yet.</item>
/// <item><see cref="BeforeMetaWrite"/>: inside the bolt commit, after the new data, branch and freelist pages are
/// written and synced, before the meta page that makes them the current state is written.</item>
/// <item><see cref="AfterCommit"/>: the meta page is written and synced; the new read view is not yet published.</item>
/// </list>
/// Thread-safety: the hook is called on whichever thread commits (the batch committer thread, or the raft loop
/// thread through <see cref="BoltBackend.ForceCommit"/>); it must be thread-safe.
/// </remarks>
public static class BackendFailpoints
{
    /// <summary>Name of the point before a batch commit starts (etcd: <c>beforeCommit</c>).</summary>
    public const string BeforeCommit = "beforeCommit";

    /// <summary>Name of the point between the data-page sync and the meta-page write of the bolt commit.</summary>
    public const string BeforeMetaWrite = "boltBeforeMetaWrite";

    /// <summary>Name of the point after the meta page is written and synced (etcd: <c>afterCommit</c>).</summary>
    public const string AfterCommit = "afterCommit";

    private static Action<string>? s_hook;

    /// <summary>
    /// Called with the point's name at every pass (null: points are inert). Set once, before the backend opens, by
    /// the process's failpoint facility.
    /// </summary>
    public static Action<string>? Hook
    {
        get => Volatile.Read(ref s_hook);
        set => Volatile.Write(ref s_hook, value);
    }

    /// <summary>Passes the point named <paramref name="name"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Hit(string name) => Volatile.Read(ref s_hook)?.Invoke(name);

    /// <summary>
    /// Passes <see cref="BeforeCommit"/> and arms <see cref="BeforeMetaWrite"/> on the write transaction about to
    /// commit (bolt's own test hook between the page sync and the meta write).
    /// </summary>
    internal static void BeforeTxCommit(Tx tx)
    {
        var hook = Volatile.Read(ref s_hook);
        if (hook is null)
        {
            return;
        }

        hook(BeforeCommit);
        tx.BeforeMetaWrite ??= () => hook(BeforeMetaWrite);
    }
}
