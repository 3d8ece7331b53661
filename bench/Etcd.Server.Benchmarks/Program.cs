using System.Diagnostics;
using BenchmarkDotNet.Running;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project bench/Etcd.Server.Benchmarks -- --filter '*'</c> runs the
/// BenchmarkDotNet suite; <c>-- alloc [puts] [clients] [server|grpc]</c> prints the bytes the whole process allocates per put while
/// <c>clients</c> concurrent callers put 256-byte values on an embedded member, through the server API and through
/// gRPC with our client (the gRPC figure includes the client's own allocations).
/// </summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    public static async Task Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "alloc")
        {
            var puts = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20000;
            var clients = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 32;
            var only = args.Length > 3 ? args[3] : null;
            await AllocAsync(puts, clients, only).ConfigureAwait(false);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }

    private static async Task AllocAsync(int puts, int clients, string? only)
    {
        await using var member = await EmbeddedMember.StartAsync().ConfigureAwait(false);
        using var client = Etcd.Client.EtcdClient.Create(new Etcd.Client.EtcdClientOptions { Endpoints = [member.Host.ClientUrls[0].ToString()] });
        var value = ByteString.CopyFrom(new byte[256]);
        var server = member.Host.Server;
        Func<PutRequest, Task> viaServer = r => server.PutAsync(r, CancellationToken.None);
        Func<PutRequest, Task> viaGrpc = r => client.Kv.PutAsync(r);
        foreach (var (name, put) in new[] { ("server", viaServer), ("grpc", viaGrpc) })
        {
            if (only is not null && only != name)
            {
                continue;
            }

            await RunAsync(put, value, Math.Min(puts, 5000), clients).ConfigureAwait(false); // warm-up
            var gen0 = GC.CollectionCount(0);
            var before = GC.GetTotalAllocatedBytes(precise: true);
            var sw = Stopwatch.StartNew();
            var done = await RunAsync(put, value, puts, clients).ConfigureAwait(false);
            sw.Stop();
            var bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
            Console.WriteLine(
                $"{name}: {done} puts by {clients} callers in {sw.Elapsed.TotalSeconds:F2} s = {done / sw.Elapsed.TotalSeconds:F0} puts/s; " +
                $"{bytes / Math.Max(1, done)} B allocated per put; {GC.CollectionCount(0) - gen0} gen0 GCs");
        }
    }

    /// <summary>Puts until <paramref name="total"/> puts are done or 120 s have passed; returns the puts done.</summary>
    private static async Task<int> RunAsync(Func<PutRequest, Task> put, ByteString value, int total, int clients)
    {
        var next = 0;
        var deadline = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, clients).Select(async _ =>
        {
            var n = 0;
            while (deadline.Elapsed < TimeSpan.FromSeconds(120))
            {
                var i = Interlocked.Increment(ref next);
                if (i > total)
                {
                    break;
                }

                await put(new PutRequest { Key = ByteString.CopyFromUtf8("bench/" + (i % 10000).ToString("D5", System.Globalization.CultureInfo.InvariantCulture)), Value = value }).ConfigureAwait(false);
                n++;
            }

            return n;
        }).ToArray();
        return (await Task.WhenAll(workers).ConfigureAwait(false)).Sum();
    }
}
