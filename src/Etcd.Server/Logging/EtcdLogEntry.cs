using System.Collections;

namespace Etcd.Server.Logging;

/// <summary>
/// A log state that carries etcd's zap shape explicitly: the <c>msg</c> text and the named fields, in order,
/// plus an optional caller (<c>"etcdserver/server.go:2069"</c>) that overrides the one derived from the logger's
/// category and event id. Pass it as the state of <c>ILogger.Log</c> (or use <see cref="EtcdLoggerExtensions.LogFields"/>);
/// other providers see it as a list of key/value pairs. Immutable.
/// </summary>
public sealed class EtcdLogEntry : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly KeyValuePair<string, object?>[] _fields;

    /// <summary>Creates an entry.</summary>
    /// <param name="message">zap's <c>msg</c>; capnslog prints it followed by the fields as <c>key=value</c>.</param>
    /// <param name="fields">Field names exactly as etcd writes them (<c>"local-member-id"</c>) and their values.</param>
    /// <param name="caller">Optional caller override, e.g. <c>"embed/etcd.go:117"</c>.</param>
    public EtcdLogEntry(string message, IEnumerable<KeyValuePair<string, object?>>? fields = null, string? caller = null)
    {
        Message = message;
        _fields = fields?.ToArray() ?? [];
        Caller = caller;
    }

    /// <summary>zap's <c>msg</c>; empty for an event etcd logs under capnslog only (zap then prints nothing).</summary>
    public string Message { get; }

    /// <summary>Caller override, or null to derive it from the category and event id.</summary>
    public string? Caller { get; }

    /// <summary>etcd's capnslog text for the same event, when it differs from zap's message and fields (etcd 3.4
    /// logs many events with a <c>plog.Xf</c> format of their own); null prints <see cref="ToString"/>, and the
    /// empty string marks an event etcd logs under zap only (capnslog then prints nothing).</summary>
    public string? CapnslogText { get; init; }

    /// <summary>The fields, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, object?>> Fields => _fields;

    /// <inheritdoc/>
    public int Count => _fields.Length;

    /// <inheritdoc/>
    public KeyValuePair<string, object?> this[int index] => _fields[index];

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)_fields).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The message followed by <c>key=value</c> pairs (the text other providers and capnslog print).</summary>
    public override string ToString()
    {
        if (CapnslogText is not null)
        {
            return CapnslogText;
        }
        if (_fields.Length == 0)
        {
            return Message;
        }
        return Message + " (" + string.Join(", ", _fields.Select(f => f.Key + "=" + EtcdLogLine.FormatInline(f.Value))) + ")";
    }

    /// <summary>The formatter to pass to <c>ILogger.Log</c> with this state.</summary>
    public static readonly Func<EtcdLogEntry, Exception?, string> Formatter = static (e, _) => e.ToString();
}

/// <summary>Helpers to log etcd-shaped entries through any <see cref="Microsoft.Extensions.Logging.ILogger"/>.</summary>
public static class EtcdLoggerExtensions
{
    /// <summary>
    /// Logs <paramref name="message"/> with named fields, e.g.
    /// <c>logger.LogFields(LogLevel.Information, "added member", ("cluster-id", id), ("added-peer-peer-urls", urls))</c>.
    /// </summary>
    public static void LogFields(this Microsoft.Extensions.Logging.ILogger logger, Microsoft.Extensions.Logging.LogLevel level, string message, params (string Key, object? Value)[] fields)
    {
        if (!logger.IsEnabled(level))
        {
            return;
        }
        var entry = new EtcdLogEntry(message, fields.Select(f => new KeyValuePair<string, object?>(f.Key, f.Value)));
        logger.Log(level, default, entry, null, EtcdLogEntry.Formatter);
    }

    /// <summary>
    /// Logs one etcd event in both of etcd 3.4's shapes: under zap <paramref name="message"/> with
    /// <paramref name="fields"/> and <paramref name="caller"/> (<c>"embed/serve.go:344"</c>), under capnslog
    /// <paramref name="capnslogText"/>.
    /// </summary>
    public static void LogEtcd(this Microsoft.Extensions.Logging.ILogger logger, Microsoft.Extensions.Logging.LogLevel level, string caller, string message, string capnslogText, params (string Key, object? Value)[] fields)
    {
        if (!logger.IsEnabled(level))
        {
            return;
        }
        var entry = new EtcdLogEntry(message, fields.Select(f => new KeyValuePair<string, object?>(f.Key, f.Value)), caller) { CapnslogText = capnslogText };
        logger.Log(level, default, entry, null, EtcdLogEntry.Formatter);
    }
}
