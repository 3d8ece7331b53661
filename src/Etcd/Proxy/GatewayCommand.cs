using System.Net;
using System.Net.Sockets;
using Etcd.Main.Config;
using Etcd.Server.Logging;
using Etcd.Proxy;
using Microsoft.Extensions.Logging;

namespace Etcd.Main.Proxy;

/// <summary>
/// <c>etcd gateway start</c> (etcd's <c>etcdmain/gateway.go</c>): checks the endpoints and listen address as etcd does,
/// then runs a <see cref="TcpProxy"/> until SIGTERM or SIGINT. DNS SRV discovery (<c>--discovery-srv</c>,
/// <c>--discovery-srv-name</c>) is refused at start: .NET has no SRV resolver here, and a flag is honoured or refused,
/// never ignored. <c>--insecure-discovery</c> and <c>--trusted-ca-file</c> only shape discovery, as in etcd, so
/// without <c>--discovery-srv</c> they change nothing there either.
/// </summary>
internal static class GatewayCommand
{
    /// <summary>The flags of <c>etcd gateway start</c>, as etcd 3.4.23 declares them.</summary>
    public static CobraFlags Flags() => new(
    [
        new("listen-addr", CobraFlagKind.String, "127.0.0.1:23790", "listen address"),
        new("discovery-srv", CobraFlagKind.String, "", "DNS domain used to bootstrap initial cluster"),
        new("discovery-srv-name", CobraFlagKind.String, "", "service name to query when using DNS discovery"),
        new("insecure-discovery", CobraFlagKind.Bool, "false", "accept insecure SRV records"),
        new("trusted-ca-file", CobraFlagKind.String, "", "path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided."),
        new("endpoints", CobraFlagKind.StringSlice, "[127.0.0.1:2379]", "comma separated etcd cluster endpoints"),
        new("retry-delay", CobraFlagKind.Duration, "1m0s", "duration of delay before retrying failed endpoints"),
    ]);

    /// <summary>Runs the gateway; returns the exit code (1 on any start error, after etcd's message).</summary>
    public static async Task<int> RunAsync(CobraFlags flags, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        if (flags.Str("discovery-srv").Length > 0 || flags.Str("discovery-srv-name").Length > 0)
        {
            await stderr.WriteAsync($"etcd gateway: --discovery-srv and --discovery-srv-name (DNS SRV discovery) are not supported by {EtcdConfigLoader.ProductName}; give the members with --endpoints\n").ConfigureAwait(false);
            return 1;
        }

        var endpoints = new List<TcpProxyEndpoint>();
        foreach (var raw in flags.Slice("endpoints").Select(StripScheme))
        {
            if (!TrySplitHostPort(raw, out var host, out var port) || !ushort.TryParse(port, out var portNumber))
            {
                await stdout.WriteAsync($"error parsing endpoint \"{raw}\"").ConfigureAwait(false);
                return 1;
            }

            endpoints.Add(new TcpProxyEndpoint(host, portNumber));
        }

        string listenAddr = flags.Str("listen-addr");
        if (!TrySplitHostPort(listenAddr, out var listenHost, out var listenPort) || !ushort.TryParse(listenPort, out var listenPortNumber))
        {
            await stdout.WriteAsync($"failed to validate listen address: {listenAddr}\n").ConfigureAwait(false);
            return 1;
        }

        var listenAddresses = await LookupAsync(listenHost).ConfigureAwait(false);
        if (listenAddresses is null)
        {
            await stdout.WriteAsync($"failed to resolve listen host: {listenHost}\n").ConfigureAwait(false);
            return 1;
        }

        foreach (var ep in endpoints)
        {
            var addresses = await LookupAsync(ep.Host).ConfigureAwait(false);
            if (addresses is null)
            {
                await stdout.WriteAsync($"failed to resolve endpoint host: {ep.Host}\n").ConfigureAwait(false);
                return 1;
            }

            if (ep.Port != listenPortNumber)
            {
                continue;
            }

            foreach (var a in addresses.Where(listenAddresses.Contains))
            {
                await stdout.WriteAsync($"SRV or endpoint ({ep.Host}:{ep.Port}->{a}:{ep.Port}) should not resolve to the gateway listen addr ({listenAddr})\n").ConfigureAwait(false);
                return 1;
            }
        }

        if (endpoints.Count == 0)
        {
            await stdout.WriteAsync("no endpoints found\n").ConfigureAwait(false);
            return 1;
        }

        Socket listener;
        try
        {
            listener = Listen(listenHost, listenPortNumber, listenAddresses);
        }
        catch (SocketException e)
        {
            await stderr.WriteAsync($"listen tcp {listenAddr}: bind: {GoSocketError(e)}\n").ConfigureAwait(false);
            return 1;
        }

        using var loggerFactory = EtcdLogging.CreateLoggerFactory("zap", "info", ["stderr"]);
        var proxy = new TcpProxy(listener, endpoints, flags.Duration("retry-delay"), loggerFactory);
        await proxy.RunAsync(stop).ConfigureAwait(false);
        return 0;
    }

    /// <summary>etcd's <c>stripSchema</c>: <c>http://host:port</c> becomes <c>host:port</c>; anything else is kept.</summary>
    internal static string StripScheme(string endpoint)
    {
        int i = endpoint.IndexOf("://", StringComparison.Ordinal);
        if (i <= 0)
        {
            return endpoint;
        }

        var rest = endpoint[(i + 3)..];
        int slash = rest.IndexOfAny(['/', '?', '#']);
        var host = slash >= 0 ? rest[..slash] : rest;
        int at = host.LastIndexOf('@');
        host = at >= 0 ? host[(at + 1)..] : host;
        return host.Length > 0 ? host : endpoint;
    }

    /// <summary>Go's <c>net.SplitHostPort</c>: <c>host:port</c> or <c>[v6]:port</c>.</summary>
    internal static bool TrySplitHostPort(string address, out string host, out string port)
    {
        host = port = "";
        int colon = address.LastIndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        host = address[..colon];
        port = address[(colon + 1)..];
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']'))
            {
                return false;
            }

            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            return false;
        }

        return true;
    }

    private static async Task<HashSet<string>?> LookupAsync(string host)
    {
        if (host.Length == 0)
        {
            return ["0.0.0.0", "::"];
        }

        if (IPAddress.TryParse(host, out var ip))
        {
            return [ip.ToString()];
        }

        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
            return addresses.Select(a => a.ToString()).ToHashSet();
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static Socket Listen(string host, int port, HashSet<string> addresses)
    {
        var address = host.Length == 0 ? IPAddress.IPv6Any : IPAddress.Parse(addresses.OrderBy(a => a.Contains(':', StringComparison.Ordinal)).First());
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(512);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string GoSocketError(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AddressNotAvailable => "cannot assign requested address",
        SocketError.AccessDenied => "permission denied",
        _ => e.Message.ToLowerInvariant(),
    };
}
