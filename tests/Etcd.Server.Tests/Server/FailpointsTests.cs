using System.Buffers.Binary;
using System.Text;
using Etcd.Compat.Tests.Harness;
using Etcd.Storage.Backend;
using Etcd.Storage.Bolt;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// The failpoint facility's syntax, the order of the backend commit points, and a proof that the crash tests'
/// double-apply check (<see cref="WriteHistory"/>, shared with Etcd.Compat.Tests) fails when committed entries really are
/// applied a second time: the backend's consistent index is rewound so that a restart feeds already-applied entries to
/// the apply path again.
/// </summary>
public sealed class FailpointsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Parse_ReadsCountsGofailChainsAndOff_ReportsUnknownNamesAndBadActions()
    {
        var killAt = new long[Enum.GetValues<Failpoint>().Length];
        var errors = new StringWriter();
        var armed = Failpoints.Parse(
            "raftAfterSave=3; beforeCommit=2*off->panic, boltBeforeMetaWrite=kill;raftBeforeSave=off;AFTERAPPLYONECONFCHANGE=7;nosuch=1;raftAfterApply=0;afterCommit=soon",
            killAt,
            errors);

        Assert.True(armed);
        Assert.Equal(3, killAt[(int)Failpoint.RaftAfterSave]);
        Assert.Equal(3, killAt[(int)Failpoint.BackendBeforeCommit]);
        Assert.Equal(1, killAt[(int)Failpoint.BoltBeforeMetaWrite]);
        Assert.Equal(0, killAt[(int)Failpoint.RaftBeforeSave]);
        Assert.Equal(7, killAt[(int)Failpoint.AfterApplyOneConfChange]);
        Assert.Equal(0, killAt[(int)Failpoint.RaftAfterApply]);
        Assert.Equal(0, killAt[(int)Failpoint.BackendAfterCommit]);
        var lines = errors.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("failpoint: unknown failpoint nosuch", lines[0]);
        Assert.StartsWith("failpoint: bad action in 'raftAfterApply=0'", lines[1]);
        Assert.StartsWith("failpoint: bad action in 'afterCommit=soon'", lines[2]);

        Assert.False(Failpoints.Parse("raftAfterSave=off", new long[killAt.Length], TextWriter.Null));
        Assert.False(Failpoints.Parse(null, new long[killAt.Length], TextWriter.Null));
    }

    [Fact]
    public void EveryPointHasItsGofailName()
    {
        Assert.Equal("raftAfterSave", Failpoints.NameOf(Failpoint.RaftAfterSave));
        Assert.Equal("raftAfterWALRelease", Failpoints.NameOf(Failpoint.RaftAfterWalRelease));
        Assert.Equal(BackendFailpoints.BeforeMetaWrite, Failpoints.NameOf(Failpoint.BoltBeforeMetaWrite));
        Assert.Equal(Enum.GetValues<Failpoint>().Length, Enum.GetValues<Failpoint>().Select(Failpoints.NameOf).Distinct().Count());

        // The test process has no GOFAIL_FAILPOINTS: the points are inert.
        Assert.False(Failpoints.Enabled);
        Failpoints.Hit(Failpoint.RaftAfterSave);
    }

    [Fact]
    public void BackendCommit_PassesItsPointsInOrder()
    {
        var seen = new List<string>();
        var path = Path.Combine(_dir.Path, "db");
        using var backend = new BoltBackend(new BoltBackendOptions { Path = path, BatchInterval = TimeSpan.FromHours(1), BatchLimit = 1_000_000 });
        var tx = backend.BatchTx;
        tx.Lock();
        try
        {
            tx.CreateBucket("test");
            tx.Put("test", "k"u8.ToArray(), "v"u8.ToArray());
        }
        finally
        {
            tx.Unlock();
        }

        // The hook is process-wide: record only what this thread's commit passes.
        var thread = Environment.CurrentManagedThreadId;
        BackendFailpoints.Hook = name =>
        {
            if (Environment.CurrentManagedThreadId == thread)
            {
                lock (seen)
                {
                    seen.Add(name);
                }
            }
        };
        try
        {
            backend.ForceCommit();
        }
        finally
        {
            BackendFailpoints.Hook = null;
        }

        Assert.Equal([BackendFailpoints.BeforeCommit, BackendFailpoints.BeforeMetaWrite, BackendFailpoints.AfterCommit], seen);
    }

    [Fact]
    public async Task ReplayedEntries_AreReportedAsAppliedTwice_ByTheCrashTestsCheck()
    {
        var options = TestMember.Options("s1", _dir.Path);
        var attempted = new HashSet<(string Key, string Value)>();
        var acked = new List<AckedPut>();
        ulong rewindTo;
        await using (var s = await StartReadyAsync(options))
        {
            rewindTo = await PutsAsync(s, 0, 10, attempted, acked);
            await PutsAsync(s, 10, 20, attempted, acked);
        }

        // A sound restart: nothing is applied again.
        await using (var s = await StartReadyAsync(options))
        {
        }

        var (history, current, rev) = ReadHistory(options);
        Assert.Empty(WriteHistory.Check(history, current, rev, attempted, acked));

        // The backend forgets that it holds entries after rewindTo (as if consistent_index lagged its data): the next
        // start applies them again.
        using (var db = BoltDb.Open(EtcdServer.BackendPath(options)))
        {
            var ci = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(ci, rewindTo);
            db.Update(tx => tx.Bucket("meta"u8)!.Put("consistent_index"u8, ci));
        }

        await using (var s = await StartReadyAsync(options))
        {
            Assert.Equal(rewindTo, s.ConsistentIndexAtStart);
            await s.PutAsync(new PutRequest { Key = B("after"), Value = B("replay") }, CancellationToken.None);
        }

        attempted.Add(("after", "replay"));
        (history, current, rev) = ReadHistory(options);
        var problems = WriteHistory.Check(history, current, rev, attempted, acked);
        Assert.Contains(problems, p => p.StartsWith("applied twice: u/15=v15", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("applied twice: shared=s", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.StartsWith("applied twice: u/5=", StringComparison.Ordinal));
    }

    private static async Task<EtcdServer> StartReadyAsync(EtcdOptions o)
    {
        var s = EtcdServer.Start(o, NullLoggerFactory.Instance);
        await s.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(10));
        return s;
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    /// <summary>Puts u/i=vi and shared=si for i in [from, to); returns the applied index after them.</summary>
    private static async Task<ulong> PutsAsync(EtcdServer s, int from, int to, HashSet<(string, string)> attempted, List<AckedPut> acked)
    {
        for (var i = from; i < to; i++)
        {
            foreach (var (k, v) in new[] { ($"u/{i}", $"v{i}"), ("shared", $"s{i}") })
            {
                attempted.Add((k, v));
                var r = await s.PutAsync(new PutRequest { Key = B(k), Value = B(v) }, CancellationToken.None);
                acked.Add(new AckedPut(k, v, r.Header.Revision));
            }
        }

        return s.AppliedIndex;
    }

    /// <summary>Every revision in the db's <c>key</c> bucket, the last of each key, and the newest revision.</summary>
    private static (List<HistoryEvent> History, List<HistoryEvent> Current, long Revision) ReadHistory(EtcdOptions options)
    {
        var history = new List<HistoryEvent>();
        using (var db = BoltDb.Open(EtcdServer.BackendPath(options), new BoltOptions { ReadOnly = true }))
        using (var tx = db.Begin(false))
        {
            tx.Bucket("key"u8)!.ForEach((k, v) =>
            {
                var kv = Mvccpb.KeyValue.Parser.ParseFrom(v.ToArray());
                history.Add(new HistoryEvent(Encoding.UTF8.GetString(kv.Key.Span), kv.Value.ToStringUtf8(), kv.ModRevision, kv.CreateRevision, kv.Version));
                return true;
            });
        }

        var current = history.GroupBy(e => e.Key).Select(g => g.Last()).ToList();
        return (history, current, history.Count == 0 ? 1 : history[^1].ModRevision);
    }
}
