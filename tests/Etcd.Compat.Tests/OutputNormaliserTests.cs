using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// The normaliser must make two members' outputs equal when only IDs, endpoints, timings and DB size
/// differ, and must keep every other difference visible. Samples are real etcdctl 3.4.23 output.
/// These tests run no process and carry no Compat trait.
/// </summary>
public sealed class OutputNormaliserTests
{
    private static readonly MemberIdentity A = new(3319814642761637952, 324952591200643719, "http://127.0.0.1:23790", "http://127.0.0.1:23800", "127.0.0.1:23790");
    private static readonly MemberIdentity B = new(0x455b31ea5049c3d0, 0xa8a242ac8a11ab3f, "http://127.0.0.1:38681", "http://127.0.0.1:43139", "127.0.0.1:38681");

    private const string StatusTableA = """
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
        |    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
        | 127.0.0.1:23790 | 2e1259d415f2a040 |  3.4.23 |   20 kB |      true |      false |         2 |          7 |                  7 |        |
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+

        """;

    private const string StatusTableB = """
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
        |    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
        | 127.0.0.1:38681 | 455b31ea5049c3d0 |  3.4.23 |  1.2 MB |      true |      false |         2 |          7 |                  7 |        |
        +-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+

        """;

    private static void AssertSame(string a, string b) =>
        Assert.Equal(OutputNormaliser.Normalise(a, A), OutputNormaliser.Normalise(b, B));

    private static void AssertDifferent(string a, string b) =>
        Assert.NotEqual(OutputNormaliser.Normalise(a, A), OutputNormaliser.Normalise(b, B));

    [Fact]
    public void StatusTable_DiffersOnlyInIdEndpointAndDbSize_Equal()
    {
        AssertSame(StatusTableA, StatusTableB);
        var normalised = OutputNormaliser.Normalise(StatusTableA, A);
        Assert.Contains("| <ENDPOINT> | <MEMBER_ID_HEX> | 3.4.23 | <DB_SIZE> | true | false | 2 | 7 | 7 |  |", normalised);
    }

    [Theory]
    [InlineData("|          7 |                  7 |", "|          8 |                  7 |")] // raft index
    [InlineData("|         2 |          7 |", "|         3 |          7 |")] // raft term
    [InlineData("|  3.4.23 |", "|  3.5.00 |")] // version
    [InlineData("|      true |      false |", "|     false |      false |")] // leader
    public void StatusTable_OtherCellDiffers_NotEqual(string from, string to)
    {
        Assert.Contains(from, StatusTableB);
        AssertDifferent(StatusTableA, StatusTableB.Replace(from, to));
    }

    [Fact]
    public void StatusJson_IdsAndDbSizeDiffer_Equal_ButRevisionDiffers_NotEqual()
    {
        const string a = """[{"Endpoint":"127.0.0.1:23790","Status":{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":3,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":3319814642761637952,"raftIndex":7,"raftTerm":2,"raftAppliedIndex":7,"dbSizeInUse":16384}}]""";
        var b = a.Replace("127.0.0.1:23790", B.Endpoint)
            .Replace("324952591200643719", B.ClusterId.ToString())
            .Replace("3319814642761637952", B.MemberId.ToString())
            .Replace("20480", "1228800").Replace("16384", "12288");
        AssertSame(a, b);
        AssertDifferent(a, b.Replace("\"revision\":3", "\"revision\":4"));
        AssertDifferent(a, b.Replace("\"raftAppliedIndex\":7", "\"raftAppliedIndex\":6"));
        // The leader field must be this member's ID, not any ID.
        AssertDifferent(a, b.Replace($"\"leader\":{B.MemberId}", "\"leader\":12345678901234567"));
    }

    [Fact]
    public void MemberList_SimpleAndFields_Equal()
    {
        AssertSame(
            "2e1259d415f2a040, started, n1, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n",
            "455b31ea5049c3d0, started, n1, http://127.0.0.1:43139, http://127.0.0.1:38681, false\n");
        AssertDifferent(
            "2e1259d415f2a040, started, n1, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n",
            "455b31ea5049c3d0, started, n2, http://127.0.0.1:43139, http://127.0.0.1:38681, false\n");
        AssertSame(
            "\"ClusterID\" : 324952591200643719\n\"MemberID\" : 3319814642761637952\n\"Revision\" : 3\n",
            $"\"ClusterID\" : {B.ClusterId}\n\"MemberID\" : {B.MemberId}\n\"Revision\" : 3\n");
        // Hex where decimal is expected (or the other way round) stays visible.
        AssertDifferent(
            "\"MemberID\" : 3319814642761637952\n",
            "\"MemberID\" : 455b31ea5049c3d0\n");
    }

