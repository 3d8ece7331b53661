using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Etcd.Cluster.Tests.Harness;

/// <summary>
/// The test-side peer network: one <see cref="PeerProxy"/> per member sits at the member's advertised peer URL
/// and forwards to its real <c>--listen-peer-urls</c> port. Each peer connection opens with our transport's
/// 29-byte hello (<c>"EPR1"</c>, kind, cluster ID, sender ID, target ID; see src/Etcd.Server/Transport/README.md),
/// from which the proxy learns the link (sender → target) it carries. <see cref="Isolate"/> blackholes every link
/// to and from a member: bytes on those links are read and dropped (the sender's writes succeed, nothing
/// arrives, as with lost packets) and new connections are accepted but never forwarded. <see cref="Heal"/> closes
/// every connection that lost bytes (its framing is broken) so the transports redial. Thread-safe.
/// </summary>
public sealed class PeerNetwork : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<ulong> _isolated = [];
    private readonly List<PeerProxy> _proxies = [];
    private long _generation;

    /// <summary>Creates and starts a proxy on a free 127.0.0.1 port forwarding to <paramref name="targetPort"/>.</summary>
    public PeerProxy AddProxy(string name, int targetPort)
    {
        var proxy = new PeerProxy(this, name, targetPort);
        lock (_gate)
        {
            _proxies.Add(proxy);
        }

        return proxy;
    }

    /// <summary>Cuts every link to and from the member (by raft member ID).</summary>
    public void Isolate(ulong memberId)
    {
        lock (_gate)
        {
            _isolated.Add(memberId);
            _generation++;
        }
    }

    /// <summary>Restores every link and closes connections that dropped bytes.</summary>
    public void Heal()
    {
        PeerProxy[] proxies;
        lock (_gate)
        {
            _isolated.Clear();
            _generation++;
            proxies = [.. _proxies];
        }

        foreach (var p in proxies)
        {
            p.CloseTainted();
        }
    }

    /// <summary>Total bytes dropped on blackholed links so far (a partition that dropped nothing did not bite).</summary>
    public long DroppedBytes
    {
        get
        {
            lock (_gate)
            {
                return _proxies.Sum(p => p.DroppedBytes);
            }
        }
    }

    internal bool IsBlocked(ulong from, ulong to)
    {
        lock (_gate)
        {
            return _isolated.Contains(from) || _isolated.Contains(to);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        PeerProxy[] proxies;
        lock (_gate)
        {
            proxies = [.. _proxies];
            _proxies.Clear();
        }

        foreach (var p in proxies)
        {
            await p.DisposeAsync();
        }
    }
}

/// <summary>One member's inbound peer proxy (see <see cref="PeerNetwork"/>). Thread-safe.</summary>
public sealed class PeerProxy : IAsyncDisposable
{
    private const int HelloSize = 29;
    private readonly PeerNetwork _network;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly HashSet<Link> _links = [];
    private readonly Task _acceptLoop;
    private long _dropped;

