using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Watch;

/// <summary>One in-process member and a client, per test class.</summary>
public class WatchMemberFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new();

    public EtcdHost Host { get; private set; } = null!;

    public EtcdClient Client { get; private set; } = null!;

    protected virtual int MaxRequestBytes => 1_572_864;

    /// <summary>Adjusts the member's options (after <see cref="MaxRequestBytes"/> is applied).</summary>
    protected virtual EtcdOptions Configure(EtcdOptions options) => options;

    public async Task InitializeAsync()
    {
        Host = await EtcdHost.StartAsync(
            Configure(TestMember.Options("watch", _dir.Path) with { MaxRequestBytes = MaxRequestBytes }),
            NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        Client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [Host.ClientUrls[0].ToString()] });
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>A Watch stream driven through our gRPC client.</summary>
internal sealed class WatchCall : IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);
    private readonly DuplexStreamingCall<WatchRequest, WatchResponse> _call;

    public WatchCall(EtcdClient client, CallOptions? options = null) =>
        _call = client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch, options);

    public static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    public Task SendAsync(WatchRequest r) => _call.RequestStream.WriteAsync(r).AsTask();

    public Task CreateAsync(string key, string? end = null, long startRev = 0, long id = 0, bool prevKv = false, bool fragment = false, bool progressNotify = false, params WatchCreateRequest.Types.FilterType[] filters)
    {
        var c = new WatchCreateRequest { Key = B(key), StartRevision = startRev, WatchId = id, PrevKv = prevKv, Fragment = fragment, ProgressNotify = progressNotify };
        if (end is not null)
        {
            c.RangeEnd = end == "\0" ? ByteString.CopyFrom(0) : B(end);
        }

        c.Filters.AddRange(filters);
        return SendAsync(new WatchRequest { CreateRequest = c });
    }

    public async Task<WatchResponse> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        Assert.True(await _call.ResponseStream.MoveNext(cts.Token), "the watch stream ended");
        return _call.ResponseStream.Current;
    }

    /// <summary>Reads until <paramref name="count"/> events of <paramref name="id"/> arrived; returns them and every response read.</summary>
    public async Task<(List<Mvccpb.Event> Events, List<WatchResponse> Responses)> EventsAsync(long id, int count)
    {
        var evs = new List<Mvccpb.Event>();
        var all = new List<WatchResponse>();
        while (evs.Count < count)
        {
            var r = await NextAsync();
            all.Add(r);
            if (r.WatchId == id)
            {
                evs.AddRange(r.Events);
            }
        }

        Assert.Equal(count, evs.Count);
        return (evs, all);
    }

    public void Dispose() => _call.Dispose();
}
