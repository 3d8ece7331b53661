using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Etcd.Server.Tls;

/// <summary>
/// One side's resolved TLS setup, etcd's <c>transport.TLSInfo</c> (<c>pkg/transport/listener.go</c>): the key
/// pair (from files, or etcd's self-signed auto-TLS pair), the trusted CAs, client-certificate rules, the CRL,
/// cipher suites and the minimum version, loaded and checked once. It builds the
/// <see cref="SslServerAuthenticationOptions"/> of a listener and the <see cref="SslClientAuthenticationOptions"/>
/// of a dialer. Immutable and thread-safe; each options object returned is new and may be changed by the caller.
/// </summary>
public sealed class EtcdTlsInfo
{
    /// <summary>The client-authentication OID (<c>1.3.6.1.5.5.7.3.2</c>) a client certificate must allow.</summary>
    private static readonly Oid ClientAuthOid = new("1.3.6.1.5.5.7.3.2");

    /// <summary>The server-authentication OID (<c>1.3.6.1.5.5.7.3.1</c>).</summary>
    private static readonly Oid ServerAuthOid = new("1.3.6.1.5.5.7.3.1");

    private readonly X509Certificate2Collection _trustedCas;
    private readonly SslStreamCertificateContext? _certificate;
    private readonly CipherSuitesPolicy? _cipherPolicy;

    private EtcdTlsInfo(TlsSettings settings, bool selfCert, IReadOnlyList<TlsCipherSuite> cipherSuites, SslProtocols protocols, string allowedCn, string allowedHostname,
        X509Certificate2Collection trustedCas, SslStreamCertificateContext? certificate)
    {
        Settings = settings;
        SelfCert = selfCert;
        CipherSuites = cipherSuites;
        EnabledProtocols = protocols;
        AllowedCn = allowedCn;
        AllowedHostname = allowedHostname;
        _trustedCas = trustedCas;
        _certificate = certificate;
        _cipherPolicy = GoCipherSuites.Policy(cipherSuites);
    }

    /// <summary>The files and flags, with <see cref="TlsSettings.CertFile"/>/<see cref="TlsSettings.KeyFile"/> pointing at the self-signed pair under auto-TLS.</summary>
    public TlsSettings Settings { get; }

    /// <summary>Whether the pair is etcd's self-signed auto-TLS one (dialers then skip verifying the server, as etcd does).</summary>
    public bool SelfCert { get; }

    /// <summary>Allowed TLS 1.2 cipher suites in preference order; empty = the runtime's defaults.</summary>
    public IReadOnlyList<TlsCipherSuite> CipherSuites { get; }

    /// <summary>Enabled protocol versions (TLS 1.2 and 1.3 by default; 1.3 only with <c>--tls-min-version=TLS1.3</c>).</summary>
    public SslProtocols EnabledProtocols { get; }

    /// <summary>The common name a client certificate must carry (<c>--peer-cert-allowed-cn</c>); empty = any.</summary>
    public string AllowedCn { get; }

    /// <summary>The hostname or IP a client certificate must be valid for (<c>--peer-cert-allowed-hostname</c>); empty = any.</summary>
    public string AllowedHostname { get; }

    /// <summary>Whether a peer listener skips <see cref="CheckClientSanAsync"/> on client certificates
    /// (<c>--experimental-peer-skip-client-san-verification</c>); set once by <see cref="TlsConfig.ForPeers"/>.</summary>
    public bool SkipClientSanVerify { get; internal set; }

    /// <summary>
    /// Whether a listener demands and verifies client certificates: etcd 3.4 does so when
    /// <c>--client-cert-auth</c> is set or a trusted CA file is given.
    /// </summary>
    public bool ClientCertificateRequired => Settings.ClientCertAuth || Settings.TrustedCaFile.Length > 0;

    /// <summary>The server (and dialer) certificate; null when no key pair is configured (a dialer without a client certificate).</summary>
    public X509Certificate2? Certificate => _certificate?.TargetCertificate;

