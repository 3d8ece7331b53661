namespace Etcd.Server.Tests.Server;

/// <summary>The etcd executable's exit status once its member has stopped (etcd's etcdmain exits 0 when its server stops).</summary>
public sealed class ProgramExitCodeTests
{
    [Theory]
    [InlineData(false, false, 0)] // SIGTERM/SIGINT
    [InlineData(true, true, 0)] // removed from the cluster
    [InlineData(true, false, 1)] // a fatal stop of its own
    public void ExitCode(bool stoppedByItself, bool removed, int expected)
    {
        Assert.Equal(expected, Etcd.Main.Program.ExitCode(stoppedByItself, removed));
    }
}
