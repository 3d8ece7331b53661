using System.Globalization;
using System.Text;
using Etcd.Storage.Schema;

namespace Etcd.Utl;

/// <summary>
/// Writes log lines shaped like zap's production JSON encoder, as etcdctl/etcdutl print them on stderr:
/// <c>{"level":"info","ts":1795258449.0829246,"caller":"snapshot/v3_snapshot.go:296","msg":"...",fields...}</c>.
/// Field values are strings, string arrays or integers. Not thread-safe.
/// </summary>
public sealed class ZapLog(TextWriter output, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>Writes one info line.</summary>
    public void Info(string caller, string msg, params (string Key, object Value)[] fields)
    {
        var ts = (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond;
        var sb = new StringBuilder("{\"level\":\"info\",\"ts\":");
        sb.Append(ts.ToString("R", CultureInfo.InvariantCulture));
        sb.Append(",\"caller\":").AppendString(caller).Append(",\"msg\":").AppendString(msg);
        foreach (var (k, v) in fields)
        {
            sb.Append(',').AppendString(k).Append(':');
            switch (v)
            {
                case string s: sb.AppendString(s); break;
                case IReadOnlyList<string> l: sb.AppendStringArray(l); break;
                case long or int or ulong: sb.Append(Convert.ToString(v, CultureInfo.InvariantCulture)); break;
                default: sb.AppendString(Convert.ToString(v, CultureInfo.InvariantCulture) ?? ""); break;
            }
        }
        sb.Append('}');
        output.WriteLine(sb.ToString());
    }
}