    /// <summary>etcd's description of the setup, as it logs it: <c>cert = C, key = K, trusted-ca = T, client-cert-auth = B, crl-file = F</c>.</summary>
    public override string ToString() =>
        $"cert = {Settings.CertFile}, key = {Settings.KeyFile}, trusted-ca = {Settings.TrustedCaFile}, client-cert-auth = {(Settings.ClientCertAuth ? "true" : "false")}, crl-file = {Settings.CrlFile}";

    /// <summary>
    /// Loads the files of <paramref name="settings"/> (auto-TLS must already be resolved to files, see
    /// <see cref="TlsConfig"/>) and checks the rules.
    /// </summary>
    /// <param name="settings">Cert/key/CA/CRL files and flags. A side with neither cert nor key builds a dialer-only info.</param>
    /// <param name="cipherSuites">Go cipher suite names (<c>--cipher-suites</c>).</param>
    /// <param name="minVersion"><c>TLS1.2</c> (default) or <c>TLS1.3</c>.</param>
    /// <param name="allowedCn">Required client CN, or empty.</param>
    /// <param name="allowedHostname">Required client hostname, or empty.</param>
    /// <param name="selfCert">Whether the pair is a self-signed auto-TLS pair.</param>
    /// <exception cref="TlsConfigException">etcd's messages: <c>unexpected TLS cipher suite "X"</c>,
    /// <c>AllowedCN and AllowedHostname are mutually exclusive (cn="A", hostname="B")</c>,
    /// <c>KeyFile and CertFile must both be present[key: K, cert: C]</c>, <c>open FILE: no such file or directory</c>,
    /// <c>unknown TLS version "X"</c>, or a PEM/CRL parse error.</exception>
    public static EtcdTlsInfo Create(TlsSettings settings, IEnumerable<string>? cipherSuites = null, string minVersion = "TLS1.2", string allowedCn = "", string allowedHostname = "", bool selfCert = false)
    {
        ArgumentNullException.ThrowIfNull(settings);
        IReadOnlyList<TlsCipherSuite> suites;
        try
        {
            suites = GoCipherSuites.Parse(cipherSuites ?? []);
        }
        catch (FormatException e)
        {
            throw new TlsConfigException(e.Message, e);
        }

        var protocols = minVersion switch
        {
            "" or "TLS1.2" => SslProtocols.Tls12 | SslProtocols.Tls13,
            "TLS1.3" => SslProtocols.Tls13,
            _ => throw new TlsConfigException($"unknown TLS version \"{minVersion}\""),
        };
        if (protocols == SslProtocols.Tls13 && suites.Count > 0)
        {
            throw new TlsConfigException("cipher suites cannot be configured when only TLS1.3 is enabled");
        }

        if (allowedCn.Length > 0 && allowedHostname.Length > 0)
        {
            throw new TlsConfigException($"AllowedCN and AllowedHostname are mutually exclusive (cn=\"{allowedCn}\", hostname=\"{allowedHostname}\")");
        }

        SslStreamCertificateContext? context = null;
        if (settings.CertFile.Length > 0 || settings.KeyFile.Length > 0)
        {
            if (settings.CertFile.Length == 0 || settings.KeyFile.Length == 0)
            {
                throw new TlsConfigException($"KeyFile and CertFile must both be present[key: {settings.KeyFile}, cert: {settings.CertFile}]");
            }

            context = LoadPair(settings.CertFile, settings.KeyFile);
        }

        var cas = new X509Certificate2Collection();
        if (settings.TrustedCaFile.Length > 0)
        {
            RequireFile(settings.TrustedCaFile);
            try
            {
                cas.ImportFromPemFile(settings.TrustedCaFile);
            }
            catch (CryptographicException e)
            {
                throw new TlsConfigException($"failed to parse CA file {settings.TrustedCaFile}: {e.Message}", e);
            }

            if (cas.Count == 0)
            {
                throw new TlsConfigException($"failed to append certificates from {settings.TrustedCaFile}");
            }
        }

        if (settings.CrlFile.Length > 0)
        {
            RequireFile(settings.CrlFile);
        }

        return new EtcdTlsInfo(settings, selfCert, suites, protocols, allowedCn, allowedHostname, cas, context);
    }

