using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Etcd.Dashboard.Tests;

/// <summary>
/// A member with auth enabled: <c>root</c>; <c>reader</c>, whose role may only read <c>pub/</c>; <c>nobody</c>, with no
/// role. Keys <c>pub/a</c> and <c>secret/s</c>.
/// </summary>
public sealed class AuthMember : IAsyncLifetime
{
    /// <summary>The member.</summary>
    public DashboardMember Member { get; private set; } = null!;

    /// <summary>A token of root's.</summary>
    public string RootToken { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Member = await DashboardMember.StartAsync();
        var m = Member;
        await m.Client.Kv.PutAsync("pub/a", "public value");
        await m.Client.Kv.PutAsync("secret/s", "hidden value");
        foreach (var (user, password) in new[] { ("root", "rootpw"), ("reader", "readerpw"), ("nobody", "nobodypw") })
        {
            await m.OkAsync("/auth/user/add", new { name = user, password });
        }

        await m.OkAsync("/auth/role/add", new { name = "root" });
        await m.OkAsync("/auth/user/grant", new { user = "root", role = "root" });
        await m.OkAsync("/auth/role/add", new { name = "reader" });
        await m.OkAsync("/auth/role/grant", new { name = "reader", perm = new { permType = "READ", key = DashboardMember.B64("pub/"), range_end = DashboardMember.PrefixEnd("pub/") } });
        await m.OkAsync("/auth/user/grant", new { user = "reader", role = "reader" });
        await m.OkAsync("/auth/enable", new { });
        RootToken = (await m.OkAsync("/auth/authenticate", new { name = "root", password = "rootpw" })).GetProperty("token").GetString()!;
    }

    public async Task DisposeAsync() => await Member.DisposeAsync();
}

