using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Server.Grpc;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Etcd.Api.Tests.Grpc;

public sealed class GrpcStreamingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static StringValue S(string v) => new() { Value = v };

    private static void MapEcho(ToyServices r) => r
        .MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(S("echo:" + req.Value)))
        .MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            var n = int.Parse(req.Value);
            for (var i = 0; i < n; i++)
            {
                await responses.WriteAsync(S("item" + i));
            }
        })
        .MapClientStreaming(EchoMethods.ClientStream, async (requests, ctx) =>
        {
            var parts = new List<string>();
            while (await requests.MoveNext())
            {
                parts.Add(requests.Current.Value);
            }

            return S(string.Join(",", parts));
        })
        .MapDuplexStreaming(EchoMethods.Duplex, async (requests, responses, ctx) =>
        {
            while (await requests.MoveNext())
            {
                await responses.WriteAsync(S("re:" + requests.Current.Value));
            }
        });

    [Fact]
    public async Task ServerStreaming_ReadsAll()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var call = t.Channel.ServerStreaming(EchoMethods.ServerStream, S("50"));
        var items = new List<string>();
        await foreach (var m in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(Bound).Token))
        {
            items.Add(m.Value);
        }

        Assert.Equal(Enumerable.Range(0, 50).Select(i => "item" + i), items);
        Assert.Empty(await call.ResponseHeadersAsync.WaitAsync(Bound));
    }

    [Fact]
    public async Task ServerStreaming_Zero_Messages()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var call = t.Channel.ServerStreaming(EchoMethods.ServerStream, S("0"));
        Assert.False(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.False(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ClientStreaming_SendsAll()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var call = t.Channel.ClientStreaming(EchoMethods.ClientStream);
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(S(i.ToString())).AsTask().WaitAsync(Bound);
        }

        await call.RequestStream.CompleteAsync();
        var resp = await call.ResponseAsync.WaitAsync(Bound);
        Assert.Equal(string.Join(",", Enumerable.Range(0, 20)), resp.Value);
    }

    [Fact]
    public async Task Duplex_PingPong()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var call = t.Channel.DuplexStreaming(EchoMethods.Duplex);
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(S("m" + i)).AsTask().WaitAsync(Bound);
            Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
            Assert.Equal("re:m" + i, call.ResponseStream.Current.Value);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ManyConcurrentCalls_Multiplex()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        var tasks = Enumerable.Range(0, 100).Select(i => t.Channel.UnaryAsync(EchoMethods.Unary, S(i.ToString()))).ToArray();
        var results = await Task.WhenAll(tasks).WaitAsync(Bound);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => "echo:" + i), results.Select(r => r.Value));
    }

    [Fact]
    public async Task UnknownMethod_And_UnknownService_AreUnimplemented()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        var e1 = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Missing, S("x")).WaitAsync(Bound));
        Assert.Equal(StatusCode.Unimplemented, e1.Status);
        Assert.Equal("unknown method Missing for service test.Echo", e1.Detail);
        var e2 = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.OtherService, S("x")).WaitAsync(Bound));
        Assert.Equal(StatusCode.Unimplemented, e2.Status);
        Assert.Equal("unknown service test.Nope", e2.Detail);
    }

    [Fact]
    public async Task HandlerErrors_MapToStatus()
    {
        await using var t = await TestServer.StartAsync(r => r
            .MapUnary(EchoMethods.Unary, (req, ctx) => req.Value switch
            {
                "rpc" => throw new RpcException(StatusCode.NotFound, "no such thing"),
                "etcd" => throw EtcdErrors.NoSpace.ToException(),
                "utf8" => throw new RpcException(StatusCode.InvalidArgument, "ключ 100% ✓\nnext line"),
                _ => throw new InvalidOperationException("plain failure"),
            })
            .MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
            {
                await responses.WriteAsync(S("a"));
                await responses.WriteAsync(S("b"));
                throw new RpcException(StatusCode.Aborted, "stopped after two");
            }));

        var rpc = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("rpc")).WaitAsync(Bound));
        Assert.Equal((StatusCode.NotFound, "no such thing"), (rpc.Status, rpc.Detail));

        var etcd = await Assert.ThrowsAsync<EtcdException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("etcd")).WaitAsync(Bound));
        Assert.Same(EtcdErrors.NoSpace, etcd.Error);

        var utf8 = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("utf8")).WaitAsync(Bound));
        Assert.Equal((StatusCode.InvalidArgument, "ключ 100% ✓\nnext line"), (utf8.Status, utf8.Detail));

        var plain = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("other")).WaitAsync(Bound));
        Assert.Equal((StatusCode.Unknown, "plain failure"), (plain.Status, plain.Detail));

        using var call = t.Channel.ServerStreaming(EchoMethods.ServerStream, S(""));
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal("b", call.ResponseStream.Current.Value);
        var streamErr = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal((StatusCode.Aborted, "stopped after two"), (streamErr.Status, streamErr.Detail));
    }

    [Fact]
    public async Task Metadata_RoundTrip_IncludingBinary()
    {
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, (req, ctx) =>
        {
            foreach (var e in ctx.RequestHeaders)
            {
                if (e.IsBinary)
                {
                    ctx.ResponseTrailers.Add("echo-" + e.Key, e.ValueBytes);
                }
                else
                {
                    ctx.ResponseTrailers.Add("echo-" + e.Key, e.Value);
                }
            }

            return ValueTask.FromResult(S(ctx.RequestHeaders.GetValue("token") ?? "none"));
        }));

        var md = new Metadata { { "Token", "secret-token" }, { "hasleader", "true" } };
        md.AddBinary("blob-bin", [0, 1, 2, 250, 255]);
        var resp = await t.Channel.UnaryAsync(EchoMethods.Unary, S("x"), new CallOptions { Headers = md }).WaitAsync(Bound);
        Assert.Equal("secret-token", resp.Value);

        // Trailers come back through a streaming call API too; use the server-streaming wrapper over unary-shaped data.
        await using var t2 = await TestServer.StartAsync(r => r.MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            foreach (var e in ctx.RequestHeaders)
            {
                if (e.IsBinary)
                {
                    ctx.ResponseTrailers.Add("echo-" + e.Key, e.ValueBytes);
                }
                else
                {
                    ctx.ResponseTrailers.Add("echo-" + e.Key, e.Value);
                }
            }

            await responses.WriteAsync(S("one"));
        }));
        using var call = t2.Channel.ServerStreaming(EchoMethods.ServerStream, S("x"), new CallOptions { Headers = md });
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.False(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        var trailers = call.GetTrailers();
        Assert.Equal("secret-token", trailers.Get("echo-token"));
        Assert.Equal("true", trailers.Get("echo-hasleader"));
        Assert.Equal(new byte[] { 0, 1, 2, 250, 255 }, trailers.GetBinary("echo-blob-bin"));
        Assert.Null(trailers.Get("grpc-status"));
    }

    [Fact]
    public async Task Deadline_ClientSide_DeadlineExceeded_And_ServerTokenFires()
    {
        var serverSaw = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, async (req, ctx) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            finally
            {
                serverSaw.TrySetResult(ctx.CancellationToken.IsCancellationRequested);
            }

            return req;
        }));

        var before = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("slow"), new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) }).WaitAsync(Bound));
        Assert.Equal(StatusCode.DeadlineExceeded, e.Status);
        Assert.Equal("context deadline exceeded", e.Detail);
        Assert.True(await serverSaw.Task.WaitAsync(Bound));
        Assert.InRange(DateTime.UtcNow - before, TimeSpan.FromMilliseconds(250), Bound);
    }

    [Fact]
    public async Task Deadline_ServerSide_SendsDeadlineExceeded()
    {
        // A raw request with grpc-timeout and no client-side enforcement: the server must end it with status 4.
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, async (req, ctx) =>
        {
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            return req;
        }));
        using var request = RawRequest(t, EchoMethods.Unary.FullName, FrameBytes(S("x")));
        request.Headers.TryAddWithoutValidation("grpc-timeout", "200m");
        using var response = await t.Channel.Invoker.SendAsync(request, CancellationToken.None).WaitAsync(Bound);
        await response.Content.ReadAsByteArrayAsync().WaitAsync(Bound);
        Assert.Equal("4", StatusOf(response));
        Assert.Equal("context deadline exceeded", MessageOf(response));
    }

    [Fact]
    public async Task Cancel_ClientCancels_ServerTokenFires()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverCancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            await responses.WriteAsync(S("first"));
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                serverCancelled.TrySetResult(ctx.Deadline == DateTime.MaxValue);
                throw;
            }
        }));

        using var cts = new CancellationTokenSource();
        using var call = t.Channel.ServerStreaming(EchoMethods.ServerStream, S("x"), cancellationToken: cts.Token);
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        await started.Task.WaitAsync(Bound);
        cts.Cancel();
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal(StatusCode.Cancelled, e.Status);
        Assert.True(await serverCancelled.Task.WaitAsync(Bound));
    }

    [Fact]
    public async Task ClientVanishes_MidStream_ServerReadFailsCleanly()
    {
        var serverOutcome = new TaskCompletionSource<(StatusCode Status, bool TokenFired)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var gotFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapDuplexStreaming(EchoMethods.Duplex, async (requests, responses, ctx) =>
        {
            try
            {
                while (await requests.MoveNext())
                {
                    gotFirst.TrySetResult();
                }

                serverOutcome.TrySetResult((StatusCode.OK, ctx.CancellationToken.IsCancellationRequested));
            }
            catch (RpcException e)
            {
                serverOutcome.TrySetResult((e.Status, ctx.CancellationToken.IsCancellationRequested));
                throw;
            }
        }));

        var call = t.Channel.DuplexStreaming(EchoMethods.Duplex);
        await call.RequestStream.WriteAsync(S("hello")).AsTask().WaitAsync(Bound);
        await gotFirst.Task.WaitAsync(Bound);
        call.Dispose();
        var (status, tokenFired) = await serverOutcome.Task.WaitAsync(Bound);
        Assert.Equal(StatusCode.Cancelled, status);
        Assert.True(tokenFired);

        // The server is fine afterwards.
        await using var t2Channel = new ChannelHolder(GrpcChannel.ForAddress(t.Url));
        using var again = t2Channel.Channel.DuplexStreaming(EchoMethods.Duplex);
        await again.RequestStream.CompleteAsync();
        Assert.False(await again.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ConnectionDrop_ServerTokenFires()
    {
        var serverCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            using var reg = ctx.CancellationToken.Register(() => serverCancelled.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
        }));

        // A hand-written HTTP/2 client whose TCP connection we can cut.
        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await socket.ConnectAsync(t.Server.BoundEndPoints[0]).WaitAsync(Bound);
            await socket.SendAsync(RawHttp2.StartCall(EchoMethods.ServerStream.FullName, FrameBytes(S("x"))));
            await started.Task.WaitAsync(Bound);
        }

        await serverCancelled.Task.WaitAsync(Bound);

        // The server still serves new connections.
        Assert.Equal(StatusCode.Unimplemented, (await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Missing, S("x")).WaitAsync(Bound))).Status);
    }

    [Fact]
    public async Task ChannelDispose_CancelsCallsInFlight()
    {
        var serverCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            using var reg = ctx.CancellationToken.Register(() => serverCancelled.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
        }));

        var channel = GrpcChannel.ForAddress(t.Url);
        using var call = channel.ServerStreaming(EchoMethods.ServerStream, S("x"));
        var read = call.ResponseStream.MoveNext().AsTask();
        await started.Task.WaitAsync(Bound);
        channel.Dispose();
        var e = await Assert.ThrowsAsync<RpcException>(() => read.WaitAsync(Bound));
        Assert.Equal((StatusCode.Cancelled, "grpc: the client connection is closing"), (e.Status, e.Detail));
        await serverCancelled.Task.WaitAsync(Bound);
    }

    /// <summary>A unary call in flight when the stop begins runs to completion; a new connection is refused meanwhile.</summary>
    [Fact]
    public async Task Stop_LetsUnaryCallInFlightFinish()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, async (req, ctx) =>
        {
            started.TrySetResult();
            await release.Task.WaitAsync(ctx.CancellationToken);
            return S("done:" + req.Value);
        }));
        var endPoint = t.Server.BoundEndPoints[0];
        var call = t.Channel.UnaryAsync(EchoMethods.Unary, S("x"));
        await started.Task.WaitAsync(Bound);

        using var grace = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var stop = t.Server.StopAsync(grace.Token);

        // The listener closes as the stop begins, while the call is still running.
        var refused = false;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!refused && clock.Elapsed < Bound)
        {
            try
            {
                using var s = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await s.ConnectAsync(endPoint);
                await Task.Yield();
            }
            catch (System.Net.Sockets.SocketException)
            {
                refused = true;
            }
        }

        Assert.True(refused, "the listener still accepts connections while stopping");
        Assert.False(stop.IsCompleted, "the stop did not wait for the call in flight");
        release.TrySetResult();
        Assert.Equal("done:x", (await call.WaitAsync(Bound)).Value);
        await stop.WaitAsync(Bound);
        await t.DisposeAsync();
    }

    /// <summary>A unary call still running when the drain time is up ends with etcd's "server stopped", not a reset.</summary>
    [Fact]
    public async Task Stop_EndsUnaryCallStillRunningAfterDrainTime_WithServerStopped()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, async (req, ctx) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            return S("never");
        }));
        var call = t.Channel.UnaryAsync(EchoMethods.Unary, S("x"));
        await started.Task.WaitAsync(Bound);
        using (var grace = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
        {
            await t.Server.StopAsync(grace.Token).WaitAsync(Bound);
        }

        var e = await Assert.ThrowsAnyAsync<RpcException>(() => call.WaitAsync(Bound));
        Assert.Equal((StatusCode.Unavailable, "etcdserver: server stopped"), (e.Status, e.Detail));
        await t.DisposeAsync();
    }

    /// <summary>A stream never ends by itself: a stop ends it at once with etcd's "server stopped" (Unavailable: retry elsewhere).</summary>
    [Fact]
    public async Task Stop_WithActiveStream_EndsItWithServerStopped_AndFreesThePort()
    {
        var serverCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = await TestServer.StartAsync(r => r.MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
        {
            using var reg = ctx.CancellationToken.Register(() => serverCancelled.TrySetResult());
            await responses.WriteAsync(S("one"));
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
        }));
        var endPoint = t.Server.BoundEndPoints[0];
        using var call = t.Channel.ServerStreaming(EchoMethods.ServerStream, S("x"));
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        await started.Task.WaitAsync(Bound);

        // A drain time far beyond the bound: the stream must not wait for it.
        using (var grace = new CancellationTokenSource(TimeSpan.FromMinutes(5)))
        {
            await t.Server.StopAsync(grace.Token).WaitAsync(Bound);
        }

        await serverCancelled.Task.WaitAsync(Bound);
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal((StatusCode.Unavailable, "etcdserver: server stopped"), (e.Status, e.Detail));
        await t.DisposeAsync();

        // The port is free again.
        using var again = new System.Net.Sockets.TcpListener(endPoint);
        again.Start();
    }

    [Fact]
    public async Task ServerFails_Duplex_ClientSeesStatus()
    {
        await using var t = await TestServer.StartAsync(r => r.MapDuplexStreaming(EchoMethods.Duplex, async (requests, responses, ctx) =>
        {
            Assert.True(await requests.MoveNext());
            await responses.WriteAsync(S("got " + requests.Current.Value));
            throw new RpcException(StatusCode.FailedPrecondition, "no more");
        }));
        using var call = t.Channel.DuplexStreaming(EchoMethods.Duplex);
        await call.RequestStream.WriteAsync(S("a")).AsTask().WaitAsync(Bound);
        Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal((StatusCode.FailedPrecondition, "no more"), (e.Status, e.Detail));

        // Writing after the server ended the call fails with the call's status or cleanly as cancelled, never hangs.
        var w = await Assert.ThrowsAnyAsync<Exception>(() => call.RequestStream.WriteAsync(S("late")).AsTask().WaitAsync(Bound));
        var status = Assert.IsType<RpcException>(w);
        Assert.Equal(StatusCode.FailedPrecondition, status.Status);
    }

    [Fact]
    public async Task Oversize_Request_IsResourceExhausted_ConnectionStaysUsable()
    {
        var peers = new List<string>();
        await using var t = await TestServer.StartAsync(
            r => r.MapUnary(EchoMethods.Unary, (req, ctx) =>
            {
                lock (peers)
                {
                    peers.Add(ctx.Peer);
                }

                return ValueTask.FromResult(S(req.Value.Length.ToString()));
            }),
            options: new GrpcHttpServerOptions { Urls = ["http://127.0.0.1:0"], MaxReceiveMessageBytes = 1024 });

        Assert.Equal("1", (await t.Channel.UnaryAsync(EchoMethods.Unary, S("a")).WaitAsync(Bound)).Value);
        var e = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S(new string('z', 4096))).WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
        Assert.Equal("grpc: received message larger than max (4099 vs. 1024)", e.Detail);

        var big = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S(new string('z', 1_000_000))).WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, big.Status);

        Assert.Equal("1000", (await t.Channel.UnaryAsync(EchoMethods.Unary, S(new string('y', 1000))).WaitAsync(Bound)).Value);
        Assert.Equal(2, peers.Count);
        Assert.Equal(peers[0], peers[1]); // same connection (same client port)
        Assert.StartsWith("ipv4:127.0.0.1:", peers[0]);
    }

    [Fact]
    public async Task LargeMessages_BeyondFlowControlWindows_BothWays()
    {
        // 1.9 MB is more than Kestrel's stream window (768 KiB) and HTTP/2's initial window: the reader must
        // consume as it buffers or the transfer stalls.
        await using var t = await TestServer.StartAsync(r => r
            .MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(S(req.Value + "!")))
            .MapDuplexStreaming(EchoMethods.Duplex, async (requests, responses, ctx) =>
            {
                while (await requests.MoveNext())
                {
                    await responses.WriteAsync(S(requests.Current.Value.Length.ToString()));
                    await responses.WriteAsync(S(new string('d', 3_000_000)));
                }
            }));
        var big = new string('q', 1_900_000);
        var resp = await t.Channel.UnaryAsync(EchoMethods.Unary, S(big)).WaitAsync(Bound);
        Assert.Equal(1_900_001, resp.Value.Length);

        using var call = t.Channel.DuplexStreaming(EchoMethods.Duplex);
        for (var i = 0; i < 3; i++)
        {
            await call.RequestStream.WriteAsync(S(big)).AsTask().WaitAsync(Bound);
            Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
            Assert.Equal("1900000", call.ResponseStream.Current.Value);
            Assert.True(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
            Assert.Equal(3_000_000, call.ResponseStream.Current.Value.Length);
        }

        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task SendLimits_BothSides()
    {
        await using var t = await TestServer.StartAsync(
            r => r.MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(S(new string('r', int.Parse(req.Value))))),
            options: new GrpcHttpServerOptions { Urls = ["http://127.0.0.1:0"], MaxSendMessageBytes = 500 },
            channelOptions: new GrpcChannelOptions { MaxSendMessageBytes = 100, MaxReceiveMessageBytes = 300 });

        var serverSend = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("1000")).WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, serverSend.Status);
        Assert.Equal("grpc: trying to send message larger than max (1003 vs. 500)", serverSend.Detail);

        var clientRecv = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("400")).WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, clientRecv.Status);
        Assert.Equal("grpc: received message larger than max (403 vs. 300)", clientRecv.Detail);

        var clientSend = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S(new string('1', 200))).WaitAsync(Bound));
        Assert.Equal(StatusCode.ResourceExhausted, clientSend.Status);

        Assert.Equal(200, (await t.Channel.UnaryAsync(EchoMethods.Unary, S("200")).WaitAsync(Bound)).Value.Length);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("badflag")]
    [InlineData("garbage")]
    public async Task MalformedFrame_FailsThatStreamOnly(string kind)
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var duplex = t.Channel.DuplexStreaming(EchoMethods.Duplex);
        await duplex.RequestStream.WriteAsync(S("before")).AsTask().WaitAsync(Bound);
        Assert.True(await duplex.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));

        byte[] body = kind switch
        {
            "truncated" => [.. FrameHeader(0, 100), 1, 2, 3],
            "badflag" => [.. FrameHeader(9, 1), 0x0A],
            _ => [.. FrameHeader(0, 3), 0x0A, 0x05, 0x61],
        };
        using var request = RawRequest(t, EchoMethods.ClientStream.FullName, body);
        using var response = await t.Channel.Invoker.SendAsync(request, CancellationToken.None).WaitAsync(Bound);
        await response.Content.ReadAsByteArrayAsync().WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (kind == "garbage")
        {
            // Our marshaller's status, in grpc-go's words.
            Assert.Equal("13", StatusOf(response));
            Assert.StartsWith("grpc: failed to unmarshal the received message", MessageOf(response));
        }
        else
        {
            // Framing errors are Grpc.AspNetCore's to word; the call fails.
            Assert.NotEqual("0", StatusOf(response));
        }

        // The other stream on the same connection lives on.
        await duplex.RequestStream.WriteAsync(S("after")).AsTask().WaitAsync(Bound);
        Assert.True(await duplex.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal("re:after", duplex.ResponseStream.Current.Value);
        await duplex.RequestStream.CompleteAsync();
        Assert.False(await duplex.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ErrorBeforeAnyMessage_IsTrailersOnly()
    {
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, (req, ctx) => throw new RpcException(StatusCode.PermissionDenied, "nope")));
        using var request = RawRequest(t, EchoMethods.Unary.FullName, FrameBytes(S("x")));
        using var response = await t.Channel.Invoker.SendAsync(request, CancellationToken.None).WaitAsync(Bound);
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(Bound);
        Assert.Empty(body);
        Assert.Equal("7", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal("nope", response.Headers.GetValues("grpc-message").Single());
        Assert.Empty(response.TrailingHeaders);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task GzipCompressedRequest_IsAccepted()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        // A gzip-compressed frame (flag 1), as a client with compression sends it.
        var zipped = new MemoryStream();
        using (var gz = new System.IO.Compression.GZipStream(zipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            S(string.Concat(Enumerable.Repeat("gz", 300))).WriteTo(gz);
        }

        var frame = new byte[5 + zipped.Length];
        frame[0] = 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)zipped.Length);
        zipped.ToArray().CopyTo(frame, 5);
        using var request = RawRequest(t, EchoMethods.Unary.FullName, frame);
        request.Headers.TryAddWithoutValidation("grpc-encoding", "gzip");
        using var response = await t.Channel.Invoker.SendAsync(request, CancellationToken.None).WaitAsync(Bound);
        var body = await response.Content.ReadAsByteArrayAsync().WaitAsync(Bound);
        Assert.Equal("0", StatusOf(response));
        Assert.Equal(0, body[0]);
        Assert.Equal("echo:" + string.Concat(Enumerable.Repeat("gz", 300)), StringValue.Parser.ParseFrom(body.AsSpan(5)).Value);
    }

    [Fact]
    public async Task ListensOn_Localhost_And_AnyAddress()
    {
        await using var t = await TestServer.StartAsync(MapEcho, options: new GrpcHttpServerOptions { Urls = ["http://localhost:0", "http://0.0.0.0:0"] });
        Assert.Equal(2, t.Server.BoundUrls.Count);
        Assert.Equal("localhost", t.Server.BoundUrls[0].Host);
        Assert.NotEqual(0, t.Server.BoundUrls[0].Port);
        Assert.Equal(IPAddress.Loopback, t.Server.BoundEndPoints[0].Address);
        Assert.Equal(IPAddress.Any, t.Server.BoundEndPoints[1].Address);
        using var viaAny = GrpcChannel.ForAddress($"127.0.0.1:{t.Server.BoundUrls[1].Port}");
        Assert.Equal("echo:any", (await viaAny.UnaryAsync(EchoMethods.Unary, S("any")).WaitAsync(Bound)).Value);
        Assert.Equal("echo:lh", (await t.Channel.UnaryAsync(EchoMethods.Unary, S("lh")).WaitAsync(Bound)).Value);
    }

    [Fact]
    public async Task ListensOn_Ipv6Any_DualStack()
    {
        if (!System.Net.Sockets.Socket.OSSupportsIPv6)
        {
            return; // nothing to check on a host without IPv6
        }

        await using var t = await TestServer.StartAsync(MapEcho, options: new GrpcHttpServerOptions { Urls = ["http://[::]:0"] });
        Assert.Equal(IPAddress.IPv6Any, t.Server.BoundEndPoints[0].Address);
        Assert.Equal("[::]", t.Server.BoundUrls[0].Host);
        var port = t.Server.BoundUrls[0].Port;
        using var v4 = GrpcChannel.ForAddress($"127.0.0.1:{port}");
        Assert.Equal("echo:v4", (await v4.UnaryAsync(EchoMethods.Unary, S("v4")).WaitAsync(Bound)).Value);
        using var v6 = GrpcChannel.ForAddress($"http://[::1]:{port}");
        Assert.Equal("echo:v6", (await v6.UnaryAsync(EchoMethods.Unary, S("v6")).WaitAsync(Bound)).Value);
    }

    [Fact]
    public async Task Start_OnTakenPort_Throws()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        await using var second = new GrpcHttpServer(new GrpcHttpServerOptions { Urls = [$"http://127.0.0.1:{t.Url.Port}"] }, new GrpcServiceTable(), ctx => Task.CompletedTask);
        await Assert.ThrowsAnyAsync<IOException>(() => second.StartAsync());

        // A failed start with several URLs leaves none of them bound.
        int free;
        using (var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            free = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        await using var third = new GrpcHttpServer(new GrpcHttpServerOptions { Urls = [$"http://127.0.0.1:{free}", $"http://127.0.0.1:{t.Url.Port}"] }, new GrpcServiceTable(), ctx => Task.CompletedTask);
        await Assert.ThrowsAnyAsync<IOException>(() => third.StartAsync());
        using (var rebind = new System.Net.Sockets.TcpListener(IPAddress.Loopback, free))
        {
            rebind.Start();
        }

        // https without TLS settings: etcd's "TLS key/cert ... must be provided" (TlsTransportTests covers https).
        await Assert.ThrowsAsync<InvalidOperationException>(() => new GrpcHttpServer(new GrpcHttpServerOptions { Urls = ["https://127.0.0.1:0"] }, new GrpcServiceTable(), ctx => Task.CompletedTask).StartAsync());
        await Assert.ThrowsAsync<FormatException>(() => new GrpcHttpServer(new GrpcHttpServerOptions { Urls = ["not a url"] }, new GrpcServiceTable(), ctx => Task.CompletedTask).StartAsync());
        await Assert.ThrowsAsync<FormatException>(() => new GrpcHttpServer(new GrpcHttpServerOptions { Urls = ["unix://x:1"] }, new GrpcServiceTable(), ctx => Task.CompletedTask).StartAsync());
    }

    [Fact]
    public async Task Http11_Post_WithGrpcContentType_GoesToFallback_And_Http2NonGrpc_Too()
    {
        await using var t = await TestServer.StartAsync(MapEcho);
        using var http = new HttpClient();
        using var req1 = new HttpRequestMessage(HttpMethod.Post, new Uri(t.Url, "/v3/kv/range")) { Version = HttpVersion.Version11, Content = new StringContent("{}") };
        using var resp1 = await http.SendAsync(req1).WaitAsync(Bound);
        Assert.Equal("fallback HTTP/1.1 POST /v3/kv/range", await resp1.Content.ReadAsStringAsync());

        using var req2 = new HttpRequestMessage(HttpMethod.Get, new Uri(t.Url, "/version")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var resp2 = await t.Channel.Invoker.SendAsync(req2, CancellationToken.None).WaitAsync(Bound);
        Assert.Equal("fallback HTTP/2 GET /version", await resp2.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Connect_Refused_IsUnavailable()
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
        }

        using var channel = GrpcChannel.ForAddress($"127.0.0.1:{port}");
        var e = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Unary, S("x")).WaitAsync(Bound));
        Assert.Equal(StatusCode.Unavailable, e.Status);
    }

    private static HttpRequestMessage RawRequest(TestServer t, string path, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(t.Url, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        return request;
    }

    private static byte[] FrameHeader(byte flag, int length)
    {
        var h = new byte[5];
        h[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(1), (uint)length);
        return h;
    }

    private static byte[] FrameBytes(IMessage m) => [.. FrameHeader(0, m.CalculateSize()), .. m.ToByteArray()];

    private static string? StatusOf(HttpResponseMessage r) =>
        r.TrailingHeaders.TryGetValues("grpc-status", out var v) ? v.Single() : r.Headers.TryGetValues("grpc-status", out var h) ? h.Single() : null;

    private static string? MessageOf(HttpResponseMessage r) =>
        GrpcStatusMessage.Decode((r.TrailingHeaders.TryGetValues("grpc-message", out var v) ? v.Single() : r.Headers.TryGetValues("grpc-message", out var h) ? h.Single() : null) ?? string.Empty);

    private sealed class ChannelHolder(GrpcChannel channel) : IAsyncDisposable
    {
        public GrpcChannel Channel { get; } = channel;

        public ValueTask DisposeAsync()
        {
            Channel.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>Just enough HTTP/2 to open one gRPC stream by hand (literal HPACK, no Huffman).</summary>
internal static class RawHttp2
{
    public static byte[] StartCall(string path, byte[] body)
    {
        var ms = new MemoryStream();
        ms.Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
        WriteFrame(ms, 0x4, 0, 0, []); // SETTINGS
        var block = new MemoryStream();
        foreach (var (name, value) in new[] { (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers") })
        {
            block.WriteByte(0x00); // literal without indexing, new name
            WriteString(block, name);
            WriteString(block, value);
        }

        WriteFrame(ms, 0x1, 0x4, 1, block.ToArray()); // HEADERS, END_HEADERS
        WriteFrame(ms, 0x0, 0x1, 1, body); // DATA, END_STREAM
        return ms.ToArray();
    }

    private static void WriteString(Stream s, string text)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        if (bytes.Length >= 127)
        {
            throw new ArgumentException("too long for this tiny encoder");
        }

        s.WriteByte((byte)bytes.Length);
        s.Write(bytes);
    }

    private static void WriteFrame(Stream s, byte type, byte flags, int streamId, byte[] payload)
    {
        s.WriteByte((byte)(payload.Length >> 16));
        s.WriteByte((byte)(payload.Length >> 8));
        s.WriteByte((byte)payload.Length);
        s.WriteByte(type);
        s.WriteByte(flags);
        Span<byte> id = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(id, streamId);
        s.Write(id);
        s.Write(payload);
    }
}
