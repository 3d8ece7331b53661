using System.Collections.Frozen;
using Google.Protobuf;

namespace Etcd.Api.Grpc;

/// <summary>Serves a unary call.</summary>
public delegate ValueTask<TResponse> UnaryHandler<TRequest, TResponse>(TRequest request, ServerCallContext context);

/// <summary>Serves a server-streaming call: writes any number of responses, then returns.</summary>
public delegate Task ServerStreamingHandler<TRequest, TResponse>(TRequest request, IAsyncStreamWriter<TResponse> responses, ServerCallContext context);

/// <summary>Serves a client-streaming call.</summary>
public delegate ValueTask<TResponse> ClientStreamingHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requests, ServerCallContext context);

/// <summary>Serves a bidirectional-streaming call.</summary>
public delegate Task DuplexStreamingHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requests, IAsyncStreamWriter<TResponse> responses, ServerCallContext context);

/// <summary>
/// One registered method with its handler, in a transport-neutral form: the HTTP/2 gRPC endpoint and the
/// JSON gateway both dispatch through it. A handler fails a call by throwing <see cref="RpcException"/>
/// (etcd errors are <see cref="EtcdException"/>, a subclass); any other exception becomes
/// <see cref="StatusCode.Unknown"/> with the exception message.
/// </summary>
public sealed class ServiceMethod
{
    internal ServiceMethod(IMethod method, Delegate handler)
    {
        Method = method;
        Handler = handler;
    }

    /// <summary>The method descriptor.</summary>
    public IMethod Method { get; }

    /// <summary>
    /// The typed handler: a <see cref="UnaryHandler{TRequest,TResponse}"/>,
    /// <see cref="ServerStreamingHandler{TRequest,TResponse}"/>, <see cref="ClientStreamingHandler{TRequest,TResponse}"/>
    /// or <see cref="DuplexStreamingHandler{TRequest,TResponse}"/> matching <see cref="IMethod.Type"/>.
    /// </summary>
    public Delegate Handler { get; }

    /// <summary>Invokes a unary handler with an already-parsed request (used by the JSON gateway).</summary>
    public ValueTask<IMessage> InvokeUnaryAsync(IMessage request, ServerCallContext context) => _unary!(request, context);

    internal Func<IMessage, ServerCallContext, ValueTask<IMessage>>? _unary;
}

/// <summary>
/// The table of served gRPC methods, keyed by full path (<c>/etcdserverpb.KV/Range</c>). Built once at
/// start-up (not thread-safe while building), then frozen and read concurrently.
/// </summary>
public sealed class ServiceRegistry
{
    private readonly Dictionary<string, ServiceMethod> _building = new(StringComparer.Ordinal);
    private FrozenDictionary<string, ServiceMethod>? _frozen;

    /// <summary>Registers a unary method.</summary>
    public ServiceRegistry MapUnary<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryHandler<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var sm = new ServiceMethod(method, handler)
        {
            _unary = async (req, ctx) => await handler((TRequest)req, ctx).ConfigureAwait(false),
        };
        return Add(sm);
    }

    /// <summary>Registers a server-streaming method.</summary>
    public ServiceRegistry MapServerStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingHandler<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => Add(new ServiceMethod(method, handler));

    /// <summary>Registers a client-streaming method.</summary>
    public ServiceRegistry MapClientStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingHandler<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => Add(new ServiceMethod(method, handler));

    /// <summary>Registers a bidirectional-streaming method.</summary>
    public ServiceRegistry MapDuplexStreaming<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingHandler<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
        => Add(new ServiceMethod(method, handler));

    /// <summary>Finds the method served at <paramref name="path"/>; null when none (the caller answers Unimplemented).</summary>
    public ServiceMethod? Find(string path)
    {
        var table = _frozen ??= _building.ToFrozenDictionary(StringComparer.Ordinal);
        return table.TryGetValue(path, out var m) ? m : null;
    }

    /// <summary>
    /// Runs before every gRPC call's handler (see <see cref="ServerCallInterceptor"/>); null for none. Set while
    /// building, before the first call.
    /// </summary>
    public ServerCallInterceptor? Interceptor { get; set; }

    /// <summary>All registered methods.</summary>
    public IEnumerable<ServiceMethod> Methods => _frozen?.Values ?? (IEnumerable<ServiceMethod>)_building.Values;

    private ServiceRegistry Add(ServiceMethod m)
    {
        if (_frozen is not null)
        {
            throw new InvalidOperationException("the service registry is already in use");
        }

        _building[m.Method.FullName] = m;
        return this;
    }
}
