using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Server.Services;
using Google.Protobuf.WellKnownTypes;

namespace Etcd.Api.Tests.Grpc;

/// <summary>
/// The <c>hasleader</c> metadata through the gRPC dispatcher's interceptor (etcd's v3rpc interceptors): unary calls
/// refused without a leader, streams ended once leaderless for three checks in a row.
/// </summary>
public sealed class RequireLeaderTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly CallOptions RequireLeader = new() { Headers = [new("hasleader", "true")], Timeout = Bound };

    private static StringValue S(string s) => new() { Value = s };

    private static Task<TestServer> StartAsync(RequireLeaderInterceptor interceptor) => TestServer.StartAsync(r =>
    {
        r.Interceptors.Add(interceptor);
        r.MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(S("echo:" + req.Value)))
            .MapServerStreaming(EchoMethods.ServerStream, async (req, responses, ctx) =>
            {
                await responses.WriteAsync(S("started"));
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            })
            .MapDuplexStreaming(EchoMethods.Duplex, async (requests, responses, ctx) =>
            {
                while (await requests.MoveNext(ctx.CancellationToken))
                {
                    await responses.WriteAsync(S("re:" + requests.Current.Value));
                }
            });
    });

    [Fact]
    public async Task Unary_WithHasLeader_FailsWhileLeaderless()
    {
        var hasLeader = false;
        using var interceptor = new RequireLeaderInterceptor(() => Volatile.Read(ref hasLeader), TimeSpan.FromMinutes(1));
        await using var t = await StartAsync(interceptor);

        var e = await Assert.ThrowsAnyAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("a"), RequireLeader));
        Assert.Equal(StatusCode.Unavailable, e.Status);
        Assert.Equal("etcdserver: no leader", e.Detail);

        // Without the metadata the member answers anyway.
        Assert.Equal("echo:b", (await t.Channel.UnaryAsync(EchoMethods.Unary, S("b"), new CallOptions { Timeout = Bound })).Value);

        Volatile.Write(ref hasLeader, true);
        Assert.Equal("echo:c", (await t.Channel.UnaryAsync(EchoMethods.Unary, S("c"), RequireLeader)).Value);
    }

    [Fact]
    public async Task Stream_WithHasLeader_RefusedWhileLeaderless()
    {
        using var interceptor = new RequireLeaderInterceptor(() => false, TimeSpan.FromMinutes(1));
        await using var t = await StartAsync(interceptor);
        using var call = t.Channel.DuplexStreaming(EchoMethods.Duplex, RequireLeader);
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => call.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal("etcdserver: no leader", e.Detail);
    }

    [Fact]
    public async Task Stream_WithHasLeader_EndsWithNoLeaderWhenLeadershipIsLost()
    {
        var hasLeader = true;
        var interval = TimeSpan.FromMilliseconds(50);
        using var interceptor = new RequireLeaderInterceptor(() => Volatile.Read(ref hasLeader), interval);
        await using var t = await StartAsync(interceptor);

        using var guarded = t.Channel.ServerStreaming(EchoMethods.ServerStream, S(""), RequireLeader);
        using var unguarded = t.Channel.ServerStreaming(EchoMethods.ServerStream, S(""), new CallOptions());
        Assert.True(await guarded.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.True(await unguarded.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));

        var lostAt = DateTime.UtcNow;
        Volatile.Write(ref hasLeader, false);
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => guarded.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
        Assert.Equal(StatusCode.Unavailable, e.Status);
        Assert.Equal("etcdserver: no leader", e.Detail);

        // Not before three leaderless checks (etcd's maxNoLeaderCnt), one per interval.
        Assert.True(DateTime.UtcNow - lostAt >= interval * 2, $"ended after {DateTime.UtcNow - lostAt}");

        // The stream without the metadata lives on.
        var next = unguarded.ResponseStream.MoveNext().AsTask();
        Assert.False(next.IsCompleted);
        Volatile.Write(ref hasLeader, true);
        using var again = t.Channel.ServerStreaming(EchoMethods.ServerStream, S(""), RequireLeader);
        Assert.True(await again.ResponseStream.MoveNext().AsTask().WaitAsync(Bound));
    }
}
