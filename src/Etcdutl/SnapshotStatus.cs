using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Etcd.Storage.Bolt;

namespace Etcd.Utl;

/// <summary>
/// What <c>snapshot status</c> reports about a bbolt file (etcd's <c>snapshot.Status</c>).
/// </summary>
/// <param name="Hash">CRC-32C (Castagnoli) over every top-level bucket name followed by each of its keys and values, in order.</param>
/// <param name="Revision">Main revision of the last key in the <c>key</c> bucket (0 when empty).</param>
/// <param name="TotalKey">Keys (and nested buckets) across all top-level buckets.</param>
/// <param name="TotalSize">Size of the database as of its meta page: high-water page ID × page size, in bytes.</param>
public readonly record struct SnapshotStatusResult(uint Hash, long Revision, int TotalKey, long TotalSize)
{
    /// <summary>
    /// Reads the status of the database at <paramref name="path"/> (opened read-only, integrity-checked first).
    /// </summary>
    /// <exception cref="FileNotFoundException">Missing file (message <c>stat PATH: no such file or directory</c>).</exception>
    /// <exception cref="InvalidDataException">Integrity check failed (etcd's message).</exception>
    public static SnapshotStatusResult Read(string path)
    {
        if (Directory.Exists(path))
        {
            throw new IOException($"open {path}: is a directory");
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"stat {path}: no such file or directory", path);
        }
        var len = new FileInfo(path).Length;
        if (len == 0)
        {
            // bbolt initialises an empty file, which a read-only handle cannot write
            throw new IOException($"write {path}: bad file descriptor");
        }
        if (len is > 0 and < 4096)
        {
            // bbolt 1.3 cannot read a whole first page: ErrInvalid
            throw new InvalidDataException(BoltException.Invalid);
        }
        BoltDb db;
        try
        {
            db = BoltDb.Open(path, new BoltOptions { ReadOnly = true });
        }
        catch (BoltException e) when (e.Message.StartsWith("file size too small", StringComparison.Ordinal))
        {
            // bbolt's message carries no size
            throw new InvalidDataException("file size too small");
        }
        using var _ = db;
        using var tx = db.Begin(false);
        var errors = tx.Check();
        if (errors.Count > 0)
        {
            throw new InvalidDataException($"snapshot file integrity check failed. {errors.Count} errors found.\n" + string.Join("\n", errors));
        }
        var crc = new Crc32CHash();
        long rev = 0;
        int total = 0;
        foreach (var name in tx.BucketNames())
        {
            var b = tx.Bucket(name) ?? throw new InvalidDataException($"cannot get hash of bucket {Encoding.UTF8.GetString(name)}");
            crc.Append(name);
            var isKey = name.AsSpan().SequenceEqual("key"u8);
            b.ForEach((k, v) =>
            {
                crc.Append(k);
                crc.Append(v);
                if (isKey && k.Length >= 8)
                {
                    rev = BinaryPrimitives.ReadInt64BigEndian(k);
                }
                total++;
                return true;
            });
        }
        return new SnapshotStatusResult(crc.Value, rev, total, tx.Size);
    }

    /// <summary>The four columns as etcdctl's <c>makeDBStatusTable</c> renders them (hash in hex, size humanized).</summary>
    public string[] Row() =>
    [
        Hash.ToString("x", CultureInfo.InvariantCulture),
        Revision.ToString(CultureInfo.InvariantCulture),
        TotalKey.ToString(CultureInfo.InvariantCulture),
        Humanize.Bytes((ulong)TotalSize),
    ];
}

/// <summary>Incremental CRC-32C as Go's <c>crc32.New(crc32.MakeTable(crc32.Castagnoli))</c>.</summary>
internal sealed class Crc32CHash
{
    private uint _crc;

    public void Append(ReadOnlySpan<byte> data) => _crc = Etcd.Storage.Wal.Crc32C.Update(_crc, data);

    public uint Value => _crc;
}
