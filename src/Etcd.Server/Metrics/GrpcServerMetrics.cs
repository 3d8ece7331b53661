using System.Collections.Concurrent;
using Etcd.Api.Grpc;
using Prometheus;

namespace Etcd.Server.Metrics;

/// <summary>
/// The client-facing gRPC families: go-grpc-prometheus' server metrics as etcd registers them
/// (<c>grpc_server_started_total</c>, <c>grpc_server_handled_total</c>, <c>grpc_server_msg_received_total</c>,
/// <c>grpc_server_msg_sent_total</c>, and with <c>--metrics extensive</c> <c>grpc_server_handling_seconds</c>), and
/// etcd's <c>etcdserver/api/v3rpc/metrics.go</c> (bytes to and from clients, requests per client API version, stream
/// failures). Every served method is initialised with zeros for every code at <see cref="Register"/>, as
/// go-grpc-prometheus does. The gRPC dispatcher asks <see cref="For"/> once per call; the children it returns are
/// cached per method. Thread-safe.
/// </summary>
public sealed class GrpcServerMetrics
{
    /// <summary>grpc-go's code names, indexed by the numeric code (the <c>grpc_code</c> label values).</summary>
    private static readonly string[] s_codeNames =
    [
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
        "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable",
        "DataLoss", "Unauthenticated",
    ];

