using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Etcd.Client;
using Etcd.Server;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Dashboard.Tests;

/// <summary>
/// A single in-process member on 127.0.0.1 (ephemeral ports, 10 ms ticks) for the dashboard tests, with our gRPC
/// client and a JSON-gateway helper. Disposing stops it and deletes its data dir.
/// </summary>
public sealed class DashboardMember : IAsyncDisposable
{
    private readonly string _dir;

    private DashboardMember(EtcdHost host, string dir)
    {
        Host = host;
        _dir = dir;
        Url = host.ClientUrls[0].ToString().TrimEnd('/');
        Client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [Url] });
        // Auto-TLS members present a self-signed certificate.
        Http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        {
            BaseAddress = new Uri(Url),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>The member.</summary>
    public EtcdHost Host { get; }

    /// <summary>Its client URL, without a trailing slash (<c>http://127.0.0.1:N</c>).</summary>
    public string Url { get; }

    /// <summary>Our gRPC client to it.</summary>
    public EtcdClient Client { get; }

    /// <summary>Plain HTTP to its client URL.</summary>
    public HttpClient Http { get; }

    /// <summary>Starts a member, with the dashboard when <paramref name="dashboard"/>, on an HTTPS client URL (etcd's
    /// auto-TLS) when <paramref name="https"/>.</summary>
    public static async Task<DashboardMember> StartAsync(bool dashboard = true, bool https = false)
    {
        var dir = Path.Combine(Path.GetTempPath(), "etcd-dash-" + Guid.NewGuid().ToString("N")[..10]);
        var options = new EtcdOptions
        {
            Name = "dash",
            DataDir = dir,
            ListenClientUrls = [new Uri(https ? "https://127.0.0.1:0" : "http://127.0.0.1:0")],
            ClientTls = new TlsSettings { AutoTls = https },
            AdvertiseClientUrls = [new Uri("http://127.0.0.1:2379")],
            ListenPeerUrls = [new Uri("http://127.0.0.1:0")],
            InitialAdvertisePeerUrls = [new Uri("http://127.0.0.1:12380")],
            HeartbeatIntervalMs = 10,
            ElectionTimeoutMs = 100,
            EnableDashboard = dashboard,
        };
        var host = await EtcdHost.StartAsync(options, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(30));
        await host.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(30));
        return new DashboardMember(host, dir);
    }

    /// <summary>
    /// POSTs <paramref name="body"/> to the gateway's <c>/v3</c><paramref name="path"/> with <paramref name="token"/> as
    /// the Authorization header; returns the status and the parsed answer.
    /// </summary>
    public async Task<(int Status, JsonElement Body)> GatewayAsync(string path, object body, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v3" + path) { Content = JsonContent.Create(body) };
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", token);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var firstLine = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "{}";
        return ((int)response.StatusCode, JsonDocument.Parse(firstLine).RootElement.Clone());
    }

    /// <summary>Like <see cref="GatewayAsync"/>, failing the test unless the answer is 200 without an error.</summary>
    public async Task<JsonElement> OkAsync(string path, object body, string? token = null)
    {
        var (status, json) = await GatewayAsync(path, body, token);
        Assert.True(status == 200 && !json.TryGetProperty("error", out _), $"{path}: {status} {json}");
        return json;
    }

    /// <summary>Base64 of the UTF-8 bytes of <paramref name="s"/> (the gateway's bytes encoding).</summary>
    public static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    /// <summary>Base64 of the prefix range end of <paramref name="prefix"/>.</summary>
    public static string PrefixEnd(string prefix)
    {
        var b = Encoding.UTF8.GetBytes(prefix);
        b[^1]++;
        return Convert.ToBase64String(b);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Http.Dispose();
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
