using BenchmarkDotNet.Running;

namespace Etcd.Raft.Benchmarks;

/// <summary>Entry point: <c>dotnet run -c Release --project bench/Etcd.Raft.Benchmarks -- --filter '*'</c>;
/// <c>-- alloc</c> prints managed bytes allocated per proposal without BenchmarkDotNet.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "alloc")
        {
            foreach (int size in new[] { 16, 1024 })
            {
                var cluster = new InMemoryCluster(3);
                var payload = new byte[size];
                for (int i = 0; i < 2000; i++) { cluster.Leader.Propose(payload); cluster.Pump(); }
                cluster.Compact();
                const int n = 20000;
                long before = GC.GetAllocatedBytesForCurrentThread();
                var sw = System.Diagnostics.Stopwatch.StartNew();
                for (int i = 0; i < n; i++)
                {
                    cluster.Leader.Propose(payload);
                    cluster.Pump();
                    if (i % 1000 == 999) cluster.Compact();
                }
                long after = GC.GetAllocatedBytesForCurrentThread();
                Console.WriteLine($"payload {size} B: {(after - before) / n} B allocated and {sw.Elapsed.TotalMilliseconds * 1000 / n:F2} us per proposal (one at a time, 3 nodes)");
            }
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
