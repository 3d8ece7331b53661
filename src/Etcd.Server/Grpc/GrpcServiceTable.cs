using System.Collections.Frozen;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using GrpcCore = global::Grpc.Core;

namespace Etcd.Server.Grpc;

/// <summary>
/// The gRPC methods a <see cref="GrpcHttpServer"/> serves, filled by the <c>BindService</c> methods Grpc.Tools generates
/// for each service of our <c>.proto</c> files (e.g. <c>KV.BindService(table, new KvService(server))</c>): one entry per
/// method the implementation overrides. A method left to the generated base is not served, so it gets grpc-go's
/// <c>unknown method M for service S</c>, as etcd 3.4 answers a method its API does not have (e.g. 3.5's Downgrade).
/// Grpc.AspNetCore serves the entries (<see cref="GrpcServices"/>) and the JSON gateway calls the same handlers.
/// Filled once at start-up (not thread-safe while filling), then frozen at the first lookup and read concurrently.
/// </summary>
public sealed class GrpcServiceTable : GrpcCore.ServiceBinderBase
{
    private readonly Dictionary<string, GrpcServiceMethod> _building = new(StringComparer.Ordinal);
    private FrozenDictionary<string, GrpcServiceMethod>? _frozen;

    /// <summary>The method served at <paramref name="path"/> (<c>/etcdserverpb.KV/Range</c>); null when none.</summary>
    public GrpcServiceMethod? Find(string path)
    {
        var table = _frozen ??= _building.ToFrozenDictionary(StringComparer.Ordinal);
        return table.TryGetValue(path, out var m) ? m : null;
    }

    /// <summary>Every served method.</summary>
    public IEnumerable<GrpcServiceMethod> Methods => _frozen?.Values ?? (IEnumerable<GrpcServiceMethod>)_building.Values;

    /// <inheritdoc/>
    public override void AddMethod<TRequest, TResponse>(GrpcCore.Method<TRequest, TResponse> method, GrpcCore.UnaryServerMethod<TRequest, TResponse>? handler)
        => Add(method, handler, (h, req, ctx) => Unwrap(((GrpcCore.UnaryServerMethod<TRequest, TResponse>)h)((TRequest)req, ctx)));

    /// <inheritdoc/>
    public override void AddMethod<TRequest, TResponse>(GrpcCore.Method<TRequest, TResponse> method, GrpcCore.ClientStreamingServerMethod<TRequest, TResponse>? handler)
        => Add(method, handler, null);

    /// <inheritdoc/>
    public override void AddMethod<TRequest, TResponse>(GrpcCore.Method<TRequest, TResponse> method, GrpcCore.ServerStreamingServerMethod<TRequest, TResponse>? handler)
        => Add(method, handler, null);

    /// <inheritdoc/>
    public override void AddMethod<TRequest, TResponse>(GrpcCore.Method<TRequest, TResponse> method, GrpcCore.DuplexStreamingServerMethod<TRequest, TResponse>? handler)
        => Add(method, handler, null);

    private static async Task<IMessage> Unwrap<TResponse>(Task<TResponse> response)
        => (IMessage)(await response.ConfigureAwait(false))!;

    private void Add<TRequest, TResponse>(GrpcCore.Method<TRequest, TResponse> method, Delegate? handler, Func<Delegate, IMessage, GrpcCore.ServerCallContext, Task<IMessage>>? unary)
        where TRequest : class
        where TResponse : class
    {
        if (_frozen is not null)
        {
            throw new InvalidOperationException("the service table is already in use");
        }

        if (handler is null || !IsOverridden(handler))
        {
            return;
        }

        if (typeof(TRequest).GetProperty("Parser")?.GetValue(null) is not MessageParser parser)
        {
            throw new ArgumentException($"{method.FullName}: {typeof(TRequest)} is not a generated protobuf message", nameof(method));
        }

        _building[method.FullName] = new GrpcServiceMethod<TRequest, TResponse>(method, handler, parser, unary);
    }

    /// <summary>Whether the implementation behind <paramref name="handler"/> overrides the generated base's method.</summary>
    private static bool IsOverridden(Delegate handler)
    {
        if (handler.Target is null)
        {
            return true;
        }

        var parameters = handler.Method.GetParameters().Select(p => p.ParameterType).ToArray();
        var declared = handler.Target.GetType().GetMethod(handler.Method.Name, parameters)?.DeclaringType;
        return declared is not { IsAbstract: true };
    }
}

