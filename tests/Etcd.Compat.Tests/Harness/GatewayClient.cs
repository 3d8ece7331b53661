using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// A small client of etcd's JSON gateway (<c>/v3/kv/put</c>, <c>/v3/kv/range</c>, <c>/v3/watch</c>,
/// <c>/v3/cluster/member/*</c>) over HTTP/1.1: cheap enough to drive hundreds of puts a second at a member from a test
/// (an etcdctl process per put manages a few dozen). Thread-safe; one per member endpoint.
/// </summary>
public sealed class GatewayClient : IDisposable
{
    private readonly HttpClient _http;

    /// <summary>A client of <paramref name="baseUrl"/> (e.g. <c>http://127.0.0.1:40001</c>); each request is bounded by <paramref name="timeout"/>.</summary>
    public GatewayClient(string baseUrl, TimeSpan timeout)
    {
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1), ConnectTimeout = TimeSpan.FromSeconds(2) })
        {
            BaseAddress = new Uri(baseUrl),
            Timeout = timeout,
        };
    }

    /// <summary>Puts <paramref name="key"/>=<paramref name="value"/>; returns the response header's revision.</summary>
    /// <exception cref="HttpRequestException">Transport failure or a non-200 answer (the outcome of the put is unknown).</exception>
    public async Task<long> PutAsync(string key, string value, CancellationToken ct = default)
    {
        using var doc = await PostAsync("/v3/kv/put", new { key = B64(key), value = B64(value) }, ct);
        return Int64(doc.RootElement.GetProperty("header"), "revision");
    }

    /// <summary>
    /// Runs an idempotent read, again (at most 3 tries) when the connection fails: right after a restart an HTTP/1.1
    /// response is now and then cut short (HttpIOException ResponseEnded) while the member runs on.
    /// </summary>
    public static async Task<T> RetryReadAsync<T>(Func<Task<T>> read)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await read();
            }
            catch (HttpRequestException) when (attempt < 3)
            {
            }
            catch (IOException) when (attempt < 3)
            {
            }
        }
    }

    /// <summary>Every key with its current value (one range over the whole keyspace) and the store's revision.</summary>
    public async Task<(List<HistoryEvent> Kvs, long Revision)> RangeAllAsync(CancellationToken ct = default)
    {
        using var doc = await PostAsync("/v3/kv/range", new { key = B64("\0"), range_end = B64("\0") }, ct);
        var kvs = new List<HistoryEvent>();
        if (doc.RootElement.TryGetProperty("kvs", out var arr))
        {
            kvs.AddRange(arr.EnumerateArray().Select(ToEvent));
        }

        return (kvs, Int64(doc.RootElement.GetProperty("header"), "revision"));
    }

    /// <summary>
    /// The whole history: a watch over the whole keyspace from revision 1, read until the put at
    /// <paramref name="upToRevision"/> has arrived (puts only: a delete fails the read).
    /// </summary>
    /// <exception cref="TimeoutException">The history did not reach <paramref name="upToRevision"/> within <paramref name="timeout"/>.</exception>
    public async Task<List<HistoryEvent>> HistoryAsync(long upToRevision, TimeSpan timeout)
    {
        var events = new List<HistoryEvent>();
        if (upToRevision <= 1)
        {
            return events;
        }

        using var cts = new CancellationTokenSource(timeout);
        var body = JsonSerializer.Serialize(new { create_request = new { key = B64("\0"), range_end = B64("\0"), start_revision = 1 } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v3/watch") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            response.EnsureSuccessStatusCode();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
            while (events.Count == 0 || events[^1].ModRevision < upToRevision)
            {
                var line = await reader.ReadLineAsync(cts.Token) ?? throw new IOException($"watch stream ended at {events.Count} events");
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(line);
                var result = doc.RootElement.GetProperty("result");
                if (!result.TryGetProperty("events", out var evs))
                {
                    continue;
                }

                foreach (var ev in evs.EnumerateArray())
                {
                    if (ev.TryGetProperty("type", out var t) && t.ValueKind != JsonValueKind.Null && t.ToString() is not ("PUT" or "0"))
                    {
                        throw new InvalidDataException($"unexpected {t} event in a put-only history: {ev}");
                    }

                    events.Add(ToEvent(ev.GetProperty("kv")));
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"history reached revision {(events.Count == 0 ? 0 : events[^1].ModRevision)} of {upToRevision} within {timeout.TotalSeconds:0} s");
        }

        return events;
    }

    /// <summary>Adds a learner with <paramref name="peerUrl"/>; returns its member ID.</summary>
    public async Task<ulong> AddLearnerAsync(string peerUrl, CancellationToken ct = default)
    {
        using var doc = await PostAsync("/v3/cluster/member/add", new { peerURLs = new[] { peerUrl }, isLearner = true }, ct);
        return UInt64(doc.RootElement.GetProperty("member"), "ID");
    }

    /// <summary>Removes member <paramref name="id"/>.</summary>
    public async Task RemoveMemberAsync(ulong id, CancellationToken ct = default)
    {
        using var _ = await PostAsync("/v3/cluster/member/remove", new { ID = id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, ct);
    }

    /// <summary>The members as (ID, peer URLs, is learner).</summary>
    public async Task<List<(ulong Id, string[] PeerUrls, bool IsLearner)>> MemberListAsync(CancellationToken ct = default)
    {
        using var doc = await PostAsync("/v3/cluster/member/list", new { }, ct);
        return doc.RootElement.GetProperty("members").EnumerateArray()
            .Select(m => (
                UInt64(m, "ID"),
                m.TryGetProperty("peerURLs", out var p) ? p.EnumerateArray().Select(u => u.GetString()!).ToArray() : [],
                m.TryGetProperty("isLearner", out var l) && l.GetBoolean()))
            .ToList();
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();

    private async Task<JsonDocument> PostAsync(string path, object body, CancellationToken ct)
    {
        using var content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _http.PostAsync(path, content, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{path}: HTTP {(int)response.StatusCode}: {text}", null, response.StatusCode);
        }

        return JsonDocument.Parse(text);
    }

    private static HistoryEvent ToEvent(JsonElement kv) => new(
        Encoding.UTF8.GetString(kv.GetProperty("key").GetBytesFromBase64()),
        kv.TryGetProperty("value", out var v) ? Encoding.UTF8.GetString(v.GetBytesFromBase64()) : "",
        Int64(kv, "mod_revision"),
        Int64(kv, "create_revision"),
        Int64(kv, "version"));

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private static long Int64(JsonElement e, string name)
        => e.TryGetProperty(name, out var p) ? (p.ValueKind == JsonValueKind.String ? long.Parse(p.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : p.GetInt64()) : 0;

    private static ulong UInt64(JsonElement e, string name)
        => e.TryGetProperty(name, out var p) ? (p.ValueKind == JsonValueKind.String ? ulong.Parse(p.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : p.GetUInt64()) : 0;
}
