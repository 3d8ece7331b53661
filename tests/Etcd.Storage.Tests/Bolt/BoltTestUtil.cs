using System.Text;
using Etcd.Storage.Bolt;

namespace Etcd.Storage.Tests.Bolt;

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bolt-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class BoltTestUtil
{
    /// <summary>Dumps every bucket and key as lines "path\tkeyhex\tvaluehex" ("B" for nested buckets), in key order.</summary>
    public static List<string> Dump(Tx tx)
    {
        var lines = new List<string>();
        foreach (var name in tx.BucketNames())
        {
            DumpBucket(tx.Bucket(name)!, Convert.ToHexString(name), lines);
        }

        return lines;
    }

    private static void DumpBucket(Bucket b, string path, List<string> lines)
    {
        lines.Add(path + "\tB");
        var c = b.Cursor();
        var subs = new List<byte[]>();
        for (bool ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
        {
            if (c.IsBucket)
            {
                subs.Add(k.ToArray());
            }
            else
            {
                lines.Add(path + "\t" + Convert.ToHexString(k) + "\t" + Convert.ToHexString(v));
            }
        }

        foreach (var s in subs)
        {
            DumpBucket(b.GetBucket(s)!, path + "/" + Convert.ToHexString(s), lines);
        }
    }

    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
}
