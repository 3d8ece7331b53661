using Etcd.Api;
using Etcd.Server.V2;
using Etcd.Storage.V2Store;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server;

public sealed partial class EtcdServer
{
    /// <summary>etcd's namespace of the membership in the v2 store.</summary>
    public const string V2ClusterPrefix = "/0";

    /// <summary>etcd's namespace of the v2 keys (<c>/v2/keys/foo</c> is <c>/1/foo</c>).</summary>
    public const string V2KeysPrefix = "/1";

    private static readonly TimeSpan V2SyncInterval = TimeSpan.FromMilliseconds(500);
    private V2Applier? _v2Applier;
    private Timer? _v2SyncTimer;

    /// <summary>
    /// The v2 store (etcd's <c>v2store</c>): the keys of the v2 API under <see cref="V2KeysPrefix"/> and v2 auth under
    /// <c>/2</c>, written only by applied raft entries and kept whole in the snap files (membership, <c>/0</c>, is
    /// written from <see cref="Cluster"/> when a snapshot is saved).
    /// </summary>
    public V2Store V2Store { get; } = new(TimeProvider.System, V2ClusterPrefix, V2KeysPrefix);

    /// <summary>This member's raft traffic for <c>/v2/stats/self</c>.</summary>
    public V2ServerStats V2ServerStats { get; } = new(TimeProvider.System);

    /// <summary>Send latencies and counts per follower for <c>/v2/stats/leader</c>.</summary>
    public V2LeaderStats V2LeaderStats { get; } = new();

    /// <summary>
    /// Serves a v2 keys request (etcd's <c>EtcdServer.Do</c>): writes and quorum reads (<c>QGET</c>) go through raft
    /// as a v2 <see cref="Request"/> entry; plain GET and HEAD read the local store, and GET with <c>Wait</c> starts a
    /// watch. Throws <see cref="V2Error"/> for store errors, and the proposal errors of <see cref="EtcdException"/>.
    /// </summary>
    public async Task<V2Response> DoV2Async(Request r, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(r);
        r.ID = _reqIds.Next();
        if (r.Method == "GET" && r.Quorum)
        {
            r.Method = "QGET";
        }

        switch (r.Method)
        {
            case "POST" or "PUT" or "DELETE" or "QGET":
                var result = await ProposeV2Async(r, cancellationToken).ConfigureAwait(false);
                return new V2Response(result as V2Event, null, CommittedIndex, Term);
            case "GET" when r.Wait:
                var w = V2Store.Watch(r.Path, r.Recursive, r.Stream, r.Since);
                return new V2Response(null, w, CommittedIndex, Term);
            case "GET" or "HEAD":
                return new V2Response(V2Store.Get(r.Path, r.Recursive, r.Sorted), null, CommittedIndex, Term);
            default:
                throw new V2Error(V2Error.RaftInternal, "etcdserver: unknown method", 0);
        }
    }

    /// <summary>
    /// Proposes <paramref name="r"/> as a bare v2 <see cref="Request"/> entry (what etcd 3.4 writes to its WAL) and
    /// waits for its apply: the <see cref="V2Event"/>, null, or the thrown <see cref="V2Error"/>.
    /// </summary>
    private Task<object?> ProposeV2Async(Request r, CancellationToken cancellationToken)
    {
        // No --max-request-bytes check: etcd 3.4 applies it to v3 requests only (a 2 MB v2 value is set there); the
        // HTTP layer bounds a v2 body at Go's 10 MB form limit.
        return ProposeDataAsync(r.ID, r.ToByteArray(), cancellationToken);
    }

    /// <summary>
    /// Parses a normal entry's data: an <see cref="InternalRaftRequest"/>, or (etcd's backward-compatible form, which
    /// etcd 3.4 writes for every v2 request) a bare v2 <see cref="Request"/>, returned wrapped as
    /// <see cref="InternalRaftRequest.V2"/> with its ID. False when neither parses.
    /// </summary>
    internal static bool TryParseEntry(ReadOnlySpan<byte> data, out InternalRaftRequest request)
    {
        try
        {
            request = InternalRaftRequest.Parser.ParseFrom(data);
            return true;
        }
        catch (InvalidProtocolBufferException)
        {
        }

        try
        {
            var v2 = Request.Parser.ParseFrom(data);
            request = new InternalRaftRequest { ID = v2.ID, V2 = v2 };
            return true;
        }
        catch (InvalidProtocolBufferException)
        {
            request = null!;
            return false;
        }
    }

    /// <summary>Apply thread: a v2 request that is not a membership write, applied to <see cref="V2Store"/>.</summary>
    private object? ApplyV2Store(Request r) => (_v2Applier ??= new V2Applier(V2Store)).Apply(r);

    /// <summary>
    /// The data of a snap file: the v2 store JSON with <c>/0</c> taken from <paramref name="membershipStore"/> (the
    /// membership as v2 store JSON, see <see cref="V2StoreWithMembership"/>'s callers).
    /// </summary>
    private byte[] V2StoreWithMembership(byte[] membershipStore)
    {
        var zero = V2Store.RawTopLevelChild(membershipStore, "0");
        return zero is null ? V2Store.Save() : V2Store.Save(new Dictionary<string, string> { ["0"] = zero });
    }

    /// <summary>Loop thread (or before it starts): the v2 store from a snap file's data, when it is v2 store JSON.</summary>
    private void RecoverV2Store(ReadOnlyMemory<byte> data)
    {
        if (data.Length > 0 && data.Span[0] == (byte)'{')
        {
            V2Store.Recover(data.Span);
        }
    }

