using System.Text.RegularExpressions;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Etcd.Dashboard.Tests;

/// <summary>The member all page tests of <see cref="PagesTests"/> share: 10,000 keys under <c>big/</c>, a small tree and a binary value.</summary>
public sealed class PagesMember : IAsyncLifetime
{
    /// <summary>Keys under <c>big/</c>.</summary>
    public const int BigKeys = 10_000;

    /// <summary>The member.</summary>
    public DashboardMember Member { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Member = await DashboardMember.StartAsync();
        const int perTxn = 100;
        for (var start = 0; start < BigKeys; start += perTxn)
        {
            var txn = new TxnRequest();
            for (var i = start; i < start + perTxn; i++)
            {
                txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8($"big/k{i:D5}"), Value = ByteString.CopyFromUtf8($"value {i}") } });
            }

            await Member.Client.Kv.TxnAsync(txn);
        }

        foreach (var key in new[] { "tree/a/1", "tree/a/2", "tree/b/x/deep", "tree/c", "tree/d" })
        {
            await Member.Client.Kv.PutAsync(key, "v:" + key);
        }

        await Member.Client.Kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("bin/blob"), Value = ByteString.CopyFrom(0x00, 0x01, 0xfe, 0xff, 0x41) });
    }

    public async Task DisposeAsync() => await Member.DisposeAsync();
}

