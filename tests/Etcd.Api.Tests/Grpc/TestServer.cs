using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Etcd.Server.Grpc;
using Google.Protobuf;
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

    public static async Task<TestServer> StartAsync(Action<ToyServices> map, RequestDelegate? fallback = null, GrpcHttpServerOptions? options = null, GrpcChannelOptions? channelOptions = null)
    {
        var toys = new ToyServices();
        map(toys);
        var registry = toys.Table;
        options ??= new GrpcHttpServerOptions { Urls = ["http://127.0.0.1:0"] };
        if (toys.Interceptors.Count > 0)
        {
            options = options with { Interceptors = [.. options.Interceptors, .. toys.Interceptors] };
        }

        fallback ??= async ctx =>
        {
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"fallback {ctx.Request.Protocol} {ctx.Request.Method} {ctx.Request.Path}");
        };
        var server = new GrpcHttpServer(options, registry, fallback);
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

/// <summary>
/// Toy services for transport tests: methods added straight to a <see cref="GrpcServiceTable"/> (as a generated
/// <c>BindService</c> would add them), with handlers written against the project's stream interfaces, plus the
/// Grpc.AspNetCore interceptors to run.
/// </summary>
internal sealed class ToyServices
{
    public GrpcServiceTable Table { get; } = new();

    public List<global::Grpc.Core.Interceptors.Interceptor> Interceptors { get; } = [];

    public ToyServices MapUnary<TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TRequest, global::Grpc.Core.ServerCallContext, ValueTask<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        Table.AddMethod(Descriptor(method), (global::Grpc.Core.UnaryServerMethod<TRequest, TResponse>)((req, ctx) => handler(req, ctx).AsTask()));
        return this;
    }

    public ToyServices MapServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, Func<TRequest, IAsyncStreamWriter<TResponse>, global::Grpc.Core.ServerCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        Table.AddMethod(Descriptor(method), (global::Grpc.Core.ServerStreamingServerMethod<TRequest, TResponse>)((req, w, ctx) => handler(req, new Writer<TResponse>(w), ctx)));
        return this;
    }

    public ToyServices MapClientStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, Func<IAsyncStreamReader<TRequest>, global::Grpc.Core.ServerCallContext, ValueTask<TResponse>> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        Table.AddMethod(Descriptor(method), (global::Grpc.Core.ClientStreamingServerMethod<TRequest, TResponse>)((r, ctx) => handler(new Reader<TRequest>(r), ctx).AsTask()));
        return this;
    }

    public ToyServices MapDuplexStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, Func<IAsyncStreamReader<TRequest>, IAsyncStreamWriter<TResponse>, global::Grpc.Core.ServerCallContext, Task> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        Table.AddMethod(Descriptor(method), (global::Grpc.Core.DuplexStreamingServerMethod<TRequest, TResponse>)((r, w, ctx) => handler(new Reader<TRequest>(r), new Writer<TResponse>(w), ctx)));
        return this;
    }

    private static global::Grpc.Core.Method<TRequest, TResponse> Descriptor<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => new(
            (global::Grpc.Core.MethodType)method.Type,
            method.ServiceName,
            method.Name,
            global::Grpc.Core.Marshallers.Create(m => m.ToByteArray(), b => method.RequestParser.ParseFrom(b)),
            global::Grpc.Core.Marshallers.Create(m => m.ToByteArray(), b => method.ResponseParser.ParseFrom(b)));

    private sealed class Reader<T>(global::Grpc.Core.IAsyncStreamReader<T> inner) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public ValueTask<bool> MoveNext(CancellationToken cancellationToken = default) => new(inner.MoveNext(cancellationToken));
    }

    private sealed class Writer<T>(global::Grpc.Core.IAsyncStreamWriter<T> inner) : IAsyncStreamWriter<T>
    {
        public ValueTask WriteAsync(T message, CancellationToken cancellationToken = default) => new(inner.WriteAsync(message, cancellationToken));
    }
}
