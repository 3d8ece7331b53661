using Etcd.Server;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Benchmarks;

/// <summary>A single member started in this process on 127.0.0.1 (ephemeral ports) over a temp data dir, deleted on dispose.</summary>
internal sealed class EmbeddedMember : IAsyncDisposable
{
    private readonly string _dir;

    private EmbeddedMember(string dir, EtcdHost host)
    {
        _dir = dir;
        Host = host;
    }

    /// <summary>The running member.</summary>
    public EtcdHost Host { get; }

    /// <summary>Starts a member with etcd's default ticks (100 ms heartbeat, 1 s election) and waits until it serves.</summary>
    public static async Task<EmbeddedMember> StartAsync()
    {
        var dir = Directory.CreateTempSubdirectory("etcd-bench-").FullName;
        var options = new EtcdOptions
        {
            Name = "bench",
            DataDir = dir,
            ListenClientUrls = [new Uri("http://127.0.0.1:0")],
            AdvertiseClientUrls = [new Uri("http://127.0.0.1:2379")],
            ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
            InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        };
        var host = await EtcdHost.StartAsync(options, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        await host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        return new EmbeddedMember(dir, host);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        Directory.Delete(_dir, recursive: true);
    }
}
