using Etcd.Cluster.Tests.Harness;
using static Microsoft.Playwright.Assertions;

namespace Etcd.Dashboard.Tests;

/// <summary>
/// The cluster page on a 3-member cluster of bin/etcd processes (ETCD_UNDER_TEST; scripts/publish.sh first): every
/// member's health and Status, a member killed shown as unreachable, and shown healthy again after its restart; a
/// learner added.
/// </summary>
[Collection(BrowserCollection.Name)]
[Trait(ClusterEnvironment.TraitName, ClusterEnvironment.Category)]
public sealed class ClusterPageTests(BrowserFixture browser)
{
    [BrowserFact]
    public async Task AMemberGoingDown_AndComingBack_IsShown()
    {
        await using var cluster = await ProcessCluster.StartAsync(3, new ClusterOptions { ExtraArgs = ["--enable-dashboard"] });
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(20));
        var serving = cluster.Members[0];
        var victim = cluster.Members.First(m => m != serving && m != leader);

        var page = await browser.NewPageAsync();
        await page.GotoAsync(serving.ClientUrl + "/ui/#/cluster");
        var rows = page.Locator("#members tbody tr");
        await Expect(rows).ToHaveCountAsync(3);
        await Expect(page.Locator("#cluster-summary")).ToContainTextAsync($"3 members, 3 healthy, leader {leader.MemberId:x}");
        await Expect(page.Locator($"#members tr[data-member={leader.Name}] td").Nth(2)).ToHaveTextAsync("leader");
        await Expect(page.Locator($"#members tr[data-member={victim.Name}] td").Nth(3)).ToHaveTextAsync("healthy");
        await Expect(page.Locator($"#members tr[data-member={victim.Name}] td").Nth(4)).Not.ToHaveTextAsync("—");
        await BrowserFixture.ShotAsync(page, "cluster-3-healthy");

        victim.Kill();
        await Expect(page.Locator($"#members tr[data-member={victim.Name}] td").Nth(3)).ToHaveTextAsync("unreachable");
        await Expect(page.Locator("#cluster-summary")).ToContainTextAsync("3 members, 2 healthy");
        await BrowserFixture.ShotAsync(page, "cluster-member-down");

        await victim.StartAsync(cluster.Options.ReadyTimeout);
        await Expect(page.Locator($"#members tr[data-member={victim.Name}] td").Nth(3)).ToHaveTextAsync("healthy", new() { Timeout = 30_000 });
        await Expect(page.Locator("#cluster-summary")).ToContainTextAsync("3 members, 3 healthy");
        await BrowserFixture.ShotAsync(page, "cluster-member-back");

        // A learner joins: listed as such, with its own health and status.
        var learner = await cluster.AddLearnerAsync();
        await Expect(rows).ToHaveCountAsync(4);
        await Expect(page.Locator($"#members tr[data-member={learner.Name}] td").Nth(2)).ToHaveTextAsync("learner");
        await Expect(page.Locator($"#members tr[data-member={learner.Name}] td").Nth(3)).ToHaveTextAsync("healthy", new() { Timeout = 30_000 });
        await BrowserFixture.ShotAsync(page, "cluster-learner");
        await page.Context.CloseAsync();
    }
}
