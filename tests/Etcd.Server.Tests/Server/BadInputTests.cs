using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Server;

/// <summary>
/// Bad input through the real client path (our gRPC client → HTTP/2 → EtcdHost) gets etcd's gRPC code and
/// exact string, and the member keeps serving afterwards.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private EtcdHost _host = null!;
    private EtcdClient _client = null!;

    public async Task InitializeAsync()
    {
        _host = await EtcdHost.StartAsync(
            TestMember.Options("bad", _dir.Path) with { MaxTxnOps = 8 },
            NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        _client = EtcdClient.Create(new EtcdClientOptions { Endpoints = [_host.ClientUrls[0].ToString()], MaxCallSendMsgSize = 16 * 1024 * 1024 });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static async Task AssertEtcdError(EtcdError expected, Func<Task> call)
    {
        var e = await Assert.ThrowsAnyAsync<RpcException>(call);
        Assert.Equal(expected.Code, e.Status);
        Assert.Equal(expected.Message, e.Detail);
    }

    [Fact]
    public async Task EmptyKeyIsRejectedForEveryKvCall()
    {
        await AssertEtcdError(EtcdErrors.EmptyKey, () => _client.Kv.PutAsync(new PutRequest { Value = B("v") }));
        await AssertEtcdError(EtcdErrors.EmptyKey, () => _client.Kv.RangeAsync(new RangeRequest()));
        await AssertEtcdError(EtcdErrors.EmptyKey, () => _client.Kv.DeleteRangeAsync(new DeleteRangeRequest()));
        await AssertEtcdError(EtcdErrors.EmptyKey, () => _client.Kv.TxnAsync(new TxnRequest { Success = { new RequestOp { RequestPut = new PutRequest() } } }));
    }

    [Fact]
    public async Task CompactedAndFutureRevisions()
    {
        await _client.Kv.PutAsync("k", "1");
        var r = await _client.Kv.PutAsync("k", "2");
        await _client.Kv.CompactAsync(new CompactionRequest { Revision = r.Header.Revision });
        await AssertEtcdError(EtcdErrors.Compacted, () => _client.Kv.RangeAsync(new RangeRequest { Key = B("k"), Revision = r.Header.Revision - 1 }));
        await AssertEtcdError(EtcdErrors.Compacted, () => _client.Kv.CompactAsync(new CompactionRequest { Revision = r.Header.Revision - 1 }));
        await AssertEtcdError(EtcdErrors.FutureRev, () => _client.Kv.RangeAsync(new RangeRequest { Key = B("k"), Revision = r.Header.Revision + 100 }));
        await AssertEtcdError(EtcdErrors.FutureRev, () => _client.Kv.CompactAsync(new CompactionRequest { Revision = r.Header.Revision + 100 }));
        Assert.Equal("2", (await _client.Kv.GetAsync("k")).Kvs[0].Value.ToStringUtf8());
    }

    [Fact]
    public async Task DuplicateKeyAndTooManyOpsInTxn()
    {
        var dup = new TxnRequest
        {
            Success =
            {
                new RequestOp { RequestPut = new PutRequest { Key = B("a"), Value = B("1") } },
                new RequestOp { RequestPut = new PutRequest { Key = B("a"), Value = B("2") } },
            },
        };
        await AssertEtcdError(EtcdErrors.DuplicateKey, () => _client.Kv.TxnAsync(dup));
        var overlap = new TxnRequest
        {
            Success =
            {
                new RequestOp { RequestPut = new PutRequest { Key = B("b1"), Value = B("1") } },
                new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = B("b"), RangeEnd = B("c") } },
            },
        };
        await AssertEtcdError(EtcdErrors.DuplicateKey, () => _client.Kv.TxnAsync(overlap));
        var many = new TxnRequest();
        for (var i = 0; i < 9; i++)
        {
            many.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B($"m{i}"), Value = B("v") } });
        }

        await AssertEtcdError(EtcdErrors.TooManyOps, () => _client.Kv.TxnAsync(many));
        many.Success.RemoveAt(0);
        Assert.True((await _client.Kv.TxnAsync(many)).Succeeded);
    }

    [Fact]
    public async Task RequestTooLargeThenOverTheGrpcLimit()
    {
        // Over --max-request-bytes (1.5 MiB) but within the gRPC receive limit: etcd's own error.
        await AssertEtcdError(EtcdErrors.RequestTooLarge, () => _client.Kv.PutAsync(new PutRequest { Key = B("big"), Value = ByteString.CopyFrom(new byte[1_600_000]) }));

        // Over --max-request-bytes + 512 KiB: the gRPC layer refuses the message.
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => _client.Kv.PutAsync(new PutRequest { Key = B("huge"), Value = ByteString.CopyFrom(new byte[2_200_000]) }));
        Assert.Equal(StatusCode.ResourceExhausted, e.Status);
        Assert.StartsWith("grpc: received message larger than max (", e.Detail);

        Assert.True((await _client.Kv.PutAsync("after", "ok")).Header.Revision > 0);
        Assert.Equal("ok", (await _client.Kv.GetAsync("after")).Kvs[0].Value.ToStringUtf8());
    }

    [Fact]
    public async Task UnknownLeaseAndIgnoreOptions()
    {
        await AssertEtcdError(EtcdErrors.LeaseNotFound, () => _client.Kv.PutAsync(new PutRequest { Key = B("l"), Value = B("v"), Lease = 0x1234 }));
        await AssertEtcdError(EtcdErrors.KeyNotFound, () => _client.Kv.PutAsync(new PutRequest { Key = B("missing"), IgnoreValue = true }));
        await AssertEtcdError(EtcdErrors.ValueProvided, () => _client.Kv.PutAsync(new PutRequest { Key = B("x"), Value = B("v"), IgnoreValue = true }));
        await AssertEtcdError(EtcdErrors.LeaseProvided, () => _client.Kv.PutAsync(new PutRequest { Key = B("x"), Lease = 5, IgnoreLease = true }));
    }

    [Fact]
    public async Task InvalidSortOption()
    {
        await AssertEtcdError(EtcdErrors.InvalidSortOption, () => _client.Kv.RangeAsync(new RangeRequest { Key = B("a"), SortOrder = (RangeRequest.Types.SortOrder)7 }));
        await AssertEtcdError(EtcdErrors.InvalidSortOption, () => _client.Kv.RangeAsync(new RangeRequest { Key = B("a"), SortTarget = (RangeRequest.Types.SortTarget)9 }));
    }

    [Fact]
    public async Task TruncatedFrameFailsOnlyItsStream()
    {
        await _client.Kv.PutAsync("live", "yes");
        var channel = _client.GetChannel();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_host.ClientUrls[0], EtcdMethods.KVService.Range.FullName))
        {
            Version = System.Net.HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            // a 5-byte gRPC prefix announcing 100 bytes, then only 3
            Content = new ByteArrayContent([0, 0, 0, 0, 100, 1, 2, 3]),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        using var response = await channel.Invoker.SendAsync(request, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await response.Content.ReadAsByteArrayAsync();
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.Single() : response.Headers.GetValues("grpc-status").Single();
        Assert.Equal("13", status);

        // Same client, same connection pool: the member still answers.
        Assert.Equal("yes", (await _client.Kv.GetAsync("live")).Kvs[0].Value.ToStringUtf8());
    }
}
