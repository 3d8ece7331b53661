using System.Net;
using System.Net.Sockets;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// Picks free 127.0.0.1 TCP ports by binding port 0 and releasing it. A port handed out once is
/// never handed out again by this test process, so concurrently starting members do not collide
/// with each other; collisions with foreign processes are handled by the caller retrying on
/// "address already in use".
/// </summary>
public static class FreePorts
{
    private static readonly HashSet<int> HandedOut = new();
    private static readonly Lock Gate = new();

    /// <summary>Returns a port that was free a moment ago and not returned before by this process.</summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            lock (Gate)
            {
                if (HandedOut.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("could not find a free 127.0.0.1 port in 100 attempts");
    }
}
