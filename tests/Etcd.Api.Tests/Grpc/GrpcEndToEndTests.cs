using System.Net;
using Etcd.Api.Grpc;
using Google.Protobuf.WellKnownTypes;

namespace Etcd.Api.Tests.Grpc;

public sealed class GrpcEndToEndTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Unary_RoundTrip()
    {
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(new StringValue { Value = "echo:" + req.Value })));
        var resp = await t.Channel.UnaryAsync(EchoMethods.Unary, new StringValue { Value = "hi" }).WaitAsync(Bound);
        Assert.Equal("echo:hi", resp.Value);
        var empty = await t.Channel.UnaryAsync(EchoMethods.Unary, new StringValue()).WaitAsync(Bound);
        Assert.Equal("echo:", empty.Value);
    }

    [Fact]
    public async Task Http11_OnSamePort_ReachesFallback()
    {
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(req)));
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(t.Url, "/health")) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await http.SendAsync(request).WaitAsync(Bound);
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("fallback HTTP/1.1 GET /health", await response.Content.ReadAsStringAsync());

        // gRPC still works on the same port afterwards.
        var resp = await t.Channel.UnaryAsync(EchoMethods.Unary, new StringValue { Value = "x" }).WaitAsync(Bound);
        Assert.Equal("x", resp.Value);
    }
}
