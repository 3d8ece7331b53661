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
