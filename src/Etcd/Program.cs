namespace Etcd.Main;

/// <summary>The <c>etcd</c> executable's entry point.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        Console.Error.WriteLine("etcd: not yet wired");
        return 1;
    }
}
