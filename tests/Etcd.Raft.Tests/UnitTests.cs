using Etcd.Raft;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft.Tests;

/// <summary>Building blocks: inflights window, quorum arithmetic, progress, raft log, memory storage, config.</summary>
public class UnitTests
{
    private static Entry E(ulong index, ulong term, string? data = null) =>
        RaftUtil.NewEntry(term, index, EntryType.EntryNormal, data is null ? null : ByteString.CopyFromUtf8(data));

    [Fact]
    public void Inflights_WrapsAroundAndFreesInOrder()
    {
        var ins = new Inflights(4);
        for (ulong i = 1; i <= 4; i++) ins.Add(i * 10);
        Assert.True(ins.Full);
        Assert.Throws<InvalidOperationException>(() => ins.Add(50));
        ins.FreeLE(20);
        Assert.Equal(2, ins.Count);
        ins.Add(50);
        ins.Add(60); // wraps in the ring buffer
        Assert.True(ins.Full);
        ins.FreeLE(5); // below the first: no-op
        Assert.Equal(4, ins.Count);
        ins.FreeFirstOne();
        Assert.Equal(3, ins.Count);
        ins.FreeLE(1000);
        Assert.Equal(0, ins.Count);
        ins.Add(70);
        Assert.Equal(1, ins.Count);
    }

    [Theory]
    [InlineData(new ulong[] { }, ulong.MaxValue)]
    [InlineData(new ulong[] { 5 }, 5UL)]
    [InlineData(new ulong[] { 5, 3 }, 3UL)]
    [InlineData(new ulong[] { 5, 3, 1 }, 3UL)]
    [InlineData(new ulong[] { 5, 3, 1, 9 }, 3UL)]
    [InlineData(new ulong[] { 2, 2, 2, 9, 9 }, 2UL)]
    [InlineData(new ulong[] { 1, 2, 3, 4, 5, 6, 7 }, 4UL)]
    public void Majority_CommittedIndexIsTheQuorumsMinimum(ulong[] matches, ulong expected)
    {
        var ids = new HashSet<ulong>();
        var prs = new Dictionary<ulong, Progress>();
        for (int i = 0; i < matches.Length; i++)
        {
            ids.Add((ulong)i + 1);
            prs[(ulong)i + 1] = new Progress { Match = matches[i], Inflights = new Inflights(1) };
        }
        Assert.Equal(expected, Majority.CommittedIndex(ids, prs));
    }

    [Fact]
    public void Majority_MissingProgressCountsAsZero_AndVoteResults()
    {
        var ids = new HashSet<ulong> { 1, 2, 3 };
        var prs = new Dictionary<ulong, Progress> { [1] = new() { Match = 7, Inflights = new(1) } };
        Assert.Equal(0UL, Majority.CommittedIndex(ids, prs));
        Assert.Equal(VoteResult.Pending, Majority.Vote(ids, new() { [1] = true }));
        Assert.Equal(VoteResult.Won, Majority.Vote(ids, new() { [1] = true, [3] = true }));
        Assert.Equal(VoteResult.Lost, Majority.Vote(ids, new() { [1] = false, [3] = false }));
        Assert.Equal(VoteResult.Won, Majority.Vote(new HashSet<ulong>(), new()));
        Assert.Equal(VoteResult.Lost, Majority.Joint(VoteResult.Won, VoteResult.Lost));
        Assert.Equal(VoteResult.Pending, Majority.Joint(VoteResult.Won, VoteResult.Pending));
    }

    [Fact]
    public void Progress_DecrementsOnlyForTheOutstandingProbe()
    {
        var pr = new Progress { Match = 0, Next = 10, Inflights = new Inflights(8) };
        Assert.False(pr.MaybeDecrTo(5, 4)); // not the probe we sent (Next-1 = 9)
        Assert.True(pr.MaybeDecrTo(9, 4));
        Assert.Equal(5UL, pr.Next); // follower's last index + 1
        Assert.True(pr.MaybeDecrTo(4, 10));
        Assert.Equal(4UL, pr.Next); // never above the rejected index
        pr.BecomeReplicate();
        pr.Match = 6;
        Assert.False(pr.MaybeDecrTo(6, 0)); // stale in replicate
        Assert.True(pr.MaybeDecrTo(8, 0));
        Assert.Equal(7UL, pr.Next);
    }

