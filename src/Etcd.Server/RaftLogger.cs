using System.Text.RegularExpressions;
using Etcd.Raft;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>
/// Routes the raft core's log lines to the member's logger (category <c>raft</c>). Under zap each line carries the
/// caller etcd 3.4's raft prints it from (<c>raft/raft.go:706</c> for "became follower at term"), found by the
/// message's shape; lines raft does not print from a known place get <c>raft/raft.go</c>. Thread-safe.
/// </summary>
internal sealed partial class RaftLogger(ILogger log) : IRaftLogger
{
    // etcd 3.4.23's raft.go and node.go lines of its raft log messages, by message shape.
    private static readonly (Regex Shape, string Caller)[] Callers =
    [
        (NewRaft(), "raft/raft.go:389"),
        (Shape(" became follower at term "), "raft/raft.go:706"),
        (Shape(" became candidate at term "), "raft/raft.go:719"),
        (Shape(" became pre-candidate at term "), "raft/raft.go:735"),
        (Shape(" became leader at term "), "raft/raft.go:771"),
        (SentVote(), "raft/raft.go:817"),
        (ReceivedVoteRejection(), "raft/raft.go:832"),
        (ReceivedVote(), "raft/raft.go:830"),
        (Shape("] received a "), "raft/raft.go:865"),
        (Shape(" is starting a new election at term "), "raft/raft.go:929"),
        (CastVote(), "raft/raft.go:966"),
        (Shape(" stepped down to follower since quorum is not active"), "raft/raft.go:1017"),
        (Shape("] starts to transfer leadership to "), "raft/raft.go:1254"),
        (Shape(" has received "), "raft/raft.go:1295"),
        (Shape(" received MsgTimeoutNow from "), "raft/raft.go:1348"),
        (Shape("] restored snapshot [index: "), "raft/raft.go:1479"),
        (Shape(" switched to configuration "), "raft/raft.go:1523"),
        (Shape("raft.node: ", " elected leader "), "raft/node.go:327"),
        (Shape("raft.node: ", " changed leader from "), "raft/node.go:329"),
        (Shape("raft.node: ", " lost leader "), "raft/node.go:333"),
    ];

    public void Debug(string message) => Log(LogLevel.Debug, message);

    public void Info(string message) => Log(LogLevel.Information, message);

    public void Warning(string message) => Log(LogLevel.Warning, message);

    public void Error(string message) => Log(LogLevel.Error, message);

    /// <summary>The caller etcd prints <paramref name="message"/> from.</summary>
    internal static string CallerOf(string message) => Callers.FirstOrDefault(c => c.Shape.IsMatch(message)).Caller ?? "raft/raft.go";

    private void Log(LogLevel level, string message)
    {
        if (log.IsEnabled(level))
        {
            log.Log(level, default, new EtcdLogEntry(message, null, CallerOf(message)), null, EtcdLogEntry.Formatter);
        }
    }

    private static Regex Shape(params string[] parts) => new(string.Join(".*", parts.Select(Regex.Escape)), RegexOptions.CultureInvariant);

    [GeneratedRegex(@"^newRaft [0-9a-f]+ \[peers: ")]
    private static partial Regex NewRaft();

    [GeneratedRegex(@"^[0-9a-f]+ \[logterm: \d+, index: \d+\] sent Msg(Pre)?Vote request to ")]
    private static partial Regex SentVote();

    [GeneratedRegex(@"^[0-9a-f]+ received Msg(Pre)?VoteResp rejection from ")]
    private static partial Regex ReceivedVoteRejection();

    [GeneratedRegex(@"^[0-9a-f]+ received Msg(Pre)?VoteResp from ")]
    private static partial Regex ReceivedVote();

    [GeneratedRegex(@"^[0-9a-f]+ \[logterm: \d+, index: \d+, vote: [0-9a-f]+\] cast Msg(Pre)?Vote for ")]
    private static partial Regex CastVote();
}
