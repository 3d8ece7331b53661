using System.Security.Cryptography;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.Bolt;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>Maintenance over the bbolt backend: Snapshot stream, Hash, Defragment, and the backend quota with the NOSPACE alarm.</summary>
public sealed class MaintenanceTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static async Task<EtcdServer> StartReadyAsync(EtcdOptions o)
    {
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance);
        await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
        return s;
    }

    private sealed class Collector : IAsyncStreamWriter<SnapshotResponse>
    {
        public List<SnapshotResponse> Messages { get; } = [];

        public ValueTask WriteAsync(SnapshotResponse message, CancellationToken cancellationToken = default)
        {
            Messages.Add(message);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task SnapshotStreamsTheDbIn32KiBChunksThenItsSha256()
    {
        await using var s = await StartReadyAsync(TestMember.Options("s1", _dir.Path));
        var value = ByteString.CopyFrom(new byte[2000]);
        for (var i = 0; i < 100; i++)
        {
            await s.PutAsync(new PutRequest { Key = B($"k{i:D3}"), Value = value }, CancellationToken.None);
        }

        var c = new Collector();
        await s.SnapshotAsync(c, CancellationToken.None);
        Assert.True(c.Messages.Count >= 3);
        var data = c.Messages[..^1].SelectMany(m => m.Blob.ToByteArray()).ToArray();
        long remaining = data.Length;
        foreach (var m in c.Messages[..^1])
        {
            Assert.InRange(m.Blob.Length, 1, EtcdServer.SnapshotSendBufferSize);
            remaining -= m.Blob.Length;
            Assert.Equal((ulong)remaining, m.RemainingBytes);
        }

        Assert.All(c.Messages[..^2], m => Assert.Equal(EtcdServer.SnapshotSendBufferSize, m.Blob.Length));
        var last = c.Messages[^1];
        Assert.Equal(0UL, last.RemainingBytes);
        Assert.Equal(SHA256.HashData(data), last.Blob.ToByteArray());
        Assert.Equal(0, data.Length % 4096);

        // The image is a bbolt database holding the keys.
        var copy = Path.Combine(_dir.Path, "copy.db");
        await File.WriteAllBytesAsync(copy, data);
        using var db = BoltDb.Open(copy, new BoltOptions { ReadOnly = true });
        using var tx = db.Begin(false);
        var n = 0;
        tx.Bucket("key"u8.ToArray())!.ForEach((_, _) =>
        {
            n++;
            return true;
        });
        Assert.Equal(100, n);
    }

    [Fact]
    public async Task HashCoversTheBackendAndDefragmentKeepsItWhileWritesGoOn()
    {
        await using var s = await StartReadyAsync(TestMember.Options("s1", _dir.Path));
        var value = ByteString.CopyFrom(new byte[1000]);
        for (var i = 0; i < 300; i++)
        {
            await s.PutAsync(new PutRequest { Key = B($"k{i:D3}"), Value = value }, CancellationToken.None);
        }

        await s.DeleteRangeAsync(new DeleteRangeRequest { Key = B("k"), RangeEnd = B("k2") }, CancellationToken.None);
        await s.CompactAsync(new CompactionRequest { Revision = s.Kv.CurrentRevision, Physical = true }, CancellationToken.None);
        var h1 = s.Hash();
        Assert.Equal(s.Kv.CurrentRevision, h1.Header.Revision);
        Assert.Equal(h1.Hash, s.Hash().Hash);

        var sizeBefore = s.Backend.Size;
        var writes = Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await s.PutAsync(new PutRequest { Key = B($"during{i:D2}"), Value = B("x") }, CancellationToken.None);
            }
        });
        await s.DefragmentAsync(CancellationToken.None);
        await writes;
        Assert.True(s.Backend.Size < sizeBefore, $"{sizeBefore} -> {s.Backend.Size}");
        var r = await s.RangeAsync(new RangeRequest { Key = B("during"), RangeEnd = B("durinh") }, CancellationToken.None);
        Assert.Equal(50, r.Count);
        Assert.NotEqual(h1.Hash, s.Hash().Hash);
    }

    [Fact]
    public async Task QuotaRaisesNospaceAndRejectsWritesUntilDisarmed()
    {
        var o = TestMember.Options("s1", _dir.Path) with { QuotaBackendBytes = 13 * 4096 };
        await using var s = await StartReadyAsync(o);
        await s.PutAsync(new PutRequest { Key = B("1st"), Value = B(new string('a', 64)) }, CancellationToken.None);
        var page = B(new string('b', 4096));
        EtcdException? full = null;
        var until = DateTime.UtcNow.AddSeconds(20);
        for (var i = 0; i < 5000 && full is null && DateTime.UtcNow < until; i++)
        {
            try
            {
                await s.PutAsync(new PutRequest { Key = B("2nd"), Value = page }, CancellationToken.None);
            }
            catch (EtcdException e)
            {
                full = e;
            }
        }

        Assert.NotNull(full);
        Assert.Same(EtcdErrors.NoSpace, full!.Error);
        Assert.Equal("etcdserver: mvcc: database space exceeded", full.Message);
        var alarm = Assert.Single(s.Alarms.Get(AlarmType.Nospace));
        Assert.Equal(s.MemberId, alarm.MemberID);

        // While the alarm is raised every put, txn with a put and lease grant fails, small or not.
        var small = await Assert.ThrowsAsync<EtcdException>(() => s.PutAsync(new PutRequest { Key = B("3rd"), Value = B("a") }, CancellationToken.None));
        Assert.Same(EtcdErrors.NoSpace, small.Error);
        var grant = await Assert.ThrowsAsync<EtcdException>(() => s.ProposeAsync(new InternalRaftRequest { LeaseGrant = new LeaseGrantRequest { ID = 7, TTL = 60 } }, CancellationToken.None));
        Assert.Same(EtcdErrors.NoSpace, grant.Error);

        // Reads, deletes, compaction and defrag still work; disarming lets puts in again.
        await s.CompactAsync(new CompactionRequest { Revision = s.Kv.CurrentRevision, Physical = true }, CancellationToken.None);
        await s.DefragmentAsync(CancellationToken.None);
        await s.ProposeAsync(new InternalRaftRequest { Alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Deactivate, MemberID = alarm.MemberID, Alarm = AlarmType.Nospace } }, CancellationToken.None);
        Assert.Empty(s.Alarms.Get(AlarmType.None));
        var ok = await s.PutAsync(new PutRequest { Key = B("4th"), Value = B(new string('a', 64)) }, CancellationToken.None);
        Assert.True(ok.Header.Revision > 0);
    }
}
