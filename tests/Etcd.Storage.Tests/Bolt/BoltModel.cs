using Etcd.Storage.Bolt;

namespace Etcd.Storage.Tests.Bolt;

/// <summary>An in-memory model of nested buckets, driven with the same random operations as a BoltDb.</summary>
internal sealed class MBucket
{
    public SortedDictionary<string, byte[]> Kv { get; } = new(StringComparer.Ordinal);

    public SortedDictionary<string, MBucket> Subs { get; } = new(StringComparer.Ordinal);

    public ulong Sequence { get; set; }

    public MBucket Clone()
    {
        var c = new MBucket { Sequence = Sequence };
        foreach (var kv in Kv)
        {
            c.Kv[kv.Key] = kv.Value;
        }

        foreach (var s in Subs)
        {
            c.Subs[s.Key] = s.Value.Clone();
        }

        return c;
    }

    public List<string> Dump()
    {
        var lines = new List<string>();
        foreach (var s in Subs)
        {
            s.Value.DumpInto(s.Key, lines);
        }

        return lines;
    }

    private void DumpInto(string path, List<string> lines)
    {
        lines.Add(path + "\tB");
        foreach (var kv in Kv)
        {
            lines.Add(path + "\t" + kv.Key + "\t" + Convert.ToHexString(kv.Value));
        }

        foreach (var s in Subs)
        {
            s.Value.DumpInto(path + "/" + s.Key, lines);
        }
    }
}

/// <summary>Random operations applied to a db and a model side by side (bounded, seeded).</summary>
internal sealed class BoltModelRunner
{
    private readonly Random _rng;
    private MBucket _committed = new();
    private MBucket _model = new();

    public BoltModelRunner(int seed) => _rng = new Random(seed);

    public MBucket Committed => _committed;

    private byte[] RandomKey()
    {
        // A small key space so puts overwrite and deletes hit.
        int id = _rng.Next(3000);
        int len = 1 + (id % 37);
        var k = new byte[len];
        new Random(id).NextBytes(k);
        return k;
    }

    private byte[] RandomValue()
    {
        int roll = _rng.Next(100);
        int len = roll < 85 ? _rng.Next(0, 100) : roll < 95 ? _rng.Next(100, 2000) : _rng.Next(3000, 30000);
        var v = new byte[len];
        _rng.NextBytes(v);
        return v;
    }

    private (Bucket B, MBucket M) PickBucket(Tx tx, bool allowRoot)
    {
        if (_model.Subs.Count == 0 || (allowRoot && _rng.Next(8) == 0))
        {
            return (tx.Root, _model);
        }

        var names = _model.Subs.Keys.ToList();
        var name = names[_rng.Next(names.Count)];
        var b = tx.Bucket(Convert.FromHexString(name))!;
        var m = _model.Subs[name];
        while (m.Subs.Count > 0 && _rng.Next(2) == 0)
        {
            var sn = m.Subs.Keys.ToList();
            var s = sn[_rng.Next(sn.Count)];
            b = b.GetBucket(Convert.FromHexString(s))!;
            m = m.Subs[s];
        }

        return (b, m);
    }

    /// <summary>Runs one write transaction of about <paramref name="ops"/> operations; commits or (1 in 12) rolls back.</summary>
    public void Step(BoltDb db, int ops)
    {
        _model = _committed.Clone();
        var tx = db.Begin(true);
        try
        {
            for (int i = 0; i < ops; i++)
            {
                Op(tx);
            }

            if (_rng.Next(12) == 0)
            {
                tx.Rollback();
                _model = _committed;
                return;
            }

            tx.Commit();
            _committed = _model;
        }
        finally
        {
            tx.Dispose();
        }
    }

    private void Op(Tx tx)
    {
        int roll = _rng.Next(100);
        var (b, m) = PickBucket(tx, allowRoot: roll >= 88 && roll < 94);
        if (roll < 50)
        {
            if (ReferenceEquals(m, _model))
            {
                return;
            }

            var k = RandomKey();
            var hk = Convert.ToHexString(k);
            if (m.Subs.ContainsKey(hk))
            {
                Assert.Equal(BoltException.IncompatibleValue, Assert.Throws<BoltException>(() => b.Put(k, [1])).Message);
                return;
            }

            var v = RandomValue();
            b.Put(k, v);
            m.Kv[hk] = v;
        }
        else if (roll < 75)
        {
            if (m.Kv.Count == 0)
            {
                return;
            }

            var keys = m.Kv.Keys.ToList();
            var hk = keys[_rng.Next(keys.Count)];
            b.Delete(Convert.FromHexString(hk));
            m.Kv.Remove(hk);
        }
        else if (roll < 80)
        {
            // Sequential run: forces splits.
            if (ReferenceEquals(m, _model))
            {
                return;
            }

            int start = _rng.Next(100000);
            for (int i = 0; i < 300; i++)
            {
                var k = System.Text.Encoding.ASCII.GetBytes($"seq-{start + i:D8}");
                var v = RandomValue();
                b.Put(k, v);
                m.Kv[Convert.ToHexString(k)] = v;
            }
        }
        else if (roll < 85)
        {
            // Mass delete: forces merges.
            foreach (var hk in m.Kv.Keys.ToList())
            {
                if (_rng.Next(10) < 8)
                {
                    b.Delete(Convert.FromHexString(hk));
                    m.Kv.Remove(hk);
                }
            }
        }
        else if (roll < 88)
        {
            if (!ReferenceEquals(m, _model))
            {
                m.Sequence = b.NextSequence();
            }
        }
        else if (roll < 96)
        {
            var name = RandomKey();
            var hn = Convert.ToHexString(name);
            if (m.Kv.ContainsKey(hn) || m.Subs.ContainsKey(hn))
            {
                Assert.Throws<BoltException>(() => b.CreateBucket(name));
                return;
            }

            b.CreateBucket(name);
            m.Subs[hn] = new MBucket();
        }
        else
        {
            if (m.Subs.Count == 0)
            {
                return;
            }

            var names = m.Subs.Keys.ToList();
            var hn = names[_rng.Next(names.Count)];
            b.DeleteBucket(Convert.FromHexString(hn));
            m.Subs.Remove(hn);
        }
    }
}
