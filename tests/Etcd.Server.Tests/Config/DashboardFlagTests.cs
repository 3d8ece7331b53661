namespace Etcd.Server.Tests.Config;

/// <summary><c>--enable-dashboard</c> (ours): off by default; set by the flag, <c>ETCD_ENABLE_DASHBOARD</c> or the YAML
/// config file's <c>enable-dashboard</c>; listed in the help text.</summary>
public sealed class DashboardFlagTests : ConfigTestBase
{
    [Fact]
    public void Dashboard_IsOffByDefault_AndOnByFlagOrEnvironment()
    {
        Assert.False(Ok(Load([])).EnableDashboard);
        Assert.True(Ok(Load(["--enable-dashboard"])).EnableDashboard);
        Assert.False(Ok(Load(["--enable-dashboard=false"])).EnableDashboard);
        Assert.True(Ok(Load([], ("ETCD_ENABLE_DASHBOARD", "true"))).EnableDashboard);
    }

    [Theory]
    [InlineData("enable-dashboard: true\n", true)]
    [InlineData("enable-dashboard: false\n", false)]
    [InlineData("name: x\n", false)]
    public void Dashboard_IsReadFromTheConfigFile(string yaml, bool expected)
    {
        Assert.Equal(expected, Ok(Load(["--config-file", WriteFile(yaml)])).EnableDashboard);
    }

    [Fact]
    public void Dashboard_IsInTheHelpText()
    {
        var r = Load(["--help"]);
        Assert.Contains("--enable-dashboard 'false'\n    Serve the web dashboard under /ui/", r.StandardOutput);
    }
}
