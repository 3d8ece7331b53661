using System.Buffers.Binary;
using Google.Protobuf;
using Raftpb;

namespace Etcd.Server.Transport;

/// <summary>
/// Our peer wire protocol (not etcd's rafthttp; peers of ours talk only to peers of ours). Each TCP connection
/// (TLS when the peer URL is https) starts with a 29-byte hello from the dialer:
/// <c>"EPR1"</c>, a kind byte (<see cref="PeerStreamKind"/>), then cluster ID, sender ID and target ID as
/// big-endian u64. The listener answers with one <see cref="PeerHelloStatus"/> byte and closes on anything but
/// <see cref="PeerHelloStatus.Ok"/>. Certificate checks beyond the TLS handshake's own (trusted CA, allowed CN or
/// hostname, CRL) are made on the handshaken connection, so each side can tell the other it was refused
/// (<see cref="PeerHelloStatus.BadCertificate"/>, <see cref="PeerStreamKind.CertificateRejected"/>), as TLS alerts do
/// between Go peers. After that, a <see cref="PeerStreamKind.Messages"/> stream carries frames one way:
/// a big-endian u32 length and that many bytes of a serialised <c>raftpb.Message</c>, written in batches with one
/// flush per batch. A <see cref="PeerStreamKind.Snapshot"/> stream carries one frame (the MsgSnap, its snapshot data
/// holding the state-machine image), acknowledged with one status byte once handed to raft. A
/// <see cref="PeerStreamKind.ClusterQuery"/> gets one frame back: the cluster as JSON (<see cref="RemoteCluster"/>).
/// </summary>
internal static class PeerWire
{
    public const int HelloSize = 29;

    /// <summary>Largest frame on a message stream (raft caps MsgApp at 1 MiB of entries; room for big entries).</summary>
    public const int MaxMessageFrameBytes = 256 * 1024 * 1024;

    /// <summary>Largest frame on a snapshot stream.</summary>
    public const int MaxSnapshotFrameBytes = int.MaxValue - 64;

    private static ReadOnlySpan<byte> Magic => "EPR1"u8;

    public static byte[] Hello(PeerStreamKind kind, ulong clusterId, ulong from, ulong to)
    {
        var b = new byte[HelloSize];
        Magic.CopyTo(b);
        b[4] = (byte)kind;
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(5), clusterId);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(13), from);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(21), to);
        return b;
    }

    public static bool TryParseHello(ReadOnlySpan<byte> b, out PeerStreamKind kind, out ulong clusterId, out ulong from, out ulong to)
    {
        kind = default;
        clusterId = from = to = 0;
        if (b.Length < HelloSize || !b[..4].SequenceEqual(Magic))
        {
            return false;
        }

        kind = (PeerStreamKind)b[4];
        clusterId = BinaryPrimitives.ReadUInt64BigEndian(b[5..]);
        from = BinaryPrimitives.ReadUInt64BigEndian(b[13..]);
        to = BinaryPrimitives.ReadUInt64BigEndian(b[21..]);
        return kind is PeerStreamKind.Messages or PeerStreamKind.Snapshot or PeerStreamKind.ClusterQuery or PeerStreamKind.Promote
            or PeerStreamKind.Lease or PeerStreamKind.CertificateRejected or PeerStreamKind.HashKv;
    }

    public static int WriteFrame(Stream s, IMessage m)
    {
        var size = m.CalculateSize();
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)size);
        s.Write(len);
        m.WriteTo(s);
        return size + 4;
    }

    public static async Task WriteFrameAsync(Stream s, byte[] payload, CancellationToken ct)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)payload.Length);
        await s.WriteAsync(len, ct).ConfigureAwait(false);
        await s.WriteAsync(payload, ct).ConfigureAwait(false);
    }

    /// <summary>Reads one frame; null at a clean end of stream before the length.</summary>
    public static async Task<byte[]?> ReadFrameAsync(Stream s, int max, CancellationToken ct)
    {
        var len = new byte[4];
        var got = 0;
        while (got < 4)
        {
            var n = await s.ReadAsync(len.AsMemory(got), ct).ConfigureAwait(false);
            if (n == 0)
            {
                return got == 0 ? null : throw new EndOfStreamException("peer stream ended inside a frame length");
            }

            got += n;
        }

        var size = BinaryPrimitives.ReadUInt32BigEndian(len);
        if (size > (uint)max)
        {
            throw new InvalidDataException($"peer frame of {size} bytes exceeds the limit of {max}");
        }

        var buf = new byte[size];
        await s.ReadExactlyAsync(buf, ct).ConfigureAwait(false);
        return buf;
    }

    public static Message ParseMessage(byte[] frame) => Message.Parser.ParseFrom(frame);
}

/// <summary>What a peer connection carries.</summary>
internal enum PeerStreamKind : byte
{
    Messages = 1,
    Snapshot = 2,
    ClusterQuery = 3,

    /// <summary>A follower forwards MemberPromote: one frame with the learner ID (u64); the answer is one frame, empty for
    /// success or a status-code byte followed by etcd's error string.</summary>
    Promote = 4,

    /// <summary>A follower forwards a lease request (keep-alive, TimeToLive): one opaque frame each way.</summary>
    Lease = 5,

    /// <summary>
    /// The dialer refused the listener's TLS certificate (where Go's TLS sends a bad_certificate alert; .NET closes
    /// without one): the listener logs etcd's <c>rejected connection</c> with <c>remote error: tls: bad certificate</c>
    /// and closes. Nothing else is sent on such a connection.
    /// </summary>
    CertificateRejected = 6,

    /// <summary>
    /// A member asks a peer for its HashKV (etcd's corruption checks, which use the peer URL's <c>/members/hashkv</c>):
    /// one frame with a serialised <c>etcdserverpb.HashKVRequest</c>; the answer is one frame, status byte 0 followed by
    /// a serialised <c>HashKVResponse</c>, or 1 followed by etcd's error string (compacted or future revision).
    /// </summary>
    HashKv = 7,
}

/// <summary>The listener's answer to a hello.</summary>
internal enum PeerHelloStatus : byte
{
    Ok = 0,

    /// <summary>The hello's cluster ID is not ours (etcd: "request cluster ID mismatch").</summary>
    ClusterIdMismatch = 1,

    /// <summary>The sender was removed from the cluster.</summary>
    SenderRemoved = 2,

    /// <summary>The hello names another member as target.</summary>
    WrongTarget = 3,

    /// <summary>The hello is malformed.</summary>
    BadHello = 4,

    /// <summary>
    /// The listener refused the dialer's TLS client certificate (Go's bad_certificate alert); the dialer reports
    /// <c>remote error: tls: bad certificate</c>.
    /// </summary>
    BadCertificate = 5,
}
