using Microsoft.Playwright;

namespace Etcd.Dashboard.Tests;

/// <summary>
/// One headless Chromium for all browser tests: Debian's <c>/usr/bin/chromium</c> (<see cref="ChromiumPath"/>, or
/// <c>DASHBOARD_CHROMIUM</c>) driven by the Playwright driver shipped in the Microsoft.Playwright package (no browser
/// download). Without the browser the tests skip locally and fail under <c>CI=true</c> (<see cref="BrowserFactAttribute"/>).
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>The browser executable.</summary>
    public static string ChromiumPath => Environment.GetEnvironmentVariable("DASHBOARD_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    /// <summary>Where screenshots go: <c>screenshots/</c> in the test output directory.</summary>
    public static string ScreenshotDir { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");

    private IPlaywright? _playwright;

    /// <summary>The browser (valid after <see cref="InitializeAsync"/>).</summary>
    public IBrowser Browser { get; private set; } = null!;

    /// <inheritdoc/>
    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            return;
        }

        Directory.CreateDirectory(ScreenshotDir);
        Assertions.SetDefaultExpectTimeout(20_000);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>A new page (own context: own session storage) at 1280×800, or the given size.</summary>
    public async Task<IPage> NewPageAsync(int width = 1280, int height = 800)
    {
        if (_playwright is null)
        {
            Assert.Fail($"{ChromiumPath} not found: install Debian's chromium package (scripts/setup.sh does)");
        }

        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
            AcceptDownloads = true,
        });
        context.SetDefaultTimeout(20_000);
        return await context.NewPageAsync();
    }

    /// <summary>Saves a full-page screenshot of <paramref name="page"/> as <c>screenshots/<paramref name="name"/>.png</c>.</summary>
    public static async Task ShotAsync(IPage page, string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDir, name + ".png"), FullPage = true });

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        if (_playwright is null)
        {
            return;
        }

        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}

/// <summary>The browser tests share one <see cref="BrowserFixture"/> and run one class at a time.</summary>
[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "browser";
}

/// <summary>A browser test: skipped when Chromium is missing, except under <c>CI=true</c>, where it runs and fails.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    /// <summary>Sets the skip reason when the browser is missing.</summary>
    public BrowserFactAttribute()
    {
        if (!File.Exists(BrowserFixture.ChromiumPath))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason($"{BrowserFixture.ChromiumPath} not installed (apt-get install chromium)");
        }
    }
}
