using Etcd.Api.Grpc;
using Etcd.Client.Grpc;
using Google.Protobuf.WellKnownTypes;

namespace Etcd.Api.Tests.Grpc;

/// <summary>
/// Request metadata as the auth work reads it: a registry interceptor and a handler both see the client's
/// <c>token</c> and <c>authorization</c> entries through <see cref="global::Grpc.Core.ServerCallContext.RequestHeaders"/>, and an
/// interceptor's etcd error (<c>etcdserver: invalid auth token</c>) reaches the client with its code and text.
/// </summary>
public sealed class CallMetadataTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static StringValue S(string s) => new() { Value = s };

    /// <summary>Refuses calls whose <c>token</c> is not "good" (an auth token check's shape).</summary>
    private sealed class TokenInterceptor : global::Grpc.Core.Interceptors.Interceptor
    {
        public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, global::Grpc.Core.ServerCallContext context, global::Grpc.Core.UnaryServerMethod<TRequest, TResponse> continuation) =>
            context.RequestHeaders.GetValue("token") == "good" ? continuation(request, context) : throw EtcdErrors.InvalidAuthToken.ToException();
    }

    [Fact]
    public async Task TokenMetadata_ReachesInterceptorAndHandler()
    {
        await using var t = await TestServer.StartAsync(r =>
        {
            r.Interceptors.Add(new TokenInterceptor());
            r.MapUnary(EchoMethods.Unary, (req, ctx) => ValueTask.FromResult(S($"{ctx.RequestHeaders.GetValue("token")}|{ctx.RequestHeaders.GetValue("authorization")}")));
        });

        var ok = await t.Channel.UnaryAsync(EchoMethods.Unary, S("x"), new CallOptions { Headers = [new("token", "good"), new("authorization", "Bearer b")] }).WaitAsync(Bound);
        Assert.Equal("good|Bearer b", ok.Value);

        var refused = await Assert.ThrowsAnyAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Unary, S("x"), new CallOptions { Headers = [new("token", "bad")] }).WaitAsync(Bound));
        Assert.Equal(StatusCode.Unauthenticated, refused.Status);
        Assert.Equal("etcdserver: invalid auth token", refused.Detail);
    }
}
