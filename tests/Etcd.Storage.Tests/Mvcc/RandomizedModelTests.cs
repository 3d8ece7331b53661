using Etcd.Api;
using Etcd.Storage.Backend;
using Etcd.Storage.Mvcc;
using Etcdserverpb;
using Google.Protobuf;
using static Etcd.Storage.Tests.Mvcc.M;

namespace Etcd.Storage.Tests.Mvcc;

/// <summary>
/// Drives a store with random writes, reads and compactions and checks every answer against a
/// plain model: one dictionary of live keys per revision.
/// </summary>
public sealed class RandomizedModelTests
{
    private sealed record ModelKv(string Value, long Create, long Mod, long Version);

    private sealed class Model
    {
        public List<Dictionary<string, ModelKv>> States { get; } = [[], []]; // revisions 0 and 1: empty

        public long Current => States.Count - 1;

        public long Compacted { get; set; } = -1;

        public Dictionary<string, ModelKv> Working { get; private set; } = [];

        public bool Changed { get; private set; }

        public void Begin()
        {
            Working = new Dictionary<string, ModelKv>(States[^1]);
            Changed = false;
        }

        public void Put(string key, string value)
        {
            var rev = Current + 1;
            Working[key] = Working.TryGetValue(key, out var old)
                ? new ModelKv(value, old.Create, rev, old.Version + 1)
                : new ModelKv(value, rev, rev, 1);
            Changed = true;
        }

        public int Delete(string key, string? end)
        {
            var doomed = Working.Keys.Where(k => InRange(k, key, end)).ToList();
            foreach (var k in doomed)
            {
                Working.Remove(k);
            }

            Changed |= doomed.Count > 0;
            return doomed.Count;
        }

        public void End()
        {
            if (Changed)
            {
                States.Add(Working);
            }
        }

        public static bool InRange(string k, string key, string? end)
            => end is null ? k == key : string.CompareOrdinal(k, key) >= 0 && (end == "\0" || string.CompareOrdinal(k, end) < 0);
    }

    private static string RandomKey(Random rng) => "k" + rng.Next(12) + (rng.Next(4) == 0 ? "x" : "");

    private static (string Key, string? End) RandomRange(Random rng)
    {
        var key = RandomKey(rng);
        return rng.Next(4) switch
        {
            0 => (key, null),
            1 => (key, "\0"),
            _ => (key, RandomKey(rng)),
        };
    }

    private static ByteString EndBytes(string? end) => end is null ? ByteString.Empty : end == "\0" ? AllFrom : B(end);

    private static void CheckRange(KvStore s, Model m, string key, string? end, long rev)
    {
        var req = new RangeRequest { Key = B(key), RangeEnd = EndBytes(end), Revision = rev };
        var at = rev == 0 ? m.Current : rev;
        if (at > m.Current)
        {
            Assert.Same(EtcdErrors.FutureRev, Error(() => s.Range(req)));
            return;
        }

        if (at < m.Compacted)
        {
            Assert.Same(EtcdErrors.Compacted, Error(() => s.Range(req)));
            return;
        }

        var r = s.Range(req);
        var expected = m.States[(int)at]
            .Where(p => Model.InRange(p.Key, key, end))
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => (p.Key, p.Value))
            .ToArray();
        var actual = r.Kvs
            .Select(kv => (S(kv.Key), new ModelKv(S(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version)))
            .ToArray();
        Assert.Equal(expected, actual);
        Assert.Equal(expected.Length, r.Count);
        Assert.Equal(m.Current, r.Header.Revision);
    }

