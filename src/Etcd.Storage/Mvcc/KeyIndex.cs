namespace Etcd.Storage.Mvcc;

/// <summary>
/// One life of a key, from its creating put to (and including) the tombstone that ends it
/// (etcd's <c>generation</c> in <c>mvcc/key_index.go</c>). The last generation of a key is open.
/// </summary>
internal sealed class Generation
{
    public Generation()
    {
    }

    public Generation(long ver, Revision created, List<Revision> revs)
    {
        Ver = ver;
        Created = created;
        Revs = revs;
    }

    /// <summary>Number of puts made in this generation (the key's version after the last one).</summary>
    public long Ver { get; set; }

    /// <summary>The revision of the put that created this generation.</summary>
    public Revision Created { get; set; }

    /// <summary>Every revision of the generation in ascending order; the last one of a closed generation is the tombstone.</summary>
    public List<Revision> Revs { get; set; } = [];

    public bool IsEmpty => Revs.Count == 0;

    /// <summary>Walks revisions from the newest; returns the index of the first for which <paramref name="keepGoing"/> is false, else -1.</summary>
    public int Walk(Func<Revision, bool> keepGoing)
    {
        for (var i = Revs.Count - 1; i >= 0; i--)
        {
            if (!keepGoing(Revs[i]))
            {
                return i;
            }
        }

        return -1;
    }

    public override string ToString() => $"g: created[{Created}] ver[{Ver}], revs [{string.Join(", ", Revs)}]";
}

/// <summary>
/// The revision history of one key (etcd's <c>keyIndex</c>): a list of generations, the last of which
/// is open. Not thread-safe; <see cref="TreeIndex"/>'s owner serialises access.
/// </summary>
internal sealed class KeyIndex
{
    public KeyIndex(byte[] key)
    {
        Key = key;
    }

    public byte[] Key { get; }

    /// <summary>The revision of the last modification (put or tombstone).</summary>
    public Revision Modified { get; private set; }

    public List<Generation> Generations { get; } = [];

    /// <summary>The lease attached to the live value of the key (0 = none); kept by the store, not by etcd's keyIndex.</summary>
    public long Lease { get; set; }

    /// <summary>True when the key has no revision left: one empty generation (or none).</summary>
    public bool IsEmpty => Generations.Count == 0 || (Generations.Count == 1 && Generations[0].IsEmpty);

    /// <summary>Records a put at (<paramref name="main"/>, <paramref name="sub"/>).</summary>
    /// <exception cref="InvalidOperationException">The revision is not after <see cref="Modified"/>.</exception>
    public void Put(long main, long sub)
    {
        var rev = new Revision(main, sub);
        if (!rev.GreaterThan(Modified))
        {
            throw new InvalidOperationException($"mvcc: put with an unexpected smaller revision {rev} (modified {Modified}) for key {Convert.ToHexString(Key)}");
        }

        if (Generations.Count == 0)
        {
            Generations.Add(new Generation());
        }

        var g = Generations[^1];
        if (g.Revs.Count == 0)
        {
            g.Created = rev;
        }

        g.Revs.Add(rev);
        g.Ver++;
        Modified = rev;
    }

    /// <summary>Rebuilds an index entry from the first revision of the key met during restore.</summary>
    public void Restore(Revision created, Revision modified, long ver)
    {
        if (Generations.Count != 0)
        {
            throw new InvalidOperationException("mvcc: restore got an unexpected non-empty generations");
        }

        Modified = modified;
        Generations.Add(new Generation(ver, created, [modified]));
    }

    /// <summary>Records a tombstone at (<paramref name="main"/>, <paramref name="sub"/>) and opens a new generation.</summary>
    /// <returns>False when the key is not live (etcd's ErrRevisionNotFound).</returns>
    public bool Tombstone(long main, long sub)
    {
        if (IsEmpty)
        {
            throw new InvalidOperationException($"mvcc: tombstone got an unexpected empty keyIndex for key {Convert.ToHexString(Key)}");
        }

        if (Generations[^1].IsEmpty)
        {
            return false;
        }

        Put(main, sub);
        Generations.Add(new Generation());
        return true;
    }

