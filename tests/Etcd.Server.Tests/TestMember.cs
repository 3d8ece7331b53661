namespace Etcd.Server.Tests;

/// <summary>Options for a fast single in-process member on 127.0.0.1 with ephemeral ports (shared test set-up).</summary>
internal static class TestMember
{
    /// <summary>A one-member cluster named <paramref name="name"/> with data in <paramref name="dataDir"/>; 10 ms ticks, 100 ms elections.</summary>
    public static EtcdOptions Options(string name, string dataDir) => new()
    {
        Name = name,
        DataDir = dataDir,
        ListenClientUrls = [new Uri("http://127.0.0.1:0")],
        AdvertiseClientUrls = [new Uri("http://127.0.0.1:2379")],
        ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
        InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        HeartbeatIntervalMs = 10,
        ElectionTimeoutMs = 100,
    };
}

/// <summary>
/// A test class's own in-process member (<see cref="TestMember.Options"/>) and our gRPC client to it: started before
/// each test, stopped and its data dir deleted after.
/// </summary>
public abstract class InProcessMemberTests(string name) : IAsyncLifetime
{
    private readonly TempDir _dir = new();

    /// <summary>The member (valid once <see cref="InitializeAsync"/> has run).</summary>
    protected EtcdHost Host { get; private set; } = null!;

    /// <summary>Our client connected to the member's first client URL.</summary>
    protected Etcd.Client.EtcdClient Client { get; private set; } = null!;

    /// <summary>UTF-8 bytes of <paramref name="s"/>.</summary>
    protected static Google.Protobuf.ByteString B(string s) => Google.Protobuf.ByteString.CopyFromUtf8(s);

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        Host = await EtcdHost.StartAsync(TestMember.Options(name, _dir.Path), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
            .WaitAsync(TimeSpan.FromSeconds(20));
        await Host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(20));
        Client = Etcd.Client.EtcdClient.Create(new Etcd.Client.EtcdClientOptions { Endpoints = [Host.ClientUrls[0].ToString()] });
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        _dir.Dispose();
    }
}