    /// <summary>
    /// Options for a listener (etcd's <c>TLSInfo.ServerConfig</c> plus its TLS listener's CRL check): the
    /// certificate, ALPN <paramref name="applicationProtocols"/> (default <c>h2</c> then <c>http/1.1</c>), the
    /// enabled versions and cipher suites, and — when <see cref="ClientCertificateRequired"/> — a client
    /// certificate demanded and verified against the trusted CAs (client-auth usage), then the allowed CN or
    /// hostname, then the CRL. A rejected certificate fails the handshake; <paramref name="onRejected"/> receives
    /// etcd's reason (e.g. <c>tls: client didn't provide a certificate</c>, <c>client certificate authentication
    /// failed</c>, <c>transport: certificate serial 1a2b revoked</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">No key pair is configured.</exception>
    public SslServerAuthenticationOptions ServerOptions(Action<string>? onRejected = null, IReadOnlyList<SslApplicationProtocol>? applicationProtocols = null)
    {
        if (_certificate is null)
        {
            throw new InvalidOperationException($"KeyFile and CertFile must both be present[key: {Settings.KeyFile}, cert: {Settings.CertFile}]");
        }

        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _certificate,
            ApplicationProtocols = (applicationProtocols ?? [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]).ToList(),
            EnabledSslProtocols = EnabledProtocols,
            CipherSuitesPolicy = _cipherPolicy,
            ClientCertificateRequired = ClientCertificateRequired,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (ClientCertificateRequired)
        {
            // SslStream builds the client's chain once, with our trust and usage rules: the callback only reads the
            // outcome (a second build per handshake doubled the TLS cost of a connection burst).
            options.CertificateChainPolicy = ClientChainPolicy();
            options.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                var reason = certificate is null ? "tls: client didn't provide a certificate"
                    : chain is null || (errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0 ? VerifyClient(certificate, chain)
                    : VerifyVerifiedClient(certificate as X509Certificate2 ?? new X509Certificate2(certificate), chain);
                if (reason is not null)
                {
                    onRejected?.Invoke(reason);
                    return false;
                }

                return true;
            };
        }

        return options;
    }

