using System.Diagnostics;
using Etcd.Api;
using Etcd.Client;
using Etcdserverpb;
using Google.Protobuf;

// etcd-load: bounded load against an etcd endpoint (ours or real etcd's), in the spirit of etcd's
// tools/benchmark. Every run is bounded by --total requests and --max-seconds.
//
//   etcd-load put       --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 20000 --key-size 8 --val-size 256 [--key-space 100000]
//   etcd-load range     --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 20000 [--consistency l|s] [--key k]
//   etcd-load watch     --endpoints 127.0.0.1:2379 --watchers 1000 --streams 100 --conns 8 --clients 8 --total 2000 [--val-size 256]
//   etcd-load keepalive --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 100000 [--ttl 60]
//   etcd-load authenticate --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --total 2000 --user name:password
//
// With --user name:password (auth enabled on the member), put and range authenticate once per connection and send
// the token with every request; authenticate measures Authenticate calls themselves (a bcrypt check each).
//
// put/range/keepalive print one line: requests, seconds, requests/s, and latency avg / p50 / p90 / p99 / max in ms.
// watch prints the put line, then the events delivered to all watchers per second (from the first put to the last
// event received by the last watcher).
var mode = args.Length > 0 ? args[0] : "put";
string Opt(string name, string def)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : def;
}

var endpoints = Opt("endpoints", "127.0.0.1:2379").Split(',');
var clients = int.Parse(Opt("clients", mode == "watch" ? "8" : "64"));
var conns = Math.Max(1, int.Parse(Opt("conns", "8")));
var total = int.Parse(Opt("total", mode == "watch" ? "2000" : "20000"));
var maxSeconds = double.Parse(Opt("max-seconds", "120"));
var keySize = int.Parse(Opt("key-size", "8"));
var valSize = int.Parse(Opt("val-size", "256"));
var keySpace = int.Parse(Opt("key-space", "100000"));
var serializable = Opt("consistency", "l") == "s";
var rangeKey = Opt("key", "0000000");
var watchers = int.Parse(Opt("watchers", "1000"));
var streams = Math.Max(1, int.Parse(Opt("streams", "100")));
var ttl = long.Parse(Opt("ttl", "60"));
var user = Opt("user", "");

var pool = Enumerable.Range(0, conns).Select(_ => EtcdClient.Create(new EtcdClientOptions { Endpoints = endpoints })).ToArray();
var value = ByteString.CopyFrom(new byte[valSize]);
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
var authenticate = user.Length == 0 ? null : new AuthenticateRequest { Name = user.Split(':', 2)[0], Password = user.Split(':', 2)[^1] };
var callOptions = new Etcd.Client.Grpc.CallOptions?[conns];
if (authenticate is not null && mode != "authenticate")
{
    for (var c = 0; c < conns; c++)
    {
        var token = (await pool[c].UnaryAsync(EtcdMethods.AuthService.Authenticate, authenticate)).Token;
        callOptions[c] = new Etcd.Client.Grpc.CallOptions { Headers = new Etcd.Api.Grpc.Metadata { { "token", token } } };
    }
}

try
{
    switch (mode)
    {
        case "authenticate" when authenticate is not null:
            var (authLat, authElapsed) = await RunWorkersAsync(clients, c => () => pool[c % conns].UnaryAsync(EtcdMethods.AuthService.Authenticate, authenticate, cancellationToken: stop.Token));
            Report(mode, authLat, authElapsed);
            break;
        case "put":
        case "range":
            await KvLoadAsync();
            break;
        case "watch":
            await WatchLoadAsync();
            break;
        case "keepalive":
            await KeepAliveLoadAsync();
            break;
        default:
            Console.Error.WriteLine($"etcd-load: unknown mode {mode} (put, range, watch, keepalive, authenticate with --user)");
            return 2;
    }
}
finally
{
    foreach (var c in pool)
    {
        c.Dispose();
    }
}

return 0;

// Runs `clients` workers taking request numbers up to `total`; `op(client, worker, token)` does one request.
async Task<(double[] Latencies, double Seconds)> RunWorkersAsync(int workers, Func<int, Func<Task>> makeOp)
{
    var latencies = new double[total];
    var next = -1;
    var sw = Stopwatch.StartNew();
    var tasks = Enumerable.Range(0, workers).Select(async c =>
    {
        var op = makeOp(c);
        while (!stop.IsCancellationRequested)
        {
            var i = Interlocked.Increment(ref next);
            if (i >= total)
            {
                return;
            }

            var start = Stopwatch.GetTimestamp();
            await op();
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
    }).ToArray();
    try
    {
        await Task.WhenAll(tasks);
    }
    catch (Exception e) when (stop.IsCancellationRequested)
    {
        Console.Error.WriteLine($"etcd-load: stopped at --max-seconds ({e.GetType().Name})");
    }

    return (latencies, sw.Elapsed.TotalSeconds);
}

void Report(string what, double[] latencies, double elapsed)
{
    var lat = latencies.Where(l => l > 0).OrderBy(l => l).ToArray();
    double P(double q) => lat.Length == 0 ? 0 : lat[Math.Min(lat.Length - 1, (int)(q * lat.Length))];
    Console.WriteLine($"{what}: {lat.Length} requests in {elapsed:F2} s = {lat.Length / elapsed:F0} req/s; latency ms avg {(lat.Length == 0 ? 0 : lat.Average()):F2} p50 {P(0.5):F2} p90 {P(0.9):F2} p99 {P(0.99):F2} max {(lat.Length == 0 ? 0 : lat[^1]):F2}");
}

Func<Task> PutOp(EtcdClient client, int seed, string prefix, Etcd.Client.Grpc.CallOptions? options = null)
{
    var rnd = new Random(seed);
    var keyBuf = new byte[prefix.Length + keySize];
    System.Text.Encoding.ASCII.GetBytes(prefix, keyBuf);
    return () =>
    {
        var k = rnd.Next(keySpace).ToString("D" + keySize);
        System.Text.Encoding.ASCII.GetBytes(k.AsSpan(0, keySize), keyBuf.AsSpan(prefix.Length));
        return client.Kv.PutAsync(new PutRequest { Key = ByteString.CopyFrom(keyBuf), Value = value }, options, stop.Token);
    };
}

async Task KvLoadAsync()
{
    if (mode == "range")
    {
        await pool[0].Kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(rangeKey), Value = value }, callOptions[0]);
    }

    var (lat, elapsed) = await RunWorkersAsync(clients, c => mode == "put"
        ? PutOp(pool[c % conns], c, "", callOptions[c % conns])
        : () => pool[c % conns].Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(rangeKey), Serializable = serializable }, callOptions[c % conns], stop.Token));
    Report(mode, lat, elapsed);
}