    /// <summary>
    /// Finds the revision of the key visible at <paramref name="atRev"/> with its generation's creation
    /// revision and the key's version at that point; false when the key did not exist at that revision.
    /// </summary>
    public bool TryGet(long atRev, out Revision modified, out Revision created, out long ver)
    {
        modified = default;
        created = default;
        ver = 0;
        var g = FindGeneration(atRev);
        if (g is null || g.IsEmpty)
        {
            return false;
        }

        var n = g.Revs.Count - 1;
        while (n >= 0 && g.Revs[n].Main > atRev)
        {
            n--;
        }

        if (n == -1)
        {
            return false;
        }

        modified = g.Revs[n];
        created = g.Created;
        ver = g.Ver - (g.Revs.Count - n - 1);
        return true;
    }

    /// <summary>
    /// Revisions of the key since main revision <paramref name="rev"/> (inclusive), keeping only the
    /// last one of each main revision (etcd's <c>keyIndex.since</c>).
    /// </summary>
    public List<Revision> Since(long rev)
    {
        var since = new Revision(rev, 0);
        int gi;
        for (gi = Generations.Count - 1; gi > 0; gi--)
        {
            var g = Generations[gi];
            if (g.IsEmpty)
            {
                continue;
            }

            if (since.GreaterThan(g.Created))
            {
                break;
            }
        }

        var revs = new List<Revision>();
        long last = 0;
        for (; gi < Generations.Count; gi++)
        {
            foreach (var r in Generations[gi].Revs)
            {
                if (since.GreaterThan(r))
                {
                    continue;
                }

                if (r.Main == last)
                {
                    revs[^1] = r;
                    continue;
                }

                revs.Add(r);
                last = r.Main;
            }
        }

        return revs;
    }

    /// <summary>
    /// Drops every revision not needed to answer reads at or after <paramref name="atRev"/>, adding the
    /// revisions at or below it that stay to <paramref name="available"/> (etcd's <c>keyIndex.compact</c>).
    /// </summary>
    public void Compact(long atRev, HashSet<Revision> available)
    {
        if (IsEmpty)
        {
            throw new InvalidOperationException($"mvcc: compact got an unexpected empty keyIndex for key {Convert.ToHexString(Key)}");
        }

        var (genIdx, revIndex) = DoCompact(atRev, available);
        var g = Generations[genIdx];
        if (!g.IsEmpty)
        {
            if (revIndex != -1)
            {
                g.Revs.RemoveRange(0, revIndex);
            }

            if (g.Revs.Count == 1 && genIdx != Generations.Count - 1)
            {
                available.Remove(g.Revs[0]);
                genIdx++;
            }
        }

        Generations.RemoveRange(0, genIdx);
    }

    /// <summary>The revisions a compaction at <paramref name="atRev"/> would keep, without changing anything (etcd's <c>keep</c>).</summary>
    public void Keep(long atRev, HashSet<Revision> available)
    {
        if (IsEmpty)
        {
            return;
        }

        var (genIdx, revIndex) = DoCompact(atRev, available);
        var g = Generations[genIdx];
        if (!g.IsEmpty && revIndex == g.Revs.Count - 1 && genIdx != Generations.Count - 1)
        {
            available.Remove(g.Revs[revIndex]);
        }
    }

    private (int GenIdx, int RevIndex) DoCompact(long atRev, HashSet<Revision> available)
    {
        var genIdx = 0;
        var g = Generations[0];
        while (genIdx < Generations.Count - 1)
        {
            if (g.Revs[^1].Main > atRev)
            {
                break;
            }

            genIdx++;
            g = Generations[genIdx];
        }

        var revIndex = g.Walk(r =>
        {
            if (r.Main <= atRev)
            {
                available.Add(r);
                return false;
            }

            return true;
        });
        return (genIdx, revIndex);
    }

    private Generation? FindGeneration(long rev)
    {
        var lastg = Generations.Count - 1;
        for (var cg = lastg; cg >= 0; cg--)
        {
            var g = Generations[cg];
            if (g.Revs.Count == 0)
            {
                continue;
            }

            if (cg != lastg && g.Revs[^1].Main <= rev)
            {
                // the generation was closed (tombstoned) at or before rev
                return null;
            }

            if (g.Revs[0].Main <= rev)
            {
                return g;
            }
        }

        return null;
    }

    public override string ToString() => string.Join("\n", Generations);
}
