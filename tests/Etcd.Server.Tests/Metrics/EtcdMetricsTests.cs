using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Etcd.Api.Grpc;
using Etcdserverpb;
using Microsoft.Extensions.Logging.Abstractions;

namespace Etcd.Server.Tests.Metrics;

/// <summary>
/// Values on an in-process member's <c>/metrics</c> move with the work done through our gRPC client: MVCC counters,
/// gRPC per-method and per-code counters, storage histograms, lease and watch figures; each member has its own registry.
/// </summary>
public sealed class EtcdMetricsTests() : InProcessMemberTests("metrics")
{
    [Fact]
    public async Task PutIncrementsMvccPutTotalAndLiveKeys()
    {
        var before = await ScrapeAsync(Host.Server);
        await Client.Kv.PutAsync("m/a", "1");
        await Client.Kv.PutAsync("m/b", "2");
        await Client.Kv.PutAsync("m/a", "3");
        var after = await ScrapeAsync(Host.Server);

        Assert.Equal(3, Value(after, "etcd_mvcc_put_total") - Value(before, "etcd_mvcc_put_total"));
        Assert.Equal(3, Value(after, "etcd_debugging_mvcc_put_total") - Value(before, "etcd_debugging_mvcc_put_total"));
        Assert.Equal(2, Value(after, "etcd_debugging_mvcc_keys_total") - Value(before, "etcd_debugging_mvcc_keys_total"));
        Assert.Equal(Host.Server.Kv.CurrentRevision, Value(after, "etcd_debugging_mvcc_current_revision"));
        Assert.Equal(3 * ("m/a".Length + 1), Value(after, "etcd_debugging_mvcc_total_put_size_in_bytes") - Value(before, "etcd_debugging_mvcc_total_put_size_in_bytes"));

        // Every put was made durable: the WAL synced and wrote bytes for it.
        Assert.True(Value(after, "etcd_disk_wal_fsync_duration_seconds_count") > Value(before, "etcd_disk_wal_fsync_duration_seconds_count"));
        Assert.True(Value(after, "etcd_disk_wal_write_bytes_total") > Value(before, "etcd_disk_wal_write_bytes_total"));

        await Client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("m/a") });
        var deleted = await ScrapeAsync(Host.Server);
        Assert.Equal(1, Value(deleted, "etcd_mvcc_delete_total") - Value(after, "etcd_mvcc_delete_total"));
        Assert.Equal(-1, Value(deleted, "etcd_debugging_mvcc_keys_total") - Value(after, "etcd_debugging_mvcc_keys_total"));
    }

    [Fact]
    public async Task TxnOfSeveralOperationsCountsOneTxnAndEachOperation()
    {
        var before = await ScrapeAsync(Host.Server);
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = B("t"), Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B("t"), Value = B("1") } });
        txn.Success.Add(new RequestOp { RequestRange = new RangeRequest { Key = B("t") } });
        await Client.Kv.TxnAsync(txn);
        var after = await ScrapeAsync(Host.Server);

        Assert.Equal(1, Value(after, "etcd_mvcc_txn_total") - Value(before, "etcd_mvcc_txn_total"));
        Assert.Equal(1, Value(after, "etcd_mvcc_put_total") - Value(before, "etcd_mvcc_put_total"));

        // etcd's compare reads through the transaction, so it counts as a range beside the range op.
        Assert.Equal(2, Value(after, "etcd_mvcc_range_total") - Value(before, "etcd_mvcc_range_total"));
    }

    [Fact]
    public async Task FailedCallIsCountedWithItsCodeAndSuccessfulOneAsOk()
    {
        const string range = """grpc_server_handled_total{grpc_code="{0}",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}""";
        var before = await ScrapeAsync(Host.Server);
        await Client.Kv.PutAsync("g", "v");
        var e = await Assert.ThrowsAnyAsync<RpcException>(() => Client.Kv.RangeAsync(new RangeRequest { Key = B("g"), Revision = 1_000_000 }));
        Assert.Equal(StatusCode.OutOfRange, e.Status);
        await Client.Kv.GetAsync("g");
        var after = await ScrapeAsync(Host.Server);

        Assert.Equal(1, Value(after, range.Replace("{0}", "OutOfRange", StringComparison.Ordinal)) - Value(before, range.Replace("{0}", "OutOfRange", StringComparison.Ordinal)));
        Assert.Equal(1, Value(after, range.Replace("{0}", "OK", StringComparison.Ordinal)) - Value(before, range.Replace("{0}", "OK", StringComparison.Ordinal)));
        const string started = """grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}""";
        Assert.Equal(2, Value(after, started) - Value(before, started));
        const string sent = """grpc_server_msg_sent_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}""";
        Assert.Equal(1, Value(after, sent) - Value(before, sent));
        Assert.True(Value(after, "etcd_network_client_grpc_received_bytes_total") > Value(before, "etcd_network_client_grpc_received_bytes_total"));

        // Every method is exposed from the start with every code, as go-grpc-prometheus initialises them.
        Assert.Contains("""grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="MemberPromote",grpc_service="etcdserverpb.Cluster",grpc_type="unary"} 0""", after);
        Assert.DoesNotContain("grpc_server_handling_seconds", after);
    }

    [Fact]
    public async Task LeaseGrantAndWatchersMoveTheirFigures()
    {
        var before = await ScrapeAsync(Host.Server);
        await Host.Server.LeaseGrantAsync(new LeaseGrantRequest { ID = 77, TTL = 30 }, CancellationToken.None);
        using var stream = Host.Server.Watchable.NewWatchStream();
        stream.Watch(0, Encoding.UTF8.GetBytes("w"), null, 0);
        var after = await ScrapeAsync(Host.Server);

        Assert.Equal(1, Value(after, "etcd_debugging_lease_granted_total") - Value(before, "etcd_debugging_lease_granted_total"));
        Assert.Equal(1, Value(after, """etcd_debugging_lease_ttl_total_bucket{le="32"}""") - Value(before, """etcd_debugging_lease_ttl_total_bucket{le="32"}"""));
        Assert.Equal(0, Value(after, """etcd_debugging_lease_ttl_total_bucket{le="16"}""") - Value(before, """etcd_debugging_lease_ttl_total_bucket{le="16"}"""));
        Assert.Equal(1, Value(after, "etcd_debugging_mvcc_watcher_total") - Value(before, "etcd_debugging_mvcc_watcher_total"));
        Assert.Equal(1, Value(after, "etcd_debugging_mvcc_watch_stream_total") - Value(before, "etcd_debugging_mvcc_watch_stream_total"));

        stream.Dispose();
        var closed = await ScrapeAsync(Host.Server);
        Assert.Equal(Value(before, "etcd_debugging_mvcc_watch_stream_total"), Value(closed, "etcd_debugging_mvcc_watch_stream_total"));
        Assert.Equal(Value(before, "etcd_debugging_mvcc_watcher_total"), Value(closed, "etcd_debugging_mvcc_watcher_total"));
    }

    [Fact]
    public async Task DefragAndSnapshotAreTimedAndStateGaugesFollowTheMember()
    {
        var before = await ScrapeAsync(Host.Server);
        await Client.Kv.PutAsync("d", "v");
        var backend = (Etcd.Storage.Backend.BoltBackend)Host.Server.Backend;
        backend.Defrag();
        using (var sink = new MemoryStream())
        {
            backend.Snapshot(sink);
        }

        var after = await ScrapeAsync(Host.Server);
        Assert.Equal(1, Value(after, "etcd_disk_backend_defrag_duration_seconds_count") - Value(before, "etcd_disk_backend_defrag_duration_seconds_count"));
        Assert.Equal(1, Value(after, "etcd_disk_backend_snapshot_duration_seconds_count") - Value(before, "etcd_disk_backend_snapshot_duration_seconds_count"));
        Assert.True(Value(after, "etcd_disk_backend_commit_duration_seconds_count") > Value(before, "etcd_disk_backend_commit_duration_seconds_count"));
        Assert.Equal(0, Value(after, "etcd_disk_defrag_inflight"));
        Assert.Equal(backend.Size, Value(after, "etcd_mvcc_db_total_size_in_bytes"));
        Assert.Equal(1, Value(after, "etcd_server_has_leader"));
        Assert.Equal(1, Value(after, "etcd_server_is_leader"));
        Assert.Equal(Host.Server.AppliedIndex, Value(after, "etcd_server_proposals_applied_total"));
        Assert.Equal(1, Value(after, $$"""etcd_server_id{server_id="{{Membership.Member.IdString(Host.Server.MemberId)}}"}"""));
        Assert.True(Value(after, "process_open_fds") > 0);
        Assert.Equal(Value(after, "process_open_fds"), Value(after, "os_fd_used"));
        Assert.Equal(1, Value(after, """promhttp_metric_handler_requests_total{code="200"}""") - Value(before, """promhttp_metric_handler_requests_total{code="200"}"""));
    }

    [Fact]
    public async Task EachMemberHasItsOwnRegistryAndExtensiveAddsHandlingHistogram()
    {
        using var dir = new TempDir();
        var options = TestMember.Options("metrics-second", dir.Path) with { Metrics = "extensive" };
        await using var second = await EtcdHost.StartAsync(options, NullLoggerFactory.Instance).WaitAsync(TimeSpan.FromSeconds(20));
        await second.Server.ReadyToServe.WaitAsync(TimeSpan.FromSeconds(20));
        using var client = Etcd.Client.EtcdClient.Create(new Etcd.Client.EtcdClientOptions { Endpoints = [second.ClientUrls[0].ToString()] });

        var firstBefore = await ScrapeAsync(Host.Server);
        var secondBefore = await ScrapeAsync(second.Server);
        await client.Kv.PutAsync("only-second", "v");
        var firstAfter = await ScrapeAsync(Host.Server);
        var secondAfter = await ScrapeAsync(second.Server);

        Assert.Equal(Value(firstBefore, "etcd_mvcc_put_total"), Value(firstAfter, "etcd_mvcc_put_total"));
        Assert.Equal(1, Value(secondAfter, "etcd_mvcc_put_total") - Value(secondBefore, "etcd_mvcc_put_total"));
        const string handling = """grpc_server_handling_seconds_count{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}""";
        Assert.Equal(1, Value(secondAfter, handling) - Value(secondBefore, handling));
        Assert.DoesNotContain("grpc_server_handling_seconds", firstAfter);
    }

    private static async Task<string> ScrapeAsync(EtcdServer server)
    {
        using var buffer = new MemoryStream();
        await server.Metrics.WriteAsync(buffer, CancellationToken.None);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The value of the sample written exactly as <paramref name="sample"/> (name and labels); 0 when absent.</summary>
    private static double Value(string exposition, string sample)
    {
        var m = Regex.Match(exposition, "^" + Regex.Escape(sample) + " (\\S+)$", RegexOptions.Multiline);
        return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }
}
