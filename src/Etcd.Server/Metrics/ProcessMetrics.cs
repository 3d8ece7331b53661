using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// The process figures Go's process collector exposes that prometheus-net's <see cref="DotNetStats"/> does not
/// (<c>process_open_fds</c>, <c>process_max_fds</c>, <c>process_resident_memory_bytes</c>,
/// <c>process_virtual_memory_max_bytes</c>; DotNetStats supplies <c>process_cpu_seconds_total</c>,
/// <c>process_start_time_seconds</c>, <c>process_virtual_memory_bytes</c> under the same names and HELP), and etcd's
/// <c>os_fd_used</c> / <c>os_fd_limit</c>. Read from <c>/proc/self</c> at each collection (Linux; elsewhere the
/// gauges stay 0). Thread-safe.
/// </summary>
public sealed class ProcessMetrics
{
    private readonly Gauge _openFds;
    private readonly Gauge _maxFds;
    private readonly Gauge _resident;
    private readonly Gauge _virtualMax;
    private readonly Gauge _osFdUsed;
    private readonly Gauge _osFdLimit;

    internal ProcessMetrics(IMetricFactory f)
    {
        _openFds = f.CreateGauge("process_open_fds", "Number of open file descriptors.");
        _maxFds = f.CreateGauge("process_max_fds", "Maximum number of open file descriptors.");
        _resident = f.CreateGauge("process_resident_memory_bytes", "Resident memory size in bytes.");
        _virtualMax = f.CreateGauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.");
        _osFdUsed = f.CreateGauge("os_fd_used", "The number of used file descriptors.");
        _osFdLimit = f.CreateGauge("os_fd_limit", "The file descriptor limit.");
    }

    internal void Refresh()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            var open = Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
            _openFds.Set(open);
            _osFdUsed.Set(open);
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    var soft = SoftLimit(line, "Max open files".Length);
                    _maxFds.Set(soft);
                    _osFdLimit.Set(soft);
                }
                else if (line.StartsWith("Max address space", StringComparison.Ordinal))
                {
                    _virtualMax.Set(SoftLimit(line, "Max address space".Length));
                }
            }

            _resident.Set(Environment.WorkingSet);
        }
        catch (IOException)
        {
            // /proc went away under us (process exiting): keep the last figures.
        }
    }

    /// <summary>The soft limit column of a <c>/proc/self/limits</c> line; "unlimited" is Go's 2^64-1.</summary>
    private static double SoftLimit(string line, int nameLength)
    {
        var fields = line[nameLength..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length == 0 || fields[0] == "unlimited")
        {
            return ulong.MaxValue;
        }

        return double.TryParse(fields[0], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;
    }
}
