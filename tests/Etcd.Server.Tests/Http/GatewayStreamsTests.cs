using Etcd.Server.Grpc;
using Etcd.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Etcd.Server.Tests.Http;

/// <summary>The gateway's share of --max-concurrent-streams: slots per listener, waiting, and the stop signal.</summary>
public sealed class GatewayStreamsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    private sealed class StopFeature(CancellationToken stopping) : IServerStopFeature
    {
        public CancellationToken Stopping => stopping;
    }

    private static DefaultHttpContext Request(int localPort, CancellationToken stopping = default)
    {
        var http = new DefaultHttpContext();
        http.Connection.LocalPort = localPort;
        http.Features.Set<IServerStopFeature>(new StopFeature(stopping));
        return http;
    }

    [Fact]
    public async Task AtTheLimit_TheNextRequestWaitsUntilASlotIsFreed_PerListener()
    {
        var streams = new GatewayStreams(2);
        var first = await streams.EnterAsync(Request(2379), longLived: true).WaitAsync(Bound);
        var second = await streams.EnterAsync(Request(2379), longLived: true).WaitAsync(Bound);
        Assert.NotNull(first);
        Assert.NotNull(second);

        var third = streams.EnterAsync(Request(2379), longLived: false);
        var otherListener = await streams.EnterAsync(Request(22379), longLived: false).WaitAsync(Bound);
        Assert.NotNull(otherListener);
        Assert.False(third.IsCompleted, "a third stream on a listener limited to 2 did not wait");

        first!.Dispose();
        Assert.NotNull(await third.WaitAsync(Bound));
    }

    [Fact]
    public async Task StopWhileWaiting_GivesNoSlot_AndEndsLongLivedStreams()
    {
        using var stop = new CancellationTokenSource();
        var streams = new GatewayStreams(1);
        var watch = Request(2379, stop.Token);
        using var held = await streams.EnterAsync(watch, longLived: true).WaitAsync(Bound);
        Assert.NotNull(held);
        Assert.False(watch.RequestAborted.IsCancellationRequested);

        var waiting = streams.EnterAsync(Request(2379, stop.Token), longLived: false);
        stop.Cancel();
        Assert.Null(await waiting.WaitAsync(Bound));
        Assert.True(watch.RequestAborted.IsCancellationRequested, "the long-lived stream was not told the server is stopping");
    }

    [Fact]
    public async Task ZeroOrMaxUint_IsUnlimited()
    {
        foreach (var limit in new long[] { 0, uint.MaxValue })
        {
            var streams = new GatewayStreams(limit);
            Assert.Equal(int.MaxValue, streams.Limit);
            for (var i = 0; i < 1000; i++)
            {
                Assert.NotNull(await streams.EnterAsync(Request(2379), longLived: false).WaitAsync(Bound));
            }
        }
    }
}
