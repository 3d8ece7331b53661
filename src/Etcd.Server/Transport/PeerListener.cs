using System.Net;
using System.Net.Sockets;

namespace Etcd.Server.Transport;

/// <summary>
/// A bound listening socket for <c>--listen-peer-urls</c>: TCP for http/https URLs, or a Unix domain socket for
/// unix/unixs URLs (etcd listens on the path <c>host:port</c> of the URL, relative to its working directory, replacing a
/// stale socket file; etcd's e2e suite runs clusters that way). Thread-safe.
/// </summary>
public sealed class PeerListener
{
    private readonly TcpListener? _tcp;
    private readonly Socket? _unix;

    private PeerListener(TcpListener? tcp, Socket? unix, bool tls)
    {
        _tcp = tcp;
        _unix = unix;
        Tls = tls;
    }

    /// <summary>Whether connections are TLS (https or unixs).</summary>
    public bool Tls { get; }

    /// <summary>The bound address (an <see cref="IPEndPoint"/>, or the socket path).</summary>
    public EndPoint LocalEndpoint => _tcp?.LocalEndpoint ?? _unix!.LocalEndPoint!;

    /// <summary>Binds and listens on <paramref name="url"/>; <paramref name="resolve"/> maps a TCP URL's host to the address bound.</summary>
    /// <exception cref="SocketException">The address cannot be bound.</exception>
    public static PeerListener Start(Uri url, Func<string, IPAddress> resolve)
    {
        var tls = url.Scheme is "https" or "unixs";
        if (url.Scheme is "unix" or "unixs")
        {
            var path = url.Authority + url.AbsolutePath.TrimEnd('/');
            if (File.Exists(path))
            {
                File.Delete(path);
            }

            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                s.Bind(new UnixDomainSocketEndPoint(path));
                s.Listen(512);
            }
            catch
            {
                s.Dispose();
                throw;
            }

            return new PeerListener(null, s, tls);
        }

        var l = new TcpListener(resolve(url.Host), url.Port);
        l.Start();
        return new PeerListener(l, null, tls);
    }

    /// <summary>Wraps a started TCP listener.</summary>
    public static PeerListener From(TcpListener listener, bool tls) => new(listener, null, tls);

    /// <summary>Accepts the next connection.</summary>
    public ValueTask<Socket> AcceptSocketAsync(CancellationToken cancellationToken)
        => _tcp is not null ? _tcp.AcceptSocketAsync(cancellationToken) : _unix!.AcceptAsync(cancellationToken);

    /// <summary>Stops listening (the socket file of a Unix listener stays, as etcd's does when killed).</summary>
    public void Stop()
    {
        _tcp?.Stop();
        _unix?.Dispose();
    }
}
