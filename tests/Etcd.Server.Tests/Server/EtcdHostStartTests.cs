using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>A member that cannot start says why and leaves no data behind.</summary>
public sealed class EtcdHostStartTests
{
    [Fact]
    public async Task BusyClientPortFailsBeforeTheDataDirectoryIsCreated()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;
        using var dir = new TempDir();
        var dataDir = Path.Combine(dir.Path, "m");
        var options = new EtcdOptions
        {
            DataDir = dataDir,
            ListenClientUrls = [new Uri($"http://127.0.0.1:{port}")],
            AdvertiseClientUrls = [new Uri($"http://127.0.0.1:{port}")],
            ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
            InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        };
        var e = await Assert.ThrowsAsync<EtcdStartException>(() => EtcdHost.StartAsync(options, NullLoggerFactory.Instance));
        Assert.Equal($"listen tcp 127.0.0.1:{port}: bind: address already in use", e.Message);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public async Task DataDirectoryUnderAFileFails()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "file");
        await File.WriteAllTextAsync(file, "x");
        var options = new EtcdOptions
        {
            DataDir = Path.Combine(file, "member"),
            ListenClientUrls = [new Uri("http://127.0.0.1:0")],
            ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
            InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
        };
        var e = await Assert.ThrowsAsync<EtcdStartException>(() => EtcdHost.StartAsync(options, NullLoggerFactory.Instance));
        Assert.StartsWith("cannot access data directory", e.Message);
    }
}
