using Etcd.Api.Grpc;
using Etcd.Server.Logging;
using Etcdserverpb;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Http;

/// <summary>
/// <c>GET /health</c> on the client URLs and on <c>--listen-metrics-urls</c>, as etcd 3.4.23's
/// <c>etcdserver/api/etcdhttp/metrics.go</c> (<c>NewHealthHandler</c>, <c>checkHealth</c>):
/// <list type="bullet">
/// <item>unhealthy while an alarm is raised whose type name (<c>NOSPACE</c>, <c>CORRUPT</c>, case-sensitive) is not
/// listed in an <c>exclude</c> query parameter (repeatable: <c>?exclude=NOSPACE&amp;exclude=CORRUPT</c>);</item>
/// <item>unhealthy without a leader;</item>
/// <item>unhealthy when a quorum read (etcd's v2 <c>QGET</c>; here a read index confirmed by the leader) does not
/// succeed within 1 s.</item>
/// </list>
/// Healthy: 200 with <c>{"health":"true"}</c>; unhealthy: 503 with <c>{"health":"false"}</c> and a newline (Go's
/// <c>http.Error</c>); both <c>text/plain; charset=utf-8</c>. Any method but GET: 405 <c>Method Not Allowed</c> with
/// <c>Allow: GET</c>. The <c>serializable</c> query parameter (etcd 3.5's, sent by the kubelet's probes) is not read
/// by etcd 3.4.23, so a member without a leader is unhealthy whatever it says, as there.
/// Thread-safe.
/// </summary>
public sealed class HealthHandler
{
    /// <summary>The bound on the quorum read (etcd's one second).</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(1);

    private const string PlainText = "text/plain; charset=utf-8";

    private readonly EtcdServer _server;
    private readonly ILogger _log;

    /// <summary>Creates the handler of <paramref name="server"/>; warnings go to the category <c>etcdserver/api/etcdhttp/metrics.go</c>.</summary>
    public HealthHandler(EtcdServer server, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        _server = server;
        _log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("etcdserver/api/etcdhttp/metrics.go");
    }

    /// <summary>Serves one <c>/health</c> request.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (!HttpMethods.IsGet(http.Request.Method))
        {
            http.Response.Headers.Allow = "GET";
            await WriteErrorAsync(http, StatusCodes.Status405MethodNotAllowed, "Method Not Allowed").ConfigureAwait(false);
            _log.LogFields(LogLevel.Warning, $"/health error (status code {StatusCodes.Status405MethodNotAllowed})");
            return;
        }

        var excluded = http.Request.Query["exclude"].Where(v => v is not null).ToHashSet(StringComparer.Ordinal);
        if (await CheckAsync(excluded!, http.RequestAborted).ConfigureAwait(false))
        {
            _server.Metrics.Server.HealthSuccesses.Inc();
            await WriteAsync(http, StatusCodes.Status200OK, "{\"health\":\"true\"}").ConfigureAwait(false);
        }
        else
        {
            _server.Metrics.Server.HealthFailures.Inc();
            await WriteErrorAsync(http, StatusCodes.Status503ServiceUnavailable, "{\"health\":\"false\"}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// etcd's <c>checkHealth</c>: true when no alarm outside <paramref name="excludedAlarms"/> is raised, there is a
    /// leader and a linearizable read succeeds within <see cref="ReadTimeout"/>.
    /// </summary>
    /// <param name="excludedAlarms">Alarm type names as etcd spells them (<c>NOSPACE</c>, <c>CORRUPT</c>).</param>
    /// <param name="cancellationToken">The caller giving up (the HTTP request aborted).</param>
    public async Task<bool> CheckAsync(IReadOnlySet<string> excludedAlarms, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(excludedAlarms);
        foreach (var alarm in _server.Alarms.Get(AlarmType.None))
        {
            var name = AlarmName(alarm.Alarm);
            if (excludedAlarms.Contains(name))
            {
                continue;
            }

            _log.LogFields(LogLevel.Warning, $"/health error due to memberID:{alarm.MemberID} alarm:{name} ");
            return false;
        }

        if (_server.Leader == 0)
        {
            _log.LogFields(LogLevel.Warning, $"/health error; no leader (status code {StatusCodes.Status503ServiceUnavailable})");
            return false;
        }

        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(ReadTimeout);
            // A quorum read confirmed by the leader; a learner's goes through the leader too (etcd's QGET is
            // proposed through raft, which learners forward), so a learner in sync is healthy.
            await _server.LinearizableReadNotifyAsync(cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException)
        {
            _log.LogFields(LogLevel.Warning, $"/health error; QGET failed {e.Message} (status code {StatusCodes.Status503ServiceUnavailable})");
            return false;
        }
    }

    /// <summary>An alarm type's name as etcd's <c>AlarmType.String()</c> gives it.</summary>
    public static string AlarmName(AlarmType type) => type switch
    {
        AlarmType.None => "NONE",
        AlarmType.Nospace => "NOSPACE",
        AlarmType.Corrupt => "CORRUPT",
        _ => ((int)type).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    // Go's http.Error: plain text, nosniff, the message and a newline.
    private static Task WriteErrorAsync(HttpContext http, int status, string message)
    {
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return WriteAsync(http, status, message + "\n");
    }

    // A short body with its length (Go's server sets Content-Length on small responses; no chunking).
    private static async Task WriteAsync(HttpContext http, int status, string body)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(body);
        http.Response.StatusCode = status;
        http.Response.ContentType = PlainText;
        http.Response.ContentLength = bytes.Length;
        await http.Response.Body.WriteAsync(bytes, http.RequestAborted).ConfigureAwait(false);
    }
}
