using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>put / get / del compared between real etcd 3.4.23 and the server under test.</summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class KvCompatTests
{
    [Fact]
    public Task Put_Variants_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(
        [
            Ok("put", "foo", "bar"),
            Ok("put", "foo", "baz", "--prev-kv"),
            Ok("put", "fresh", "x", "--prev-kv"),
            Ok("put", "foo", "qux", "--prev-kv", "-w", "json"),
            Ok("put", "foo2", "v", "-w", "json"),
            Ok("put", "foo2", "w", "-w", "fields"),
            Ok("put", "foo2", "--ignore-value"),
            Fails(1, "put", "missing", "--ignore-value"),
            Ok("put", "foo2", "y", "--ignore-lease"),
            Fails(1, "put", "foo3", "v", "--lease=bad"),
            Fails(128, "put", "foo3", "v", "--lease=zz"),
            Fails(1, "put", "", "v"),
            Fails(128, "put", "onlykey"),
            Ok("put", "spaces in key", "value with spaces"),
            Ok("put", "unicode/ключ", "значение"),
            new Step(["put", "from-stdin"], Stdin: "line one\nline two\n"),
            Ok("get", "from-stdin", "-w", "json"),
            // 1.6 MB value: above etcd's 1.5 MiB --max-request-bytes default, below the 2 MiB gRPC message
            // limit (etcdctl itself refuses to send more than 2 MiB, so the server's gRPC limit is not reachable here).
            new Step(["put", "too-big"], ExpectedExit: 1, Stdin: new string('x', 1_600_000)),
            Ok("put", "--", "-dash-key", "-dash-value"),
            Ok("get", "", "--prefix", "-w", "json"),
            Ok("get", "", "--prefix"),
        ]);
    });

    [Fact]
    public Task Get_Variants_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(Scenarios.Populate());
        await c.RunAsync(
        [
            Ok("get", "key/03"),
            Ok("get", "key/missing"),
            Ok("get", "key/", "--prefix"),
            Ok("get", "key/1", "--prefix"),
            Ok("get", "key/05", "--from-key"),
            Ok("get", "key/05", "key/10"),
            Ok("get", "", "--prefix"),
            Ok("get", "", "--from-key", "--keys-only"),
            Ok("get", "key/", "--prefix", "--keys-only"),
            Ok("get", "key/", "--prefix", "--print-value-only"),
            Ok("get", "key/", "--prefix", "--limit", "5"),
            Ok("get", "key/", "--prefix", "--limit", "5", "--order", "DESCEND"),
            Ok("get", "key/", "--prefix", "--order", "ASCEND"),
            Ok("get", "key/", "--prefix", "--order", "DESCEND"),
        ]);

        foreach (var sort in new[] { "KEY", "VERSION", "CREATE", "MODIFY", "VALUE" })
        {
            foreach (var order in new[] { "ASCEND", "DESCEND" })
            {
                await c.RunAsync(Ok("get", "key/", "--prefix", "--sort-by", sort, "--order", order, "-w", "json"));
            }

            await c.RunAsync(Ok("get", "key/", "--prefix", "--sort-by", sort, "--limit", "4"));
        }

        await c.RunAsync(
        [
            Ok("get", "key/", "--prefix", "--limit", "3", "-w", "json"),
            Ok("get", "key/", "--prefix", "--limit", "3", "-w", "fields"),
            Ok("get", "key/03", "-w", "simple"),
            Ok("get", "key/03", "-w", "fields"),
            Ok("get", "key/03", "-w", "json"),
            Ok("get", "key/missing", "-w", "json"),
            Ok("get", "key/missing", "-w", "fields"),
            new Step(["get", "key/", "--prefix", "--limit", "3", "-w", "protobuf"], Protobuf: true),
            new Step(["get", "key/11", "-w", "protobuf"], Protobuf: true),
            Ok("get", "key/", "--prefix", "--hex"),
            Ok("get", "key/", "--prefix", "--hex", "-w", "json"),
            Ok("get", "key/", "--prefix", "--keys-only", "-w", "json"),
            Ok("get", "key/", "--prefix", "--consistency=s", "--limit", "2"),
            Ok("get", "key/03", "--rev", "5"),
            Ok("get", "key/", "--prefix", "--rev", "12", "-w", "json"),
            Ok("get", "key/03", "--rev", "0"),
            Fails(1, "get", "key/03", "--rev", "1000"),
            Fails(4, "get", "key/", "--prefix", "--sort-by", "NOPE"),
            Fails(4, "get", "key/", "--prefix", "--order", "SIDEWAYS"),
        ]);
    });

    [Fact]
    public Task Delete_Variants_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(Scenarios.Populate());
        await c.RunAsync(
        [
            Ok("del", "key/03"),
            Ok("del", "key/03"),
            Ok("del", "nothing-here"),
            Ok("del", "key/05", "--prev-kv"),
            Ok("del", "key/1", "--prefix"),
            Ok("del", "key/0", "--prefix", "--prev-kv", "-w", "json"),
            Ok("del", "key/17", "--from-key"),
            Ok("del", "a", "b/2"),
            Ok("del", "key/04", "-w", "fields"),
            Ok("del", "zz", "--prev-kv", "-w", "fields"),
            Fails(128, "del"),
            Ok("get", "", "--prefix", "-w", "json"),
            Ok("put", "key/03", "again"),
            Ok("get", "key/03", "-w", "json"),
            Ok("get", "key/03", "--rev", "10"),
            Ok("del", "", "--prefix"),
            Ok("get", "", "--prefix", "-w", "json"),
        ]);
    });
}
