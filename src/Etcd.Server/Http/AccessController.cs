using Etcd.Server.Logging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Http;

/// <summary>
/// etcd 3.4's access controller in front of the client URLs' HTTP handlers (<c>accessController</c> in
/// <c>embed/serve.go</c>, with <c>etcdserver.AccessController</c>):
/// <list type="number">
/// <item>On a connection without TLS, the request's host (the <c>Host</c> header without its port) must be in
/// <c>--host-whitelist</c>, else the request is answered <c>421 Misdirected Request</c> with etcd's text naming
/// CVE-2018-5702, and a warning is logged (DNS rebinding protection). <c>*</c> or an empty list allows all.</item>
/// <item>CORS (<c>--cors</c>): when <c>*</c> is allowed (the default) every response carries
/// <c>Access-Control-Allow-Origin: *</c>; otherwise a request whose <c>Origin</c> is listed gets its origin
/// back. Both add etcd's <c>Access-Control-Allow-Methods</c> and <c>-Headers</c>. An empty list allows all.</item>
/// <item>Every <c>OPTIONS</c> request (CORS preflight) is answered <c>200</c> with an empty body, on any path.</item>
/// </list>
/// Applies to HTTP requests (gateway, <c>/health</c>, <c>/version</c>, <c>/metrics</c>), not to gRPC; the
/// metrics listener (<c>--listen-metrics-urls</c>) has none, as in etcd. Immutable and thread-safe.
/// </summary>
public sealed class AccessController
{
    private readonly HashSet<string> _cors;
    private readonly HashSet<string> _hostWhitelist;
    private readonly ILogger _log;

    /// <summary>Creates the controller of <paramref name="options"/>' <c>Cors</c> and <c>HostWhitelist</c>.</summary>
    public AccessController(EtcdOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _cors = new HashSet<string>(options.Cors, StringComparer.Ordinal);
        _hostWhitelist = new HashSet<string>(options.HostWhitelist, StringComparer.Ordinal);
        _log = loggerFactory.CreateLogger("embed/serve.go");
    }

    /// <summary>Whether CORS allows <paramref name="origin"/> (etcd's <c>OriginAllowed</c>).</summary>
    public bool OriginAllowed(string origin) => _cors.Count == 0 || _cors.Contains("*") || _cors.Contains(origin);

    /// <summary>Whether <paramref name="host"/> (without port) may be served over cleartext (etcd's <c>IsHostWhitelisted</c>).</summary>
    public bool IsHostWhitelisted(string host) => _hostWhitelist.Count == 0 || _hostWhitelist.Contains("*") || _hostWhitelist.Contains(host);

    /// <summary>
    /// Applies the checks to <paramref name="http"/>: adds the CORS headers, and answers the request itself when
    /// its host is refused (421) or it is an <c>OPTIONS</c> request (200). Returns true when the request has been
    /// answered and must not be served further.
    /// </summary>
    public async Task<bool> AnswerAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var request = http.Request;
        if (!request.IsHttps)
        {
            var host = Hostname(request.Headers.Host.ToString());
            if (!IsHostWhitelisted(host))
            {
                _log.LogEtcd(
                    LogLevel.Warning,
                    "embed/serve.go:344",
                    "rejecting HTTP request to prevent DNS rebinding attacks",
                    $"rejecting HTTP request from \"{host}\" to prevent DNS rebinding attacks",
                    ("host", host));
                await WriteErrorAsync(http, 421, RebindingText(host)).ConfigureAwait(false);
                return true;
            }
        }

        if (OriginAllowed("*"))
        {
            AddCorsHeaders(http.Response, "*");
        }
        else if (request.Headers.Origin.ToString() is var origin && OriginAllowed(origin))
        {
            AddCorsHeaders(http.Response, origin);
        }

        if (HttpMethods.IsOptions(request.Method))
        {
            http.Response.StatusCode = 200;
            http.Response.ContentLength = 0;
            return true;
        }

        return false;
    }

    /// <summary>Go's <c>http.Error</c>: plain text, <c>nosniff</c>, the message and a newline.</summary>
    internal static Task WriteErrorAsync(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        http.Response.Headers["X-Content-Type-Options"] = "nosniff";
        return http.Response.WriteAsync(message + "\n", http.RequestAborted);
    }

    // etcd's httputil.GetHostname: the Host without its port, or the whole Host when it has none.
    private static string Hostname(string host)
    {
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']');
            return end > 0 && (end == host.Length - 1 || host[end + 1] == ':') ? (end == host.Length - 1 ? host : host[1..end]) : host;
        }

        var colon = host.IndexOf(':');
        return colon >= 0 && colon == host.LastIndexOf(':') ? host[..colon] : host;
    }

    private static void AddCorsHeaders(HttpResponse response, string origin)
    {
        response.Headers.Append("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
        response.Headers.Append("Access-Control-Allow-Origin", origin);
        response.Headers.Append("Access-Control-Allow-Headers", "accept, content-type, authorization");
    }

    private static string RebindingText(string host) => $"""

        etcd received your request, but the Host header was unrecognized.

        To fix this, choose one of the following options:
        - Enable TLS, then any HTTPS request will be allowed.
        - Add the hostname you want to use to the whitelist in settings.
          - e.g. etcd --host-whitelist "{host}"

        This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).

        """;
}
