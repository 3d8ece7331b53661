using System.Diagnostics;
using Grpc.AspNetCore.Server.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Grpc;

/// <summary>
/// The Grpc.AspNetCore side of a <see cref="GrpcHttpServer"/>: its service provider (logging, routing, gRPC with the
/// <see cref="GrpcServiceTable"/>'s methods bound by <see cref="TableMethodProvider"/>, the interceptors) and the request
/// pipeline gRPC requests go through (routing to <see cref="EtcdGrpcService"/>'s methods; anything unmatched gets
/// grpc-go's Unimplemented).
/// </summary>
internal static class GrpcServices
{
    /// <summary>
    /// The server's services. Grpc.AspNetCore's message size limits are off (the marshallers enforce ours with
    /// grpc-go's text), unknown services pass to our answer, and its per-call log lines (Information: every non-OK
    /// status) stay out of etcd's log: only its warnings reach <paramref name="loggerFactory"/>. Interceptors run in this
    /// order: <paramref name="calls"/>, then <see cref="GrpcHttpServerOptions.Interceptors"/>.
    /// </summary>
    public static ServiceProvider Build(ILoggerFactory loggerFactory, GrpcServiceTable table, GrpcCallInterceptor calls, GrpcHttpServerOptions options)
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
        services.AddSingleton(calls);
        foreach (var interceptor in options.Interceptors)
        {
            // Grpc.AspNetCore uses a registered instance of an interceptor's type rather than making one per call.
            services.AddSingleton(interceptor.GetType(), interceptor);
        }

        services.AddGrpc(o =>
        {
            o.IgnoreUnknownServices = true;
            o.MaxReceiveMessageSize = null;
            o.MaxSendMessageSize = null;
            o.Interceptors.Add<GrpcCallInterceptor>();
            foreach (var interceptor in options.Interceptors)
            {
                o.Interceptors.Add(interceptor.GetType());
            }
        });
        services.AddSingleton<EtcdGrpcService>();
        services.AddSingleton<IServiceMethodProvider<EtcdGrpcService>>(new TableMethodProvider(table, new GrpcMarshallers(options)));
        return services.BuildServiceProvider();
    }

    /// <summary>The pipeline of gRPC requests (HTTP/2, <c>application/grpc*</c>).</summary>
    public static RequestDelegate Pipeline(IServiceProvider services, GrpcCallInterceptor calls)
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

/// <summary>
/// The one type Grpc.AspNetCore maps for a <see cref="GrpcHttpServer"/>: every method of its <see cref="GrpcServiceTable"/>
/// (the generated services' overrides, e.g. <c>KvService : KV.KVBase</c>) is bound to it by
/// <see cref="TableMethodProvider"/>, so one mapping serves every service. Stateless.
/// </summary>
public sealed class EtcdGrpcService
{
}

/// <summary>
/// Binds the table's methods to <see cref="EtcdGrpcService"/>, each with the generated descriptor's names and type but
/// <see cref="GrpcMarshallers"/>' marshallers (the server's size limits in grpc-go's words, message metrics).
/// </summary>
internal sealed class TableMethodProvider(GrpcServiceTable table, GrpcMarshallers marshallers) : IServiceMethodProvider<EtcdGrpcService>
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<EtcdGrpcService> context)
    {
        foreach (var method in table.Methods)
        {
            method.Bind(context, marshallers);
        }
    }
}