    [Fact]
    public void Unstable_TruncateAndAppendCases()
    {
        var u = new Unstable { Offset = 5 };
        u.TruncateAndAppend([E(5, 1), E(6, 1)], 0);
        u.TruncateAndAppend([E(7, 1)], 0);            // directly after
        Assert.Equal(3, u.Entries.Count);
        u.TruncateAndAppend([E(6, 2), E(7, 2)], 0);   // inside: truncate
        Assert.Equal(new ulong[] { 1, 2, 2 }, u.Entries.Select(e => e.Term));
        u.TruncateAndAppend([E(4, 3)], 0);            // before offset: replace
        Assert.Equal(4UL, u.Offset);
        Assert.Single(u.Entries);
        u.StableTo(4, 2);                             // wrong term: ignored
        Assert.Single(u.Entries);
        u.StableTo(4, 3);
        Assert.Empty(u.Entries);
        Assert.Equal(5UL, u.Offset);
    }

    [Fact]
    public void RaftLog_TermSliceAndCompactedAccess()
    {
        var st = new MemoryStorage();
        st.Append([E(1, 1), E(2, 1), E(3, 2), E(4, 2)]);
        st.CreateSnapshot(2, new ConfState(), []);
        st.Compact(2);
        var log = new RaftLog(st, null, ulong.MaxValue);
        log.Append([E(5, 3), E(6, 3)]);
        Assert.Equal(3UL, log.FirstIndex());
        Assert.Equal(6UL, log.LastIndex());
        Assert.True(log.TryTerm(2, out var t2));
        Assert.Equal(1UL, t2);
        Assert.True(log.TryTerm(1, out var t1)); // below the snapshot: reported as term 0, like etcd
        Assert.Equal(0UL, t1);
        var s = log.Slice(3, 7, ulong.MaxValue, out bool compacted);
        Assert.False(compacted);
        Assert.Equal(new ulong[] { 3, 4, 5, 6 }, s.Select(e => e.Index));
        log.Slice(1, 3, ulong.MaxValue, out compacted);
        Assert.True(compacted);
        // Size limit spans storage and unstable parts but always returns at least one entry.
        var one = log.Slice(3, 7, 1, out _);
        Assert.Single(one);
        Assert.Equal(2, log.Slice(3, 7, RaftUtil.EntrySize(E(3, 2)) * 2, out _).Count);
        Assert.True(log.IsUpToDate(6, 3));
        Assert.False(log.IsUpToDate(5, 3));
        Assert.True(log.IsUpToDate(1, 4));
        Assert.Throws<InvalidOperationException>(() => log.CommitTo(7));
    }

    [Fact]
    public void RaftLog_MaybeAppendRefusesToOverwriteCommitted()
    {
        var log = new RaftLog(new MemoryStorage(), null, ulong.MaxValue);
        log.Append([E(1, 1), E(2, 1), E(3, 1)]);
        log.CommitTo(3);
        Assert.Throws<InvalidOperationException>(() => log.MaybeAppend(1, 1, 3, [E(2, 2)], out _));
        Assert.False(log.MaybeAppend(3, 2, 3, [E(4, 2)], out _));
        Assert.True(log.MaybeAppend(3, 1, 5, [E(4, 2)], out ulong last));
        Assert.Equal(4UL, last);
        Assert.Equal(4UL, log.Committed);
    }

    [Fact]
    public void EntrySize_MatchesGogoEncoding()
    {
        var e = E(300, 5, "hello");
        Assert.Equal((ulong)e.CalculateSize(), RaftUtil.EntrySize(e));
        var empty = RaftUtil.NewEntry(0, 0, EntryType.EntryNormal, null);
        Assert.Equal(6UL, RaftUtil.EntrySize(empty)); // type, term and index always encoded
    }

