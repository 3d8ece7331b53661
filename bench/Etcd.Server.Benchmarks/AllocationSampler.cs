using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Etcd.Server.Benchmarks;

/// <summary>
/// Samples what the process allocates by type from the runtime's GC allocation-tick events (one event about every
/// 100 KB allocated, naming the type whose allocation crossed the mark), so the types that make up the bytes per put
/// can be listed. Statistical: a type's share of ticks estimates its share of the bytes. Thread-safe.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private volatile bool _on;

    /// <summary>Starts counting (events before this are ignored).</summary>
    public void Start() => _on = true;

    /// <summary>Stops counting.</summary>
    public void Stop() => _on = false;

    /// <summary>The <paramref name="count"/> types with the most sampled bytes, as (type, bytes) pairs.</summary>
    public IReadOnlyList<(string Type, long Bytes)> Top(int count) =>
        _bytes.OrderByDescending(kv => kv.Value).Take(count).Select(kv => (kv.Key, kv.Value)).ToList();

    /// <inheritdoc/>
    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    /// <inheritdoc/>
    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_on || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null || e.Payload is null)
        {
            return;
        }

        var type = e.PayloadNames.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }
}
