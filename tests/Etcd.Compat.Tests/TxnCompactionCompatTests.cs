using Etcd.Compat.Tests.Harness;
using static Etcd.Compat.Tests.Harness.Comparison;

namespace Etcd.Compat.Tests;

/// <summary>txn -i and compaction compared between real etcd 3.4.23 and the server under test.</summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class TxnCompactionCompatTests
{
    private static Step Txn(string script, params string[] extra) => new(["txn", "-i", .. extra], Stdin: script);

    private static Step TxnFails(int exit, string script) => new(["txn", "-i"], exit, script);

    [Fact]
    public Task Txn_SuccessAndFailureBranches_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(
        [
            Ok("put", "t1", "v1"),
            Ok("put", "t2", "v2"),
            Ok("put", "t2", "v2b"),
            // Success branch: value and version compares hold.
            Txn("value(\"t1\") = \"v1\"\nversion(\"t2\") = \"2\"\n\nput t3 \"new three\"\nget t1\ndel t2\n\nput never x\n\n"),
            // Failure branch: create revision compare fails.
            Txn("create(\"t1\") > \"1000\"\n\nput never y\n\nput f \"from failure\"\nget t3\nget t2\n\n"),
            // mod revision compare, both orders.
            Txn("mod(\"t3\") < \"100\"\n\nget t3\n\n\n"),
            Txn("mod(\"t3\") > \"100\"\n\n\nget t3\n\n"),
            // Missing key compares: version 0, create 0.
            Txn("version(\"nokey\") = \"0\"\ncreate(\"nokey\") = \"0\"\n\nput nokey created\n\n\n"),
            Txn("value(\"t1\") != \"v1\"\n\nput never z\n\ndel --prefix t\n\n"),
            // Range compares and prefixes inside requests.
            Ok("put", "r/1", "one"),
            Ok("put", "r/2", "two"),
            Txn("value(\"r/1\") = \"one\"\n\nget --prefix r/\nput r/3 three\n\n\n", "-w", "json"),
            Txn("value(\"r/1\") = \"nope\"\n\n\ndel --prefix r/\nget --prefix r/\n\n", "-w", "json"),
            Txn("version(\"nokey\") > \"0\"\n\nput x y\n\nget nokey\n\n", "-w", "fields"),
            Txn("\n\nput empty-compare ok\n\n\n"),
            TxnFails(3, "bogus(\"t1\") = \"1\"\n\n\n\n"),
            TxnFails(128, "value(\"t1\") = \"v1\"\n\nput t1\n\n\n"),
            Ok("get", "", "--prefix", "-w", "json"),
        ]);
    });

    [Fact]
    public Task Compaction_MatchRealEtcd() => Scenarios.CompareAsync(async c =>
    {
        await c.RunAsync(Scenarios.Populate());
        // 31 puts: revisions 2..32.
        await c.RunAsync(
        [
            Ok("get", "key/03", "--rev", "5", "-w", "json"),
            Ok("compaction", "10"),
            Fails(1, "get", "key/03", "--rev", "9"),
            Ok("get", "key/", "--prefix", "--rev", "10", "--keys-only"),
            Ok("get", "key/03", "--rev", "11", "-w", "json"),
            Fails(1, "compaction", "10"),
            Fails(1, "compaction", "5"),
            Fails(1, "compaction", "1000"),
            Ok("compaction", "20", "--physical"),
            Fails(1, "get", "key/", "--prefix", "--rev", "19"),
            Ok("get", "key/", "--prefix", "--rev", "20", "-w", "json"),
            Fails(1, "get", "key/", "--prefix", "--rev", "33"),
            Ok("put", "after", "compaction"),
            Ok("get", "", "--prefix", "-w", "json"),
            Ok("compaction", "33", "--physical"),
            Ok("get", "", "--prefix", "--rev", "33", "-w", "json"),
            Fails(128, "compaction"),
            Ok("defrag"),
            Ok("alarm", "list"),
            Ok("alarm", "disarm"),
            Ok("get", "", "--prefix", "--keys-only"),
            Ok("endpoint", "status", "-w", "json"),
        ]);
    });
}
