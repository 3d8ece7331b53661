using System.Collections.Concurrent;
using System.Diagnostics;

namespace Etcd.Cluster.Tests.Linearizability;

/// <summary>What a recorded operation did to its key.</summary>
public enum OpKind
{
    /// <summary>Wrote <see cref="Operation.Value"/> (values are unique per history).</summary>
    Put,

    /// <summary>Read the key linearizably; <see cref="Operation.Value"/> is what was read, null when absent.</summary>
    Get,
}

/// <summary>
/// One client operation on one key, as the client saw it: invoked at <see cref="Call"/> and answered at
/// <see cref="Return"/> (both <see cref="Stopwatch.GetTimestamp"/> ticks, one clock for the whole history). An
/// operation whose outcome is unknown (timeout, connection lost, any error after the request may have been sent)
/// has <see cref="Unknown"/> set and <see cref="Return"/> = <see cref="long.MaxValue"/>: it may take effect at any
/// point after its call, or never. Immutable.
/// </summary>
public sealed record Operation(int ClientId, string Key, OpKind Kind, string? Value, long Call, long Return, bool Unknown = false)
{
    /// <summary>An acknowledged put.</summary>
    public static Operation Put(int client, string key, string value, long call, long ret) => new(client, key, OpKind.Put, value, call, ret);

    /// <summary>An acknowledged read that saw <paramref name="value"/> (null: key absent).</summary>
    public static Operation Get(int client, string key, string? value, long call, long ret) => new(client, key, OpKind.Get, value, call, ret);

    /// <summary>A put whose outcome is unknown (it may or may not have taken effect).</summary>
    public static Operation UnknownPut(int client, string key, string value, long call) => new(client, key, OpKind.Put, value, call, long.MaxValue, true);

    /// <inheritdoc/>
    public override string ToString() =>
        $"c{ClientId} {Kind} {Key}{(Kind == OpKind.Put ? "=" : " -> ")}{Value ?? "<absent>"} [{Call}, {(Unknown ? "?" : Return.ToString())}]";
}

/// <summary>
/// Collects operations from concurrent clients (thread-safe), stamping times from one monotonic clock
/// (<see cref="Stopwatch.GetTimestamp"/>). Reads whose outcome is unknown are not recorded (they constrain nothing).
/// </summary>
public sealed class HistoryRecorder
{
    private readonly ConcurrentQueue<Operation> _ops = new();

    /// <summary>The current time in the history's clock (Stopwatch ticks).</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Records one finished (or given-up) operation.</summary>
    public void Add(Operation op) => _ops.Enqueue(op);

    /// <summary>A snapshot of everything recorded so far.</summary>
    public IReadOnlyList<Operation> Operations => _ops.ToArray();

    /// <summary>Number of operations recorded so far.</summary>
    public int Count => _ops.Count;
}