/// <summary>
/// The dashboard's pages in Chromium against one in-process member: key browser (tree, paging through 10,000 keys,
/// value, history, hex view), live watch, cluster page, metrics charts, every action with its confirmation, and a
/// narrow window. Screenshots go to <c>screenshots/</c> in the test output.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class PagesTests(BrowserFixture browser, PagesMember fixture) : IClassFixture<PagesMember>
{
    private DashboardMember Member => fixture.Member;

    private readonly Dictionary<IPage, List<string>> _errors = [];

    // A page at the dashboard's hash, recording script errors and failed loads (checked by DoneAsync).
    private async Task<IPage> OpenAsync(string hash, int width = 1280, int height = 800)
    {
        var page = await browser.NewPageAsync(width, height);
        var errors = _errors[page] = [];
        page.Console += (_, m) =>
        {
            // Refused calls (a compacted revision, /health during an alarm) are logged by the browser as failed loads;
            // the page shows them itself.
            if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource: the server responded with a status of ", StringComparison.Ordinal))
            {
                lock (errors)
                {
                    errors.Add(m.Text);
                }
            }
        };
        page.PageError += (_, e) =>
        {
            lock (errors)
            {
                errors.Add(e);
            }
        };
        await page.GotoAsync(Member.Url + "/ui/" + hash);
        return page;
    }

    // Closes the page, failing the test if the page logged an error.
    private async Task DoneAsync(IPage page)
    {
        await page.Context.CloseAsync();
        var errors = _errors[page];
        lock (errors)
        {
            Assert.True(errors.Count == 0, "page errors: " + string.Join("; ", errors));
        }
    }

    [BrowserFact]
    public async Task KeyBrowser_PagesThroughTenThousandKeys()
    {
        var page = await OpenAsync("#/keys?prefix=big/");
        var items = page.Locator("#keys-list li");
        await Expect(page.Locator("#keys-count")).ToHaveTextAsync("(10,000 keys under this prefix)");
        await Expect(items).ToHaveCountAsync(100);
        await Expect(items.First).ToHaveTextAsync("keyk00000");
        await Expect(items.Last).ToHaveTextAsync("keyk00099");
        await Expect(page.Locator("#keys-summary")).ToHaveTextAsync("Entries 1–100 (more follow)");
        await BrowserFixture.ShotAsync(page, "keys-paging");

        await page.ClickAsync("#keys-next");
        await Expect(items.First).ToHaveTextAsync("keyk00100");
        await page.ClickAsync("#keys-next");
        await Expect(items.First).ToHaveTextAsync("keyk00200");
        await Expect(page.Locator("#keys-page")).ToHaveTextAsync("Page 3");
        await page.ClickAsync("#keys-prev");
        await Expect(items.First).ToHaveTextAsync("keyk00100");

        // Start near the end: the last page stops at the prefix's last key.
        await page.FillAsync("#keys-from", "big/k09950");
        await page.ClickAsync("#keys-form button[type=submit]");
        await Expect(items).ToHaveCountAsync(50);
        await Expect(items.Last).ToHaveTextAsync("keyk09999");
        await Expect(page.Locator("#keys-summary")).ToHaveTextAsync("Entries 1–50 (end)");
        await Expect(page.Locator("#keys-next")).ToBeDisabledAsync();
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task KeyBrowser_ShowsATree_AValue_AndHexForBinary()
    {
        var page = await OpenAsync("#/keys?prefix=tree/");
        var items = page.Locator("#keys-list li");
        await Expect(items).ToHaveTextAsync(["foldera/", "folderb/", "keyc", "keyd"]);
        await page.ClickAsync("#keys-list >> text=b/");
        await Expect(page.Locator("#keys-prefix")).ToHaveValueAsync("tree/b/");
        await Expect(items).ToHaveTextAsync(["folderx/"]);
        await page.ClickAsync("#keys-list >> text=x/");
        await page.ClickAsync("#keys-list >> text=deep");
        await Expect(page.Locator("#key-value")).ToHaveTextAsync("v:tree/b/x/deep");
        await Expect(page.Locator("#keys-crumbs")).ToContainTextAsync("tree › b › x");

        await page.GotoAsync(Member.Url + "/ui/#/keys?prefix=bin/");
        await page.ClickAsync("#keys-list >> text=blob");
        await Expect(page.Locator("#key-hex")).ToBeCheckedAsync();
        await Expect(page.Locator("#key-value")).ToHaveTextAsync(new Regex("^00000000  00 01 fe ff 41 +\\.\\.\\.\\.A$"));
        await Expect(page.Locator("#key-facts")).ToContainTextAsync("5 bytes (binary)");
        await BrowserFixture.ShotAsync(page, "keys-hex");
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task KeyView_ShowsRevisions_AndTheKeysHistory()
    {
        var first = await Member.Client.Kv.PutAsync("hist/k", "one");
        await Member.Client.Kv.PutAsync("other", "x");
        await Member.Client.Kv.PutAsync("hist/k", "two");
        var lease = await Member.Client.Lease.GrantAsync(600);
        var last = await Member.Client.Kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("hist/k"), Value = ByteString.CopyFromUtf8("three"), Lease = lease.ID });

        var page = await OpenAsync("#/keys?prefix=hist/");
        await page.ClickAsync("#keys-list >> text=k");
        var facts = page.Locator("#key-facts");
        await Expect(page.Locator("#key-value")).ToHaveTextAsync("three");
        await Expect(facts).ToContainTextAsync($"Create revision{first.Header.Revision}");
        await Expect(facts).ToContainTextAsync($"Mod revision{last.Header.Revision}");
        await Expect(facts).ToContainTextAsync("Version3");
        await Expect(facts).ToContainTextAsync(new Regex($"Lease{lease.ID:x} \\(TTL \\d+ s of 600 s\\)"));

        var rows = page.Locator("#key-history tbody tr");
        await Expect(rows).ToHaveCountAsync(3);
        await Expect(rows.Nth(0)).ToHaveTextAsync($"{last.Header.Revision}3three");
        await Expect(rows.Nth(1)).ToContainTextAsync("2two");
        await Expect(rows.Nth(2)).ToHaveTextAsync($"{first.Header.Revision}1one");
        await Expect(page.Locator("#key-history-note")).ToContainTextAsync("Version 1 is the first");
        await BrowserFixture.ShotAsync(page, "key-history");
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task Watch_ShowsChangesLive()
    {
        var page = await OpenAsync("#/watch");
        await page.FillAsync("#watch-prefix", "live/");
        await page.ClickAsync("#watch-start");
        await Expect(page.Locator("#watch-status")).ToContainTextAsync("Watching prefix \"live/\"");

        var put = await Member.Client.Kv.PutAsync("live/x", "first");
        await Member.Client.Kv.PutAsync("elsewhere", "not watched");
        await Member.Client.Kv.PutAsync("live/x", "second");
        var del = await Member.Client.Kv.DeleteRangeAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8("live/x") });

        var rows = page.Locator("#watch-events tbody tr");
        await Expect(rows).ToHaveCountAsync(3);
        await Expect(rows.Nth(0)).ToHaveTextAsync($"{del.Header.Revision}DELETElive/xsecond");
        await Expect(rows.Nth(1)).ToHaveTextAsync($"{put.Header.Revision + 2}PUTlive/xsecondfirst");
        await Expect(rows.Nth(2)).ToHaveTextAsync($"{put.Header.Revision}PUTlive/xfirst");
        await BrowserFixture.ShotAsync(page, "watch");

        await page.ClickAsync("#watch-stop");
        await Expect(page.Locator("#watch-status")).ToHaveTextAsync("Stopped.");
        await Member.Client.Kv.PutAsync("live/y", "after stop");
        // Nothing arrives after the stop: a new watch from the next revision sees exactly the later put.
        await page.FillAsync("#watch-rev", (del.Header.Revision + 1).ToString());
        await page.ClickAsync("#watch-start");
        await Expect(rows).ToHaveCountAsync(4);
        await Expect(rows.Nth(0)).ToContainTextAsync("PUTlive/yafter stop");
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task ClusterAndMetrics_ShowTheMember()
    {
        var page = await OpenAsync("#/cluster");
        var row = page.Locator("#members tbody tr");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row).ToContainTextAsync("dash (this member)");
        await Expect(row.Locator("td").Nth(2)).ToHaveTextAsync("leader");
        await Expect(row.Locator("td").Nth(3)).ToHaveTextAsync("healthy");
        await Expect(page.Locator("#cluster-summary")).ToContainTextAsync("1 members, 1 healthy, leader ");
        await Expect(page.Locator("#alarms")).ToHaveTextAsync("No alarms.");
        await BrowserFixture.ShotAsync(page, "cluster-single");

        await page.ClickAsync("#nav >> text=Metrics");
        await Expect(page.Locator("#charts figure")).ToHaveCountAsync(3);
        // Rates need two samples; each chart then draws lines and states its current values in text. gRPC requests
        // made now show as a non-zero rate.
        await Expect(page.Locator("#chart-requests polyline")).ToHaveCountAsync(2, new() { Timeout = 15_000 });
        for (var i = 0; i < 40; i++)
        {
            await Member.Client.Kv.PutAsync("metrics/k", i.ToString());
        }

        await Expect(page.Locator("#chart-requests .now")).ToHaveTextAsync(new Regex(@"^gRPC requests handled \(solid\): (?!0\.00 )\d+(\.\d+)? · proposals applied \(dashed\): (?!0\.00$)\d+(\.\d+)?$"));
        await Expect(page.Locator("#chart-dbsize .now")).ToHaveTextAsync(new Regex(@"^total \(solid\): \d+\.\d+ · in use \(dashed\): \d+\.\d+$"));
        await Expect(page.Locator("#chart-latency .now")).ToContainTextAsync("WAL fsync (solid): ");
        await BrowserFixture.ShotAsync(page, "metrics");
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task Actions_AskForConfirmation_AndAct()
    {
        var page = await OpenAsync("#/keys?prefix=act/");
        await Expect(page.Locator("#keys-summary")).ToHaveTextAsync("No keys under this prefix.");

        // Put: dialog, then confirmation.
        await page.ClickAsync("#keys-put-open");
        await page.FillAsync("#put-key", "act/new");
        await page.FillAsync("#put-value", "hello");
        await page.ClickAsync("#put-ok");
        await Expect(page.Locator("#confirm-text")).ToHaveTextAsync("Put key \"act/new\" (5 bytes)?");
        await BrowserFixture.ShotAsync(page, "confirm-put");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToContainTextAsync("Put \"act/new\" at revision");
        Assert.Equal("hello", (await Member.Client.Kv.GetAsync("act/new")).Kvs.Single().Value.ToStringUtf8());
        await Expect(page.Locator("#key-value")).ToHaveTextAsync("hello");

        // Delete, cancelled first, then confirmed.
        await page.ClickAsync("#key-delete");
        await page.ClickAsync("#confirm-cancel");
        Assert.Single((await Member.Client.Kv.GetAsync("act/new")).Kvs);
        await page.ClickAsync("#key-delete");
        await Expect(page.Locator("#confirm-text")).ToContainTextAsync("Delete key \"act/new\"?");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToContainTextAsync("Deleted 1 key(s)");
        Assert.Empty((await Member.Client.Kv.GetAsync("act/new")).Kvs);

        // Compact up to the current revision: older revisions are then gone.
        var old = (await Member.Client.Kv.PutAsync("act/c", "1")).Header.Revision;
        var now = (await Member.Client.Kv.PutAsync("act/c", "2")).Header.Revision;
        await page.ClickAsync("#nav >> text=Cluster");
        await page.FillAsync("#compact-rev", now.ToString());
        await page.ClickAsync("#compact-form button[type=submit]");
        await Expect(page.Locator("#confirm-text")).ToContainTextAsync($"up to revision {now}?");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToHaveTextAsync($"Compacted up to revision {now}.");
        var compacted = await Assert.ThrowsAnyAsync<Exception>(() => Member.Client.Kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("act/c"), Revision = old }));
        Assert.Contains("required revision has been compacted", compacted.Message);

        // Defragment this member.
        await page.ClickAsync("#members >> text=Defragment…");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToHaveTextAsync("Defragmented member dash.");

        // Snapshot download: a bbolt file (its first page's magic at offset 16) and etcd's SHA-256 trailer.
        await page.ClickAsync("#snapshot");
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#confirm-ok"));
        var file = Path.Combine(BrowserFixture.ScreenshotDir, "snapshot.db");
        await download.SaveAsAsync(file);
        var bytes = await File.ReadAllBytesAsync(file);
        Assert.True(bytes.Length > 4096 && (bytes.Length - 32) % 4096 == 0, $"snapshot of {bytes.Length} bytes");
        Assert.Equal(0xED0CDAEDu, BitConverter.ToUInt32(bytes, 16));
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)), bytes[^32..]);
        await Expect(page.Locator("#snapshot-status")).ToContainTextAsync("Snapshot downloaded");
        File.Delete(file);

        // Disarm an alarm raised through the API.
        var status = await Member.Client.Maintenance.StatusAsync();
        await Member.Client.UnaryAsync(Etcd.Api.EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Activate, MemberID = status.Header.MemberId, Alarm = AlarmType.Nospace });
        await Expect(page.Locator("#alarms li")).ToContainTextAsync($"ALARM NOSPACE on member {status.Header.MemberId:x}");
        await BrowserFixture.ShotAsync(page, "cluster-alarm");
        await page.ClickAsync("#alarms >> text=Disarm…");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#alarms")).ToHaveTextAsync("No alarms.");
        var alarms = await Member.Client.UnaryAsync(Etcd.Api.EtcdMethods.MaintenanceService.Alarm, new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get });
        Assert.Empty(alarms.Alarms);
        await DoneAsync(page);
    }

    [BrowserFact]
    public async Task NarrowWindow_HasNoPageWideHorizontalScroll()
    {
        foreach (var (hash, name, ready) in new[] { ("#/keys?prefix=tree/", "narrow-keys", "#keys-list li"), ("#/cluster", "narrow-cluster", "#members tbody tr"), ("#/watch", "narrow-watch", "#watch-form") })
        {
            var page = await OpenAsync(hash, 390, 800);
            await Expect(page.Locator("#nav")).ToBeVisibleAsync();
            await Expect(page.Locator(ready)).Not.ToHaveCountAsync(0);
            var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
            Assert.True(overflow <= 0, $"{hash}: page is {overflow}px wider than a 390px window");
            await BrowserFixture.ShotAsync(page, name);
            await DoneAsync(page);
        }
    }
}
