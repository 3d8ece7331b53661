using System.Diagnostics;
using Etcd.Server.Logging;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// etcd's slow-request warnings (<c>warnOfExpensiveRequest</c> and its read-only variants in
/// <c>etcdserver/util.go</c>): an applied request, a Range or a read-only Txn that took longer than
/// <see cref="EtcdOptions.ExperimentalWarningApplyDuration"/> logs "apply request took too long" with etcd's
/// fields (took, expected-duration, prefix, request, response, error) or its capnslog line. Called on the apply
/// thread and on request threads; the logger is thread-safe.
/// </summary>
public sealed partial class EtcdServer
{
    private ILogger? _slowLog;

    private ILogger SlowLog => _slowLog ??= _loggerFactory.CreateLogger("etcdserver/util.go");

    /// <summary>A timestamp for the slow-request warnings (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    private static long SlowStart() => Stopwatch.GetTimestamp();

    /// <summary>etcd's applierV3 warning for an applied request: the redacted request, <c>size:N</c> of the response.</summary>
    private void WarnIfSlowApply(long start, InternalRaftRequest request, object? result)
    {
        var took = Stopwatch.GetElapsedTime(start);
        if (took <= _options.ExperimentalWarningApplyDuration)
        {
            return;
        }

        if (request.V2 is { } v2)
        {
            WarnSlow(took, "", RequestText.Compact(v2), "", null);
            return;
        }

        var response = result is IMessage m ? $"size:{m.CalculateSize()}" : "";
        WarnSlow(took, "", RequestText.InternalRaft(request), response, result as Exception);
    }

    /// <summary>etcd's read-only range warning for a Range served locally.</summary>
    private void WarnIfSlowRange(long start, RangeRequest request, RangeResponse? response, Exception? error)
    {
        var took = Stopwatch.GetElapsedTime(start);
        if (took <= _options.ExperimentalWarningApplyDuration)
        {
            return;
        }

        var resp = response is null ? "" : $"range_response_count:{response.Kvs.Count} size:{response.CalculateSize()}";
        WarnSlow(took, "read-only range ", RequestText.Compact(request), resp, error);
    }

    /// <summary>etcd's read-only txn warning for a Txn served locally.</summary>
    private void WarnIfSlowReadOnlyTxn(long start, TxnRequest request, TxnResponse? response, Exception? error)
    {
        var took = Stopwatch.GetElapsedTime(start);
        if (took <= _options.ExperimentalWarningApplyDuration)
        {
            return;
        }

        var resp = "";
        if (response is not null)
        {
            var counts = response.Responses
                .Where(r => r.ResponseCase == ResponseOp.ResponseOneofCase.ResponseRange)
                .Select(r => $"range_response_count:{r.ResponseRange.Kvs.Count}");
            resp = $"responses:<{string.Join(' ', counts)}> size:{response.CalculateSize()}";
        }

        WarnSlow(took, "read-only range ", RequestText.Txn(request), resp, error);
    }

    private void WarnSlow(TimeSpan took, string prefix, string request, string response, Exception? error)
    {
        var result = error is not null ? "error:" + error.Message : response;
        var capnslog = $"{prefix}request \"{Escape(request)}\" with result \"{Escape(result)}\" took too long ({GoDuration.Format(took)}) to execute";
        var fields = new List<(string, object?)>
        {
            ("took", took),
            ("expected-duration", _options.ExperimentalWarningApplyDuration),
            ("prefix", prefix),
            ("request", request),
            ("response", response),
        };
        if (error is not null)
        {
            fields.Add(("error", error.Message));
        }

        SlowLog.LogEtcd(LogLevel.Warning, "etcdserver/util.go:167", "apply request took too long", capnslog, fields.ToArray());
    }

    // Go's %q of a string of printable text: quotes and backslashes escaped.
    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