    internal PeerProxy(PeerNetwork network, string name, int targetPort)
    {
        _network = network;
        Name = name;
        TargetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Name of the member behind the proxy.</summary>
    public string Name { get; }

    /// <summary>The member's real peer port (changed only before the member first starts).</summary>
    public int TargetPort { get; internal set; }

    /// <summary>The proxy's port: the member's advertised peer URL points here.</summary>
    public int Port { get; }

    /// <summary>The advertised peer URL.</summary>
    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>Raft ID of the member behind the proxy (0 until known); the target of links whose preamble does not name it.</summary>
    public ulong MemberId { get; set; }

    /// <summary>Bytes dropped by this proxy on blackholed links.</summary>
    public long DroppedBytes => Interlocked.Read(ref _dropped);

    internal void CloseTainted()
    {
        Link[] tainted;
        lock (_gate)
        {
            tainted = _links.Where(l => l.Tainted).ToArray();
        }

        foreach (var l in tainted)
        {
            l.Close();
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Link[] links;
        lock (_gate)
        {
            links = [.. _links];
        }

        foreach (var l in links)
        {
            l.Close();
        }

        try
        {
            await _acceptLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(s));
        }
    }

    private async Task HandleAsync(Socket downstream)
    {
        var link = new Link(downstream);
        lock (_gate)
        {
            _links.Add(link);
        }

        try
        {
            downstream.NoDelay = true;
            var hello = await ReadPreambleAsync(downstream, link);
            if (hello is null)
            {
                return;
            }

            var got = hello.Length;
            if (_network.IsBlocked(link.From, link.To))
            {
                // Blackhole: accept, never forward; drain and drop whatever the dialer sends until healed.
                link.Tainted = true;
                Interlocked.Add(ref _dropped, got);
                await DrainAsync(downstream);
                return;
            }

            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            link.Upstream = upstream;
            await upstream.ConnectAsync(IPAddress.Loopback, TargetPort, _stop.Token);
            await upstream.SendAsync(hello, SocketFlags.None, _stop.Token);
            await Task.WhenAll(PumpAsync(link, downstream, upstream), PumpAsync(link, upstream, downstream));
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            link.Close();
            link.Upstream?.Dispose();
            lock (_gate)
            {
                _links.Remove(link);
            }
        }
    }

    /// <summary>
    /// Reads the start of a peer connection far enough to know its ends: our transport's 29-byte hello
    /// (<c>"EPR1"</c> | kind | cluster | from | to), or, for etcd's rafthttp, the first HTTP request's headers
    /// (<c>X-Server-From</c>, <c>X-Raft-To</c>; every request of a connection comes from the same member). Returns
    /// the bytes read (to be forwarded), or null if the dialer went away first. Ends left unknown are never blocked.
    /// </summary>
    private async Task<byte[]?> ReadPreambleAsync(Socket downstream, Link link)
    {
        var buf = new byte[16 * 1024];
        var got = 0;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (got < buf.Length)
        {
            var n = await downstream.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                return null;
            }

            got += n;
            if (got >= 4 && buf.AsSpan(0, 4).SequenceEqual("EPR1"u8))
            {
                if (got < HelloSize)
                {
                    continue;
                }

                link.From = BinaryPrimitives.ReadUInt64BigEndian(buf.AsSpan(13));
                link.To = BinaryPrimitives.ReadUInt64BigEndian(buf.AsSpan(21));
                break;
            }

            var text = System.Text.Encoding.ASCII.GetString(buf, 0, got);
            var headersEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (got >= 4 && !char.IsAsciiLetterUpper(text[0]))
            {
                break; // neither our hello nor HTTP (e.g. TLS): unknown ends
            }

            if (headersEnd < 0)
            {
                continue;
            }

            foreach (var line in text[..headersEnd].Split("\r\n"))
            {
                var colon = line.IndexOf(':');
                if (colon <= 0)
                {
                    continue;
                }

                var name = line[..colon].Trim();
                var value = line[(colon + 1)..].Trim();
                if (name.Equals("X-Server-From", StringComparison.OrdinalIgnoreCase) && ulong.TryParse(value, System.Globalization.NumberStyles.HexNumber, null, out var from))
                {
                    link.From = from;
                }
                else if (name.Equals("X-Raft-To", StringComparison.OrdinalIgnoreCase) && ulong.TryParse(value, System.Globalization.NumberStyles.HexNumber, null, out var to))
                {
                    link.To = to;
                }
            }

            if (link.From != 0 && link.To == 0)
            {
                link.To = MemberId;
            }

            break;
        }

        return buf[..got];
    }

    private async Task DrainAsync(Socket s)
    {
        var buf = new byte[16 * 1024];
        while (true)
        {
            var n = await s.ReceiveAsync(buf, SocketFlags.None, _stop.Token);
            if (n == 0)
            {
                return;
            }

            Interlocked.Add(ref _dropped, n);
        }
    }

    private async Task PumpAsync(Link link, Socket from, Socket to)
    {
        var buf = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buf, SocketFlags.None, _stop.Token);
                if (n == 0)
                {
                    break;
                }

                if (link.Tainted || _network.IsBlocked(link.From, link.To))
                {
                    // Once a byte is lost the stream's framing is broken: keep dropping until healed (closed).
                    link.Tainted = true;
                    Interlocked.Add(ref _dropped, n);
                    continue;
                }

                await to.SendAsync(buf.AsMemory(0, n), SocketFlags.None, _stop.Token);
            }
        }
        finally
        {
            link.Close();
        }
    }

    private sealed class Link(Socket downstream)
    {
        private int _closed;

        public ulong From { get; set; }

        public ulong To { get; set; }

        public Socket? Upstream { get; set; }

        public volatile bool Tainted;

        public void Close()
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            foreach (var s in new[] { downstream, Upstream })
            {
                try
                {
                    s?.Close(0);
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }
}
