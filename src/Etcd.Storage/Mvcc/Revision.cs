using System.Buffers.Binary;

namespace Etcd.Storage.Mvcc;

/// <summary>
/// An MVCC revision (etcd's <c>mvcc/revision.go</c>): <see cref="Main"/> is the store revision of a
/// write transaction, <see cref="Sub"/> the index of the change within it. Ordered by main then sub.
/// In the backend's <c>key</c> bucket a revision is the 17-byte big-endian key
/// <c>main(8) '_' sub(8)</c>, followed by an 18th byte <c>'t'</c> when the entry is a tombstone.
/// </summary>
/// <param name="Main">The main revision (store revision of the write transaction).</param>
/// <param name="Sub">The change index inside that transaction, from 0.</param>
public readonly record struct Revision(long Main, long Sub) : IComparable<Revision>
{
    /// <summary>Length in bytes of an encoded revision key.</summary>
    public const int BytesLength = 17;

    /// <summary>Length in bytes of an encoded revision key carrying the tombstone mark.</summary>
    public const int MarkedBytesLength = 18;

    /// <summary>The byte appended to a revision key to mark a tombstone (<c>'t'</c>).</summary>
    public const byte TombstoneMark = (byte)'t';

    /// <inheritdoc />
    public int CompareTo(Revision other)
    {
        var c = Main.CompareTo(other.Main);
        return c != 0 ? c : Sub.CompareTo(other.Sub);
    }

    /// <summary>True when this revision orders strictly after <paramref name="other"/>.</summary>
    public bool GreaterThan(Revision other) => CompareTo(other) > 0;

    /// <summary>Orders revisions by main then sub.</summary>
    public static bool operator <(Revision a, Revision b) => a.CompareTo(b) < 0;

    /// <summary>Orders revisions by main then sub.</summary>
    public static bool operator >(Revision a, Revision b) => a.CompareTo(b) > 0;

    /// <summary>Orders revisions by main then sub.</summary>
    public static bool operator <=(Revision a, Revision b) => a.CompareTo(b) <= 0;

    /// <summary>Orders revisions by main then sub.</summary>
    public static bool operator >=(Revision a, Revision b) => a.CompareTo(b) >= 0;

    /// <summary>Writes the 17-byte key into <paramref name="destination"/> (at least 17 bytes long).</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, Main);
        destination[8] = (byte)'_';
        BinaryPrimitives.WriteInt64BigEndian(destination[9..], Sub);
    }

    /// <summary>The 17-byte key of this revision.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[BytesLength];
        WriteTo(b);
        return b;
    }

    /// <summary>The 18-byte key of this revision with the tombstone mark.</summary>
    public byte[] ToTombstoneBytes()
    {
        var b = new byte[MarkedBytesLength];
        WriteTo(b);
        b[BytesLength] = TombstoneMark;
        return b;
    }

    /// <summary>Decodes the first 17 bytes of a revision key (a tombstone mark after them is ignored).</summary>
    /// <exception cref="ArgumentException">Fewer than 17 bytes.</exception>
    public static Revision FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < BytesLength)
        {
            throw new ArgumentException($"a revision key has {BytesLength} bytes, got {bytes.Length}", nameof(bytes));
        }

        return new Revision(
            BinaryPrimitives.ReadInt64BigEndian(bytes),
            BinaryPrimitives.ReadInt64BigEndian(bytes[9..]));
    }

    /// <summary>True when <paramref name="bytes"/> is an 18-byte revision key ending in the tombstone mark.</summary>
    public static bool IsTombstone(ReadOnlySpan<byte> bytes)
        => bytes.Length == MarkedBytesLength && bytes[BytesLength] == TombstoneMark;

    /// <inheritdoc />
    public override string ToString() => $"{{{Main} {Sub}}}";
}