    private readonly Counter _started;
    private readonly Counter _handled;
    private readonly Counter _received;
    private readonly Counter _sent;
    private readonly Histogram? _handling;
    private readonly Counter _clientRequests;
    private readonly Counter _streamFailures;
    private readonly ConcurrentDictionary<string, MethodStats> _methods = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Type, string Version), Counter.Child> _requests = new();

    internal GrpcServerMetrics(IMetricFactory f, bool extensive)
    {
        // Label names in the order Go's client writes them (sorted), so the exposition reads as etcd's byte for byte.
        string[] labels = ["grpc_method", "grpc_service", "grpc_type"];
        _started = f.CreateCounter("grpc_server_started_total", "Total number of RPCs started on the server.", labels);
        _handled = f.CreateCounter("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", ["grpc_code", .. labels]);
        _received = f.CreateCounter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", labels);
        _sent = f.CreateCounter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", labels);
        if (extensive)
        {
            _handling = f.CreateHistogram(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                new HistogramConfiguration { LabelNames = labels, Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        }

        ClientSentBytes = f.CreateCounter("etcd_network_client_grpc_sent_bytes_total", "The total number of bytes sent to grpc clients.");
        ClientReceivedBytes = f.CreateCounter("etcd_network_client_grpc_received_bytes_total", "The total number of bytes received from grpc clients.");
        _streamFailures = f.CreateCounter("etcd_network_server_stream_failures_total", "The total number of stream failures from the local server.", ["API", "Type"]);
        _clientRequests = f.CreateCounter("etcd_server_client_requests_total", "The total number of client requests per client version.", ["client_api_version", "type"]);
    }

    /// <summary><c>etcd_network_client_grpc_sent_bytes_total</c>: message bytes sent to clients.</summary>
    public Counter ClientSentBytes { get; }

    /// <summary><c>etcd_network_client_grpc_received_bytes_total</c>: message bytes received from clients.</summary>
    public Counter ClientReceivedBytes { get; }

    /// <summary>Initialises every series of <paramref name="methods"/> (zero for each code), as go-grpc-prometheus' Register does.</summary>
    public void Register(IEnumerable<global::Grpc.Core.IMethod> methods)
    {
        ArgumentNullException.ThrowIfNull(methods);
        foreach (var m in methods)
        {
            _ = For(m);
        }
    }

    /// <summary>The cached children of <paramref name="method"/>.</summary>
    public MethodStats For(global::Grpc.Core.IMethod method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return _methods.GetOrAdd(method.FullName, static (_, a) => new MethodStats(a.Self, a.Method), (Self: this, Method: method));
    }

    /// <summary>Counts one request in <c>etcd_server_client_requests_total</c> (<paramref name="type"/> "unary" or "stream"; version "unknown" when the client sent none).</summary>
    public void ClientRequest(string type, string? clientApiVersion)
        => _requests.GetOrAdd((type, clientApiVersion ?? "unknown"), static (k, c) => c.WithLabels(k.Version, k.Type), _clientRequests).Inc();

    /// <summary>A watch or lease keep-alive stream failed to <paramref name="type"/> ("send", "receive"); <paramref name="api"/> "watch" or "lease-keepalive".</summary>
    public void StreamFailed(string type, string api) => _streamFailures.WithLabels(api, type).Inc();

    /// <summary>
    /// Whether <paramref name="e"/> ending a stream's receive or send is a stream failure in etcd's sense: anything but
    /// the client going away or its deadline passing (etcd's <c>isClientCtxErr</c>).
    /// </summary>
    public static bool IsStreamFailure(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.Status is not (StatusCode.Cancelled or StatusCode.DeadlineExceeded);
    }

    private static string TypeName(global::Grpc.Core.MethodType t) => t switch
    {
        global::Grpc.Core.MethodType.Unary => "unary",
        global::Grpc.Core.MethodType.ClientStreaming => "client_stream",
        global::Grpc.Core.MethodType.ServerStreaming => "server_stream",
        _ => "bidi_stream",
    };

    /// <summary>One method's children. Thread-safe.</summary>
    public sealed class MethodStats
    {
        private readonly Counter.Child[] _handled;
        private readonly Histogram.Child? _handling;
        private readonly Counter _sentBytes;
        private readonly Counter _receivedBytes;

        internal MethodStats(GrpcServerMetrics owner, global::Grpc.Core.IMethod method)
        {
            var type = TypeName(method.Type);
            IsUnary = method.Type == global::Grpc.Core.MethodType.Unary;
            Started = owner._started.WithLabels(method.Name, method.ServiceName, type);
            Received = owner._received.WithLabels(method.Name, method.ServiceName, type);
            Sent = owner._sent.WithLabels(method.Name, method.ServiceName, type);
            _handled = new Counter.Child[s_codeNames.Length];
            for (var i = 0; i < s_codeNames.Length; i++)
            {
                _handled[i] = owner._handled.WithLabels(s_codeNames[i], method.Name, method.ServiceName, type);
            }

            _handling = owner._handling?.WithLabels(method.Name, method.ServiceName, type);
            _sentBytes = owner.ClientSentBytes;
            _receivedBytes = owner.ClientReceivedBytes;
        }

        /// <summary>Whether the method is unary (for <c>etcd_server_client_requests_total</c>'s type).</summary>
        public bool IsUnary { get; }

        /// <summary><c>grpc_server_started_total</c> of this method.</summary>
        public Counter.Child Started { get; }

        /// <summary><c>grpc_server_msg_received_total</c> of this method.</summary>
        public Counter.Child Received { get; }

        /// <summary><c>grpc_server_msg_sent_total</c> of this method.</summary>
        public Counter.Child Sent { get; }

        /// <summary>One message of <paramref name="bytes"/> payload bytes arrived.</summary>
        public void MessageReceived(long bytes)
        {
            Received.Inc();
            _receivedBytes.Inc(bytes);
        }

        /// <summary>One message of <paramref name="bytes"/> payload bytes was sent.</summary>
        public void MessageSent(long bytes)
        {
            Sent.Inc();
            _sentBytes.Inc(bytes);
        }

        /// <summary>The call started at <paramref name="startTimestamp"/> (<see cref="System.Diagnostics.Stopwatch"/>) ended with <paramref name="status"/>.</summary>
        public void Handled(StatusCode status, long startTimestamp)
        {
            var code = (int)status;
            _handled[code >= 0 && code < _handled.Length ? code : (int)StatusCode.Unknown].Inc();
            _handling?.Observe(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
        }
    }
}
