using System.Diagnostics;
using Etcd.Compat.Tests.Harness;

namespace Etcd.Compat.Tests;

/// <summary>
/// The real <c>etcdctl backup</c> (v2 mode) on our data dir, with and without raft snapshots and <c>--with-v3</c>:
/// the backup (new member and cluster IDs, conf changes dropped) starts with our etcd and
/// <c>--force-new-cluster</c> as a one-member cluster that serves the v2 keys, the v3 keys with <c>--with-v3</c>,
/// and new writes (etcd's TestCtlV2Backup* with our etcd).
/// </summary>
[Trait(CompatEnvironment.TraitName, CompatEnvironment.Category)]
public sealed class V2BackupCompatTests
{
    [Theory]
    [InlineData("100000", false)]
    [InlineData("1", false)]
    [InlineData("100000", true)]
    [InlineData("1", true)]
    public async Task EtcdctlBackup_OfOurDataDir_RestartsWithForceNewCluster(string snapshotCount, bool withV3)
    {
        var etcdctl = CompatEnvironment.RequireEtcdctl();
        await using var member = await EtcdProcess.StartAsync(CompatEnvironment.RequireUnderTest(), "backup", ["--enable-v2", "--snapshot-count", snapshotCount]);
        var ep = member.Endpoint;
        Assert.Equal(0, (await Etcdctl.RunAsync(ep, "put", "v3key", "123")).ExitCode);
        using (var http = new HttpClient { BaseAddress = new Uri(member.ClientUrl) })
        {
            var r = await http.PutAsync("/v2/keys/foo1", new FormUrlEncodedContent([new("value", "bar1")]));
            Assert.True(r.IsSuccessStatusCode);
        }

        Assert.True(await member.StopAsync(), member.LogTail());
        var backup = member.DataDir + "-backup";
        try
        {
            var args = new List<string> { "backup", "--data-dir", member.DataDir, "--backup-dir", backup };
            if (withV3)
            {
                args.Add("--with-v3");
            }

            var psi = new ProcessStartInfo(etcdctl) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["ETCDCTL_API"] = "2";
            args.ForEach(psi.ArgumentList.Add);
            using (var p = Process.Start(psi)!)
            {
                var err = p.StandardError.ReadToEndAsync();
                await p.StandardOutput.ReadToEndAsync();
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(p.ExitCode == 0, await err);
            }

            Directory.Delete(member.DataDir, recursive: true);
            Directory.Move(backup, member.DataDir);
        }
        finally
        {
            if (Directory.Exists(backup))
            {
                Directory.Delete(backup, recursive: true);
            }
        }

        member.ExtraArgs = [.. member.ExtraArgs, "--force-new-cluster"];
        await member.RestartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(member.ClientUrl) };
        Assert.Contains("\"value\":\"bar1\"", await client.GetStringAsync("/v2/keys/foo1"));
        var members = await client.GetStringAsync("/v2/members");
        Assert.Contains($"\"clientURLs\":[\"{member.ClientUrl}\"]", members);
        var v3 = await Etcdctl.RunAsync(ep, "get", "v3key", "--print-value-only");
        Assert.Equal(withV3 ? "123\n" : "", v3.Stdout);
        var put = await client.PutAsync("/v2/keys/foo2", new FormUrlEncodedContent([new("value", "bar2")]));
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }
}