/// <summary>One served method: its descriptor, its handler and, for the JSON gateway, its request parser. Immutable.</summary>
public abstract class GrpcServiceMethod
{
    private readonly Func<Delegate, IMessage, GrpcCore.ServerCallContext, Task<IMessage>>? _unary;

    private protected GrpcServiceMethod(GrpcCore.IMethod method, Delegate handler, MessageParser requestParser, Func<Delegate, IMessage, GrpcCore.ServerCallContext, Task<IMessage>>? unary)
    {
        Method = method;
        Handler = handler;
        RequestParser = requestParser;
        _unary = unary;
    }

    /// <summary>The generated descriptor (service, name, full name, call type).</summary>
    public GrpcCore.IMethod Method { get; }

    /// <summary>
    /// The implementation's handler: a <see cref="GrpcCore.UnaryServerMethod{TRequest,TResponse}"/>,
    /// <see cref="GrpcCore.ServerStreamingServerMethod{TRequest,TResponse}"/>,
    /// <see cref="GrpcCore.ClientStreamingServerMethod{TRequest,TResponse}"/> or
    /// <see cref="GrpcCore.DuplexStreamingServerMethod{TRequest,TResponse}"/> matching <see cref="GrpcCore.IMethod.Type"/>.
    /// </summary>
    public Delegate Handler { get; }

    /// <summary>Parser of the request message.</summary>
    public MessageParser RequestParser { get; }

    /// <summary>Calls a unary handler with a parsed request (the JSON gateway's path; no interceptors run).</summary>
    public Task<IMessage> InvokeUnaryAsync(IMessage request, GrpcCore.ServerCallContext context)
        => _unary is null ? throw new InvalidOperationException($"{Method.FullName} is not unary") : _unary(Handler, request, context);

    /// <summary>Adds the method to Grpc.AspNetCore's model of <see cref="EtcdGrpcService"/> with <paramref name="marshallers"/>' marshallers.</summary>
    internal abstract void Bind(ServiceMethodProviderContext<EtcdGrpcService> context, GrpcMarshallers marshallers);
}

/// <summary>The typed form of <see cref="GrpcServiceMethod"/>.</summary>
internal sealed class GrpcServiceMethod<TRequest, TResponse>(
    GrpcCore.IMethod descriptor,
    Delegate handler,
    MessageParser requestParser,
    Func<Delegate, IMessage, GrpcCore.ServerCallContext, Task<IMessage>>? unary)
    : GrpcServiceMethod(descriptor, handler, requestParser, unary)
    where TRequest : class
    where TResponse : class
{
    internal override void Bind(ServiceMethodProviderContext<EtcdGrpcService> context, GrpcMarshallers marshallers)
    {
        var method = (GrpcCore.Method<TRequest, TResponse>)Method;
        var descriptor = new GrpcCore.Method<TRequest, TResponse>(
            method.Type,
            method.ServiceName,
            method.Name,
            marshallers.Requests<TRequest>(method, RequestParser),
            marshallers.Responses<TResponse>(method));
        var metadata = new List<object>();
        switch (Handler)
        {
            case GrpcCore.UnaryServerMethod<TRequest, TResponse> unary:
                context.AddUnaryMethod(descriptor, metadata, (_, request, ctx) => unary(request, ctx));
                break;
            case GrpcCore.ServerStreamingServerMethod<TRequest, TResponse> serverStreaming:
                context.AddServerStreamingMethod(descriptor, metadata, (_, request, writer, ctx) => serverStreaming(request, writer, ctx));
                break;
            case GrpcCore.ClientStreamingServerMethod<TRequest, TResponse> clientStreaming:
                context.AddClientStreamingMethod(descriptor, metadata, (_, reader, ctx) => clientStreaming(reader, ctx));
                break;
            case GrpcCore.DuplexStreamingServerMethod<TRequest, TResponse> duplex:
                context.AddDuplexStreamingMethod(descriptor, metadata, (_, reader, writer, ctx) => duplex(reader, writer, ctx));
                break;
        }
    }
}
