using System.Text;
using System.Text.Json;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using V3Electionpb;

namespace Etcd.Server.Http;

/// <summary>
/// The streaming gateway routes of the Lease and Election services, as etcd's grpc-gateway serves them:
/// <c>/v3/lease/keepalive</c> (the body is a sequence of JSON <c>LeaseKeepAliveRequest</c> objects) and
/// <c>/v3/election/observe</c> (one <c>LeaderRequest</c>) and <c>/v3/maintenance/snapshot</c> (root only under auth). Each response is written as one line
/// <c>{"result":{…}}</c> and flushed; an error ends the stream with <c>{"error":{"grpc_code":N,"http_code":N,"message":"…","http_status":"…"}}</c>.
/// The request body is read completely before the first response (enough for curl and the e2e tests).
/// </summary>
public static class JsonGatewayLease
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default);

    /// <summary>
    /// Serves <paramref name="method"/> when it is one of the streaming methods above and registered; false
    /// (nothing written) otherwise.
    /// </summary>
    public static async Task<bool> TryHandleStreamingAsync(Grpc.GrpcServiceTable registry, HttpContext http, IMethod method)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(method);
        if (method.FullName == EtcdMethods.LeaseService.LeaseKeepAlive.FullName
            && registry.Find(method.FullName)?.Handler is global::Grpc.Core.DuplexStreamingServerMethod<LeaseKeepAliveRequest, LeaseKeepAliveResponse> keepAlive)
        {
            var requests = await ReadRequestsAsync(http, LeaseKeepAliveRequest.Parser).ConfigureAwait(false);
            if (requests is not null)
            {
                await RunAsync<LeaseKeepAliveResponse>(http, w => keepAlive(new ListReader<LeaseKeepAliveRequest>(requests), w, new GatewayCallContext(http, method.FullName))).ConfigureAwait(false);
            }

            return true;
        }

        if (method.FullName == EtcdMethods.ElectionService.Observe.FullName
            && registry.Find(method.FullName)?.Handler is global::Grpc.Core.ServerStreamingServerMethod<LeaderRequest, LeaderResponse> observe)
        {
            var requests = await ReadRequestsAsync(http, LeaderRequest.Parser).ConfigureAwait(false);
            if (requests is not null)
            {
                var req = requests.Count > 0 ? requests[0] : new LeaderRequest();
                await RunAsync<LeaderResponse>(http, w => observe(req, w, new GatewayCallContext(http, method.FullName))).ConfigureAwait(false);
            }

            return true;
        }

        if (method.FullName == EtcdMethods.MaintenanceService.Snapshot.FullName
            && registry.Find(method.FullName)?.Handler is global::Grpc.Core.ServerStreamingServerMethod<SnapshotRequest, SnapshotResponse> snapshot)
        {
            var requests = await ReadRequestsAsync(http, SnapshotRequest.Parser).ConfigureAwait(false);
            if (requests is not null)
            {
                await RunAsync<SnapshotResponse>(http, w => snapshot(new SnapshotRequest(), w, new GatewayCallContext(http, method.FullName))).ConfigureAwait(false);
            }

            return true;
        }

        return false;
    }

    /// <summary>
    /// Quotes integer literals of more than 15 digits outside strings (<c>{"ID":4044265583582467976}</c> →
    /// <c>{"ID":"4044265583582467976"}</c>): Go clients write int64 fields as JSON numbers, which
    /// Google.Protobuf's parser reads through a double and would round. Proto3 JSON accepts quoted integers.
    /// </summary>
    public static string QuoteLargeIntegers(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        StringBuilder? sb = null;
        var inString = false;
        var escaped = false;
        var copied = 0;
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (c == '"')
            {
                inString = true;
                continue;
            }

            if (c != '-' && !char.IsAsciiDigit(c))
            {
                continue;
            }

            var start = i;
            var end = i + 1;
            while (end < json.Length && (char.IsAsciiDigit(json[end]) || json[end] is '.' or 'e' or 'E' or '+' or '-'))
            {
                end++;
            }

            var token = json.AsSpan(start, end - start);
            var digits = token[0] == '-' ? token.Length - 1 : token.Length;
            if (digits > 15 && !token.ContainsAny('.', 'e', 'E'))
            {
                sb ??= new StringBuilder(json.Length + 16);
                sb.Append(json, copied, start - copied).Append('"').Append(token).Append('"');
                copied = end;
            }

            i = end - 1;
        }

        return sb is null ? json : sb.Append(json, copied, json.Length - copied).ToString();
    }

    private static async Task RunAsync<TResponse>(HttpContext http, Func<global::Grpc.Core.IServerStreamWriter<TResponse>, Task> run)
        where TResponse : IMessage
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/json";
        var writer = new LineWriter<TResponse>(http);
        try
        {
            await run(writer).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            var status = JsonGateway.HttpStatusFromCode(e.Status);
            if (!http.Response.HasStarted)
            {
                // grpc-gateway answers an error before the first message with the error's HTTP status.
                http.Response.StatusCode = (int)status;
            }

            var body = $"{{\"error\":{{\"grpc_code\":{(int)e.Status},\"http_code\":{(int)status},\"message\":{GoString(e.Detail)},\"http_status\":{GoString(ReasonPhrase(status))}}}}}\n";
            await http.Response.WriteAsync(body, CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string GoString(string s) => JsonGateway.GoJson(JsonSerializer.Serialize(s, Relaxed));

    private static string ReasonPhrase(System.Net.HttpStatusCode status)
        => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase((int)status);

    /// <summary>Reads the body as concatenated JSON objects; on malformed input writes the 400 error and returns null.</summary>
    private static async Task<List<T>?> ReadRequestsAsync<T>(HttpContext http, MessageParser<T> parser)
        where T : IMessage<T>, new()
    {
        using var ms = new MemoryStream();
        await http.Request.Body.CopyToAsync(ms, http.RequestAborted).ConfigureAwait(false);
        var list = new List<T>();
        try
        {
            var bytes = Encoding.UTF8.GetBytes(QuoteLargeIntegers(Encoding.UTF8.GetString(ms.ToArray())));
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { AllowMultipleValues = true });
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    throw new FormatException("expected a JSON object");
                }

                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                var end = (int)reader.BytesConsumed;
                list.Add(Parser.Parse<T>(Encoding.UTF8.GetString(bytes, start, end - start)));
            }
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException or JsonException)
        {
            http.Response.StatusCode = 400;
            http.Response.ContentType = "application/json";
            var body = JsonSerializer.Serialize(new Dictionary<string, object> { ["error"] = e.Message, ["message"] = e.Message, ["code"] = (int)StatusCode.InvalidArgument });
            await http.Response.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
            return null;
        }

        return list;
    }

    private sealed class ListReader<T>(List<T> items) : global::Grpc.Core.IAsyncStreamReader<T>
    {
        private int _next;

        public T Current { get; private set; } = default!;

        public Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_next >= items.Count)
            {
                return Task.FromResult(false);
            }

            Current = items[_next++];
            return Task.FromResult(true);
        }
    }

    private sealed class LineWriter<T>(HttpContext http) : global::Grpc.Core.IServerStreamWriter<T>
        where T : IMessage
    {
        public global::Grpc.Core.WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(T message) => WriteAsync(message, CancellationToken.None);

        public async Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            var line = "{\"result\":" + JsonGateway.Compact(Formatter.Format(message)) + "}\n";
            await http.Response.WriteAsync(line, cancellationToken).ConfigureAwait(false);
            await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
