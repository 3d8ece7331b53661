using System.Diagnostics;
using Grpc.AspNetCore.Server.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Grpc;

/// <summary>
/// The Grpc.AspNetCore side of a <see cref="GrpcHttpServer"/>: its service provider (logging, routing, gRPC with
/// the registry's methods bound by <see cref="RegistryMethodProvider"/>) and the request pipeline gRPC requests
/// go through (routing to <see cref="EtcdGrpcService"/>'s methods; anything unmatched gets grpc-go's Unimplemented).
/// </summary>
internal static class GrpcServices
{
    /// <summary>
    /// The server's services. Grpc.AspNetCore's message size limits are off (the marshallers enforce ours with
    /// grpc-go's text), unknown services pass to our answer, and its per-call log lines (Information: every non-OK
    /// status) stay out of etcd's log: only its warnings reach <paramref name="loggerFactory"/>.
    /// </summary>
    public static ServiceProvider Build(ILoggerFactory loggerFactory, GrpcCallHandler calls)
    {
        var services = new ServiceCollection();
        services.AddLogging(b =>
        {
            b.ClearProviders();
            b.AddProvider(new ForwardingLoggerProvider(loggerFactory));
            b.SetMinimumLevel(LogLevel.Trace);
            b.AddFilter("Grpc", LogLevel.Warning);
            b.AddFilter("Microsoft.AspNetCore.Routing", LogLevel.Warning);
        });
        var listener = new DiagnosticListener("Microsoft.AspNetCore");
        services.AddSingleton(listener);
        services.AddSingleton<DiagnosticSource>(listener);
        services.AddRouting();
        services.AddGrpc(o =>
        {
            o.IgnoreUnknownServices = true;
            o.MaxReceiveMessageSize = null;
            o.MaxSendMessageSize = null;
        });
        services.AddSingleton<EtcdGrpcService>();
        services.AddSingleton<IServiceMethodProvider<EtcdGrpcService>>(new RegistryMethodProvider(calls));
        return services.BuildServiceProvider();
    }

    /// <summary>The pipeline of gRPC requests (HTTP/2, <c>application/grpc*</c>).</summary>
    public static RequestDelegate Pipeline(IServiceProvider services, GrpcCallHandler calls)
    {
        var app = new ApplicationBuilder(services);
        app.UseRouting();
        app.UseEndpoints(e => e.MapGrpcService<EtcdGrpcService>());
        app.Run(calls.UnknownMethodAsync);
        return app.Build();
    }

    /// <summary>Hands the service provider's loggers to the server's own logger factory.</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory target) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => target.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