    /// <summary>
    /// Options for a dialer (etcd's <c>TLSInfo.ClientConfig</c>): our certificate as the client certificate when
    /// configured; the server verified against the trusted CAs (or the system's) and <paramref name="targetHost"/>,
    /// unless <paramref name="insecureSkipVerify"/> or the pair is self-signed (auto-TLS peers accept each other's
    /// self-signed certificates, as etcd's InsecureSkipVerify does), then the allowed CN or hostname
    /// (<c>--peer-cert-allowed-cn</c>/<c>-hostname</c> bind the server's certificate too, as etcd's do); versions and
    /// cipher suites as configured.
    /// </summary>
    /// <param name="targetHost">The server's host (SNI and name check), e.g. <c>127.0.0.1</c> or <c>localhost</c>.</param>
    /// <param name="applicationProtocols">ALPN offer; null offers none (etcd's peer transport speaks HTTP/1.1).</param>
    /// <param name="insecureSkipVerify">Accept any server certificate.</param>
    /// <param name="onRejected">Receives why a server certificate was refused.</param>
    public SslClientAuthenticationOptions ClientOptions(string targetHost, IReadOnlyList<SslApplicationProtocol>? applicationProtocols = null, bool insecureSkipVerify = false, Action<string>? onRejected = null)
    {
        var skip = insecureSkipVerify || SelfCert;
        return new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            ClientCertificateContext = _certificate,
            ApplicationProtocols = applicationProtocols?.ToList(),
            EnabledSslProtocols = EnabledProtocols,
            CipherSuitesPolicy = _cipherPolicy,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                // Skipping verification leaves no verified chain, so a CN/hostname rule cannot be met (as in Go).
                var reason = skip ? CheckAllowedNames(null) : VerifyServer(certificate, chain, errors);
                if (reason is not null)
                {
                    onRejected?.Invoke(reason);
                    return false;
                }

                return true;
            },
        };
    }

    /// <summary>
    /// Checks a client certificate as etcd's listener does; returns null when accepted, else etcd's reason.
    /// Exposed for transports that verify after the handshake.
    /// </summary>
    public string? VerifyClient(X509Certificate? certificate, X509Chain? presented)
    {
        if (certificate is null)
        {
            return "tls: client didn't provide a certificate";
        }

        using var leaf = new X509Certificate2(certificate);
        using var chain = NewChain(ClientAuthOid, presented);
        if (!chain.Build(leaf))
        {
            return "tls: failed to verify client's certificate: " + ChainError(chain);
        }

        return VerifyVerifiedClient(leaf, chain);
    }

    /// <summary>The chain policy of <see cref="VerifyClient"/>: the trusted CAs (else the system's), client-auth usage, no revocation fetch.</summary>
    private X509ChainPolicy ClientChainPolicy()
    {
        var policy = new X509ChainPolicy { RevocationMode = X509RevocationMode.NoCheck };
        policy.ApplicationPolicy.Add(ClientAuthOid);
        if (_trustedCas.Count > 0)
        {
            policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            policy.CustomTrustStore.AddRange(_trustedCas);
        }

        return policy;
    }

    /// <summary>The checks after a client chain verified under <see cref="ClientChainPolicy"/>: allowed CN/hostname and the CRL.</summary>
    private string? VerifyVerifiedClient(X509Certificate2 leaf, X509Chain chain)
    {
        if (CheckAllowedNames(leaf) is { } nameRejection)
        {
            return nameRejection;
        }

        if (Settings.CrlFile.Length > 0)
        {
            RevocationList crl;
            try
            {
                crl = RevocationList.Load(Settings.CrlFile);
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                return e.Message;
            }

            var certs = chain.ChainElements.Select(e => e.Certificate).ToList();
            if (certs.Count == 0)
            {
                certs.Add(leaf);
            }

            var revoked = crl.Check(certs);
            if (revoked is not null)
            {
                return revoked;
            }
        }

        return null;
    }

    /// <summary>
    /// etcd's SAN check of a peer's client certificate against the address it connects from
    /// (<c>checkCertSAN</c> in <c>pkg/transport/listener_tls.go</c>, applied on peer listeners unless
    /// <c>--experimental-peer-skip-client-san-verification</c>): a certificate without IP or DNS SANs passes; else
    /// the remote IP must be one of its IP SANs, or one of its DNS SANs must resolve to it (reverse lookup of the
    /// remote IP matched against the names and <c>*.</c> wildcards, then forward lookups of the names). Returns
    /// null when accepted, else etcd's reason. The peer transport calls it after the handshake.
    /// </summary>
    public static async Task<string?> CheckClientSanAsync(X509Certificate2 certificate, System.Net.IPAddress remote, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(remote);
        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var ips = san?.EnumerateIPAddresses().ToList() ?? [];
        var names = san?.EnumerateDnsNames().ToList() ?? [];
        if (ips.Count == 0 && names.Count == 0)
        {
            return null;
        }

        var host = remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote;
        if (ips.Any(ip => ip.Equals(host)))
        {
            return null;
        }

        if (names.Count == 0)
        {
            return $"x509: certificate is valid for {string.Join(", ", ips)}, not {host}";
        }

        try
        {
            var entry = await System.Net.Dns.GetHostEntryAsync(host).WaitAsync(cancellationToken).ConfigureAwait(false);
            foreach (var n in entry.Aliases.Append(entry.HostName))
            {
                var name = n.TrimEnd('.');
                if (names.Any(d => d.StartsWith("*.", StringComparison.Ordinal) ? name.EndsWith(d[1..], StringComparison.OrdinalIgnoreCase) : string.Equals(d, name, StringComparison.OrdinalIgnoreCase)))
                {
                    return null;
                }
            }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // No reverse record; try the forward lookups.
        }

        foreach (var name in names.Where(d => !d.StartsWith("*.", StringComparison.Ordinal)))
        {
            try
            {
                var addresses = await System.Net.Dns.GetHostAddressesAsync(name, cancellationToken).ConfigureAwait(false);
                if (addresses.Any(a => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Equals(host)))
                {
                    return null;
                }
            }
            catch (System.Net.Sockets.SocketException)
            {
            }
        }

        return $"tls: \"{host}\" does not match any of DNSNames [{string.Join(" ", names.Select(n => "\"" + n + "\""))}]";
    }

    /// <summary>
    /// The allowed-CN / allowed-hostname rule (etcd's <c>VerifyPeerCertificate</c> in <c>TLSInfo.baseConfig</c>, which
    /// applies to listeners and dialers alike): null when no rule is set or <paramref name="leaf"/> (a verified
    /// certificate, or null when none was verified) satisfies it, else <c>client certificate authentication failed</c>.
    /// </summary>
    private string? CheckAllowedNames(X509Certificate2? leaf)
    {
        if (AllowedCn.Length == 0 && AllowedHostname.Length == 0)
        {
            return null;
        }

        var accepted = leaf is not null && (AllowedCn.Length > 0
            ? leaf.GetNameInfo(X509NameType.SimpleName, false) == AllowedCn
            : leaf.MatchesHostname(AllowedHostname, allowWildcards: true, allowCommonName: false));
        return accepted ? null : "client certificate authentication failed";
    }

    private string? VerifyServer(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            return "tls: server didn't provide a certificate";
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return "x509: certificate is valid for other names than the one dialed";
        }

        using var leaf = new X509Certificate2(certificate);
        if (_trustedCas.Count == 0)
        {
            return (errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0 ? "x509: certificate signed by unknown authority" : CheckAllowedNames(leaf);
        }

        using var chain = NewChain(ServerAuthOid, presented);
        return chain.Build(leaf) ? CheckAllowedNames(leaf) : ChainError(chain);
    }

    private X509Chain NewChain(Oid usage, X509Chain? presented)
    {
        var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.ApplicationPolicy.Add(usage);
        if (_trustedCas.Count > 0)
        {
            policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            policy.CustomTrustStore.AddRange(_trustedCas);
        }

        if (presented is not null)
        {
            foreach (var element in presented.ChainElements.Skip(1))
            {
                policy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain;
    }

    private static string ChainError(X509Chain chain)
    {
        var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (a, s) => a | s.Status);
        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            return "x509: certificate signed by unknown authority";
        }

        if ((flags & (X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotTimeNested)) != 0)
        {
            return "x509: certificate has expired or is not yet valid";
        }

        if ((flags & X509ChainStatusFlags.NotValidForUsage) != 0)
        {
            return "x509: certificate specifies an incompatible key usage";
        }

        return "x509: " + string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
    }

    private static void RequireFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new TlsConfigException($"open {path}: no such file or directory");
        }
    }

    private static SslStreamCertificateContext LoadPair(string certFile, string keyFile)
    {
        RequireFile(certFile);
        RequireFile(keyFile);
        try
        {
            var leaf = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(certFile);
            var extra = new X509Certificate2Collection();
            foreach (var c in all)
            {
                if (c.Thumbprint != leaf.Thumbprint)
                {
                    extra.Add(c);
                }
            }

            return SslStreamCertificateContext.Create(leaf, extra, offline: true);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"tls: failed to load key pair {certFile}, {keyFile}: {e.Message}", e);
        }
    }
}

/// <summary>A TLS configuration etcd would refuse at start; the message is etcd's.</summary>
public sealed class TlsConfigException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TlsConfigException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
