using System.Net;
using System.Net.Sockets;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// Picks free 127.0.0.1 TCP ports for members started as processes. The port is drawn at random from 10000–19999, below
/// the kernel's ephemeral range (32768–60999 here), and checked by binding it: a port the kernel handed out for port 0
/// can be taken again at any moment as the local port of some process's outgoing connection (etcdctl, a client, another
/// test project running in parallel), which made members fail with "address already in use". A port handed out once is
/// never handed out again by this test process, so concurrently starting members do not collide with each other;
/// the rare collision with a foreign process is handled by the caller retrying on "address already in use".
/// </summary>
public static class FreePorts
{
    private const int First = 10_000;
    private const int Count = 10_000;
    private static readonly HashSet<int> HandedOut = new();
    private static readonly Lock Gate = new();

    /// <summary>Returns a port that was free a moment ago and not returned before by this process.</summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = First + Random.Shared.Next(Count);
            lock (Gate)
            {
                if (HandedOut.Contains(port))
                {
                    continue;
                }
            }

            try
            {
                var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                listener.Stop();
            }
            catch (SocketException)
            {
                continue;
            }

            lock (Gate)
            {
                if (HandedOut.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException($"could not find a free 127.0.0.1 port in {First}-{First + Count - 1} in 1000 attempts");
    }
}
