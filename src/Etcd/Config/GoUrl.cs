namespace Etcd.Main.Config;

/// <summary>
/// A URL as etcd's <c>types.NewURLs</c> accepts it: Go's <c>url.Parse</c> (scheme lower-cased), then scheme
/// http, https, unix or unixs, a <c>host:port</c> authority and no path. <see cref="Text"/> is Go's
/// <c>url.String()</c>.
/// </summary>
internal sealed record GoUrl(string Scheme, string Host, string Text)
{
    /// <summary>The hostname part of <see cref="Host"/> (brackets removed).</summary>
    public string Hostname => GoSyntax.TrySplitHostPort(Host, out var h, out _) ? h : Host;

    /// <summary>Parses a comma-separated list the way <c>types.NewURLs(strings.Split(s, ","))</c> does; the result is sorted by text.</summary>
    public static bool TryParseList(string s, out List<GoUrl> urls, out string error)
    {
        urls = [];
        foreach (string part in s.Split(','))
        {
            if (!TryParse(part, out var u, out error))
            {
                return false;
            }
            urls.Add(u!);
        }
        urls.Sort((a, b) => string.CompareOrdinal(a.Text, b.Text));
        error = "";
        return true;
    }

    /// <summary>Parses one URL with <c>types.NewURLs</c>' checks and error strings.</summary>
    public static bool TryParse(string input, out GoUrl? url, out string error)
    {
        url = null;
        string s = input.Trim();
        int hash = s.IndexOf('#');
        string noFrag = hash >= 0 ? s[..hash] : s;

        // Go's getScheme.
        string scheme = "";
        string rest = noFrag;
        for (int i = 0; i < noFrag.Length; i++)
        {
            char c = noFrag[i];
            if (char.IsAsciiLetter(c))
            {
                continue;
            }
            if (char.IsAsciiDigit(c) || c is '+' or '-' or '.')
            {
                if (i == 0)
                {
                    break;
                }
                continue;
            }
            if (c == ':')
            {
                if (i == 0)
                {
                    error = $"parse {GoSyntax.Quote(s)}: missing protocol scheme";
                    return false;
                }
                scheme = noFrag[..i].ToLowerInvariant();
                rest = noFrag[(i + 1)..];
            }
            break;
        }
        int q = rest.IndexOf('?');
        string query = q >= 0 ? rest[q..] : "";
        if (q >= 0)
        {
            rest = rest[..q];
        }
        string host = "";
        string path;
        if (scheme.Length == 0 && !rest.StartsWith('/'))
        {
            int colon = rest.IndexOf(':');
            int slash = rest.IndexOf('/');
            if (colon >= 0 && (slash < 0 || colon < slash))
            {
                error = $"parse {GoSyntax.Quote(s)}: first path segment in URL cannot contain colon";
                return false;
            }
        }
        if ((scheme.Length > 0 || !rest.StartsWith("///")) && rest.StartsWith("//"))
        {
            string auth = rest[2..];
            int slash = auth.IndexOf('/');
            path = slash >= 0 ? auth[slash..] : "";
            auth = slash >= 0 ? auth[..slash] : auth;
            int at = auth.LastIndexOf('@');
            string userinfo = at >= 0 ? auth[..(at + 1)] : "";
            host = at >= 0 ? auth[(at + 1)..] : auth;
            if (!TryCheckHost(host, out string hostError))
            {
                error = $"parse {GoSyntax.Quote(s)}: {hostError}";
                return false;
            }
            rest = "//" + userinfo + host + path;
        }
        else
        {
            // Opaque or path-only: no authority, so no host.
            path = scheme.Length > 0 && !rest.StartsWith('/') ? "" : rest;
        }
        if (scheme is not ("http" or "https" or "unix" or "unixs"))
        {
            error = $"URL scheme must be http, https, unix, or unixs: {s}";
            return false;
        }
        if (!GoSyntax.TrySplitHostPort(host, out _, out _))
        {
            error = $"URL address does not have the form \"host:port\": {s}";
            return false;
        }
        if (path.Length > 0)
        {
            error = $"URL must not contain a path: {s}";
            return false;
        }
        url = new GoUrl(scheme, host, scheme + ":" + rest + query);
        error = "";
        return true;
    }

    // Go's parseHost checks: brackets, a numeric optional port, and host characters.
    private static bool TryCheckHost(string host, out string error)
    {
        error = "";
        string colonPort;
        string name;
        if (host.StartsWith('['))
        {
            int end = host.IndexOf(']');
            if (end < 0)
            {
                error = "missing ']' in host";
                return false;
            }
            colonPort = host[(end + 1)..];
            name = host[1..end];
            if (!ValidOptionalPort(colonPort))
            {
                error = $"invalid port {GoSyntax.Quote(colonPort)} after host";
                return false;
            }
            return true;
        }
        int i = host.LastIndexOf(':');
        if (i >= 0)
        {
            colonPort = host[i..];
            if (!ValidOptionalPort(colonPort))
            {
                error = $"invalid port {GoSyntax.Quote(colonPort)} after host";
                return false;
            }
            name = host[..i];
        }
        else
        {
            name = host;
        }
        foreach (char c in name)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || c > 0x7f || "-._~!$&'()*+,;=:[]<>\"%".Contains(c);
            if (!ok)
            {
                error = $"invalid character {GoSyntax.Quote(c.ToString())} in host name";
                return false;
            }
        }
        return true;
    }

    private static bool ValidOptionalPort(string port)
    {
        if (port.Length == 0)
        {
            return true;
        }
        return port[0] == ':' && port.Skip(1).All(char.IsAsciiDigit);
    }
}
