using Google.Protobuf;

namespace Etcd.Api.Grpc;

/// <summary>The four gRPC call shapes.</summary>
public enum MethodType
{
    /// <summary>One request, one response.</summary>
    Unary,
    /// <summary>A request stream, one response.</summary>
    ClientStreaming,
    /// <summary>One request, a response stream.</summary>
    ServerStreaming,
    /// <summary>Both directions stream.</summary>
    DuplexStreaming,
}

/// <summary>Untyped view of a gRPC method, for routing tables.</summary>
public interface IMethod
{
    /// <summary>Fully-qualified service name, e.g. <c>etcdserverpb.KV</c>.</summary>
    string ServiceName { get; }

    /// <summary>Method name, e.g. <c>Range</c>.</summary>
    string Name { get; }

    /// <summary>The HTTP/2 path, <c>/etcdserverpb.KV/Range</c>.</summary>
    string FullName { get; }

    /// <summary>The call shape.</summary>
    MethodType Type { get; }

    /// <summary>Parser of the request message.</summary>
    MessageParser RequestParser { get; }

    /// <summary>Parser of the response message.</summary>
    MessageParser ResponseParser { get; }
}

/// <summary>A typed gRPC method descriptor. Immutable; shared by server and client.</summary>
/// <typeparam name="TRequest">The request message.</typeparam>
/// <typeparam name="TResponse">The response message.</typeparam>
public sealed class Method<TRequest, TResponse> : IMethod
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    /// <summary>Creates a descriptor for <c>/{serviceName}/{name}</c>.</summary>
    public Method(MethodType type, string serviceName, string name)
    {
        Type = type;
        ServiceName = serviceName;
        Name = name;
        FullName = "/" + serviceName + "/" + name;
    }

    /// <inheritdoc />
    public string ServiceName { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string FullName { get; }

    /// <inheritdoc />
    public MethodType Type { get; }

    /// <summary>Typed request parser.</summary>
    public MessageParser<TRequest> RequestParser { get; } = new(() => new TRequest());

    /// <summary>Typed response parser.</summary>
    public MessageParser<TResponse> ResponseParser { get; } = new(() => new TResponse());

    MessageParser IMethod.RequestParser => RequestParser;

    MessageParser IMethod.ResponseParser => ResponseParser;

    /// <inheritdoc />
    public override string ToString() => FullName;
}
