using System.Text;

namespace Etcd.Ctl.Cli;

/// <summary>
/// The process's standard streams as bytes (Go writes strings as raw bytes, so keys and values that are not UTF-8 come
/// out unchanged). Writes are serialised by a lock so a watch's printer and its exec'd commands do not interleave
/// mid-line; each write is flushed.
/// </summary>
public sealed class CtlConsole
{
    private readonly object _gate = new();

    /// <summary>Creates a console over the given streams.</summary>
    public CtlConsole(Stream stdout, Stream stderr, Stream stdin)
    {
        StdoutStream = stdout;
        StderrStream = stderr;
        Stdin = stdin;
    }

    /// <summary>Standard output.</summary>
    public Stream StdoutStream { get; }

    /// <summary>Standard error.</summary>
    public Stream StderrStream { get; }

    /// <summary>Standard input.</summary>
    public Stream Stdin { get; }

    /// <summary>Writes UTF-8 text to stdout.</summary>
    public void Out(string text) => Write(StdoutStream, Encoding.UTF8.GetBytes(text));

    /// <summary>Writes raw bytes to stdout.</summary>
    public void Out(ReadOnlySpan<byte> bytes) => Write(StdoutStream, bytes);

    /// <summary>Writes UTF-8 text to stderr.</summary>
    public void Err(string text) => Write(StderrStream, Encoding.UTF8.GetBytes(text));

    private void Write(Stream s, ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            s.Write(bytes);
            s.Flush();
        }
    }
}
