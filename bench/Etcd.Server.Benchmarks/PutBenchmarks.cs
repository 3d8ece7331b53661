using BenchmarkDotNet.Attributes;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Server.Benchmarks;

/// <summary>
/// One put at a time on an embedded member, through the server's request API (<see cref="EtcdServer.PutAsync"/>: proposal,
/// raft, WAL fsync, apply, backend) and through gRPC with our client: time and bytes allocated per put.
/// </summary>
[MemoryDiagnoser]
public class PutBenchmarks
{
    private EmbeddedMember _member = null!;
    private Etcd.Client.EtcdClient _client = null!;
    private ByteString _value = null!;
    private int _n;

    /// <summary>Starts the member and the client.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _member = EmbeddedMember.StartAsync().GetAwaiter().GetResult();
        _client = Etcd.Client.EtcdClient.Create(new Etcd.Client.EtcdClientOptions { Endpoints = [_member.Host.ClientUrls[0].ToString()] });
        _value = ByteString.CopyFrom(new byte[256]);
    }

    /// <summary>Stops both.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _member.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>A put of a 256-byte value through <see cref="EtcdServer.PutAsync"/>.</summary>
    [Benchmark]
    public Task<PutResponse> ServerPut()
        => _member.Host.Server.PutAsync(new PutRequest { Key = Key(), Value = _value }, CancellationToken.None);

    /// <summary>The same put through gRPC with our client (client and server allocations both counted).</summary>
    [Benchmark]
    public Task<PutResponse> GrpcPut() => _client.Kv.PutAsync(new PutRequest { Key = Key(), Value = _value });

    private ByteString Key() => ByteString.CopyFromUtf8("bench/" + (_n++ % 10000).ToString("D5"));
}
