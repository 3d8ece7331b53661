using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Etcd.Storage.Bolt;
using Etcd.Storage.Schema;
using Etcd.Storage.Snap;
using Google.Protobuf;

namespace Etcd.Utl;

/// <summary>Settings of <c>snapshot restore</c> (etcd's <c>snapshot.RestoreConfig</c>); defaults as etcdctl/etcdutl's flags.</summary>
public sealed record RestoreOptions
{
    /// <summary>The snapshot file (from <c>snapshot save</c>, or a copied <c>member/snap/db</c> with <see cref="SkipHashCheck"/>).</summary>
    public required string SnapshotPath { get; init; }

    /// <summary><c>--name</c>: this member's name.</summary>
    public string Name { get; init; } = "default";

    /// <summary><c>--data-dir</c>; empty means <c>NAME.etcd</c>. Must not exist.</summary>
    public string DataDir { get; init; } = "";

    /// <summary><c>--wal-dir</c>; empty means <c>DATA-DIR/member/wal</c>. Must not exist when given.</summary>
    public string WalDir { get; init; } = "";

    /// <summary><c>--initial-advertise-peer-urls</c>, comma-separated.</summary>
    public string PeerUrls { get; init; } = "http://localhost:2380";

    /// <summary><c>--initial-cluster</c>: <c>name=url,...</c>.</summary>
    public string InitialCluster { get; init; } = "default=http://localhost:2380";

    /// <summary><c>--initial-cluster-token</c>.</summary>
    public string InitialClusterToken { get; init; } = "etcd-cluster";

    /// <summary><c>--skip-hash-check</c>: accept a snapshot without (or with a wrong) trailing SHA-256.</summary>
    public bool SkipHashCheck { get; init; }
}

/// <summary>
/// Builds a fresh single-cluster data directory from a backend snapshot, as etcd 3.5's <c>etcdutl snapshot restore</c>
/// (and, for the WAL, snap file and log lines, etcd 3.4's <c>etcdctl snapshot restore</c>) does: copies the database
/// to <c>member/snap/db</c> checking its trailing SHA-256, replaces the membership buckets with the new members,
/// sets <c>meta/consistent_index</c> = number of members and <c>meta/term</c> = 1, writes a WAL holding one
/// ConfChangeAddNode per member (term 1) and a snap file at that index whose data is the v2 store with the members.
/// </summary>
public static class SnapshotRestore
{
    private const int Sha256Size = 32;

    /// <summary>Runs the restore, logging zap-style lines to <paramref name="log"/>.</summary>
    /// <exception cref="RestoreException">Any failure, with etcd's message.</exception>
    public static void Run(RestoreOptions o, ZapLog log)
    {
        var peerUrls = ParseUrls(o.PeerUrls.Split(','));
        var cluster = ParseUrlsMap(o.InitialCluster);
        VerifyBootstrap(o.Name, peerUrls, cluster);
        var members = new List<MemberRecord>();
        foreach (var (name, urls) in cluster)
        {
            var id = MemberIds.ComputeMemberId(urls, o.InitialClusterToken);
            if (members.Any(m => m.Id == id))
            {
                throw new RestoreException($"member exists with identical ID {MemberIds.ToIdString(id)}");
            }
            if (id == 0)
            {
                throw new RestoreException("cannot use 0 as member id");
            }
            members.Add(new MemberRecord(id, urls, name, []));
        }
        members.Sort((a, b) => a.Id.CompareTo(b.Id));
        var clusterId = MemberIds.ComputeClusterId(members.Select(m => m.Id));

        var dataDir = o.DataDir.Length == 0 ? o.Name + ".etcd" : o.DataDir;
        if (Directory.Exists(dataDir) || File.Exists(dataDir))
        {
            throw new RestoreException($"data-dir \"{dataDir}\" exists");
        }
        var walDir = o.WalDir;
        if (walDir.Length == 0)
        {
            walDir = Path.Combine(dataDir, "member", "wal");
        }
        else if (Directory.Exists(walDir) || File.Exists(walDir))
        {
            throw new RestoreException($"wal-dir \"{walDir}\" exists");
        }
        var snapDir = Path.Combine(dataDir, "member", "snap");
        (string, object)[] paths = [("path", o.SnapshotPath), ("wal-dir", walDir), ("data-dir", dataDir), ("snap-dir", snapDir)];
        log.Info("snapshot/v3_snapshot.go:296", "restoring snapshot", paths);

        var dbPath = Path.Combine(snapDir, "db");
        CopyAndVerifyDb(o.SnapshotPath, snapDir, dbPath, o.SkipHashCheck);

        ulong commit = (ulong)members.Count, term = 1;
        using (var db = BoltDb.Open(dbPath, new BoltOptions { NoFreelistSync = true }))
        {
            db.Update(tx =>
            {
                var fin = tx.Bucket("meta"u8)?.Get(Encoding.ASCII.GetBytes(MetaKeys.FinishedCompactRev));
                if (fin is { Length: >= 8 })
                {
                    log.Info("mvcc/kvstore.go:388", "restored last compact revision",
                        ("meta-bucket-name", "meta"), ("meta-bucket-name-key", "finishedCompactRev"),
                        ("restored-compact-revision", BinaryPrimitives.ReadInt64BigEndian(fin)));
                }
                foreach (var b in new[] { Buckets.Key, Buckets.Meta, Buckets.Lease })
                {
                    tx.CreateBucketIfNotExists(Encoding.ASCII.GetBytes(b));
                }
                MembershipSchema.CreateBuckets(tx);
                MembershipSchema.TrimMembership(tx);
                foreach (var m in members)
                {
                    MembershipSchema.PutMember(tx, m);
                    log.Info("membership/cluster.go:392", "added member",
                        ("cluster-id", MemberIds.ToIdString(clusterId)), ("local-member-id", "0"),
                        ("added-peer-id", MemberIds.ToIdString(m.Id)), ("added-peer-peer-urls", m.PeerUrls));
                }
                MembershipSchema.PutConsistentIndex(tx, commit, term);
            });
            db.Sync();
        }

        SaveWalAndSnap(members, members.First(m => m.Name == o.Name).Id, clusterId, walDir, snapDir, term);
        log.Info("snapshot/v3_snapshot.go:309", "restored snapshot", paths);
    }

