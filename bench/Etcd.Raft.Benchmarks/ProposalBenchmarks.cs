using BenchmarkDotNet.Attributes;

namespace Etcd.Raft.Benchmarks;

/// <summary>Throughput of proposals committed and applied through a 3-node in-memory cluster.</summary>
[MemoryDiagnoser]
public class ProposalBenchmarks
{
    private const int Batch = 1000;
    private InMemoryCluster _cluster = null!;
    private byte[] _payload = [];

    /// <summary>Entry payload size in bytes.</summary>
    [Params(16, 1024)]
    public int PayloadSize { get; set; }

    /// <summary>Builds the cluster and elects a leader.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _cluster = new InMemoryCluster(3);
        _payload = new byte[PayloadSize];
        new Random(42).NextBytes(_payload);
    }

    /// <summary>One proposal per round trip: propose, then pump until committed and applied.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public void ProposeOneAtATime()
    {
        for (int i = 0; i < Batch; i++)
        {
            _cluster.Leader.Propose(_payload);
            _cluster.Pump();
        }
        _cluster.Compact(); // keep the logs short across invocations
    }

    /// <summary>Pipelined: 100 proposals per pump, as a busy leader batches them.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public void ProposeBatched()
    {
        for (int i = 0; i < Batch; i++)
        {
            _cluster.Leader.Propose(_payload);
            if (i % 100 == 99) _cluster.Pump();
        }
        _cluster.Pump();
        _cluster.Compact();
    }
}