/// <summary>
/// The dashboard under auth: nothing but the sign-in form (and the static page) without a token; each user sees and
/// does exactly what etcd lets that user do, and sees etcd's error otherwise.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class AuthTests(BrowserFixture browser, AuthMember fixture) : IClassFixture<AuthMember>
{
    private DashboardMember Member => fixture.Member;

    /// <summary>
    /// Every gateway call through which the dashboard reads keys or acts, without a token: each is refused. (etcd 3.4.23
    /// also answers Status, MemberList, AuthStatus, Compaction, LeaseTimeToLive, <c>/health</c> and <c>/metrics</c>
    /// without one, and so do we; the page asks for none of them before sign-in, see the next test.)
    /// </summary>
    [Theory]
    [InlineData("/kv/range", "{\"key\":\"cHViL2E=\"}")]
    [InlineData("/kv/range", "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"keys_only\":true,\"limit\":100}")]
    [InlineData("/kv/range", "{\"key\":\"AA==\",\"range_end\":\"AA==\",\"count_only\":true}")]
    [InlineData("/kv/put", "{\"key\":\"dG1wL3g=\",\"value\":\"eA==\"}")]
    [InlineData("/kv/deleterange", "{\"key\":\"dG1wL3g=\"}")]
    [InlineData("/maintenance/defragment", "{}")]
    [InlineData("/maintenance/snapshot", "{}")]
    [InlineData("/watch", "{\"create_request\":{\"key\":\"cHViL2E=\"}}")]
    public async Task WithoutAToken_NoDataCallAnswers(string path, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v3" + path) { Content = new StringContent(body) };
        using var response = await Member.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var first = await new StreamReader(await response.Content.ReadAsStreamAsync()).ReadLineAsync() ?? "";
        Assert.DoesNotContain("public value", first);
        Assert.DoesNotContain(DashboardMember.B64("public value"), first);
        using var json = JsonDocument.Parse(first);
        var refused = json.RootElement.TryGetProperty("error", out _)
            || (json.RootElement.TryGetProperty("result", out var r) && r.TryGetProperty("canceled", out var c) && c.GetBoolean());
        Assert.True(refused, $"{path} answered without a token: {(int)response.StatusCode} {first}");
        Assert.Matches("user name is empty|permission denied", first);

        // The same call with root's token is answered (the refusal was for the token).
        using var withToken = new HttpRequestMessage(HttpMethod.Post, "/v3" + path) { Content = new StringContent(body) };
        withToken.Headers.TryAddWithoutValidation("Authorization", fixture.RootToken);
        using var ok = await Member.Http.SendAsync(withToken, HttpCompletionOption.ResponseHeadersRead);
        var okFirst = await new StreamReader(await ok.Content.ReadAsStreamAsync()).ReadLineAsync() ?? "";
        Assert.DoesNotContain("user name is empty", okFirst);
        Assert.DoesNotContain("permission denied", okFirst);
    }

    [BrowserFact]
    public async Task BeforeSignIn_ThePageAsksForNothingButWhetherAuthIsOn()
    {
        var page = await browser.NewPageAsync();
        var requests = new List<string>();
        page.Request += (_, r) => requests.Add(new Uri(r.Url).AbsolutePath);
        await page.GotoAsync(Member.Url + "/ui/#/keys?prefix=pub/");
        await Expect(page.Locator("#page-login")).ToBeVisibleAsync();
        await Expect(page.Locator("#nav")).ToBeHiddenAsync();
        await Expect(page.Locator("#page-keys")).ToBeHiddenAsync();
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        Assert.Equal(["/ui/", "/ui/app.css", "/ui/app.js", "/v3/auth/status"], requests.Order(StringComparer.Ordinal).ToArray());
        Assert.DoesNotContain("public value", await page.ContentAsync());
        await BrowserFixture.ShotAsync(page, "login");

        await page.FillAsync("#login-name", "reader");
        await page.FillAsync("#login-password", "wrong");
        await page.ClickAsync("#login-form button[type=submit]");
        await Expect(page.Locator("#login-error")).ToHaveTextAsync("Error: etcdserver: authentication failed, invalid user ID or password");
        await Expect(page.Locator("#page-keys")).ToBeHiddenAsync();
        await page.Context.CloseAsync();
    }

    [BrowserFact]
    public async Task AReader_SeesWhatItMayRead_AndErrorsForTheRest()
    {
        var page = await SignInAsync("reader", "readerpw", "#/keys?prefix=pub/");
        await Expect(page.Locator("#session-user")).ToHaveTextAsync("Signed in as reader");
        await Expect(page.Locator("#keys-list li")).ToHaveTextAsync(["keya"]);
        await page.ClickAsync("#keys-list >> text=a");
        await Expect(page.Locator("#key-value")).ToHaveTextAsync("public value");

        // Outside its permission: etcd's error, and no data.
        await page.FillAsync("#keys-prefix", "secret/");
        await page.ClickAsync("#keys-form button[type=submit]");
        await Expect(page.Locator("#notice")).ToHaveTextAsync("Error: etcdserver: permission denied");
        await Expect(page.Locator("#keys-list li")).ToHaveCountAsync(0);
        Assert.DoesNotContain("hidden value", await page.ContentAsync());
        await BrowserFixture.ShotAsync(page, "auth-denied");

        // A write it may not do.
        await page.GotoAsync(Member.Url + "/ui/#/keys?prefix=pub/");
        await page.ClickAsync("#keys-put-open");
        await page.FillAsync("#put-key", "pub/new");
        await page.FillAsync("#put-value", "x");
        await page.ClickAsync("#put-ok");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToHaveTextAsync("Error: put \"pub/new\": etcdserver: permission denied");
        Assert.False((await Member.OkAsync("/kv/range", new { key = DashboardMember.B64("pub/new") }, fixture.RootToken)).TryGetProperty("kvs", out _));

        // A watch outside its permission is cancelled with etcd's reason.
        await page.ClickAsync("#nav >> text=Watch");
        await page.FillAsync("#watch-prefix", "secret/");
        await page.ClickAsync("#watch-start");
        await Expect(page.Locator("#watch-status")).ToContainTextAsync("permission denied");

        // Maintenance needs root (etcd 3.4 answers a non-root Snapshot with the auth store's own error text).
        await page.ClickAsync("#nav >> text=Cluster");
        await page.ClickAsync("#snapshot");
        await page.ClickAsync("#confirm-ok");
        await Expect(page.Locator("#notice")).ToHaveTextAsync("Error: snapshot: auth: permission denied");
        await Expect(page.Locator("#snapshot-status")).ToHaveTextAsync("");

        await page.ClickAsync("#logout");
        await Expect(page.Locator("#page-login")).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [BrowserFact]
    public async Task AUserWithoutRoles_SeesNoKeys_AndRootSeesAll()
    {
        var page = await SignInAsync("nobody", "nobodypw", "#/keys");
        await Expect(page.Locator("#notice")).ToHaveTextAsync("Error: etcdserver: permission denied");
        await Expect(page.Locator("#keys-list li")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();

        var root = await SignInAsync("root", "rootpw", "#/keys?prefix=secret/");
        await root.ClickAsync("#keys-list >> text=s");
        await Expect(root.Locator("#key-value")).ToHaveTextAsync("hidden value");
        await root.Context.CloseAsync();
    }

    private async Task<IPage> SignInAsync(string user, string password, string hash)
    {
        var page = await browser.NewPageAsync();
        await page.GotoAsync(Member.Url + "/ui/" + hash);
        await page.FillAsync("#login-name", user);
        await page.FillAsync("#login-password", password);
        await page.ClickAsync("#login-form button[type=submit]");
        await Expect(page.Locator("#nav")).ToBeVisibleAsync();
        return page;
    }
}
