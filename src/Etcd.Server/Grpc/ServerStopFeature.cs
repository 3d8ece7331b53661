namespace Etcd.Server.Grpc;

/// <summary>
/// Set by <see cref="GrpcHttpServer"/> on every request it hands to its fallback handler: <see cref="Stopping"/> fires
/// when the server begins a graceful stop, so a handler serving a response that would never end by itself (the JSON
/// gateway's watch, keep-alive and observe streams) can end it then; ordinary requests ignore it and finish.
/// </summary>
public interface IServerStopFeature
{
    /// <summary>Fires once, when <see cref="GrpcHttpServer.StopAsync"/> begins.</summary>
    CancellationToken Stopping { get; }
}

/// <summary>The feature's one implementation.</summary>
internal sealed class ServerStopFeature(CancellationToken stopping) : IServerStopFeature
{
    public CancellationToken Stopping => stopping;
}
