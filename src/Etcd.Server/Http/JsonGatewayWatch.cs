using System.Buffers;
using System.Text;
using System.Text.Json;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Metadata = Etcd.Api.Grpc.Metadata;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Http;

/// <summary>
/// The gateway's streaming path for <c>POST /v3/watch</c>, as etcd's grpc-gateway serves it: the request body is a
/// sequence of JSON <c>WatchRequest</c> objects (<c>{"create_request":{...}}</c>), the response a stream of
/// newline-terminated <c>{"result":{...WatchResponse...}}</c> objects flushed one by one, running until the client
/// disconnects (the end of the request body does not end the response, as in etcd).
/// </summary>
internal static class JsonGatewayWatch
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default);

    /// <summary>Serves one gateway watch with the registered duplex handler <paramref name="served"/>.</summary>
    public static async Task HandleAsync(HttpContext http, Grpc.GrpcServiceMethod served)
    {
        var handler = (global::Grpc.Core.DuplexStreamingServerMethod<WatchRequest, WatchResponse>)served.Handler;
        var writer = new ResultWriter(http);
        try
        {
            await handler(new BodyReader(http), writer, new GatewayCallContext(http, served.Method.FullName)).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            await writer.WriteErrorAsync(e.Status, e.Detail).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
        catch (IOException) when (http.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private sealed class ResultWriter(HttpContext http) : global::Grpc.Core.IServerStreamWriter<WatchResponse>
    {
        private bool _started;

        public global::Grpc.Core.WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(WatchResponse message) => WriteAsync(message, CancellationToken.None);

        public async Task WriteAsync(WatchResponse message, CancellationToken cancellationToken)
        {
            if (!_started)
            {
                _started = true;
                http.Response.StatusCode = 200;
                http.Response.ContentType = "application/json";
            }

            var json = "{\"result\":" + JsonGateway.Compact(Formatter.Format(message)) + "}\n";
            await http.Response.WriteAsync(json, cancellationToken).ConfigureAwait(false);
            await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// Before any result: an HTTP error with grpc-gateway's body <c>{"error":m,"message":m,"code":c}</c> (what etcd
        /// answers for an unreadable first request: "unexpected EOF", code 2, HTTP 500). Mid-stream: a final
        /// <c>{"error":{"grpc_code":…}}</c> chunk.
        /// </summary>
        public async Task WriteErrorAsync(StatusCode code, string message)
        {
            var status = JsonGateway.HttpStatusFromCode(code);
            string body;
            if (!_started)
            {
                _started = true;
                http.Response.StatusCode = (int)status;
                http.Response.ContentType = "application/json";
                body = "{\"error\":" + JsonSerializer.Serialize(message) + ",\"message\":" + JsonSerializer.Serialize(message) + ",\"code\":" + (int)code + "}";
            }
            else
            {
                body = "{\"error\":{\"grpc_code\":" + (int)code + ",\"http_code\":" + (int)status + ",\"message\":"
                    + JsonSerializer.Serialize(message) + ",\"http_status\":" + JsonSerializer.Serialize(ReasonPhrase(status)) + "}}\n";
            }

            try
            {
                await http.Response.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException)
            {
            }
        }

        private static string ReasonPhrase(System.Net.HttpStatusCode s) =>
            Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase((int)s);
    }

    /// <summary>
    /// Reads consecutive JSON objects from the request body as they arrive. As grpc-gateway does, a body that cannot
    /// be decoded fails the call when it is the first request (code Unknown; "unexpected EOF" for a truncated one) and
    /// otherwise just ends the request stream (the watchers keep running).
    /// </summary>
    private sealed class BodyReader(HttpContext http) : global::Grpc.Core.IAsyncStreamReader<WatchRequest>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();
        private bool _eof;
        private bool _failed;
        private int _count;

        public WatchRequest Current { get; private set; } = null!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            while (!_failed)
            {
                var (found, skip, length, error) = FindValue(_buffer.WrittenSpan);
                if (error is null && found)
                {
                    var text = Encoding.UTF8.GetString(_buffer.WrittenSpan.Slice(skip, length));
                    Consume(skip + length);
                    try
                    {
                        Current = Parser.Parse<WatchRequest>(text);
                        _count++;
                        return true;
                    }
                    catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
                    {
                        error = e.Message;
                    }
                }

                if (error is null && _eof && _buffer.WrittenSpan.Trim(" \t\r\n"u8).Length > 0)
                {
                    error = "unexpected EOF";
                }

                if (error is not null)
                {
                    _failed = true;
                    if (_count == 0)
                    {
                        throw new RpcException(StatusCode.Unknown, error);
                    }

                    return false;
                }

                if (_eof)
                {
                    return false;
                }

                var mem = _buffer.GetMemory(4096);
                var n = await http.Request.Body.ReadAsync(mem, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    _eof = true;
                }
                else
                {
                    _buffer.Advance(n);
                }
            }

            return false;
        }

        private void Consume(int n)
        {
            var rest = _buffer.WrittenSpan[n..].ToArray();
            _buffer.ResetWrittenCount();
            _buffer.Write(rest);
        }

        /// <summary>Finds the first complete JSON value: (found, leading bytes to skip, its length, syntax error).</summary>
        private static (bool Found, int Skip, int Length, string? Error) FindValue(ReadOnlySpan<byte> data)
        {
            var reader = new Utf8JsonReader(data, isFinalBlock: false, new JsonReaderState(new JsonReaderOptions { AllowMultipleValues = true }));
            try
            {
                if (!reader.Read())
                {
                    return default;
                }

                var start = (int)reader.TokenStartIndex;
                if (!reader.TrySkip())
                {
                    return default;
                }

                return (true, start, (int)reader.BytesConsumed - start, null);
            }
            catch (JsonException e)
            {
                return (false, 0, 0, e.Message);
            }
        }
    }
}
