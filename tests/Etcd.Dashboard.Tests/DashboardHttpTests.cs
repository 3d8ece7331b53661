using System.Net;
using System.Net.Http.Headers;

namespace Etcd.Dashboard.Tests;

/// <summary>
/// The <c>/ui/</c> route over plain HTTP: absent without <c>--enable-dashboard</c>; with it, the embedded page and
/// assets with their content types, caching headers (ETag, 304, hashed asset URLs) and Content-Security-Policy.
/// </summary>
public sealed class DashboardHttpTests : IAsyncLifetime
{
    private DashboardMember _on = null!;
    private DashboardMember _off = null!;

    public async Task InitializeAsync()
    {
        var on = DashboardMember.StartAsync(dashboard: true);
        var off = DashboardMember.StartAsync(dashboard: false);
        _on = await on;
        _off = await off;
    }

    public async Task DisposeAsync()
    {
        await _on.DisposeAsync();
        await _off.DisposeAsync();
    }

    [Theory]
    [InlineData("/ui/")]
    [InlineData("/ui")]
    [InlineData("/ui/app.js")]
    [InlineData("/ui/index.html")]
    public async Task WithoutTheFlag_TheDashboardIs404(string path)
    {
        using var response = await _off.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("404 page not found\n", await response.Content.ReadAsStringAsync());
        // The rest of the client URL is unaffected.
        using var health = await _off.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task ThePage_IsServedWithAStrictPolicy_AndRevalidated()
    {
        using var response = await _on.Http.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", csp);
        Assert.Contains("script-src 'self';", csp);
        Assert.Contains("style-src 'self';", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.DoesNotContain("unsafe", csp);
        // The member's own advertised client URL may be fetched from (the cluster page asks each member).
        Assert.Contains("connect-src 'self' http://127.0.0.1:2379;", csp);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.True(response.Headers.CacheControl!.NoCache);
        var etag = response.Headers.ETag!;

        var html = await response.Content.ReadAsStringAsync();
        Assert.Matches("<script src=\"app\\.js\\?v=[0-9a-f]{16}\" defer></script>", html);
        Assert.Matches("<link rel=\"stylesheet\" href=\"app\\.css\\?v=[0-9a-f]{16}\">", html);
        Assert.DoesNotContain("{{", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", "", StringComparison.Ordinal));

        using var again = new HttpRequestMessage(HttpMethod.Get, "/ui/");
        again.Headers.IfNoneMatch.Add(etag);
        using var notModified = await _on.Http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using var redirect = await new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(_on.Url) }.GetAsync("/ui");
        Assert.Equal(HttpStatusCode.MovedPermanently, redirect.StatusCode);
        Assert.Equal("/ui/", redirect.Headers.Location!.ToString());
    }

    [Fact]
    public async Task OverHttps_TheDashboardIsServedToo()
    {
        await using var tls = await DashboardMember.StartAsync(dashboard: true, https: true);
        Assert.StartsWith("https://", tls.Url);
        using var response = await tls.Http.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("<title>etcd dashboard</title>", await response.Content.ReadAsStringAsync());
        Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Theory]
    [InlineData("app.js", "text/javascript; charset=utf-8")]
    [InlineData("app.css", "text/css; charset=utf-8")]
    public async Task Assets_HaveTheirTypes_AndAreCachedForAYearUnderTheirHash(string name, string type)
    {
        var html = await _on.Http.GetStringAsync("/ui/");
        var hashed = System.Text.RegularExpressions.Regex.Match(html, System.Text.RegularExpressions.Regex.Escape(name) + "\\?v=[0-9a-f]{16}").Value;
        Assert.NotEmpty(hashed);

        using var current = await _on.Http.GetAsync("/ui/" + hashed);
        Assert.Equal(HttpStatusCode.OK, current.StatusCode);
        Assert.Equal(type, current.Content.Headers.ContentType!.ToString());
        Assert.Equal("public, max-age=31536000, immutable", current.Headers.CacheControl!.ToString());
        Assert.True((await current.Content.ReadAsByteArrayAsync()).Length > 1000);

        // Asked for without (or with another) hash, the asset must be revalidated.
        using var stale = await _on.Http.GetAsync("/ui/" + name + "?v=0000000000000000");
        Assert.True(stale.Headers.CacheControl!.NoCache);
    }

    [Theory]
    [InlineData("/ui/nope.js")]
    [InlineData("/ui/index.htm")]
    [InlineData("/ui/Assets/app.js")]
    public async Task UnknownPaths_Are404(string path)
    {
        using var response = await _on.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task OnlyGetAndHead_AreAnswered()
    {
        using var post = await _on.Http.PostAsync("/ui/", new StringContent("x"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal("GET, HEAD", post.Content.Headers.Allow.Count > 0 ? string.Join(", ", post.Content.Headers.Allow) : post.Headers.GetValues("Allow").Single());

        using var head = await _on.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/ui/app.css"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.True(head.Content.Headers.ContentLength > 0);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
    }
}
