using System.Buffers.Binary;
using Etcd.Storage.Backend;

namespace Etcd.Server.Transport;

/// <summary>
/// Serialises a backend's state for a raft snapshot sent to a lagging member, and rebuilds a backend from
/// one (the image etcd streams as its bbolt file after a MsgSnap). Replaceable: a file backend can send its
/// database file instead.
/// </summary>
public interface IBackendSnapshotSource
{
    /// <summary>Writes a consistent image of <paramref name="backend"/> to <paramref name="output"/>. Call with no writer active (the raft loop).</summary>
    void WriteSnapshot(IBackend backend, Stream output);

    /// <summary>Replaces the contents of <paramref name="backend"/> with the image read from <paramref name="input"/>.</summary>
    /// <exception cref="InvalidDataException">The image is malformed.</exception>
    void RestoreSnapshot(IBackend backend, Stream input);
}

/// <summary>
/// <see cref="IBackendSnapshotSource"/> for any <see cref="IBackend"/> by enumerating etcd's buckets with
/// <c>ForEach</c>. Image: <c>"EBK1"</c>, u32 bucket count, then per bucket: u16 name length, name (UTF-8),
/// u32 pair count, and per pair u32 key length, key, u32 value length, value (all big-endian).
/// </summary>
public sealed class BucketSnapshotSource : IBackendSnapshotSource
{
    /// <summary>etcd 3.4's buckets (<c>mvcc/backend</c> users: mvcc, lease, alarm, auth, membership).</summary>
    public static readonly IReadOnlyList<string> EtcdBuckets =
        ["key", "meta", "lease", "alarm", "auth", "authUsers", "authRoles", "members", "members_removed", "cluster"];

    private static ReadOnlySpan<byte> Magic => "EBK1"u8;

    private readonly IReadOnlyList<string> _buckets;

    /// <summary>Creates a source over <paramref name="buckets"/> (default: <see cref="EtcdBuckets"/>).</summary>
    public BucketSnapshotSource(IReadOnlyList<string>? buckets = null) => _buckets = buckets ?? EtcdBuckets;

    /// <inheritdoc/>
    public void WriteSnapshot(IBackend backend, Stream output)
    {
        using var tx = backend.ConcurrentReadTx();
        var present = _buckets.Where(tx.BucketExists).ToList();
        Span<byte> n = stackalloc byte[4];
        output.Write(Magic);
        WriteU32(output, (uint)present.Count);
        foreach (var b in present)
        {
            var name = System.Text.Encoding.UTF8.GetBytes(b);
            BinaryPrimitives.WriteUInt16BigEndian(n, (ushort)name.Length);
            output.Write(n[..2]);
            output.Write(name);
            var pairs = new List<(byte[] K, byte[] V)>();
            tx.ForEach(b, (k, v) =>
            {
                pairs.Add((k.ToArray(), v.ToArray()));
                return true;
            });
            WriteU32(output, (uint)pairs.Count);
            foreach (var (k, v) in pairs)
            {
                WriteU32(output, (uint)k.Length);
                output.Write(k);
                WriteU32(output, (uint)v.Length);
                output.Write(v);
            }
        }
    }

    /// <inheritdoc/>
    public void RestoreSnapshot(IBackend backend, Stream input)
    {
        Span<byte> magic = stackalloc byte[4];
        input.ReadExactly(magic);
        if (!magic.SequenceEqual(Magic))
        {
            throw new InvalidDataException("not a backend snapshot image");
        }

        var tx = backend.BatchTx;
        tx.Lock();
        try
        {
            foreach (var b in _buckets)
            {
                tx.DeleteBucket(b);
            }

            var count = ReadU32(input);
            Span<byte> n = stackalloc byte[2];
            for (var i = 0u; i < count; i++)
            {
                input.ReadExactly(n);
                var name = new byte[BinaryPrimitives.ReadUInt16BigEndian(n)];
                input.ReadExactly(name);
                var bucket = System.Text.Encoding.UTF8.GetString(name);
                tx.CreateBucket(bucket);
                var pairs = ReadU32(input);
                for (var j = 0u; j < pairs; j++)
                {
                    var k = new byte[ReadU32(input)];
                    input.ReadExactly(k);
                    var v = new byte[ReadU32(input)];
                    input.ReadExactly(v);
                    tx.Put(bucket, k, v);
                }
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("backend snapshot image is truncated", e);
        }
        finally
        {
            tx.Unlock();
        }

        backend.ForceCommit();
    }

    private static void WriteU32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        s.Write(b);
    }

    private static uint ReadU32(Stream s)
    {
        Span<byte> b = stackalloc byte[4];
        s.ReadExactly(b);
        var v = BinaryPrimitives.ReadUInt32BigEndian(b);
        if (v > int.MaxValue)
        {
            throw new InvalidDataException("backend snapshot image has an impossible length");
        }

        return v;
    }
}