    /// <summary>
    /// Starts etcd's v2 TTL sweep: every 500 ms the leader, when the store has keys with a TTL, proposes a SYNC
    /// request carrying its clock, and every member expires those keys when it applies it.
    /// </summary>
    private void StartV2Sync()
    {
        _v2SyncTimer = new Timer(_ => ProposeV2Sync(), null, V2SyncInterval, V2SyncInterval);
    }

    private void StopV2Sync() => _v2SyncTimer?.Dispose();

    private void ProposeV2Sync()
    {
        if (!IsLeader || !V2Store.HasTtlKeys || _stopping.IsCancellationRequested)
        {
            return;
        }

        var r = new Request { Method = "SYNC", ID = _reqIds.Next(), Time = V2Json.Now(TimeProvider.System) };
        _inputs.Writer.TryWrite(RaftInput.Propose(r.ID, r.ToByteArray()));
    }
    /// <summary>
    /// Our membership JSON (<see cref="Membership.RaftCluster.ExportState"/>) with the whole v2 store added as
    /// <c>v2store</c>, for the snapshots sent to lagging members (<see cref="RecoverV2FromMerged"/> reads it back).
    /// </summary>
    private byte[] WithV2Store(byte[] exported)
    {
        var obj = System.Text.Json.Nodes.JsonNode.Parse(exported)!.AsObject();
        obj["v2store"] = System.Text.Json.Nodes.JsonNode.Parse(V2Store.Save());
        return System.Text.Encoding.UTF8.GetBytes(obj.ToJsonString());
    }

    /// <summary>Loop thread: the v2 store carried by a received snapshot's membership JSON (see <see cref="WithV2Store"/>), when there.</summary>
    private void RecoverV2FromMerged(ReadOnlySpan<byte> membership)
    {
        if (membership.Length == 0 || membership[0] != (byte)'{')
        {
            return;
        }

        using var doc = System.Text.Json.JsonDocument.Parse(membership.ToArray());
        if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("v2store", out var v2))
        {
            V2Store.Recover(System.Text.Encoding.UTF8.GetBytes(v2.GetRawText()));
        }
    }
    // etcd keeps the membership in the v2 store as well (/0/members/ID/raftAttributes and /attributes,
    // /0/removed_members/ID, /0/version), so every membership change moves the v2 store's index as in etcd; the
    // v2 API's indexes (X-Etcd-Index, waitIndex) then match etcd's. Apply thread; a write the store refuses (the
    // node is there already after a snapshot) changes nothing, as etcd's refused conf change.

    /// <summary>
    /// Apply thread, before a conf change is validated: etcd validates every conf change against the membership it
    /// reads back from the v2 store (<c>membersFromStore</c>: <c>/0/members</c>, then <c>/0/removed_members</c> when
    /// the first exists), and those reads count in <c>/v2/stats/store</c> (a new cluster's first conf change finds no
    /// members: one <c>getsFail</c>). The results are not used: our membership lives in <see cref="Cluster"/>.
    /// </summary>
    private void V2ReadMembershipAsValidationDoes()
    {
        try
        {
            V2Store.Get(V2ClusterPrefix + "/members", recursive: true, sorted: true);
            V2Store.Get(V2ClusterPrefix + "/removed_members", recursive: true, sorted: true);
        }
        catch (V2Error)
        {
            // Not found: etcd stops reading there too.
        }
    }

    private void V2MirrorMemberAdded(ulong id) => V2Mirror(id, (s, key, m) => s.Create(key + "/raftAttributes", false, m.RaftAttributesJson(), false, 0));

    private void V2MirrorRaftAttributes(ulong id) => V2Mirror(id, (s, key, m) => s.Update(key + "/raftAttributes", m.RaftAttributesJson(), 0));

    private void V2MirrorAttributes(ulong id) => V2Mirror(id, (s, key, m) =>
    {
        var attrs = new System.Text.StringBuilder("{");
        if (m.Name.Length > 0)
        {
            attrs.Append("\"name\":").Append(System.Text.Json.JsonSerializer.Serialize(m.Name, Storage.V2Store.V2Json.SerializerOptions));
        }

        if (m.ClientUrls.Count > 0)
        {
            attrs.Append(attrs.Length > 1 ? "," : "").Append("\"clientURLs\":").Append(System.Text.Json.JsonSerializer.Serialize(m.ClientUrls, Storage.V2Store.V2Json.SerializerOptions));
        }

        s.Set(key + "/attributes", false, attrs.Append('}').ToString(), 0);
    });

    private void V2MirrorMemberRemoved(ulong id)
    {
        var idText = Membership.Member.IdString(id);
        try
        {
            V2Store.Delete(V2ClusterPrefix + "/members/" + idText, true, true);
        }
        catch (V2Error)
        {
        }

        try
        {
            V2Store.Create(V2ClusterPrefix + "/removed_members/" + idText, false, "", false, 0);
        }
        catch (V2Error)
        {
        }
    }

    private void V2MirrorVersion(string version)
    {
        try
        {
            V2Store.Set(V2ClusterPrefix + "/version", false, version, 0);
        }
        catch (V2Error)
        {
        }
    }

    private void V2Mirror(ulong id, Action<V2Store, string, Storage.Schema.MemberRecord> write)
    {
        if (Cluster.Find(id) is not { } m)
        {
            return;
        }

        try
        {
            write(V2Store, V2ClusterPrefix + "/members/" + Membership.Member.IdString(id), new Storage.Schema.MemberRecord(m.Id, m.PeerUrls, m.Name ?? "", m.ClientUrls ?? [], m.IsLearner));
        }
        catch (V2Error)
        {
        }
    }
}
