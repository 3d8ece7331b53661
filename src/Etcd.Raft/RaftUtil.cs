using Google.Protobuf;
using Raftpb;

namespace Etcd.Raft;

/// <summary>Small helpers shared by the core and its users (util.go of etcd-io/raft).</summary>
public static class RaftUtil
{
    /// <summary>True for message types that are only ever stepped locally and never sent (MsgHup, MsgBeat,
    /// MsgUnreachable, MsgSnapStatus, MsgCheckQuorum).</summary>
    public static bool IsLocalMsg(MessageType t) => t is MessageType.MsgHup or MessageType.MsgBeat
        or MessageType.MsgUnreachable or MessageType.MsgSnapStatus or MessageType.MsgCheckQuorum;

    /// <summary>True for response message types (MsgAppResp, MsgVoteResp, MsgHeartbeatResp, MsgUnreachable, MsgPreVoteResp).</summary>
    public static bool IsResponseMsg(MessageType t) => t is MessageType.MsgAppResp or MessageType.MsgVoteResp
        or MessageType.MsgHeartbeatResp or MessageType.MsgUnreachable or MessageType.MsgPreVoteResp;

    /// <summary>True when all of term, vote and commit are 0.</summary>
    public static bool IsEmptyHardState(HardState? hs) => hs is null || (hs.Term == 0 && hs.Vote == 0 && hs.Commit == 0);

    /// <summary>Field-wise equality of two hard states (ignores protobuf presence bits).</summary>
    public static bool HardStateEquals(HardState a, HardState b) => a.Term == b.Term && a.Vote == b.Vote && a.Commit == b.Commit;

    /// <summary>True when the snapshot is null or its metadata index is 0.</summary>
    public static bool IsEmptySnap(Snapshot? s) => s is null || s.Metadata is null || s.Metadata.Index == 0;

    /// <summary>Payload bytes of an entry (len(Data)), used for the uncommitted-size limit.</summary>
    public static ulong PayloadSize(Entry e) => (ulong)e.Data.Length;

    /// <summary>The encoded size of an entry as etcd (gogoproto, all scalar fields always present) computes it:
    /// used for MaxSizePerMsg and MaxCommittedSizePerReady limits.</summary>
    public static ulong EntrySize(Entry e)
    {
        ulong n = 3 + (ulong)CodedOutputStream.ComputeUInt64Size((ulong)e.Type)
            + (ulong)CodedOutputStream.ComputeUInt64Size(e.Term)
            + (ulong)CodedOutputStream.ComputeUInt64Size(e.Index);
        if (e.HasData)
        {
            int l = e.Data.Length;
            n += 1 + (ulong)CodedOutputStream.ComputeLengthSize(l) + (ulong)l;
        }
        return n;
    }

    /// <summary>Creates an entry with all scalar fields explicitly present (so it encodes like etcd's).</summary>
    public static Entry NewEntry(ulong term, ulong index, EntryType type, ByteString? data)
    {
        var e = new Entry { Term = term, Index = index, Type = type };
        if (data is not null) e.Data = data;
        return e;
    }

    /// <summary>Makes a ConfChangeV2 out of a ConfChange (raftpb ConfChange.AsV2).</summary>
    public static ConfChangeV2 AsV2(ConfChange cc)
    {
        var v2 = new ConfChangeV2();
        v2.Changes.Add(new ConfChangeSingle { Type = cc.Type, NodeId = cc.NodeId });
        if (cc.HasContext) v2.Context = cc.Context;
        return v2;
    }

    /// <summary>True when the change is the empty "leave joint" ConfChangeV2 (no changes, Auto transition; context ignored).</summary>
    public static bool LeaveJoint(ConfChangeV2 cc) => cc.Changes.Count == 0 && cc.Transition == ConfChangeTransition.Auto;

    /// <summary>Whether applying the change enters a joint configuration, and if so whether it leaves automatically
    /// (raftpb ConfChangeV2.EnterJoint).</summary>
    public static bool EnterJoint(ConfChangeV2 cc, out bool autoLeave)
    {
        autoLeave = false;
        if (cc.Transition != ConfChangeTransition.Auto || cc.Changes.Count > 1)
        {
            autoLeave = cc.Transition switch
            {
                ConfChangeTransition.Auto => true,
                ConfChangeTransition.JointImplicit => true,
                ConfChangeTransition.JointExplicit => false,
                _ => throw new InvalidOperationException($"unknown transition: {cc.Transition}"),
            };
            return true;
        }
        return false;
    }

    /// <summary>Trims a list of entries so the total <see cref="EntrySize"/> stays within maxSize, keeping at least one.</summary>
    internal static IReadOnlyList<Entry> LimitSize(IReadOnlyList<Entry> ents, ulong maxSize)
    {
        if (ents.Count <= 1 || maxSize == ulong.MaxValue) return ents;
        ulong size = EntrySize(ents[0]);
        int limit = 1;
        for (; limit < ents.Count; limit++)
        {
            size += EntrySize(ents[limit]);
            if (size > maxSize) break;
        }
        if (limit == ents.Count) return ents;
        var r = new Entry[limit];
        for (int i = 0; i < limit; i++) r[i] = ents[i];
        return r;
    }

    internal static bool IsEmptyConfState(ConfState? cs) => cs is null ||
        (cs.Voters.Count == 0 && cs.Learners.Count == 0 && cs.VotersOutgoing.Count == 0 && cs.LearnersNext.Count == 0 && !cs.AutoLeave);
}
