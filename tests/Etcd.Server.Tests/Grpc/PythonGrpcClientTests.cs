using System.Diagnostics;

namespace Etcd.Server.Tests.Grpc;

/// <summary>
/// A third gRPC stack against the member, beside grpc-go (etcdctl, the e2e suite) and grpc-dotnet (our client): the
/// C-core client of Python's <c>grpcio</c> (Debian's <c>python3-grpcio</c>, installed by <c>scripts/setup.sh</c>), with
/// hand-encoded protobuf so no generated code stands between it and the wire. Unary KV calls, a bidirectional
/// LeaseKeepAlive and Watch, and the statuses a client reads in grpc-go's words (unknown service, oversize request).
/// The tool is installed on every machine that runs the suite (scripts/setup.sh), so its absence fails the test.
/// </summary>
public sealed class PythonGrpcClientTests : InProcessMemberTests
{
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import sys, queue, grpc

        def varint(n):
            out = b""
            while True:
                b = n & 0x7F
                n >>= 7
                if n:
                    out += bytes([b | 0x80])
                else:
                    return out + bytes([b])

        def field(num, data):
            return varint(num << 3 | 2) + varint(len(data)) + data

        def vfield(num, n):
            return varint(num << 3) + varint(n)

        def parse(buf):
            # {field number: [values]}: ints for varints, bytes for length-delimited fields.
            i, out = 0, {}
            while i < len(buf):
                key, i = read_varint(buf, i)
                num, wt = key >> 3, key & 7
                if wt == 0:
                    v, i = read_varint(buf, i)
                elif wt == 2:
                    n, i = read_varint(buf, i)
                    v, i = buf[i:i + n], i + n
                else:
                    raise ValueError("wire type %d" % wt)
                out.setdefault(num, []).append(v)
            return out

        def read_varint(buf, i):
            shift = n = 0
            while True:
                b = buf[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    return n, i

        ident = lambda b: b
        ch = grpc.insecure_channel(sys.argv[1], options=[("grpc.max_send_message_length", 64 << 20)])
        put = ch.unary_unary("/etcdserverpb.KV/Put", request_serializer=ident, response_deserializer=ident)
        rng = ch.unary_unary("/etcdserverpb.KV/Range", request_serializer=ident, response_deserializer=ident)

        put(field(1, b"py-key") + field(2, b"py-value"), timeout=10)
        resp = parse(rng(field(1, b"py-key"), timeout=10))
        kv = parse(resp[2][0])
        assert kv[5][0] == b"py-value", kv
        assert resp[4][0] == 1, resp
        print("kv ok")

        grant = ch.unary_unary("/etcdserverpb.Lease/LeaseGrant", request_serializer=ident, response_deserializer=ident)
        lease = parse(grant(vfield(1, 60), timeout=10))[2][0]
        keepalive = ch.stream_stream("/etcdserverpb.Lease/LeaseKeepAlive", request_serializer=ident, response_deserializer=ident)
        replies = list(keepalive(iter([vfield(1, lease)] * 3), timeout=10))
        assert len(replies) == 3, replies
        for r in replies:
            r = parse(r)
            assert r[2][0] == lease and r[3][0] > 0, r
        print("keepalive ok")

        requests = queue.Queue()
        def watch_requests():
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item
        watch = ch.stream_stream("/etcdserverpb.Watch/Watch", request_serializer=ident, response_deserializer=ident)
        responses = watch(watch_requests(), timeout=20)
        requests.put(field(1, field(1, b"py-watched")))
        created = parse(next(responses))
        assert created[3][0] == 1, created
        put(field(1, b"py-watched") + field(2, b"seen"), timeout=10)
        event = parse(parse(next(responses))[11][0])
        assert parse(event[2][0])[5][0] == b"seen", event
        requests.put(None)
        responses.cancel()
        print("watch ok")

        try:
            ch.unary_unary("/etcdserverpb.Nope/Range", request_serializer=ident, response_deserializer=ident)(b"", timeout=10)
            raise AssertionError("unknown service answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
            assert e.details() == "unknown service etcdserverpb.Nope", e.details()
        print("unknown service ok")

        big = field(1, b"big") + field(2, b"x" * (3 << 20))
        try:
            put(big, timeout=10)
            raise AssertionError("oversize put answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            assert e.details() == "grpc: received message larger than max (%d vs. 2097152)" % len(big), e.details()
        print("oversize ok")
        """;

    public PythonGrpcClientTests()
        : base("python-grpc")
    {
    }

    [Fact]
    public async Task PythonGrpcio_TalksToTheMember()
    {
        var probe = await RunAsync(["-c", "import grpc"]);
        Assert.True(probe.ExitCode == 0, $"{Python} cannot import grpc: install Debian's python3-grpcio (scripts/setup.sh does)\n{probe.Stderr}");
        var endpoint = Host.ClientUrls[0];
        var run = await RunAsync(["-c", Script, $"{endpoint.Host}:{endpoint.Port}"]);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}\n{run.Stdout}\n{run.Stderr}");
        Assert.Equal(["kv ok", "keepalive ok", "watch ok", "unknown service ok", "oversize ok"], run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
