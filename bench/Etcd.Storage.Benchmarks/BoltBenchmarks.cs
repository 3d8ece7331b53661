using BenchmarkDotNet.Attributes;
using Etcd.Storage.Backend;
using Etcd.Storage.Bolt;

namespace Etcd.Storage.Benchmarks;

/// <summary>Engine hot paths: a batch of puts committed in one write transaction, and random point reads.</summary>
[MemoryDiagnoser]
public class BoltBenchmarks
{
    private const int PreloadKeys = 100_000;
    private const int GetsPerInvoke = 1000;

    private string _dir = "";
    private BoltDb _db = null!;
    private byte[][] _keys = [];
    private byte[][] _lookups = [];
    private byte[] _value = [];
    private int _round;

    /// <summary>Puts per committed batch.</summary>
    [Params(1000, 10000)]
    public int BatchSize { get; set; }

    /// <summary>fdatasync on commit (false measures the engine without the disk).</summary>
    [Params(false, true)]
    public bool Sync { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "bolt-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _db = BoltDb.Open(Path.Combine(_dir, "db"), new BoltOptions { NoSync = !Sync });
        var rng = new Random(1);
        _keys = Enumerable.Range(0, PreloadKeys).Select(i => System.Text.Encoding.ASCII.GetBytes($"key-{rng.Next():D10}-{i:D6}")).ToArray();
        _value = new byte[100];
        rng.NextBytes(_value);
        _db.Update(tx =>
        {
            var b = tx.CreateBucket("key"u8);
            foreach (var k in _keys)
            {
                b.Put(k, _value);
            }
        });
        _lookups = Enumerable.Range(0, GetsPerInvoke).Select(_ => _keys[rng.Next(_keys.Length)]).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _db.Dispose();
        Directory.Delete(_dir, true);
    }

    /// <summary>BatchSize sequential (revision-like) puts and one commit.</summary>
    [Benchmark]
    public void PutBatchCommit()
    {
        int round = ++_round;
        Span<byte> key = stackalloc byte[17];
        using var tx = _db.Begin(true);
        var b = tx.CreateBucketIfNotExists("rev"u8);
        for (int i = 0; i < BatchSize; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(key, ((long)round * BatchSize) + i);
            key[8] = (byte)'_';
            b.Put(key, _value);
        }

        tx.Commit();
    }

    /// <summary>1000 random point reads of 100k keys in one read transaction (per-op time = Mean / 1000).</summary>
    [Benchmark(OperationsPerInvoke = GetsPerInvoke)]
    public int RandomGet()
    {
        using var tx = _db.Begin(false);
        var b = tx.Bucket("key"u8)!;
        int found = 0;
        foreach (var k in _lookups)
        {
            if (b.TryGet(k, out var v))
            {
                found += v.Length;
            }
        }

        return found;
    }
}

/// <summary>The etcd backend: Lock/Put/Unlock as the apply loop does, and concurrent-read point gets.</summary>
[MemoryDiagnoser]
public class BackendBenchmarks
{
    private string _dir = "";
    private BoltBackend _backend = null!;
    private byte[] _value = [];
    private long _rev;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "backend-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _backend = new BoltBackend(new BoltBackendOptions { Path = Path.Combine(_dir, "db"), InitialMmapSize = 0 });
        _value = new byte[100];
        var tx = _backend.BatchTx;
        tx.Lock();
        tx.CreateBucket("key");
        tx.Unlock();
        for (int i = 0; i < 20000; i++)
        {
            Put();
        }

        _backend.ForceCommit();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _backend.Dispose();
        Directory.Delete(_dir, true);
    }

    private void Put()
    {
        Span<byte> key = stackalloc byte[17];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(key, ++_rev);
        key[8] = (byte)'_';
        var tx = _backend.BatchTx;
        tx.Lock();
        tx.Put("key", key, _value);
        tx.Unlock();
    }

    /// <summary>One Lock/Put/Unlock (commits happen in the background every 100 ms).</summary>
    [Benchmark]
    public void LockPutUnlock() => Put();

    /// <summary>One ConcurrentReadTx + Get of an existing revision.</summary>
    [Benchmark]
    public int ConcurrentReadGet()
    {
        Span<byte> key = stackalloc byte[17];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(key, 1 + (_rev * 7919 % 20000));
        key[8] = (byte)'_';
        using var r = _backend.ConcurrentReadTx();
        return r.Get("key", key)?.Length ?? 0;
    }
}
