using System.Net.Security;
using Etcd.Server.Logging;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Tls;

/// <summary>
/// Builds a member's TLS setups from <see cref="EtcdOptions"/> the way etcd's <c>embed/etcd.go</c> does at start
/// (<c>configureClientListeners</c>, <c>configurePeerListeners</c>, <c>Config.ClientSelfCert</c>/<c>PeerSelfCert</c>):
/// cipher suites applied to both sides, auto-TLS pairs generated under <c>{data-dir}/fixtures/client|peer</c>
/// for the hosts of the listen URLs when no cert/key files are given, etcd's warnings for http URLs that ignore
/// TLS files, and its start errors. Thread-safe; each call loads the files again.
/// </summary>
public static class TlsConfig
{
    /// <summary>
    /// The client side: null when no https client URL needs TLS and none is configured.
    /// Logs etcd's <c>starting with client TLS</c> line.
    /// </summary>
    /// <exception cref="EtcdStartException">etcd's start errors, e.g. <c>TLS key/cert (--cert-file, --key-file) must be
    /// provided for client url https://h:p with HTTPS scheme</c> or <c>unexpected TLS cipher suite "X"</c>.</exception>
    public static EtcdTlsInfo? ForClients(EtcdOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var log = loggerFactory?.CreateLogger("embed/etcd.go");
        var info = Resolve(options, options.ClientTls, "client", options.ListenClientUrls, "", "", log);
        foreach (var u in options.ListenClientUrls)
        {
            if (u.Scheme == "http" && info is not null)
            {
                log?.LogFields(LogLevel.Warning, "scheme is HTTP while key and cert files are present; ignoring key and cert files", ("client-url", u.OriginalString));
                if (options.ClientTls.ClientCertAuth)
                {
                    log?.LogFields(LogLevel.Warning, "scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL", ("client-url", u.OriginalString));
                }
            }

            if (u.Scheme is "https" or "unixs" && info is null)
            {
                throw new EtcdStartException($"TLS key/cert (--cert-file, --key-file) must be provided for client url {u.OriginalString.TrimEnd('/')} with HTTPS scheme");
            }
        }

        if (info is not null)
        {
            log?.LogFields(LogLevel.Information, "starting with client TLS", ("tls-info", info.ToString()), ("cipher-suites", options.CipherSuites.ToArray()));
        }

        return info;
    }

    /// <summary>
    /// The peer side (<c>--peer-*</c> files, <c>--peer-auto-tls</c>, allowed CN/hostname): null when peer TLS is
    /// not configured. Logs etcd's <c>starting with peer TLS</c> line.
    /// </summary>
    /// <exception cref="EtcdStartException">etcd's start errors (see <see cref="EtcdTlsInfo.Create"/>).</exception>
    public static EtcdTlsInfo? ForPeers(EtcdOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var log = loggerFactory?.CreateLogger("embed/etcd.go");
        var info = Resolve(options, options.PeerTls, "peer", options.ListenPeerUrls, options.PeerCertAllowedCn, options.PeerCertAllowedHostname, log);
        if (info is not null)
        {
            info.SkipClientSanVerify = options.ExperimentalPeerSkipClientSanVerification;
            log?.LogFields(LogLevel.Information, "starting with peer TLS", ("tls-info", info.ToString()), ("cipher-suites", options.CipherSuites.ToArray()));
            foreach (var u in options.ListenPeerUrls)
            {
                if (u.Scheme == "http")
                {
                    log?.LogFields(LogLevel.Warning, "scheme is HTTP while key and cert files are present; ignoring key and cert files", ("peer-url", u.OriginalString));
                }
            }
        }

        return info;
    }

    /// <summary>
    /// Listener options for the peer port (see <see cref="EtcdTlsInfo.ServerOptions"/>), ALPN <c>http/1.1</c> and
    /// <c>h2</c>; null when peer TLS is off. The cluster transport's peer listener calls this once and reuses
    /// the result's settings per connection (or <see cref="ForPeers"/> then <see cref="EtcdTlsInfo.ServerOptions"/>
    /// per connection to log rejections).
    /// </summary>
    public static SslServerAuthenticationOptions? ForPeerServer(EtcdOptions options, ILoggerFactory? loggerFactory = null) =>
        ForPeers(options, loggerFactory)?.ServerOptions(null, [SslApplicationProtocol.Http11, SslApplicationProtocol.Http2]);

    /// <summary>
    /// Dialer options for connecting to a peer at <paramref name="targetHost"/> (see <see cref="EtcdTlsInfo.ClientOptions"/>):
    /// our peer certificate as client certificate, the peer's verified against <c>--peer-trusted-ca-file</c>, or
    /// accepted as is under <c>--peer-auto-tls</c>; null when peer TLS is off.
    /// </summary>
    public static SslClientAuthenticationOptions? ForPeerClient(EtcdOptions options, string targetHost, ILoggerFactory? loggerFactory = null) =>
        ForPeers(options, loggerFactory)?.ClientOptions(targetHost);

    private static EtcdTlsInfo? Resolve(EtcdOptions options, TlsSettings settings, string side, IReadOnlyList<Uri> listenUrls, string allowedCn, string allowedHostname, ILogger? log)
    {
        try
        {
            var selfCert = false;
            var hasPair = settings.CertFile.Length > 0 || settings.KeyFile.Length > 0;
            if (settings.AutoTls)
            {
                if (hasPair)
                {
                    log?.LogFields(LogLevel.Warning, $"ignoring {side} auto TLS since certs given");
                }
                else
                {
                    var (cert, key) = SelfSignedCertificate.Ensure(
                        Path.Combine(options.ResolvedDataDir, "fixtures", side),
                        listenUrls.Select(u => u.Authority),
                        options.SelfSignedCertValidityYears,
                        log);
                    settings = settings with { CertFile = cert, KeyFile = key };
                    selfCert = true;
                    hasPair = true;
                }
            }

            if (!hasPair)
            {
                // etcd still validates the cipher suite names for an unused side.
                GoCipherSuites.Parse(options.CipherSuites);
                return null;
            }

            return EtcdTlsInfo.Create(settings, options.CipherSuites, options.TlsMinVersion, allowedCn, allowedHostname, selfCert);
        }
        catch (TlsConfigException e)
        {
            throw new EtcdStartException(e.Message, e);
        }
        catch (FormatException e)
        {
            throw new EtcdStartException(e.Message, e);
        }
        catch (IOException e)
        {
            throw new EtcdStartException(e.Message, e);
        }
    }
}
