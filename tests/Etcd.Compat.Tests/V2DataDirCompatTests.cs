using System.Text.RegularExpressions;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// A data directory with v2 data moves between real etcd 3.4.23 and the server under test in both directions:
/// v2 writes are in the WAL as etcd's v2 requests and, with raft snapshots every 5 entries, the whole v2 store is in
/// the snap files in etcd's JSON. The second server serves the same v2 tree (keys, dirs, hidden keys, TTL keys,
/// indexes) and the v2 auth users written by the first.
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed partial class V2DataDirCompatTests
{
    [Fact]
    public Task RealEtcdV2DataDir_IsServedByServerUnderTest()
        => MoveAsync(CompatEnvironment.RequireReferenceEtcd(), CompatEnvironment.RequireUnderTest());

    [Fact]
    public Task ServerUnderTestV2DataDir_IsServedByRealEtcd()
        => MoveAsync(CompatEnvironment.RequireUnderTest(), CompatEnvironment.RequireReferenceEtcd());

    private static async Task MoveAsync(string writer, string reader)
    {
        await using var member = await EtcdProcess.StartAsync(writer, "v2datadir", ["--enable-v2", "--snapshot-count", "5"]);
        using var http = new HttpClient { BaseAddress = new Uri(member.ClientUrl), Timeout = TimeSpan.FromSeconds(20) };
        async Task PutAsync(string path, params (string, string)[] form)
        {
            var r = await http.PutAsync(path, new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Item1, f.Item2))));
            Assert.True(r.IsSuccessStatusCode, $"PUT {path}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }

        for (var i = 0; i < 12; i++)
        {
            await PutAsync($"/v2/keys/dir/k{i:D2}", ("value", "v" + i));
        }

        await PutAsync("/v2/keys/dir/k03", ("value", "changed"));
        await PutAsync("/v2/keys/empty", ("dir", "true"));
        await PutAsync("/v2/keys/_hidden", ("value", "h"));
        await PutAsync("/v2/keys/ttl", ("value", "t"), ("ttl", "3600"));
        Assert.True((await http.DeleteAsync("/v2/keys/dir/k05")).IsSuccessStatusCode);
        var userAdd = await http.PutAsync("/v2/auth/users/someone", new StringContent("""{"user":"someone","password":"pw"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.True(userAdd.IsSuccessStatusCode, await userAdd.Content.ReadAsStringAsync());
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(member.DataDir, "member", "snap"), "*.snap"));

        var tree = WithoutTtl(await http.GetStringAsync("/v2/keys/?recursive=true&sorted=true"));
        var hidden = await http.GetStringAsync("/v2/keys/_hidden");
        var users = await http.GetStringAsync("/v2/auth/users");
        Assert.True(await member.StopAsync(), $"writer {writer} did not stop\n{member.LogTail()}");

        await member.RestartAsync(reader);
        Assert.Equal(tree, WithoutTtl(await http.GetStringAsync("/v2/keys/?recursive=true&sorted=true")));
        Assert.Equal(hidden, await http.GetStringAsync("/v2/keys/_hidden"));
        Assert.Equal(users, await http.GetStringAsync("/v2/auth/users"));
        await PutAsync("/v2/keys/after", ("value", "restart"));
        Assert.Contains("\"value\":\"restart\"", await http.GetStringAsync("/v2/keys/after?quorum=true"));
    }

    /// <summary>The seconds left of a TTL key change while the test runs; the expiration time itself must not.</summary>
    private static string WithoutTtl(string json) => TtlField().Replace(json, "");

    [GeneratedRegex("\"ttl\":[0-9]+,")]
    private static partial Regex TtlField();
}
