using Etcd.Raft;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server;

/// <summary>Routes the raft core's log lines to the member's logger (category <c>raft</c>).</summary>
internal sealed class RaftLogger(ILogger log) : IRaftLogger
{
    public void Debug(string message) => log.LogFields(LogLevel.Debug, message);

    public void Info(string message) => log.LogFields(LogLevel.Information, message);

    public void Warning(string message) => log.LogFields(LogLevel.Warning, message);

    public void Error(string message) => log.LogFields(LogLevel.Error, message);
}
