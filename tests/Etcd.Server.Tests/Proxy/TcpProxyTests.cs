using System.Net;
using System.Net.Sockets;
using Etcd.Proxy;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Etcd.Server.Tests.Proxy;

/// <summary>
/// etcd's gateway TCP proxy (<see cref="TcpProxy"/>) against real sockets on 127.0.0.1: round-robin over live backends,
/// a refused backend deactivated and the connection moved to the next one, reactivation after the retry delay
/// (injected clock), and a connection closed when no backend is left.
/// </summary>
public sealed class TcpProxyTests : IAsyncLifetime
{
    private readonly List<Backend> _backends = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;
    private TcpProxy _proxy = null!;
    private IPEndPoint _proxyEndPoint = null!;
    private readonly FakeTimeProvider _time = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        await _run.WaitAsync(TimeSpan.FromSeconds(10));
        foreach (var b in _backends)
        {
            b.Dispose();
        }
    }

    private void StartProxy(params int[] ports)
    {
        var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        _proxyEndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _proxy = new TcpProxy(listener, ports.Select(p => new TcpProxyEndpoint("127.0.0.1", p)).ToArray(), TimeSpan.FromSeconds(30), NullLoggerFactory.Instance, _time);
        _run = _proxy.RunAsync(_stop.Token);
    }

    /// <summary>Connects through the proxy, sends a byte, and reads the backend's answer (its name then the echo); null when closed.</summary>
    private async Task<string?> AskAsync()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_proxyEndPoint);
        var stream = client.GetStream();
        await stream.WriteAsync(new byte[] { (byte)'?' });
        var buffer = new byte[16];
        int total = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (total < 2)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(buffer.AsMemory(total), timeout.Token);
            }
            catch (IOException)
            {
                n = 0; // closed with our byte unread: a reset
            }

            if (n == 0)
            {
                return total == 0 ? null : System.Text.Encoding.ASCII.GetString(buffer, 0, total);
            }

            total += n;
        }

        return System.Text.Encoding.ASCII.GetString(buffer, 0, total);
    }

    [Fact]
    public async Task Connections_GoRoundRobinOverLiveBackends_BytesBothWays()
    {
        var a = Backend.Start('A', _backends);
        var b = Backend.Start('B', _backends);
        StartProxy(a.Port, b.Port);
        var answers = new List<string?>();
        for (int i = 0; i < 4; i++)
        {
            answers.Add(await AskAsync());
        }

        Assert.Equal(["A?", "B?", "A?", "B?"], answers);
    }

    [Fact]
    public async Task RefusedBackend_IsDeactivated_ConnectionMovesOn_ThenReactivatedAfterRetryDelay()
    {
        int deadPort = Backend.FreePort();
        var a = Backend.Start('A', _backends);
        StartProxy(deadPort, a.Port);
        Assert.Equal("A?", await AskAsync());
        Assert.False(_proxy.IsActive(0));
        Assert.True(_proxy.IsActive(1));
        Assert.Equal("A?", await AskAsync());

        // the dead backend comes up; the monitor dials it after the retry delay
        var revived = Backend.Start('D', _backends, deadPort);
        var round = new TaskCompletionSource();
        _proxy.MonitorRoundCompleted += () => round.TrySetResult();
        _time.Advance(TimeSpan.FromSeconds(30));
        await round.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(_proxy.IsActive(0));
        var answers = new[] { await AskAsync(), await AskAsync() };
        Assert.Contains("D?", answers);
        Assert.Contains("A?", answers);
        _ = revived;
    }

    [Fact]
    public async Task NoBackendLeft_ClosesTheConnection()
    {
        StartProxy(Backend.FreePort());
        Assert.Null(await AskAsync());
        Assert.False(_proxy.IsActive(0));
        Assert.Null(_proxy.Pick());
    }

    [Fact]
    public void Pick_PrefersTheBestPriorityClass_AndWeights()
    {
        var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var proxy = new TcpProxy(listener,
        [
            new TcpProxyEndpoint("10.0.0.1", 1, Priority: 10),
            new TcpProxyEndpoint("10.0.0.2", 2, Priority: 5, Weight: 1),
            new TcpProxyEndpoint("10.0.0.3", 3, Priority: 5, Weight: 3),
        ], TimeSpan.Zero, NullLoggerFactory.Instance);
        var picks = Enumerable.Range(0, 400).Select(_ => proxy.Pick()!.Port).ToList();
        Assert.DoesNotContain(1, picks);
        // etcd's arithmetic: a uniform draw in [0, 4) minus the weights in order, first at or below zero wins,
        // so weights 1 and 3 are picked half and half
        Assert.InRange(picks.Count(p => p == 2), 120, 280);
        Assert.InRange(picks.Count(p => p == 3), 120, 280);
        listener.Dispose();
    }

    /// <summary>A TCP server that answers each connection with its name and echoes the first byte.</summary>
    private sealed class Backend : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly CancellationTokenSource _stop = new();

        private Backend(char name, int port)
        {
            _listener = new TcpListener(IPAddress.Loopback, port);
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _ = AcceptAsync(name);
        }

        public int Port { get; }

        public static Backend Start(char name, List<Backend> all, int port = 0)
        {
            var b = new Backend(name, port);
            all.Add(b);
            return b;
        }

        public static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        private async Task AcceptAsync(char name)
        {
            try
            {
                while (true)
                {
                    var c = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _ = Task.Run(async () =>
                    {
                        using (c)
                        {
                            var s = c.GetStream();
                            var one = new byte[1];
                            if (await s.ReadAsync(one) == 1)
                            {
                                await s.WriteAsync(new[] { (byte)name, one[0] });
                            }
                        }
                    });
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }
}
