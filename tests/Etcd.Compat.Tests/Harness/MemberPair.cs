using System.Text.Json;

namespace Etcd.Compat.Tests.Harness;

/// <summary>
/// A fresh real etcd 3.4.23 and a fresh server under test, both single-member, started concurrently,
/// with the identity (IDs, URLs) of each learnt from <c>etcdctl endpoint status -w json</c>.
/// </summary>
public sealed class MemberPair : IAsyncDisposable
{
    private MemberPair(EtcdProcess reference, EtcdProcess underTest, MemberIdentity referenceIdentity, MemberIdentity underTestIdentity)
    {
        Reference = reference;
        UnderTest = underTest;
        ReferenceIdentity = referenceIdentity;
        UnderTestIdentity = underTestIdentity;
    }

    /// <summary>The real etcd 3.4.23.</summary>
    public EtcdProcess Reference { get; }

    /// <summary>Our server (ETCD_UNDER_TEST).</summary>
    public EtcdProcess UnderTest { get; }

    /// <summary>What legitimately differs on the reference side.</summary>
    public MemberIdentity ReferenceIdentity { get; }

    /// <summary>What legitimately differs on the side under test.</summary>
    public MemberIdentity UnderTestIdentity { get; }

    /// <summary>
    /// Starts both members (same member name "compat", so names compare equal) and reads their IDs.
    /// Fails the test with a clear message if a binary is missing.
    /// </summary>
    public static async Task<MemberPair> StartAsync()
    {
        CompatEnvironment.RequireAll();
        var referenceTask = EtcdProcess.StartAsync(CompatEnvironment.ReferenceEtcdPath, "compat");
        var underTestTask = EtcdProcess.StartAsync(CompatEnvironment.UnderTestPath, "compat");
        try
        {
            await Task.WhenAll(referenceTask, underTestTask);
        }
        catch
        {
            // Do not leak the member that did start.
            foreach (var t in new[] { referenceTask, underTestTask })
            {
                if (t.IsCompletedSuccessfully)
                {
                    await t.Result.DisposeAsync();
                }
            }

            throw;
        }

        var reference = referenceTask.Result;
        var underTest = underTestTask.Result;
        try
        {
            await Task.WhenAll(WaitForClusterVersionAsync(reference), WaitForClusterVersionAsync(underTest));
            var ids = await Task.WhenAll(IdentifyAsync(reference), IdentifyAsync(underTest));
            return new MemberPair(reference, underTest, ids[0], ids[1]);
        }
        catch
        {
            await reference.DisposeAsync();
            await underTest.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits (bounded: 15 s, polling every 50 ms) until GET /version reports a decided cluster version.
    /// etcd logs the readiness line once its own attributes are published, but the leader proposes the
    /// initial cluster version concurrently, so that raft entry may be applied just after readiness; raft
    /// index in endpoint status only compares equal once both members have applied it.
    /// </summary>
    public static async Task WaitForClusterVersionAsync(EtcdProcess member)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        var last = "(no response)";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await http.GetStringAsync(member.ClientUrl + "/version");
                using var doc = JsonDocument.Parse(last);
                if (doc.RootElement.TryGetProperty("etcdcluster", out var cluster) &&
                    cluster.GetString() is { Length: > 0 } v && v != "not_decided")
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                last = e.Message;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"{member} did not report a decided cluster version on /version within 15 s; last answer: {last}\nlog tail:\n{member.LogTail()}");
    }

    /// <summary>Reads member and cluster ID from <c>endpoint status -w json</c> (header.member_id / header.cluster_id).</summary>
    public static async Task<MemberIdentity> IdentifyAsync(EtcdProcess member)
    {
        var result = await Etcdctl.RunAsync(member.Endpoint, "endpoint", "status", "-w", "json");
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"endpoint status against {member} failed: {result}\nmember log tail:\n{member.LogTail()}");
        }

        using var doc = JsonDocument.Parse(result.Stdout);
        var header = doc.RootElement[0].GetProperty("Status").GetProperty("header");
        var memberId = header.GetProperty("member_id").GetUInt64();
        var clusterId = header.GetProperty("cluster_id").GetUInt64();
        if (memberId == 0 || clusterId == 0)
        {
            throw new InvalidOperationException($"{member} reports member_id {memberId} / cluster_id {clusterId}; both must be non-zero: {result.Stdout}");
        }

        return new MemberIdentity(memberId, clusterId, member.ClientUrl, member.PeerUrl, member.Endpoint);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Reference.DisposeAsync().AsTask(), UnderTest.DisposeAsync().AsTask());
    }
}
