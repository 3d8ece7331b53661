using System.Text;
using System.Text.Json;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Storage.V2Store;
using Etcdserverpb;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.V2;

/// <summary>
/// etcd's v2 client API on the client URLs (<c>etcdserver/api/v2http</c>), served when <c>--enable-v2</c> is on:
/// <c>/v2/keys</c> (reads, writes through raft, watches), <c>/v2/members</c> (list, leader, add, remove, update),
/// <c>/v2/machines</c>, <c>/v2/stats/{self,leader,store}</c> and <c>/v2/auth</c>. Bodies, headers
/// (<c>X-Etcd-Index</c>, <c>X-Raft-Index</c>, <c>X-Raft-Term</c>, <c>X-Etcd-Cluster-ID</c>) and errors as etcd 3.4.
/// Thread-safe.
/// </summary>
public sealed class V2HttpHandler
{
    /// <summary>etcd's <c>defaultWatchTimeout</c>: a watch request ends after 5 minutes without an event.</summary>
    public static readonly TimeSpan WatchTimeout = TimeSpan.FromMinutes(5);

    private readonly EtcdServer _server;
    private readonly TimeProvider _clock;
    private readonly V2AuthHandler _auth;

    /// <summary>Serves <paramref name="server"/>'s v2 API; <paramref name="clock"/> turns TTLs into expiry times.</summary>
    public V2HttpHandler(EtcdServer server, TimeProvider? clock = null)
    {
        _server = server;
        _clock = clock ?? TimeProvider.System;
        _auth = new V2AuthHandler(server);
    }

    /// <summary>True for the paths this handler owns (<c>/v2</c> and below).</summary>
    public static bool IsV2Path(string path) => path == "/v2" || path.StartsWith("/v2/", StringComparison.Ordinal);

