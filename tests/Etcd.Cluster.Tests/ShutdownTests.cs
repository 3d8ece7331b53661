using System.Diagnostics;
using Etcd.Api;
using Etcd.Api.Grpc;
using Etcd.Client;
using Etcd.Client.Grpc;
using Etcd.Cluster.Tests.Harness;
using Etcdserverpb;
using Google.Protobuf;
using Xunit.Abstractions;

namespace Etcd.Cluster.Tests;

/// <summary>
/// SIGTERM as an operator (or the kubelet) sends it: the member stops accepting, lets in-flight requests finish,
/// closes client HTTP/2 connections with GOAWAY rather than a TCP reset, and exits within a bound; a leader of a
/// multi-member cluster hands leadership over first (etcd's <c>EtcdServer.Stop</c> → <c>TransferLeadership</c>).
/// Every wait is bounded; phases advance on events (responses, process exit), never on sleeps.
/// </summary>
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class ShutdownTests(ITestOutputHelper output)
{
    private const int InFlight = 1000;

    /// <summary>
    /// 1,000 puts in flight on one HTTP/2 connection when SIGTERM arrives: each either completes or fails with
    /// Unavailable (retryable), the connection sees GOAWAY and no reset, the member exits within 10 s, and every
    /// acknowledged put is there after a restart.
    /// </summary>
    [Fact]
    public async Task SigtermWithThousandRequestsInFlight_CompletesOrFailsRetryably_WithoutConnectionReset()
    {
        await using var cluster = await ProcessCluster.StartAsync(1);
        var member = cluster.Members[0];
        var watch = new ConnectionWatch();
        using var client = EtcdClient.Create(new EtcdClientOptions
        {
            Endpoints = [member.ClientUrl],
            DialTimeout = TimeSpan.FromSeconds(2),
            HttpHandlerFactory = _ => watch.CreateHandler(),
        });
        await client.Kv.PutAsync("warm", "up", new CallOptions { Timeout = TimeSpan.FromSeconds(10) });

        var call = new CallOptions { Timeout = TimeSpan.FromSeconds(30) };
        var puts = Enumerable.Range(0, InFlight).Select(i => Outcome(client.Kv.PutAsync($"inflight/{i:D4}", $"v{i}", call))).ToList();

        // The first answer means the batch reached the server; most of the rest are still in flight.
        await Task.WhenAny(puts).WaitAsync(TimeSpan.FromSeconds(30));
        var doneAtSignal = puts.Count(p => p.IsCompleted);
        var clock = Stopwatch.StartNew();
        member.Terminate();
        var exited = await member.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var exitTime = clock.Elapsed;
        var results = await Task.WhenAll(puts).WaitAsync(TimeSpan.FromSeconds(40));

        var ok = results.Count(r => r.Error is null);
        var unavailable = results.Count(r => r.Error is { Status: StatusCode.Unavailable });
        var other = results.Where(r => r.Error is { Status: not StatusCode.Unavailable }).Select(r => $"{r.Error!.Status}: {r.Error.Detail}").Distinct().ToList();
        output.WriteLine($"{doneAtSignal} of {InFlight} answered at SIGTERM; {ok} completed, {unavailable} Unavailable; exit after {exitTime.TotalMilliseconds:0} ms " +
            $"(code {member.ExitCode}); connections {watch.Connections}, GOAWAYs {watch.GoAways}");
        foreach (var detail in results.Where(r => r.Error is not null).Select(r => r.Error!.Detail).Distinct().Take(5))
        {
            output.WriteLine($"  Unavailable: {detail}");
        }

        Assert.True(exited, $"the member did not exit within 10 s of SIGTERM\n{member.LogTail()}");
        Assert.True(other.Count == 0, $"requests failed with a non-retryable status: {string.Join("; ", other)}");
        Assert.True(watch.Resets.Count == 0, $"connections reset: {string.Join("; ", watch.Resets)}");
        Assert.True(watch.EndedWithoutGoAway.Count == 0, $"connections closed by the server without GOAWAY: {string.Join(", ", watch.EndedWithoutGoAway)}");
        Assert.True(watch.GoAways > 0, "the server closed no connection with GOAWAY");
        Assert.True(ok > doneAtSignal, $"no request in flight at SIGTERM completed ({ok} completed, {doneAtSignal} before the signal)");
        Assert.Contains(member.ExitCode, new int?[] { 0, 143 });

        // What was acknowledged is durable.
        await member.StartAsync(cluster.Options.ReadyTimeout);
        var acked = results.Select((r, i) => (r, i)).Where(x => x.r.Error is null).Select(x => x.i).ToList();
        var range = await ProcessCluster.RetryAsync(
            () => member.Client.Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("inflight/"), RangeEnd = ByteString.CopyFromUtf8("inflight0") }, call),
            TimeSpan.FromSeconds(20));
        var stored = range.Kvs.ToDictionary(kv => kv.Key.ToStringUtf8(), kv => kv.Value.ToStringUtf8());
        var lost = acked.Where(i => !stored.TryGetValue($"inflight/{i:D4}", out var v) || v != $"v{i}").ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged puts missing after restart, e.g. {string.Join(", ", lost.Take(5))}");
    }

    /// <summary>An idle member (one idle client connection open) exits within 2 s of SIGTERM, and cleanly.</summary>
    [Fact]
    public async Task IdleMember_ExitsWithinTwoSecondsOfSigterm()
    {
        await using var cluster = await ProcessCluster.StartAsync(1);
        var member = cluster.Members[0];
        var watch = new ConnectionWatch();
        using var client = EtcdClient.Create(new EtcdClientOptions
        {
            Endpoints = [member.ClientUrl],
            DialTimeout = TimeSpan.FromSeconds(2),
            HttpHandlerFactory = _ => watch.CreateHandler(),
        });
        await client.Kv.PutAsync("idle", "connection", new CallOptions { Timeout = TimeSpan.FromSeconds(10) });

        var clock = Stopwatch.StartNew();
        member.Terminate();
        var exited = await member.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var took = clock.Elapsed;
        output.WriteLine($"exited {exited} after {took.TotalMilliseconds:0} ms, code {member.ExitCode}; GOAWAYs {watch.GoAways}");
        Assert.True(exited, $"the member did not exit within 10 s of SIGTERM\n{member.LogTail()}");
        Assert.True(took < TimeSpan.FromSeconds(2), $"the idle member took {took.TotalMilliseconds:0} ms to exit\n{member.LogTail()}");
        Assert.True(watch.Resets.Count == 0, $"connections reset: {string.Join("; ", watch.Resets)}");
        Assert.Contains(member.ExitCode, new int?[] { 0, 143 });
    }

    /// <summary>
    /// SIGTERM to the leader of three: it transfers leadership before it exits, so the other two name a leader among
    /// themselves at once (well inside the 5 s election timeout they would otherwise wait out), and no write is lost.
    /// </summary>
    [Fact]
    public async Task LeaderOfThree_TransfersLeadershipBeforeExiting()
    {
        var options = new ClusterOptions { HeartbeatMs = 100, ElectionMs = 5000 };
        await using var cluster = await ProcessCluster.StartAsync(3, options);
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var rest = cluster.Followers(leader);
        var before = await ProcessCluster.TryStatusAsync(rest[0]) ?? throw new InvalidOperationException("no status from a follower");
        await ProcessCluster.RetryAsync(() => rest[0].Client.Kv.PutAsync("before", "sigterm", new CallOptions { Timeout = TimeSpan.FromSeconds(5) }), TimeSpan.FromSeconds(20));

        leader.Terminate();
        Assert.True(await leader.WaitForExitAsync(TimeSpan.FromSeconds(20)), $"the leader did not exit within 20 s of SIGTERM\n{leader.LogTail()}");
        var exitedAt = Stopwatch.StartNew();

        // Without a transfer the two would still name the old leader until their election timeout (5 s) runs out.
        string last = "";
        var agreed = false;
        while (exitedAt.Elapsed < TimeSpan.FromSeconds(10) && !agreed)
        {
            var statuses = await Task.WhenAll(rest.Select(ProcessCluster.TryStatusAsync));
            last = string.Join(", ", statuses.Select((s, i) => $"{rest[i].Name}: leader {s?.Leader:x} term {s?.RaftTerm}"));
            agreed = statuses.All(s => s is not null && s.Leader == statuses[0]!.Leader && rest.Any(m => m.MemberId == s.Leader));
        }

        var gap = exitedAt.Elapsed;
        output.WriteLine($"leader {leader.Name} exited (code {leader.ExitCode}); the others agree after {gap.TotalMilliseconds:0} ms: {last}; term before {before.RaftTerm}");
        Assert.True(agreed, $"the remaining members named no common leader among themselves within 10 s: {last}\n{cluster.LogTails()}");
        Assert.True(gap < TimeSpan.FromMilliseconds(options.ElectionMs / 2), $"the remaining members took {gap.TotalMilliseconds:0} ms to name a leader: no transfer before exit\n{leader.LogTail()}");
        Assert.Contains(leader.ExitCode, new int?[] { 0, 143 });

        var got = await ProcessCluster.RetryAsync(() => rest[1].Client.Kv.GetAsync("before", new CallOptions { Timeout = TimeSpan.FromSeconds(5) }), TimeSpan.FromSeconds(20));
        Assert.Equal("sigterm", Assert.Single(got.Kvs).Value.ToStringUtf8());
    }

    /// <summary>
    /// Open watch streams (gRPC, and the JSON gateway's over HTTP/1.1) do not hold the member up: at SIGTERM the gRPC
    /// watch ends with Unavailable (clients retry elsewhere), the gateway's response ends cleanly, nothing is reset, and
    /// the member exits within 2 s.
    /// </summary>
    [Fact]
    public async Task OpenWatchStreams_EndRetryablyAndDoNotHoldTheMemberUp()
    {
        await using var cluster = await ProcessCluster.StartAsync(1);
        var member = cluster.Members[0];
        var watch = new ConnectionWatch();
        using var client = EtcdClient.Create(new EtcdClientOptions
        {
            Endpoints = [member.ClientUrl],
            DialTimeout = TimeSpan.FromSeconds(2),
            HttpHandlerFactory = _ => watch.CreateHandler(),
        });
        using var grpcWatch = client.GetChannel().DuplexStreaming(EtcdMethods.WatchService.Watch);
        await grpcWatch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("w") } });
        using (var first = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            Assert.True(await grpcWatch.ResponseStream.MoveNext(first.Token), "the gRPC watch was not created");
        }

        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var post = new HttpRequestMessage(HttpMethod.Post, member.ClientUrl + "/v3/watch")
        {
            Content = new StringContent("{\"create_request\":{\"key\":\"dw==\"}}"),
        };
        using var gatewayResponse = await http.SendAsync(post, HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(10));
        var gatewayBody = new StreamReader(await gatewayResponse.Content.ReadAsStreamAsync());
        var created = await gatewayBody.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("\"created\":true", created);

        var clock = Stopwatch.StartNew();
        member.Terminate();
        var grpcEnd = await Assert.ThrowsAnyAsync<RpcException>(async () =>
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (await grpcWatch.ResponseStream.MoveNext(bound.Token))
            {
            }
        });
        string? gatewayEnd = null;
        Exception? gatewayError = null;
        try
        {
            gatewayEnd = await gatewayBody.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            gatewayError = e;
        }

        var exited = await member.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var took = clock.Elapsed;
        output.WriteLine($"gRPC watch ended with {grpcEnd.Status}: {grpcEnd.Detail}; gateway watch ended with [{gatewayEnd?.Trim()}] {gatewayError?.Message}; exit after {took.TotalMilliseconds:0} ms");
        Assert.Equal(StatusCode.Unavailable, grpcEnd.Status);
        Assert.Null(gatewayError);
        Assert.True(exited, $"the member did not exit within 10 s of SIGTERM\n{member.LogTail()}");
        Assert.True(took < TimeSpan.FromSeconds(2), $"the member took {took.TotalMilliseconds:0} ms to exit with watches open\n{member.LogTail()}");
        Assert.True(watch.Resets.Count == 0, $"connections reset: {string.Join("; ", watch.Resets)}");
    }

    private static async Task<(PutResponse? Response, RpcException? Error)> Outcome(Task<PutResponse> put)
    {
        try
        {
            return (await put, null);
        }
        catch (RpcException e)
        {
            return (null, e);
        }
    }
}