    [Fact]
    public void ClientLogLineAndTimings_Equal_ButErrorTextDiffers_NotEqual()
    {
        const string a = """
            {"level":"warn","ts":"2026-11-21T09:24:49.179Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-ce5adc7a-e252-4d85-a4f6-b3a71bc70668/127.0.0.1:23790","attempt":0,"error":"rpc error: code = NotFound desc = etcdserver: requested lease not found"}
            Error: etcdserver: requested lease not found
            127.0.0.1:23790 is healthy: successfully committed proposal: took = 2.174176ms
            [{"endpoint":"127.0.0.1:23790","health":true,"took":"1.605907ms"}]

            """;
        var b = a.Replace("2026-11-21T09:24:49.179Z", "2026-11-21T10:00:00.001Z")
            .Replace("ce5adc7a-e252-4d85-a4f6-b3a71bc70668", "a8ddc210-6e44-4911-8b32-8cf35397d8e5")
            .Replace("127.0.0.1:23790", B.Endpoint)
            .Replace("2.174176ms", "812.5µs").Replace("1.605907ms", "1.2s");
        AssertSame(a, b);
        AssertDifferent(a, b.Replace("code = NotFound", "code = Unknown"));
        AssertDifferent(a, b.Replace("Error: etcdserver: requested lease not found", "Error: lease not found"));
        AssertDifferent(a, b.Replace("\"attempt\":0", "\"attempt\":1"));
    }

    [Fact]
    public void IdReplacement_IsWholeTokenOnly()
    {
        var inside = "value 93319814642761637952 and 2e1259d415f2a0401\n";
        Assert.Equal(inside, OutputNormaliser.Normalise(inside, A));
    }

    [Fact]
    public void HealthTable_TookColumnBlanked_HealthKept()
    {
        const string a = """
            +-----------------+--------+------------+-------+
            |    ENDPOINT     | HEALTH |    TOOK    | ERROR |
            +-----------------+--------+------------+-------+
            | 127.0.0.1:23790 |   true | 2.091695ms |       |
            +-----------------+--------+------------+-------+
            """;
        var b = a.Replace("127.0.0.1:23790", B.Endpoint).Replace("2.091695ms", "13.2ms    ");
        AssertSame(a, b);
        AssertDifferent(a, b.Replace("|   true |", "|  false |"));
    }

    [Fact]
    public void Protobuf_HeaderIdsNormalised_RevisionKept()
    {
        // RangeResponse{header{cluster_id, member_id, revision 3, raft_term 2}, kvs{key "a", ...}, count 1}
        static byte[] Range(ulong cluster, ulong member, byte revision)
        {
            var header = new List<byte> { 0x08 };
            Varint(header, cluster);
            header.Add(0x10);
            Varint(header, member);
            header.AddRange([0x18, revision, 0x20, 0x02]);
            var message = new List<byte> { 0x0a, (byte)header.Count };
            message.AddRange(header);
            message.AddRange([0x12, 0x0c, 0x0a, 0x01, 0x61, 0x10, 0x02, 0x18, 0x02, 0x20, 0x01, 0x2a, 0x01, 0x31, 0x20, 0x01]);
            return message.ToArray();
        }

        static void Varint(List<byte> o, ulong v)
        {
            for (; v >= 0x80; v >>= 7)
            {
                o.Add((byte)(v | 0x80));
            }

            o.Add((byte)v);
        }

        Assert.Equal(OutputNormaliser.NormaliseProtobuf(Range(A.ClusterId, A.MemberId, 3), A), OutputNormaliser.NormaliseProtobuf(Range(B.ClusterId, B.MemberId, 3), B));
        Assert.NotEqual(OutputNormaliser.NormaliseProtobuf(Range(A.ClusterId, A.MemberId, 3), A), OutputNormaliser.NormaliseProtobuf(Range(B.ClusterId, B.MemberId, 4), B));
        // A foreign member ID is kept, so a server reporting the wrong ID in the header is caught.
        Assert.NotEqual(OutputNormaliser.NormaliseProtobuf(Range(A.ClusterId, A.MemberId, 3), A), OutputNormaliser.NormaliseProtobuf(Range(B.ClusterId, 42, 3), B));
    }

    [Fact]
    public void LearntLeaseIds_ReplacedInHexAndDecimal_OnlyThatId()
    {
        var refIds = new Dictionary<string, ulong> { ["LEASE_1"] = 0x0694d7d8b4f5d3a0 };
        var ourIds = new Dictionary<string, ulong> { ["LEASE_1"] = 0x47ada1fd7ba5cf07 };
        Assert.Equal(
            OutputNormaliser.Normalise("lease 0694d7d8b4f5d3a0 granted with TTL(100s)\n\"lease\":474241186529661856\n", A, refIds),
            OutputNormaliser.Normalise($"lease 47ada1fd7ba5cf07 granted with TTL(100s)\n\"lease\":{0x47ada1fd7ba5cf07UL}\n", B, ourIds));
        Assert.NotEqual(
            OutputNormaliser.Normalise("found 1 leases\n0694d7d8b4f5d3a0\n", A, refIds),
            OutputNormaliser.Normalise("found 1 leases\n1111111111111111\n", B, ourIds));
    }

    [Fact]
    public void MissingBinary_FailsWithClearMessage()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-etcd-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<Xunit.Sdk.FailException>(() => CompatEnvironment.RequireFile(missing, "server under test", CompatEnvironment.UnderTestVariable));
        Assert.Contains(missing, e.Message);
        Assert.Contains("Category!=Compat", e.Message);
    }
}