    /// <summary>Serves one request under <c>/v2</c>.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? "/";
        if (path == V2KeysRequestParser.KeysPrefix || path.StartsWith(V2KeysRequestParser.KeysPrefix + "/", StringComparison.Ordinal))
        {
            await HandleKeysAsync(http, path).ConfigureAwait(false);
        }
        else if (path == "/v2/members" || path.StartsWith("/v2/members/", StringComparison.Ordinal))
        {
            await HandleMembersAsync(http, path).ConfigureAwait(false);
        }
        else if (path == "/v2/machines")
        {
            if (await AllowMethodAsync(http, "GET", "HEAD").ConfigureAwait(false))
            {
                var urls = _server.Cluster.Members().SelectMany(m => m.ClientUrls ?? []).Order(StringComparer.Ordinal);
                await http.Response.WriteAsync(string.Join(", ", urls), http.RequestAborted).ConfigureAwait(false);
            }
        }
        else if (path is "/v2/stats/store" or "/v2/stats/self" or "/v2/stats/leader")
        {
            await HandleStatsAsync(http, path).ConfigureAwait(false);
        }
        else if (V2AuthHandler.IsAuthPath(path))
        {
            await _auth.HandleAsync(http, path).ConfigureAwait(false);
        }
        else
        {
            await WriteNotFoundAsync(http).ConfigureAwait(false);
        }
    }

    private async Task HandleKeysAsync(HttpContext http, string path)
    {
        if (!await AllowMethodAsync(http, "HEAD", "GET", "PUT", "POST", "DELETE").ConfigureAwait(false))
        {
            return;
        }

        http.Response.Headers["X-Etcd-Cluster-ID"] = Membership.Member.IdString(_server.Cluster.ClusterId);
        Request rr;
        bool noValueOnSuccess;
        try
        {
            var form = await ReadFormAsync(http).ConfigureAwait(false);
            (rr, noValueOnSuccess) = V2KeysRequestParser.Parse(http.Request.Method, path, form, _clock);
        }
        catch (V2Error e)
        {
            await WriteV2ErrorAsync(http, e).ConfigureAwait(false);
            return;
        }

        if (!_auth.Store.HasKeyPrefixAccess(http, path[V2KeysRequestParser.KeysPrefix.Length..], rr.Recursive))
        {
            await WriteV2ErrorAsync(http, new V2Error(V2Error.Unauthorized, "Insufficient credentials", 0)).ConfigureAwait(false);
            return;
        }

        V2Response resp;
        try
        {
            resp = await _server.DoV2Async(rr, http.RequestAborted).ConfigureAwait(false);
        }
        catch (V2Error e)
        {
            if (e.Cause.StartsWith(EtcdServer.V2KeysPrefix, StringComparison.Ordinal))
            {
                e.Cause = e.Cause[EtcdServer.V2KeysPrefix.Length..];
            }

            await WriteV2ErrorAsync(http, e).ConfigureAwait(false);
            return;
        }
        catch (RpcException e)
        {
            await WriteV2ErrorAsync(http, new V2Error(V2Error.RaftInternal, e.Detail, 0)).ConfigureAwait(false);
            return;
        }

        if (resp.Event is { } ev)
        {
            await WriteEventAsync(http, resp, ev, noValueOnSuccess).ConfigureAwait(false);
        }
        else if (resp.Watcher is { } w)
        {
            await WatchAsync(http, resp, w, rr.Stream).ConfigureAwait(false);
        }
        else
        {
            await WriteV2ErrorAsync(http, new V2Error(V2Error.RaftInternal, "received response with no Event/Watcher", 0)).ConfigureAwait(false);
        }
    }

    private static async Task WriteEventAsync(HttpContext http, V2Response resp, V2Event ev, bool noValueOnSuccess)
    {
        http.Response.ContentType = "application/json";
        http.Response.Headers["X-Etcd-Index"] = ev.EtcdIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
        http.Response.Headers["X-Raft-Index"] = resp.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        http.Response.Headers["X-Raft-Term"] = resp.Term.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (ev.IsCreated)
        {
            http.Response.StatusCode = 201;
        }

        var e = Trim(ev);
        if (noValueOnSuccess && e.Action is V2Event.Set or V2Event.CompareAndSwap or V2Event.Create or V2Event.Update)
        {
            e.Node = null;
            e.PrevNode = null;
        }

        await http.Response.WriteAsync(e.ToJson() + "\n", http.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WatchAsync(HttpContext http, V2Response resp, V2Watcher w, bool stream)
    {
        using (w)
        {
            http.Response.ContentType = "application/json";
            http.Response.Headers["X-Etcd-Index"] = w.StartIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.Headers["X-Raft-Index"] = resp.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.Headers["X-Raft-Term"] = resp.Term.ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.StatusCode = 200;
            await http.Response.Body.FlushAsync(http.RequestAborted).ConfigureAwait(false);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
            cts.CancelAfter(WatchTimeout);
            try
            {
                await foreach (var ev in w.Events.ReadAllAsync(cts.Token).ConfigureAwait(false))
                {
                    await http.Response.WriteAsync(Trim(ev).ToJson() + "\n", cts.Token).ConfigureAwait(false);
                    if (!stream)
                    {
                        return;
                    }

                    await http.Response.Body.FlushAsync(cts.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // Client gone or the watch timed out: the response just ends, as etcd's.
            }
        }
    }

    private static V2Event Trim(V2Event ev)
    {
        var e = ev.Clone();
        e.Node?.TrimPrefix(EtcdServer.V2KeysPrefix);
        e.PrevNode?.TrimPrefix(EtcdServer.V2KeysPrefix);
        return e;
    }

    private async Task HandleMembersAsync(HttpContext http, string path)
    {
        if (!await AllowMethodAsync(http, "GET", "POST", "DELETE", "PUT").ConfigureAwait(false))
        {
            return;
        }

        if (!_auth.Store.HasWriteRootAccess(http))
        {
            await V2AuthHandler.WriteNoAuthAsync(http).ConfigureAwait(false);
            return;
        }

        http.Response.Headers["X-Etcd-Cluster-ID"] = Membership.Member.IdString(_server.Cluster.ClusterId);
        var sub = path.Length > "/v2/members".Length ? path["/v2/members".Length..].TrimStart('/') : "";
        try
        {
            switch (http.Request.Method)
            {
                case "GET" when sub.Length == 0:
                    await WriteJsonAsync(http, 200, w =>
                    {
                        w.WriteStartObject();
                        w.WritePropertyName("members");
                        w.WriteStartArray();
                        foreach (var m in _server.Cluster.Members())
                        {
                            WriteMember(w, m);
                        }

                        w.WriteEndArray();
                        w.WriteEndObject();
                    }, newline: true).ConfigureAwait(false);
                    return;
                case "GET" when sub == "leader":
                    var leader = _server.Leader;
                    if (leader == 0 || _server.Cluster.Find(leader) is not { } lm)
                    {
                        await WriteHttpErrorAsync(http, 503, "During election").ConfigureAwait(false);
                        return;
                    }

                    await WriteJsonAsync(http, 200, w => WriteMember(w, lm), newline: true).ConfigureAwait(false);
                    return;
                case "GET":
                    await WriteHttpErrorAsync(http, 404, "Not found").ConfigureAwait(false);
                    return;
                case "POST":
                    if (await ReadPeerUrlsAsync(http) is not { } addUrls)
                    {
                        return;
                    }

                    var req = new MemberAddRequest();
                    req.PeerURLs.AddRange(addUrls);
                    var added = await _server.MemberAddAsync(req, http.RequestAborted).ConfigureAwait(false);
                    var member = _server.Cluster.Find(added.Member.ID) ?? new Membership.Member { Id = added.Member.ID, PeerUrls = [.. addUrls] };
                    await WriteJsonAsync(http, 201, w => WriteMember(w, member), newline: true).ConfigureAwait(false);
                    return;
                case "DELETE":
                    if (await MemberIdAsync(http, sub) is not { } removeId)
                    {
                        return;
                    }

                    if (_server.Cluster.IsRemoved(removeId))
                    {
                        await WriteHttpErrorAsync(http, 410, $"Member permanently removed: {Membership.Member.IdString(removeId)}").ConfigureAwait(false);
                        return;
                    }

                    await _server.MemberRemoveAsync(new MemberRemoveRequest { ID = removeId }, http.RequestAborted).ConfigureAwait(false);
                    http.Response.StatusCode = 204;
                    return;
                case "PUT":
                    if (await MemberIdAsync(http, sub) is not { } updateId || await ReadPeerUrlsAsync(http) is not { } newUrls)
                    {
                        return;
                    }

                    var upd = new MemberUpdateRequest { ID = updateId };
                    upd.PeerURLs.AddRange(newUrls);
                    await _server.MemberUpdateAsync(upd, http.RequestAborted).ConfigureAwait(false);
                    http.Response.StatusCode = 204;
                    return;
            }
        }
        catch (EtcdException e) when (ReferenceEquals(e.Error, EtcdErrors.PeerUrlExist))
        {
            await WriteHttpErrorAsync(http, 409, "membership: peerURL exists").ConfigureAwait(false);
        }
        catch (EtcdException e) when (ReferenceEquals(e.Error, EtcdErrors.MemberExist))
        {
            await WriteHttpErrorAsync(http, 409, "membership: ID exists").ConfigureAwait(false);
        }
        catch (EtcdException e) when (ReferenceEquals(e.Error, EtcdErrors.MemberNotFound))
        {
            await WriteHttpErrorAsync(http, 404, $"No such member: {sub}").ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await WriteHttpErrorAsync(http, 500, e.Detail).ConfigureAwait(false);
        }
    }

    private static async Task<ulong?> MemberIdAsync(HttpContext http, string idText)
    {
        if (idText.Length == 0)
        {
            http.Response.StatusCode = 405;
            await http.Response.WriteAsync("Method Not Allowed\n").ConfigureAwait(false);
            return null;
        }

        if (!ulong.TryParse(idText, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var id))
        {
            await WriteHttpErrorAsync(http, 404, $"No such member: {idText}").ConfigureAwait(false);
            return null;
        }

        return id;
    }

    /// <summary>The <c>peerURLs</c> of a member add/update body (JSON only, etcd's <c>unmarshalRequest</c>); null after answering an error.</summary>
    private static async Task<List<string>?> ReadPeerUrlsAsync(HttpContext http)
    {
        var ctype = http.Request.ContentType ?? "";
        var semi = ctype.IndexOf(';', StringComparison.Ordinal);
        if (semi >= 0)
        {
            ctype = ctype[..semi].Trim().ToLowerInvariant();
        }

        if (ctype != "application/json")
        {
            await WriteHttpErrorAsync(http, 415, $"Bad Content-Type {ctype}, accept application/json").ConfigureAwait(false);
            return null;
        }

        try
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false);
            var urls = new List<string>();
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("peerURLs", out var arr) && arr.ValueKind == JsonValueKind.Array)
            {
                foreach (var u in arr.EnumerateArray())
                {
                    var s = u.GetString() ?? "";
                    if (!Uri.TryCreate(s, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                    {
                        await WriteHttpErrorAsync(http, 400, $"URL scheme must be http or https: {s}").ConfigureAwait(false);
                        return null;
                    }

                    urls.Add(s);
                }
            }

            return urls;
        }
        catch (JsonException e)
        {
            await WriteHttpErrorAsync(http, 400, e.Message).ConfigureAwait(false);
            return null;
        }
    }

    private static void WriteMember(Utf8JsonWriter w, Membership.Member m)
    {
        w.WriteStartObject();
        w.WriteString("id", Membership.Member.IdString(m.Id));
        w.WriteString("name", m.Name ?? "");
        w.WritePropertyName("peerURLs");
        w.WriteStartArray();
        foreach (var u in m.PeerUrls)
        {
            w.WriteStringValue(u);
        }

        w.WriteEndArray();
        w.WritePropertyName("clientURLs");
        w.WriteStartArray();
        foreach (var u in m.ClientUrls ?? [])
        {
            w.WriteStringValue(u);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private async Task HandleStatsAsync(HttpContext http, string path)
    {
        if (!await AllowMethodAsync(http, "GET").ConfigureAwait(false))
        {
            return;
        }

        switch (path)
        {
            case "/v2/stats/store":
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync(_server.V2Store.Stats.ToJson(_server.V2Store.WatcherCount), http.RequestAborted).ConfigureAwait(false);
                return;
            case "/v2/stats/self":
                await WriteJsonAsync(http, 200, w => _server.V2ServerStats.WriteJson(w, _server.Options.Name, _server.MemberId), newline: false).ConfigureAwait(false);
                return;
            default:
                if (!_server.IsLeader)
                {
                    await WriteHttpErrorAsync(http, 403, "not current leader").ConfigureAwait(false);
                    return;
                }

                // Every peer is a follower here from the moment it is a member (etcd adds it to its transport then).
                var peers = _server.Cluster.Members().Select(m => m.Id).Where(id => id != _server.MemberId).ToHashSet();
                foreach (var id in peers)
                {
                    _server.V2LeaderStats.Follower(id);
                }

                _server.V2LeaderStats.RemoveAllExcept(peers);
                await WriteJsonAsync(http, 200, w => _server.V2LeaderStats.WriteJson(w, _server.MemberId), newline: false).ConfigureAwait(false);
                return;
        }
    }

    /// <summary>
    /// Body values (form posts of PUT/POST/PATCH) before query values, as Go's <c>r.Form</c>, parsed with Go's rules
    /// (<see cref="GoForm"/>); a malformed body or query is etcd's 210 "Invalid POST form" with Go's error as cause.
    /// </summary>
    private static async Task<Dictionary<string, List<string>>> ReadFormAsync(HttpContext http)
    {
        var form = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        string? error = null;
        if (http.Request.Method is "POST" or "PUT" or "PATCH" && IsUrlEncodedForm(http.Request.ContentType))
        {
            string body;
            try
            {
                if (http.Request.ContentLength > GoForm.MaxBodyBytes)
                {
                    throw new V2Error(V2Error.InvalidForm, "http: POST too large", 0);
                }

                using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
                body = await reader.ReadToEndAsync(http.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or BadHttpRequestException)
            {
                throw new V2Error(V2Error.InvalidForm, e.Message, 0);
            }

            error = GoForm.ParseQuery(body, form);
        }

        var queryError = GoForm.ParseQuery(http.Request.QueryString.HasValue ? http.Request.QueryString.Value![1..] : "", form);
        error ??= queryError;
        if (error is not null)
        {
            throw new V2Error(V2Error.InvalidForm, error, 0);
        }

        return form;
    }

    /// <summary>Go parses a body as a form only for <c>application/x-www-form-urlencoded</c>.</summary>
    private static bool IsUrlEncodedForm(string? contentType) =>
        contentType is not null && contentType.Split(';')[0].Trim().Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase);

    /// <summary>etcd's <c>allowMethod</c>: 405 with an <c>Allow</c> header when the method is not one of <paramref name="methods"/>.</summary>
    internal static async Task<bool> AllowMethodAsync(HttpContext http, params string[] methods)
    {
        if (methods.Contains(http.Request.Method))
        {
            return true;
        }

        http.Response.Headers["Allow"] = string.Join(",", methods);
        http.Response.StatusCode = 405;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync("Method Not Allowed\n").ConfigureAwait(false);
        return false;
    }

    /// <summary>A v2 store error: <c>X-Etcd-Index</c>, its status, its JSON and a newline.</summary>
    internal static async Task WriteV2ErrorAsync(HttpContext http, V2Error e)
    {
        http.Response.Headers["X-Etcd-Index"] = e.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        http.Response.ContentType = "application/json";
        http.Response.StatusCode = e.StatusCode;
        await http.Response.WriteAsync(e.ToJson() + "\n").ConfigureAwait(false);
    }

    /// <summary>etcd's <c>httptypes.HTTPError</c>: <c>{"message":"..."}</c> with the status.</summary>
    internal static async Task WriteHttpErrorAsync(HttpContext http, int status, string message)
    {
        http.Response.ContentType = "application/json";
        http.Response.StatusCode = status;
        await http.Response.WriteAsync(JsonSerializer.Serialize(new Dictionary<string, string> { ["message"] = message }, V2Json.SerializerOptions)).ConfigureAwait(false);
    }

    internal static async Task WriteJsonAsync(HttpContext http, int status, Action<Utf8JsonWriter> write, bool newline)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
        {
            write(w);
        }

        http.Response.ContentType = "application/json";
        http.Response.StatusCode = status;
        if (newline)
        {
            ms.WriteByte((byte)'\n');
        }

        await http.Response.Body.WriteAsync(ms.ToArray(), http.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WriteNotFoundAsync(HttpContext http)
    {
        http.Response.StatusCode = 404;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync("404 page not found\n", Encoding.UTF8).ConfigureAwait(false);
    }
}
