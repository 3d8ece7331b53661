using Etcd.Storage.Mvcc;
using Mvccpb;

namespace Etcd.Server.Election;

/// <summary>
/// What the Election and Lock services need from a watch: the changes of a key (or range) from a revision on.
/// <see cref="AppliedKeyEventWaiter"/> serves it from the store's history after each apply; a watch-based
/// implementation can replace it (<see cref="ElectionCore"/>'s constructor).
/// </summary>
public interface IKeyDeletionWaiter
{
    /// <summary>
    /// Completes when <paramref name="key"/> has a DELETE event at a revision ≥ <paramref name="fromRevision"/>
    /// (clientv3/concurrency's <c>waitDelete</c>). Throws <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    Task WaitDeleteAsync(byte[] key, long fromRevision, CancellationToken cancellationToken);

    /// <summary>
    /// The events on [<paramref name="key"/>, <paramref name="rangeEnd"/>) (just the key when
    /// <paramref name="rangeEnd"/> is null) at revisions ≥ <paramref name="fromRevision"/>: waits until there
    /// is at least one and returns those found (in revision order) with the store revision they were read at.
    /// </summary>
    Task<(IReadOnlyList<Event> Events, long Revision)> NextEventsAsync(byte[] key, byte[]? rangeEnd, long fromRevision, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="IKeyDeletionWaiter"/> without a watch: after every applied raft entry, reads the store's events
/// since the last revision looked at (<see cref="KvStore.ReadEvents"/>) and filters them. No polling timer: it
/// wakes on <see cref="EtcdServer.WaitAppliedAsync"/>. Revisions already compacted are not seen. Thread-safe.
/// </summary>
public sealed class AppliedKeyEventWaiter(EtcdServer server) : IKeyDeletionWaiter
{
    /// <inheritdoc/>
    public async Task WaitDeleteAsync(byte[] key, long fromRevision, CancellationToken cancellationToken)
    {
        var from = fromRevision;
        while (true)
        {
            var (events, rev) = await NextEventsAsync(key, null, from, cancellationToken).ConfigureAwait(false);
            if (events.Any(e => e.Type == Event.Types.EventType.Delete))
            {
                return;
            }

            from = rev + 1;
        }
    }

    /// <inheritdoc/>
    public async Task<(IReadOnlyList<Event> Events, long Revision)> NextEventsAsync(byte[] key, byte[]? rangeEnd, long fromRevision, CancellationToken cancellationToken)
    {
        var from = fromRevision;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var applied = server.AppliedIndex;
            var rev = server.Kv.CurrentRevision;
            if (rev >= from)
            {
                var found = new List<Event>();
                foreach (var e in server.Kv.ReadEvents(from, rev + 1))
                {
                    if (InRange(e.Kv.Key.Span, key, rangeEnd))
                    {
                        found.Add(e);
                    }
                }

                if (found.Count > 0)
                {
                    return (found, rev);
                }

                from = rev + 1;
            }

            await server.WaitAppliedAsync(applied + 1, cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool InRange(ReadOnlySpan<byte> k, byte[] key, byte[]? rangeEnd)
    {
        if (rangeEnd is null)
        {
            return k.SequenceEqual(key);
        }

        return k.SequenceCompareTo(key) >= 0 && (rangeEnd is [0] || k.SequenceCompareTo(rangeEnd) < 0);
    }
}
