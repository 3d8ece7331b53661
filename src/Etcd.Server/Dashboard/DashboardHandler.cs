using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Dashboard;

/// <summary>
/// The web dashboard under <c>/ui/</c> on the client URLs (<c>--enable-dashboard</c>; no etcd release has one). Serves
/// only static assets embedded in this assembly (<c>Dashboard/Assets</c>: one HTML page, its stylesheet and plain
/// JavaScript); the page reads and changes the cluster through the member's own JSON gateway (<c>/v3/…</c>),
/// <c>/health</c> and <c>/metrics</c>, carrying the user's auth token, so it can never show or do more than that
/// user could with etcdctl. Nothing here answers with cluster data, so nothing here needs a token.
/// <para>
/// Responses: <c>GET</c>/<c>HEAD</c> only (else 405 with <c>Allow</c>); <c>/ui</c> redirects to <c>/ui/</c>; unknown
/// paths are 404 with Go's <c>404 page not found</c>. The page is revalidated on every load (<c>no-cache</c> and an
/// ETag); the assets it names carry their content hash in the query (<c>app.js?v=…</c>) and are cached for a year
/// when asked for with the current hash. Every response carries a strict Content-Security-Policy (scripts and styles
/// from <c>/ui/</c> only, no inline code, no frames, no forms posting elsewhere; fetches to this member and the
/// client URLs of the cluster's members, for their <c>/health</c> and Status), <c>nosniff</c>, <c>no-referrer</c> and
/// <c>DENY</c> framing.
/// </para>
/// Immutable after construction and thread-safe.
/// </summary>
public sealed class DashboardHandler
{
    /// <summary>The path prefix the dashboard is served under.</summary>
    public const string Prefix = "/ui/";

    private const string ResourcePrefix = "Etcd.Server.Dashboard.Assets.";

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    private readonly EtcdServer? _server;
    private readonly Dictionary<string, Asset> _assets;

    /// <summary>Creates the handler of <paramref name="server"/> (whose members' client URLs the page may fetch from),
    /// loading the embedded assets once.</summary>
    /// <param name="server">The member; null serves the page allowed to fetch from its own origin only.</param>
    public DashboardHandler(EtcdServer? server)
    {
        _server = server;
        _assets = LoadAssets();
    }

    /// <summary>Whether <paramref name="path"/> belongs to the dashboard (<c>/ui</c> or below <c>/ui/</c>).</summary>
    public static bool IsDashboardPath(string path) => path == "/ui" || path.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Serves one request for a dashboard path; never throws for bad input.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var request = http.Request;
        var response = http.Response;
        AddSecurityHeaders(response);
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            response.Headers.Allow = "GET, HEAD";
            await WriteTextAsync(http, 405, "Method Not Allowed").ConfigureAwait(false);
            return;
        }

        var path = request.Path.Value ?? "";
        if (path == "/ui")
        {
            response.StatusCode = 301;
            response.Headers.Location = Prefix + request.QueryString.Value;
            return;
        }

        var name = path[Prefix.Length..];
        if (name.Length == 0)
        {
            name = "index.html";
        }

        if (!_assets.TryGetValue(name, out var asset))
        {
            await WriteTextAsync(http, 404, "404 page not found").ConfigureAwait(false);
            return;
        }

        response.Headers.ContentType = asset.ContentType;
        response.Headers.ETag = asset.ETag;
        response.Headers.CacheControl = name != "index.html" && request.Query["v"] == asset.Hash
            ? "public, max-age=31536000, immutable"
            : "no-cache";
        if (name == "index.html")
        {
            response.Headers.ContentSecurityPolicy = ContentSecurityPolicy();
        }

        if (request.Headers.IfNoneMatch.ToString() is { Length: > 0 } inm && inm.Split(',').Any(t => t.Trim() == asset.ETag))
        {
            response.StatusCode = 304;
            return;
        }

        response.ContentLength = asset.Body.Length;
        if (HttpMethods.IsHead(request.Method))
        {
            return;
        }

        await response.Body.WriteAsync(asset.Body, http.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// The page's policy: everything from <c>/ui/</c> itself, fetches to this origin and to the members' client URLs
    /// (which the cluster page asks for <c>/health</c> and Status), nothing inline, no plugins, frames or foreign forms.
    /// </summary>
    internal string ContentSecurityPolicy()
    {
        var connect = new SortedSet<string>(StringComparer.Ordinal) { "'self'" };
        if (_server is not null)
        {
            foreach (var member in _server.Cluster.Members())
            {
                foreach (var url in member.ClientUrls ?? [])
                {
                    if (Uri.TryCreate(url, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps))
                    {
                        connect.Add(u.GetLeftPart(UriPartial.Authority));
                    }
                }
            }
        }

        return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            + "connect-src " + string.Join(' ', connect) + "; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";
    }

    private static void AddSecurityHeaders(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.XFrameOptions = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers["Cross-Origin-Opener-Policy"] = "same-origin";
    }

    private static Task WriteTextAsync(HttpContext http, int status, string text)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        return http.Response.WriteAsync(text + "\n", http.RequestAborted);
    }

    // Assets by file name; index.html's references {{name}} become name?v=<hash of name> so each deployment's assets are
    // cached apart.
    private static Dictionary<string, Asset> LoadAssets()
    {
        var assembly = typeof(DashboardHandler).Assembly;
        var raw = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            raw[resource[ResourcePrefix.Length..]] = copy.ToArray();
        }

        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var (name, body) in raw.Where(a => a.Key != "index.html"))
        {
            assets[name] = Asset.Of(name, body);
        }

        if (raw.TryGetValue("index.html", out var page))
        {
            var text = Encoding.UTF8.GetString(page);
            foreach (var (name, asset) in assets)
            {
                text = text.Replace("{{" + name + "}}", name + "?v=" + asset.Hash, StringComparison.Ordinal);
            }

            assets["index.html"] = Asset.Of("index.html", Encoding.UTF8.GetBytes(text));
        }

        return assets;
    }

    private sealed record Asset(byte[] Body, string ContentType, string Hash, string ETag)
    {
        public static Asset Of(string name, byte[] body)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(body))[..16];
            var type = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
            return new Asset(body, type, hash, "\"" + hash + "\"");
        }
    }
}
