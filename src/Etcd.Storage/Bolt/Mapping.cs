using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;

namespace Etcd.Storage.Bolt;

/// <summary>
/// One read-only memory mapping of the database file, reference counted: the db holds one
/// reference while the mapping is current, every transaction holds one while open. A remap makes a
/// new mapping and drops the db's reference to the old one, which is unmapped only when the last
/// transaction using it closes, so pages a reader holds stay valid across growth (the effect bbolt
/// gets from its mmap read lock, without making the writer wait for readers).
/// </summary>
internal sealed unsafe class Mapping
{
    private readonly MemoryMappedFile _mmf;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _ptr;
    private int _refs = 1;

    private Mapping(MemoryMappedFile mmf, MemoryMappedViewAccessor view, long length)
    {
        _mmf = mmf;
        _view = view;
        Length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _ptr = p + view.PointerOffset;
    }

    /// <summary>Mapped bytes (the file length at mapping time).</summary>
    public long Length { get; }

    public static Mapping Create(FileStream file)
    {
        long length = file.Length;
        var mmf = MemoryMappedFile.CreateFromFile(file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        try
        {
            var view = mmf.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            return new Mapping(mmf, view, length);
        }
        catch
        {
            mmf.Dispose();
            throw;
        }
    }

    public void Acquire()
    {
        if (Interlocked.Increment(ref _refs) <= 1)
        {
            throw new InvalidOperationException("mapping already released");
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _mmf.Dispose();
        }
    }

    /// <summary>Page <paramref name="id"/> and its overflow pages.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Page(ulong id, int pageSize)
    {
        long off = (long)id * pageSize;
        if (off + BoltPage.HeaderSize > Length)
        {
            ThrowOutOfRange(id);
        }

        uint overflow = *(uint*)(_ptr + off + 12);
        long len = Math.Min(((long)overflow + 1) * pageSize, Length - off);
        return new ReadOnlySpan<byte>(_ptr + off, (int)len);
    }

    /// <summary>Raw bytes [<paramref name="offset"/>, +<paramref name="length"/>).</summary>
    public ReadOnlySpan<byte> Range(long offset, int length)
    {
        if (offset < 0 || offset + length > Length)
        {
            throw new BoltException($"mapping read out of range: {offset}+{length} > {Length}");
        }

        return new ReadOnlySpan<byte>(_ptr + offset, length);
    }

    private static void ThrowOutOfRange(ulong id) => throw new BoltException($"page {id} beyond the mapped file");
}
