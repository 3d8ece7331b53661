using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Server.Grpc;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;

namespace Etcd.Api.Tests.Grpc;

/// <summary>Test methods over StringValue messages.</summary>
internal static class EchoMethods
{
    public const string Service = "test.Echo";
    public static readonly Method<StringValue, StringValue> Unary = new(MethodType.Unary, Service, "Unary");
    public static readonly Method<StringValue, StringValue> ServerStream = new(MethodType.ServerStreaming, Service, "ServerStream");
    public static readonly Method<StringValue, StringValue> ClientStream = new(MethodType.ClientStreaming, Service, "ClientStream");
    public static readonly Method<StringValue, StringValue> Duplex = new(MethodType.DuplexStreaming, Service, "Duplex");
    public static readonly Method<StringValue, StringValue> Missing = new(MethodType.Unary, Service, "Missing");
    public static readonly Method<StringValue, StringValue> OtherService = new(MethodType.Unary, "test.Nope", "Unary");
}

/// <summary>A GrpcHttpServer on 127.0.0.1:0 and a channel to it; disposed together.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private TestServer(GrpcHttpServer server, GrpcChannel channel)
    {
        Server = server;
        Channel = channel;
    }

    public GrpcHttpServer Server { get; }

    public GrpcChannel Channel { get; }

    public Uri Url => Server.BoundUrls[0];

    public static async Task<TestServer> StartAsync(Action<ServiceRegistry> map, RequestDelegate? fallback = null, GrpcHttpServerOptions? options = null, GrpcChannelOptions? channelOptions = null)
    {
        var registry = new ServiceRegistry();
        map(registry);
        fallback ??= async ctx =>
        {
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"fallback {ctx.Request.Protocol} {ctx.Request.Method} {ctx.Request.Path}");
        };
        var server = new GrpcHttpServer(options ?? new GrpcHttpServerOptions { Urls = ["http://127.0.0.1:0"] }, registry, fallback);
        await server.StartAsync();
        var channel = GrpcChannel.ForAddress(server.BoundUrls[0], channelOptions);
        return new TestServer(server, channel);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}