    private static void CopyAndVerifyDb(string src, string snapDir, string dbPath, bool skipHashCheck)
    {
        FileStream f;
        try
        {
            f = new FileStream(src, FileMode.Open, FileAccess.Read);
        }
        catch (FileNotFoundException)
        {
            throw new RestoreException($"open {src}: no such file or directory");
        }
        using (f)
        {
            if (f.Length < Sha256Size)
            {
                throw new RestoreException($"seek {src}: invalid argument");
            }
            var sha = new byte[Sha256Size];
            f.Seek(-Sha256Size, SeekOrigin.End);
            f.ReadExactly(sha);
            f.Seek(0, SeekOrigin.Begin);
            Directory.CreateDirectory(snapDir);
            using var db = new FileStream(dbPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.None);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(dbPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            f.CopyTo(db);
            var off = db.Length;
            var hasHash = off % 512 == Sha256Size;
            if (hasHash)
            {
                db.SetLength(off - Sha256Size);
            }
            if (!hasHash && !skipHashCheck)
            {
                throw new RestoreException("snapshot missing hash but --skip-hash-check=false");
            }
            if (hasHash && !skipHashCheck)
            {
                db.Seek(0, SeekOrigin.Begin);
                var got = SHA256.HashData(db);
                if (!got.AsSpan().SequenceEqual(sha))
                {
                    throw new RestoreException($"expected sha256 [{string.Join(' ', sha)}], got [{string.Join(' ', got)}]");
                }
            }
            db.Flush(flushToDisk: true);
        }
    }

    private static void SaveWalAndSnap(List<MemberRecord> members, ulong nodeId, ulong clusterId, string walDir, string snapDir, ulong term)
    {
        var md = new Etcdserverpb.Metadata { NodeID = nodeId, ClusterID = clusterId };
        using var w = Storage.Wal.Wal.Create(walDir, md.ToByteArray());
        var ents = new List<Raftpb.Entry>();
        for (var i = 0; i < members.Count; i++)
        {
            var cc = new Raftpb.ConfChange
            {
                Type = Raftpb.ConfChangeType.ConfChangeAddNode,
                NodeId = members[i].Id,
                Context = ByteString.CopyFromUtf8(members[i].ToJson()),
                Id = 0,
            };
            ents.Add(new Raftpb.Entry { Type = Raftpb.EntryType.EntryConfChange, Term = term, Index = (ulong)(i + 1), Data = cc.ToByteString() });
        }
        ulong commit = (ulong)ents.Count;
        w.Save(new Raftpb.HardState { Term = term, Vote = members[0].Id, Commit = commit }, ents);
        var confState = new Raftpb.ConfState();
        confState.Voters.AddRange(members.Select(m => m.Id));
        confState.AutoLeave = false;
        var snap = new Raftpb.Snapshot
        {
            Data = ByteString.CopyFrom(V2StoreSnapshot.BuildMembersOnly(members)),
            Metadata = new Raftpb.SnapshotMetadata { Index = commit, Term = term, ConfState = confState },
        };
        new Snapshotter(snapDir).SaveSnap(snap);
        w.SaveSnapshot(new Walpb.Snapshot { Index = commit, Term = term });
    }

    /// <summary>etcd's <c>types.NewURLs</c>: validates and sorts URLs.</summary>
    internal static List<string> ParseUrls(IEnumerable<string> raw)
    {
        var list = new List<string>();
        foreach (var r in raw)
        {
            var s = r.Trim();
            if (!Uri.TryCreate(s, UriKind.Absolute, out var u))
            {
                throw new RestoreException($"parse \"{s}\": invalid URI for request");
            }
            if (u.Scheme is not ("http" or "https" or "unix" or "unixs"))
            {
                throw new RestoreException($"URL scheme must be http, https, unix, or unixs: {s}");
            }
            if (u.Scheme is "http" or "https" && (u.IsDefaultPort && !HasExplicitPort(s)))
            {
                throw new RestoreException($"URL address does not have the form \"host:port\": {s}");
            }
            if (u.AbsolutePath is not ("" or "/") || s.EndsWith('/'))
            {
                throw new RestoreException($"URL must not contain a path: {s}");
            }
            list.Add(s);
        }
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private static bool HasExplicitPort(string s)
    {
        var hostPart = s[(s.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var slash = hostPart.IndexOf('/');
        if (slash >= 0)
        {
            hostPart = hostPart[..slash];
        }
        var colon = hostPart.LastIndexOf(':');
        return colon >= 0 && colon > hostPart.LastIndexOf(']');
    }

    /// <summary>etcd's <c>types.NewURLsMap</c>: <c>name=url,name=url</c> grouped by name (names in first-seen order).</summary>
    internal static List<(string Name, List<string> Urls)> ParseUrlsMap(string s)
    {
        var raw = new List<(string, List<string>)>();
        foreach (var part in s.Split(','))
        {
            if (part.Length == 0)
            {
                continue;
            }
            var eq = part.IndexOf('=');
            var name = eq < 0 ? part : part[..eq];
            var url = eq < 0 ? "" : part[(eq + 1)..];
            var idx = raw.FindIndex(x => x.Item1 == name);
            if (idx < 0)
            {
                raw.Add((name, [url]));
            }
            else
            {
                raw[idx].Item2.Add(url);
            }
        }
        return raw.Select(x => (x.Item1, ParseUrls(x.Item2))).ToList();
    }

    private static void VerifyBootstrap(string name, List<string> peerUrls, List<(string Name, List<string> Urls)> cluster)
    {
        var mine = cluster.FirstOrDefault(c => c.Name == name).Urls;
        if (mine == null)
        {
            throw new RestoreException($"couldn't find local name \"{name}\" in the initial cluster configuration");
        }
        if (!mine.SequenceEqual(peerUrls))
        {
            var missing = mine.Where(u => !peerUrls.Contains(u)).Select(u => name + "=" + u).ToList();
            if (missing.Count > 0)
            {
                throw new RestoreException($"--initial-cluster has {string.Join(",", missing)} but missing from --initial-advertise-peer-urls={string.Join(",", peerUrls)} (\"{string.Join(",", peerUrls)}\"(resolved from \"{string.Join(",", peerUrls)}\") != \"{string.Join(",", mine)}\"(resolved from \"{string.Join(",", mine)}\"))");
            }
            var extra = peerUrls.Where(u => !mine.Contains(u)).ToList();
            throw new RestoreException($"--initial-advertise-peer-urls has {string.Join(",", extra)} but missing from --initial-cluster={string.Join(",", mine.Select(u => name + "=" + u))}");
        }
        var seen = new HashSet<string>();
        if (cluster.SelectMany(c => c.Urls).Any(u => !seen.Add(u)))
        {
            throw new RestoreException($"initial cluster {string.Join(",", cluster.SelectMany(c => c.Urls.Select(u => c.Name + "=" + u)))} has duplicate url");
        }
    }
}

/// <summary>A restore failure carrying etcd's error text.</summary>
public sealed class RestoreException(string message) : Exception(message);
