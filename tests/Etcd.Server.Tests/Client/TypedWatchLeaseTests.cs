using Etcd.Api;
using Etcdserverpb;

namespace Etcd.Server.Tests.Client;

/// <summary>
/// The client's typed Watch (an async stream of responses) and Lease keep-alive handle against an in-process member.
/// </summary>
public sealed class TypedWatchLeaseTests() : InProcessMemberTests("typed-client")
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Watch_YieldsEveryEventInOrder_AndEndsWhenCancelled()
    {
        using var cts = new CancellationTokenSource(Bound);
        var events = new List<(string Value, long Revision)>();
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watching = Task.Run(async () =>
        {
            // Start from the next revision so puts made before the stream opens are replayed, not missed.
            var from = (await Client.Kv.GetAsync("w")).Header.Revision + 1;
            created.SetResult();
            await foreach (var r in Client.Watch.WatchAsync(new WatchCreateRequest { Key = B("w"), StartRevision = from }, cancellationToken: cts.Token))
            {
                events.AddRange(r.Events.Select(e => (e.Kv.Value.ToStringUtf8(), e.Kv.ModRevision)));
                if (events.Count == 3)
                {
                    await cts.CancelAsync();
                }
            }
        });

        await created.Task.WaitAsync(Bound);
        var revisions = new List<long>();
        foreach (var v in new[] { "1", "2", "3" })
        {
            revisions.Add((await Client.Kv.PutAsync("w", v)).Header.Revision);
        }

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watching.WaitAsync(Bound));
        Assert.Equal([("1", revisions[0]), ("2", revisions[1]), ("3", revisions[2])], events);
    }

    [Fact]
    public async Task Watch_FromCompactedRevision_FailsWithEtcdsError()
    {
        await Client.Kv.PutAsync("c", "1");
        var last = await Client.Kv.PutAsync("c", "2");
        await Client.Kv.CompactAsync(new CompactionRequest { Revision = last.Header.Revision });
        var e = await Assert.ThrowsAsync<EtcdException>(async () =>
        {
            await foreach (var _ in Client.Watch.WatchAsync(new WatchCreateRequest { Key = B("c"), StartRevision = 1 }).WithCancellation(new CancellationTokenSource(Bound).Token))
            {
            }
        });
        Assert.Equal(EtcdErrors.Compacted.Message, e.Message);
    }

    [Fact]
    public void Watch_EmptyKey_IsRefusedBeforeTheStreamOpens()
    {
        Assert.Throws<ArgumentException>(() => Client.Watch.WatchAsync(string.Empty));
    }

    [Fact]
    public async Task KeepAlive_RenewsPastTheTtl_UntilDisposed()
    {
        var lease = await Client.Lease.GrantAsync(2);
        await Client.Kv.PutAsync(new PutRequest { Key = B("held"), Value = B("v"), Lease = lease.ID });
        var handle = Client.Lease.KeepAlive(lease.ID, interval: TimeSpan.FromMilliseconds(200));
        await using (handle)
        {
            // Twelve renewals 200 ms apart outlast the 2 s TTL: the key is still there.
            Assert.Equal(2, await handle.RenewedAsync(12).WaitAsync(Bound));
            Assert.Single((await Client.Kv.GetAsync("held")).Kvs);
            Assert.InRange((await Client.Lease.TimeToLiveAsync(lease.ID)).TTL, 1, 2);
        }

        await handle.Completion.WaitAsync(Bound);
        Assert.True(handle.Renewals >= 12);
    }

    [Fact]
    public async Task KeepAlive_OfARevokedLease_FaultsWithLeaseNotFound()
    {
        var lease = await Client.Lease.GrantAsync(60);
        await Client.Lease.RevokeAsync(lease.ID);
        await using var handle = Client.Lease.KeepAlive(lease.ID);
        var e = await Assert.ThrowsAsync<EtcdException>(() => handle.Completion.WaitAsync(Bound));
        Assert.Equal(EtcdErrors.LeaseNotFound.Message, e.Message);
        await Assert.ThrowsAsync<EtcdException>(() => handle.RenewedAsync(1));
    }
}