// Watch fan-out: `watchers` watchers on the prefix "watch/", spread over `streams` Watch streams (round robin over
// the connections); `clients` writers put `total` keys under the prefix; every watcher must receive every event.
async Task WatchLoadAsync()
{
    const string prefix = "watch/";
    var perStream = Math.Max(1, watchers / streams);
    watchers = perStream * streams;
    var calls = Enumerable.Range(0, streams)
        .Select(s => pool[s % conns].GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, cancellationToken: stop.Token))
        .ToList();
    try
    {
        foreach (var call in calls)
        {
            for (var j = 0; j < perStream; j++)
            {
                await call.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8("watch0") },
                });
            }
        }

        foreach (var call in calls)
        {
            for (var created = 0; created < perStream;)
            {
                if (!await call.ResponseStream.MoveNext(stop.Token))
                {
                    throw new InvalidOperationException("watch stream ended during set-up");
                }

                created += call.ResponseStream.Current.Created ? 1 : 0;
            }
        }

        long delivered = 0;
        long lastEvent = 0;
        var expectedPerStream = (long)perStream * total;
        var readers = calls.Select(call => Task.Run(async () =>
        {
            long got = 0;
            try
            {
                while (got < expectedPerStream && await call.ResponseStream.MoveNext(stop.Token))
                {
                    var n = call.ResponseStream.Current.Events.Count;
                    got += n;
                    Interlocked.Add(ref delivered, n);
                    var now = Stopwatch.GetTimestamp();
                    long seen;
                    while ((seen = Interlocked.Read(ref lastEvent)) < now && Interlocked.CompareExchange(ref lastEvent, now, seen) != seen)
                    {
                    }
                }
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
            }
        })).ToList();

        var start = Stopwatch.GetTimestamp();
        var (lat, putSeconds) = await RunWorkersAsync(clients, c => PutOp(pool[c % conns], c, prefix));
        Report("watch-put", lat, putSeconds);
        await Task.WhenAll(readers);
        var seconds = Stopwatch.GetElapsedTime(start, Math.Max(Interlocked.Read(ref lastEvent), start + 1)).TotalSeconds;
        var n = Interlocked.Read(ref delivered);
        Console.WriteLine(
            $"watch: {watchers} watchers over {streams} streams on {conns} connections, {lat.Count(l => l > 0)} puts; " +
            $"{n} of {(long)watchers * total} events delivered in {seconds:F2} s = {n / seconds:F0} events/s");
    }
    finally
    {
        foreach (var call in calls)
        {
            call.Dispose();
        }
    }
}

// Keep-alives: one lease and one LeaseKeepAlive stream per client (round robin over the connections); each client
// sends a keep-alive and waits for its answer, `total` keep-alives in all.
async Task KeepAliveLoadAsync()
{
    var ids = new long[clients];
    for (var c = 0; c < clients; c++)
    {
        var g = await pool[c % conns].UnaryAsync(EtcdMethods.LeaseService.LeaseGrant, new LeaseGrantRequest { TTL = ttl }, cancellationToken: stop.Token);
        ids[c] = g.ID;
    }

    var calls = Enumerable.Range(0, clients)
        .Select(c => pool[c % conns].GetChannel().DuplexStreaming(EtcdMethods.LeaseService.LeaseKeepAlive, cancellationToken: stop.Token))
        .ToList();
    try
    {
        var (lat, elapsed) = await RunWorkersAsync(clients, c => async () =>
        {
            await calls[c].RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = ids[c] });
            if (!await calls[c].ResponseStream.MoveNext(stop.Token) || calls[c].ResponseStream.Current.TTL <= 0)
            {
                throw new InvalidOperationException($"keep-alive of lease {ids[c]:x} failed");
            }
        });
        Report("keepalive", lat, elapsed);
    }
    finally
    {
        foreach (var call in calls)
        {
            call.Dispose();
        }

        foreach (var (id, c) in ids.Select((id, c) => (id, c)))
        {
            try
            {
                await pool[c % conns].UnaryAsync(EtcdMethods.LeaseService.LeaseRevoke, new LeaseRevokeRequest { ID = id });
            }
            catch (Exception)
            {
                // best effort clean-up
            }
        }
    }
}
