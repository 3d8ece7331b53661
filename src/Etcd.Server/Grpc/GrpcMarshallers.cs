using Google.Protobuf;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Grpc;

/// <summary>
/// The protobuf marshallers a <see cref="GrpcHttpServer"/> binds its methods with, in place of the generated ones: they
/// read from and write to Grpc.AspNetCore's pooled buffers (no intermediate arrays), enforce
/// <see cref="GrpcHttpServerOptions.MaxReceiveMessageBytes"/> and <see cref="GrpcHttpServerOptions.MaxSendMessageBytes"/>
/// with grpc-go's status texts (<c>grpc: received message larger than max (N vs. M)</c>, which etcdctl prints; Grpc.AspNetCore's
/// own limits, worded otherwise, are off), and count <c>grpc_server_msg_*</c> and the client byte counters. Thread-safe.
/// </summary>
internal sealed class GrpcMarshallers(GrpcHttpServerOptions options)
{
    /// <summary>The request marshaller of <paramref name="method"/>.</summary>
    public GrpcCore.Marshaller<T> Requests<T>(GrpcCore.IMethod method, MessageParser parser)
        where T : class
    {
        var stats = options.Metrics?.For(method);
        var max = options.MaxReceiveMessageBytes;
        return GrpcCore.Marshallers.Create(
            (T message, GrpcCore.SerializationContext ctx) => Serialize(message, ctx, int.MaxValue, null),
            ctx =>
            {
                if (ctx.PayloadLength > max)
                {
                    throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.ResourceExhausted, GoStatus.ReceivedTooLarge(ctx.PayloadLength, max)));
                }

                stats?.MessageReceived(ctx.PayloadLength);
                try
                {
                    return (T)parser.ParseFrom(ctx.PayloadAsReadOnlySequence());
                }
                catch (InvalidProtocolBufferException e)
                {
                    throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.Internal, GoStatus.Unmarshal(e.Message)));
                }
            });
    }

    /// <summary>The response marshaller of <paramref name="method"/>.</summary>
    public GrpcCore.Marshaller<T> Responses<T>(GrpcCore.IMethod method)
        where T : class
    {
        var stats = options.Metrics?.For(method);
        var max = options.MaxSendMessageBytes;
        var parser = ((IMessage)Activator.CreateInstance(typeof(T))!).Descriptor.Parser;
        return GrpcCore.Marshallers.Create(
            (T message, GrpcCore.SerializationContext ctx) => Serialize(message, ctx, max, stats),
            ctx => (T)parser.ParseFrom(ctx.PayloadAsReadOnlySequence()));
    }

    private static void Serialize<T>(T message, GrpcCore.SerializationContext ctx, int max, Metrics.GrpcServerMetrics.MethodStats? stats)
    {
        var m = (IMessage)message!;
        var size = m.CalculateSize();
        if (size > max)
        {
            throw new GrpcCore.RpcException(new GrpcCore.Status(GrpcCore.StatusCode.ResourceExhausted, GoStatus.SendTooLarge(size, max)));
        }

        ctx.SetPayloadLength(size);
        m.WriteTo(ctx.GetBufferWriter());
        ctx.Complete();
        stats?.MessageSent(size);
    }
}
