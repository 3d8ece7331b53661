using System.Diagnostics;
using Etcd.Client;
using Etcdserverpb;
using Google.Protobuf;

// etcd-bigdb: figures for large databases (the Storage issue's 1 GB check), against ours or etcd's member.
//
//   etcd-bigdb fill  --endpoints 127.0.0.1:2379 --keys 1000000 --val-size 1024 [--ops-per-txn 128] [--clients 8]
//       writes keys "bigdb/%08d" 0..keys-1, each once, in txns of --ops-per-txn puts; prints keys/s and MB/s.
//   etcd-bigdb probe --endpoints 127.0.0.1:2379 --max-seconds 120 [--interval-ms 10] [--stop-file F]
//       one put and one linearizable range every --interval-ms until --max-seconds or until F exists; prints the
//       count, the p99 and the longest put and range latency (the stall a client sees), in ms.
var mode = args.Length > 0 ? args[0] : "";
string Opt(string name, string def)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
}

var endpoints = Opt("endpoints", "127.0.0.1:2379").Split(',');
using var client = EtcdClient.Create(new EtcdClientOptions { Endpoints = endpoints });
switch (mode)
{
    case "fill":
        await FillAsync();
        break;
    case "probe":
        await ProbeAsync();
        break;
    default:
        Console.Error.WriteLine("usage: etcd-bigdb fill|probe [options] (see Program.cs)");
        return 2;
}

return 0;

async Task FillAsync()
{
    var keys = int.Parse(Opt("keys", "1000000"));
    var valSize = int.Parse(Opt("val-size", "1024"));
    var perTxn = int.Parse(Opt("ops-per-txn", "128"));
    var clients = int.Parse(Opt("clients", "8"));
    var value = ByteString.CopyFrom(Enumerable.Range(0, valSize).Select(i => (byte)('a' + (i % 26))).ToArray());
    var batches = (keys + perTxn - 1) / perTxn;
    var next = -1;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
    {
        int b;
        while ((b = Interlocked.Increment(ref next)) < batches)
        {
            var txn = new TxnRequest();
            for (var k = b * perTxn; k < Math.Min(keys, (b + 1) * perTxn); k++)
            {
                txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8($"bigdb/{k:D8}"), Value = value } });
            }

            await client.Kv.TxnAsync(txn);
        }
    }));
    var s = sw.Elapsed.TotalSeconds;
    Console.WriteLine($"fill: {keys} keys x {valSize} B in {s:F1} s ({keys / s:F0} keys/s, {(double)keys * valSize / s / 1e6:F1} MB/s)");
}

async Task ProbeAsync()
{
    var maxSeconds = double.Parse(Opt("max-seconds", "120"));
    var interval = TimeSpan.FromMilliseconds(double.Parse(Opt("interval-ms", "10")));
    var stopFile = Opt("stop-file", "");
    var puts = new List<double>();
    var ranges = new List<double>();
    var key = ByteString.CopyFromUtf8("bigdb-probe");
    var value = ByteString.CopyFrom(new byte[64]);
    var deadline = Stopwatch.StartNew();
    while (deadline.Elapsed.TotalSeconds < maxSeconds && (stopFile.Length == 0 || !File.Exists(stopFile)))
    {
        var t = Stopwatch.GetTimestamp();
        await client.Kv.PutAsync(new PutRequest { Key = key, Value = value });
        puts.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        t = Stopwatch.GetTimestamp();
        await client.Kv.RangeAsync(new RangeRequest { Key = key });
        ranges.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        await Task.Delay(interval);
    }

    static double P99(List<double> xs) => xs.Count == 0 ? 0 : xs.Order().ElementAt(Math.Min(xs.Count - 1, (int)(xs.Count * 0.99)));
    Console.WriteLine($"probe: {puts.Count} rounds; put p99 {P99(puts):F1} ms, longest {puts.DefaultIfEmpty().Max():F1} ms; range p99 {P99(ranges):F1} ms, longest {ranges.DefaultIfEmpty().Max():F1} ms");
}