    private static void CheckEverything(KvStore s, Model m)
    {
        Assert.Equal(m.Current, s.CurrentRevision);
        for (var rev = Math.Max(1, m.Compacted); rev <= m.Current; rev++)
        {
            CheckRange(s, m, "\0", "\0", rev);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(2024)]
    public void StoreMatchesModel(int seed)
    {
        var rng = new Random(seed);
        var backend = new InMemoryBackend();
        var s = new KvStore(backend, null, new KvStoreOptions { CompactionBatchLimit = 1 + rng.Next(8) });
        var m = new Model();
        for (var step = 0; step < 400; step++)
        {
            switch (rng.Next(10))
            {
                case 0 or 1 or 2:
                {
                    var key = RandomKey(rng);
                    var value = "v" + step;
                    m.Begin();
                    m.Put(key, value);
                    m.End();
                    Assert.Equal(m.Current, s.Put(key, value).Header.Revision);
                    break;
                }

                case 3:
                {
                    var (key, end) = RandomRange(rng);
                    m.Begin();
                    var n = m.Delete(key, end);
                    m.End();
                    var r = s.DeleteRange(new DeleteRangeRequest { Key = B(key), RangeEnd = EndBytes(end) });
                    Assert.Equal(n, r.Deleted);
                    Assert.Equal(m.Current, r.Header.Revision);
                    break;
                }

                case 4 or 5:
                {
                    // txn: compare a key's version against the model, then run random ops
                    var ck = RandomKey(rng);
                    var ver = m.States[^1].TryGetValue(ck, out var ckv) ? ckv.Version : 0;
                    var want = rng.Next(2) == 0 ? ver : ver + 1;
                    var txn = new TxnRequest { Compare = { new Compare { Key = B(ck), Target = Compare.Types.CompareTarget.Version, Version = want } } };
                    var ok = want == ver;
                    m.Begin();
                    var count = 1 + rng.Next(4);
                    var ops = ok ? txn.Success : txn.Failure;
                    var expectedDeleted = new List<long>();
                    for (var i = 0; i < count; i++)
                    {
                        if (rng.Next(3) == 0)
                        {
                            var (key, end) = RandomRange(rng);
                            ops.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B(key), RangeEnd = EndBytes(end) } });
                            expectedDeleted.Add(m.Delete(key, end));
                        }
                        else
                        {
                            var key = RandomKey(rng);
                            ops.Add(OpPut(key, $"t{step}.{i}"));
                            m.Put(key, $"t{step}.{i}");
                            expectedDeleted.Add(-1);
                        }
                    }

                    m.End();
                    var resp = s.Txn(txn);
                    Assert.Equal(ok, resp.Succeeded);
                    Assert.Equal(m.Current, resp.Header.Revision);
                    for (var i = 0; i < count; i++)
                    {
                        if (expectedDeleted[i] >= 0)
                        {
                            Assert.Equal(expectedDeleted[i], resp.Responses[i].ResponseDeleteRange.Deleted);
                        }
                    }

                    break;
                }

                case 6 or 7 or 8:
                {
                    var (key, end) = RandomRange(rng);
                    var rev = rng.Next(4) == 0 ? 0 : rng.NextInt64(0, m.Current + 3);
                    CheckRange(s, m, key, end, rev);
                    break;
                }

                default:
                {
                    if (rng.Next(3) == 0)
                    {
                        var rev = rng.NextInt64(Math.Max(0, m.Compacted - 2), m.Current + 3);
                        var req = new CompactionRequest { Revision = rev };
                        if (rev <= m.Compacted)
                        {
                            Assert.Same(EtcdErrors.Compacted, Error(() => s.Compact(req)));
                        }
                        else if (rev > m.Current)
                        {
                            Assert.Same(EtcdErrors.FutureRev, Error(() => s.Compact(req)));
                        }
                        else
                        {
                            s.Compact(req);
                            m.Compacted = rev;
                        }
                    }
                    else
                    {
                        // restart over the same backend: the restored store answers the same
                        var hash = s.HashByRevision(0);
                        s.Dispose();
                        s = new KvStore(backend);
                        Assert.Equal(hash, s.HashByRevision(0));
                        Assert.Equal(m.Compacted, s.CompactRevision);
                        CheckEverything(s, m);
                    }

                    break;
                }
            }
        }

        CheckEverything(s, m);
        s.Dispose();
    }
}
