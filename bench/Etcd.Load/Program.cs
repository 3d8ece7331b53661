using System.Diagnostics;
using Etcd.Client;
using Etcdserverpb;
using Google.Protobuf;

// etcd-load: bounded load against an etcd endpoint (ours or real etcd's), in the spirit of etcd's
// tools/benchmark. Every run is bounded by --total requests and --max-seconds.
//
//   etcd-load put   --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 20000 --key-size 8 --val-size 256 [--key-space 100000]
//   etcd-load range --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 20000 [--consistency l|s] [--key k]
//
// Prints one line: requests, seconds, requests/s, and latency avg / p50 / p90 / p99 / max in ms.
var mode = args.Length > 0 ? args[0] : "put";
string Opt(string name, string def)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
}

var endpoints = Opt("endpoints", "127.0.0.1:2379").Split(',');
var clients = int.Parse(Opt("clients", "64"));
var conns = Math.Max(1, int.Parse(Opt("conns", "8")));
var total = int.Parse(Opt("total", "20000"));
var maxSeconds = double.Parse(Opt("max-seconds", "120"));
var keySize = int.Parse(Opt("key-size", "8"));
var valSize = int.Parse(Opt("val-size", "256"));
var keySpace = int.Parse(Opt("key-space", "100000"));
var serializable = Opt("consistency", "l") == "s";
var rangeKey = Opt("key", "0000000");

var pool = Enumerable.Range(0, conns).Select(_ => EtcdClient.Create(new EtcdClientOptions { Endpoints = endpoints })).ToArray();
var value = ByteString.CopyFrom(new byte[valSize]);
if (mode == "range")
{
    await pool[0].Kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(rangeKey), Value = value });
}

var latencies = new double[total];
var next = -1;
var done = 0;
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
var sw = Stopwatch.StartNew();
var workers = Enumerable.Range(0, clients).Select(async c =>
{
    var client = pool[c % conns];
    var rnd = new Random(c);
    var keyBuf = new byte[keySize];
    while (!stop.IsCancellationRequested)
    {
        var i = Interlocked.Increment(ref next);
        if (i >= total)
        {
            return;
        }

        var start = Stopwatch.GetTimestamp();
        if (mode == "put")
        {
            var k = rnd.Next(keySpace).ToString("D" + keySize);
            System.Text.Encoding.ASCII.GetBytes(k.AsSpan(0, keySize), keyBuf);
            await client.Kv.PutAsync(new PutRequest { Key = ByteString.CopyFrom(keyBuf), Value = value }, cancellationToken: stop.Token);
        }
        else
        {
            await client.Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(rangeKey), Serializable = serializable }, cancellationToken: stop.Token);
        }

        latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        Interlocked.Increment(ref done);
    }
}).ToArray();
try
{
    await Task.WhenAll(workers);
}
catch (Exception e) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine($"etcd-load: stopped at --max-seconds ({e.GetType().Name})");
}

var elapsed = sw.Elapsed.TotalSeconds;
var lat = latencies.Take(Math.Min(done, total)).Where(l => l > 0).OrderBy(l => l).ToArray();
double P(double q) => lat.Length == 0 ? 0 : lat[Math.Min(lat.Length - 1, (int)(q * lat.Length))];
Console.WriteLine($"{mode}: {lat.Length} requests in {elapsed:F2} s = {lat.Length / elapsed:F0} req/s; latency ms avg {(lat.Length == 0 ? 0 : lat.Average()):F2} p50 {P(0.5):F2} p90 {P(0.9):F2} p99 {P(0.99):F2} max {(lat.Length == 0 ? 0 : lat[^1]):F2}");
foreach (var c in pool)
{
    c.Dispose();
}
