using System.Net;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcdserverpb;
using Google.Protobuf;

namespace Etcd.Api.Tests.Grpc;

public sealed class EtcdClientTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>A toy KV over a dictionary, enough to see requests and responses travel.</summary>
    private static void MapToyKv(ToyServices r, Dictionary<string, string> store)
    {
        long rev = 1;
        ResponseHeader Header() => new() { ClusterId = 11, MemberId = 22, Revision = rev, RaftTerm = 1 };
        r.MapUnary(EtcdMethods.KVService.Range, (req, ctx) =>
        {
            var resp = new RangeResponse { Header = Header() };
            lock (store)
            {
                if (store.TryGetValue(req.Key.ToStringUtf8(), out var v))
                {
                    resp.Kvs.Add(new Mvccpb.KeyValue { Key = req.Key, Value = ByteString.CopyFromUtf8(v) });
                    resp.Count = 1;
                }
            }

            return ValueTask.FromResult(resp);
        })
        .MapUnary(EtcdMethods.KVService.Put, (req, ctx) =>
        {
            if (req.Key.IsEmpty)
            {
                throw EtcdErrors.EmptyKey.ToException();
            }

            lock (store)
            {
                store[req.Key.ToStringUtf8()] = req.Value.ToStringUtf8();
                rev++;
            }

            return ValueTask.FromResult(new PutResponse { Header = Header() });
        })
        .MapUnary(EtcdMethods.KVService.DeleteRange, (req, ctx) =>
        {
            lock (store)
            {
                var deleted = store.Remove(req.Key.ToStringUtf8()) ? 1 : 0;
                rev++;
                return ValueTask.FromResult(new DeleteRangeResponse { Header = Header(), Deleted = deleted });
            }
        })
        .MapUnary(EtcdMethods.KVService.Txn, (req, ctx) => ValueTask.FromResult(new TxnResponse { Header = Header(), Succeeded = req.Compare.Count == 0 }))
        .MapUnary(EtcdMethods.KVService.Compact, (req, ctx) => req.Revision > rev ? throw EtcdErrors.FutureRev.ToException() : ValueTask.FromResult(new CompactionResponse { Header = Header() }))
        .MapUnary(EtcdMethods.MaintenanceService.Status, (req, ctx) => ValueTask.FromResult(new StatusResponse { Header = Header(), Version = "3.4.23", Leader = 22 }))
        .MapUnary(EtcdMethods.ClusterService.MemberList, (req, ctx) =>
        {
            var resp = new MemberListResponse { Header = Header() };
            resp.Members.Add(new Member { ID = 22, Name = "default" });
            return ValueTask.FromResult(resp);
        });
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Kv_Maintenance_Cluster_RoundTrip()
    {
        var store = new Dictionary<string, string>();
        await using var t = await TestServer.StartAsync(r => MapToyKv(r, store));
        using var client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [$"127.0.0.1:{t.Url.Port}"] });

        var put = await client.Kv.PutAsync("foo", "bar").WaitAsync(Bound);
        Assert.Equal(2, put.Header.Revision);
        var get = await client.Kv.GetAsync("foo").WaitAsync(Bound);
        Assert.Equal("bar", get.Kvs.Single().Value.ToStringUtf8());
        Assert.Empty((await client.Kv.GetAsync("missing").WaitAsync(Bound)).Kvs);

        var del = await client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8("foo") }).WaitAsync(Bound);
        Assert.Equal(1, del.Deleted);
        Assert.True((await client.Kv.TxnAsync(new TxnRequest()).WaitAsync(Bound)).Succeeded);
        Assert.Equal(11UL, (await client.Kv.CompactAsync(new CompactionRequest { Revision = 1 }).WaitAsync(Bound)).Header.ClusterId);

        var status = await client.Maintenance.StatusAsync().WaitAsync(Bound);
        Assert.Equal("3.4.23", status.Version);
        var members = await client.Cluster.MemberListAsync().WaitAsync(Bound);
        Assert.Equal("default", members.Members.Single().Name);
    }

    [Fact]
    public async Task EtcdErrors_BecomeEtcdException()
    {
        await using var t = await TestServer.StartAsync(r => MapToyKv(r, []));
        using var client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [t.Url.ToString()] });
        var empty = await Assert.ThrowsAsync<EtcdException>(() => client.Kv.PutAsync(new PutRequest()).WaitAsync(Bound));
        Assert.Same(EtcdErrors.EmptyKey, empty.Error);
        Assert.Equal(StatusCode.InvalidArgument, empty.Status);
        var future = await Assert.ThrowsAsync<EtcdException>(() => client.Kv.CompactAsync(new CompactionRequest { Revision = 100 }).WaitAsync(Bound));
        Assert.Equal("etcdserver: mvcc: required revision is a future revision", future.Detail);
    }

    [Fact]
    public async Task Failover_SkipsUnreachableEndpoint()
    {
        var store = new Dictionary<string, string> { ["k"] = "v" };
        await using var t = await TestServer.StartAsync(r => MapToyKv(r, store));
        using var client = EtcdClient.Create(new EtcdClientOptions
        {
            Endpoints = [$"127.0.0.1:{FreePort()}", $"http://127.0.0.1:{t.Url.Port}"],
            DialTimeout = TimeSpan.FromSeconds(2),
        });
        Assert.Equal("v", (await client.Kv.GetAsync("k").WaitAsync(Bound)).Kvs.Single().Value.ToStringUtf8());
        Assert.Equal(t.Url.Port, client.GetChannel().Address.Port);
    }

    [Fact]
    public async Task CallOptions_Deadline_And_Cancellation()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var t = await TestServer.StartAsync(r => r.MapUnary(EtcdMethods.KVService.Range, async (req, ctx) =>
        {
            await release.Task.WaitAsync(ctx.CancellationToken);
            return new RangeResponse();
        }));
        using var client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [$"127.0.0.1:{t.Url.Port}"] });

        var deadline = await Assert.ThrowsAsync<RpcException>(() => client.Kv.GetAsync("x", new CallOptions { Timeout = TimeSpan.FromMilliseconds(200) }).WaitAsync(Bound));
        Assert.Equal(StatusCode.DeadlineExceeded, deadline.Status);

        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var cancelled = await Assert.ThrowsAsync<RpcException>(() => client.Kv.GetAsync("x", cancellationToken: cts.Token).WaitAsync(Bound));
        Assert.Equal((StatusCode.Cancelled, "context canceled"), (cancelled.Status, cancelled.Detail));

        release.SetResult();
        Assert.Empty((await client.Kv.GetAsync("x").WaitAsync(Bound)).Kvs);
    }

    [Fact]
    public void Options_Validation()
    {
        Assert.Throws<ArgumentException>(() => EtcdClient.Create(new EtcdClientOptions { Endpoints = [] }));
        Assert.Throws<FormatException>(() => EtcdClient.Create(new EtcdClientOptions { Endpoints = ["ftp://x:1"] }));
        using var c = EtcdClient.Create(new EtcdClientOptions { Endpoints = ["10.0.0.1:2379", "https://h:2380"] });
        Assert.Equal(new[] { new Uri("http://10.0.0.1:2379"), new Uri("https://h:2380") }, c.Endpoints);
    }
}
