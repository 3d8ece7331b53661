using System.Runtime.InteropServices;

namespace Etcd.Ctl.Cli;

/// <summary>
/// A standard descriptor (0, 1 or 2) read and written with read(2)/write(2) at the descriptor's own offset, as Go's
/// os.Stdin/Stdout/Stderr are: appended output is not overwritten, a terminal is not initialised (System.Console
/// writes terminfo's keypad-transmit sequence to a terminal), and nothing is buffered. Not seekable.
/// </summary>
public sealed partial class FdStream : Stream
{
    private const int EINTR = 4;
    private readonly int _fd;
    private readonly bool _read;

    /// <summary>Wraps descriptor <paramref name="fd"/> for reading (<paramref name="read"/>) or writing.</summary>
    public FdStream(int fd, bool read)
    {
        _fd = fd;
        _read = read;
    }

    /// <inheritdoc/>
    public override bool CanRead => _read;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override bool CanWrite => !_read;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override unsafe int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = SysRead(_fd, p, buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }

                if (Marshal.GetLastPInvokeError() != EINTR)
                {
                    return 0;
                }
            }
        }
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var done = 0;
            while (done < buffer.Length)
            {
                var n = SysWrite(_fd, p + done, buffer.Length - done);
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EINTR)
                    {
                        continue;
                    }

                    // a closed pipe or full disk: drop the output, as etcdctl's unchecked prints do
                    return;
                }

                done += (int)n;
            }
        }
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint SysRead(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint SysWrite(int fd, byte* buf, nint count);
}