    [Fact]
    public void MemoryStorage_EntriesTermCompactSnapshot()
    {
        var ms = new MemoryStorage();
        Assert.Equal(0UL, ms.LastIndex());
        Assert.Equal(1UL, ms.FirstIndex());
        Assert.Equal(RaftErrorKind.Unavailable, Assert.Throws<RaftException>(() => ms.Entries(1, 1, ulong.MaxValue)).Kind);
        ms.Append([E(1, 1), E(2, 1), E(3, 2), E(4, 2), E(5, 3)]);
        Assert.Equal(5UL, ms.LastIndex());
        Assert.Equal(2UL, ms.Term(3));
        Assert.Equal(RaftErrorKind.Unavailable, Assert.Throws<RaftException>(() => ms.Term(6)).Kind);
        Assert.Equal(new ulong[] { 2, 3 }, ms.Entries(2, 4, ulong.MaxValue).Select(e => e.Index));
        Assert.Single(ms.Entries(2, 5, 1));
        // Overwrite a suffix.
        ms.Append([E(4, 4), E(5, 4), E(6, 4)]);
        Assert.Equal(4UL, ms.Term(5));
        Assert.Equal(6UL, ms.LastIndex());
        Assert.Throws<InvalidOperationException>(() => ms.Append([E(9, 4)]));
        var snap = ms.CreateSnapshot(4, new ConfState { Voters = { 1, 2 } }, [7]);
        Assert.Equal(4UL, snap.Metadata.Term);
        Assert.Equal(RaftErrorKind.SnapOutOfDate, Assert.Throws<RaftException>(() => ms.CreateSnapshot(3, null, [])).Kind);
        ms.Compact(4);
        Assert.Equal(5UL, ms.FirstIndex());
        Assert.Equal(4UL, ms.Term(4));
        Assert.Equal(RaftErrorKind.Compacted, Assert.Throws<RaftException>(() => ms.Term(3)).Kind);
        Assert.Equal(RaftErrorKind.Compacted, Assert.Throws<RaftException>(() => ms.Entries(4, 5, ulong.MaxValue)).Kind);
        Assert.Equal(RaftErrorKind.Compacted, Assert.Throws<RaftException>(() => ms.Compact(3)).Kind);
        // Already-compacted entries are skipped; the rest replaces the suffix from index 5.
        ms.Append([E(3, 2), E(4, 4), E(5, 4)]);
        Assert.Equal(5UL, ms.LastIndex());
        Assert.Equal(new ulong[] { 1, 2 }, ms.InitialState().confState.Voters);
        ms.ApplySnapshot(new Snapshot { Metadata = new SnapshotMetadata { Index = 10, Term = 7, ConfState = new ConfState() } });
        Assert.Equal(11UL, ms.FirstIndex());
        Assert.Equal(10UL, ms.LastIndex());
        Assert.Equal(RaftErrorKind.SnapOutOfDate, Assert.Throws<RaftException>(() =>
            ms.ApplySnapshot(new Snapshot { Metadata = new SnapshotMetadata { Index = 9, Term = 7 } })).Kind);
    }

    [Fact]
    public async Task MemoryStorage_IsSafeForConcurrentAppendAndRead()
    {
        var ms = new MemoryStorage();
        var writer = Task.Run(() =>
        {
            for (ulong i = 1; i <= 5000; i++) ms.Append([E(i, 1)]);
        });
        var reader = Task.Run(() =>
        {
            for (int k = 0; k < 5000; k++)
            {
                ulong last = ms.LastIndex();
                if (last > 0) Assert.Equal(last, ms.Entries(1, last + 1, ulong.MaxValue)[^1].Index);
            }
        });
        await Task.WhenAll(writer, reader);
        Assert.Equal(5000UL, ms.LastIndex());
    }

    [Theory]
    [InlineData(0UL, 10, 1, "cannot use none as id")]
    [InlineData(1UL, 10, 0, "heartbeat tick must be greater than 0")]
    [InlineData(1UL, 2, 2, "election tick must be greater than heartbeat tick")]
    public void Config_ValidateReportsEtcdMessages(ulong id, int election, int heartbeat, string msg)
    {
        var c = new RaftConfig { Id = id, ElectionTick = election, HeartbeatTick = heartbeat, Storage = new MemoryStorage() };
        Assert.Equal(msg, Assert.Throws<RaftException>(c.Validate).Message);
    }

    [Fact]
    public void Config_ValidateFillsDefaults()
    {
        var c = new RaftConfig { Id = 1, Storage = new MemoryStorage(), MaxSizePerMsg = 4096 };
        c.Validate();
        Assert.Equal(4096UL, c.MaxCommittedSizePerReady);
        Assert.Equal(ulong.MaxValue, c.MaxUncommittedEntriesSize);
        Assert.Equal("storage cannot be nil", Assert.Throws<RaftException>(() => new RaftConfig { Id = 1 }.Validate()).Message);
        Assert.Equal("max inflight messages must be greater than 0",
            Assert.Throws<RaftException>(() => new RaftConfig { Id = 1, Storage = new MemoryStorage(), MaxInflightMsgs = 0 }.Validate()).Message);
    }
}
