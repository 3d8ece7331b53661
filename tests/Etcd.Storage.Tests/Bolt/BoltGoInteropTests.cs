using Etcd.Storage.Bolt;

namespace Etcd.Storage.Tests.Bolt;

/// <summary>Skipped, with the reason, when go or the bbolt source is not on this machine.</summary>
public sealed class GoBoltFactAttribute : FactAttribute
{
    public GoBoltFactAttribute()
    {
        if (GoBolt.FindOnPath("go") == null)
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason("go toolchain not installed: bbolt interop not checked");
        }
        else if (!Directory.Exists(GoBolt.BboltSource))
        {
            Skip = global::Etcd.Tests.MissingTool.SkipReason($"bbolt source absent ({GoBolt.BboltSource}): bbolt interop not checked");
        }
    }
}

public class BoltGoInteropTests
{
    private static string GoExe()
    {
        var (exe, why) = GoBolt.Get();
        Assert.True(exe != null, why);
        return exe!;
    }

    private static List<string> GoCheckAndDump(string exe, string path)
    {
        var (code, output, err) = GoBolt.Run(exe, "check", path);
        Assert.True(code == 0, $"bbolt check failed ({code}): {err}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    [GoBoltFact]
    public void WeReadWhatBboltWrote()
    {
        var exe = GoExe();
        using var dir = new TempDir();
        var path = dir.File("go.db");
        var (code, _, err) = GoBolt.Run(exe, "write", path);
        Assert.True(code == 0, err);
        var goDump = GoCheckAndDump(exe, path);
        Assert.True(goDump.Count > 4000);

        using var db = BoltDb.Open(path, new BoltOptions { ReadOnly = true });
        db.View(tx =>
        {
            Assert.Empty(tx.Check());
            Assert.Equal(goDump, BoltTestUtil.Dump(tx));
            Assert.Equal(42ul, tx.Bucket("alpha"u8)!.Sequence);
            Assert.Equal(20000, tx.Bucket("alpha"u8)!.Get("large"u8)!.Length);
            return 0;
        });
        Assert.True(db.Stats().FreePageN > 0);
    }

    [GoBoltFact]
    public void WeWriteOnTopOfBboltFileAndBboltChecksIt()
    {
        var exe = GoExe();
        using var dir = new TempDir();
        var path = dir.File("go.db");
        Assert.Equal(0, GoBolt.Run(exe, "write", path).Code);
        using (var db = BoltDb.Open(path))
        {
            db.Update(tx =>
            {
                var a = tx.Bucket("alpha"u8)!;
                for (int i = 0; i < 5000; i += 2)
                {
                    a.Delete(System.Text.Encoding.ASCII.GetBytes($"key-{i:D6}"));
                }

                a.GetBucket("inner"u8)!.DeleteBucket("deeper"u8);
                tx.Bucket("beta"u8)!.Put("three"u8, new byte[9000]);
                tx.DeleteBucket("empty"u8);
                a.NextSequence();
            });
        }

        var goDump = GoCheckAndDump(exe, path);
        using (var db = BoltDb.Open(path, new BoltOptions { ReadOnly = true }))
        {
            db.View(tx =>
            {
                Assert.Equal(BoltTestUtil.Dump(tx), goDump);
                return 0;
            });
        }

        Assert.Equal("43", GoBolt.Run(exe, "seq", path, "alpha").Out.Trim());
    }

    [GoBoltFact]
    public void BboltReadsOurRandomizedDatabase()
    {
        var exe = GoExe();
        using var dir = new TempDir();
        var path = dir.File("ours.db");
        var runner = new BoltModelRunner(7);
        for (int round = 0; round < 6; round++)
        {
            using (var db = BoltDb.Open(path, new BoltOptions { NoSync = true }))
            {
                runner.Step(db, 80);
            }

            Assert.Equal(runner.Committed.Dump(), GoCheckAndDump(exe, path));
        }
    }

    [GoBoltFact]
    public void BboltReadsOurWriteToCopyAndCompaction()
    {
        var exe = GoExe();
        using var dir = new TempDir();
        var path = dir.File("ours.db");
        var runner = new BoltModelRunner(8);
        using var db = BoltDb.Open(path, new BoltOptions { NoSync = true });
        for (int round = 0; round < 4; round++)
        {
            runner.Step(db, 80);
        }

        var copy = dir.File("copy.db");
        db.View(tx =>
        {
            tx.CopyFile(copy);
            return 0;
        });
        Assert.Equal(runner.Committed.Dump(), GoCheckAndDump(exe, copy));

        var compacted = dir.File("compact.db");
        BoltCompact.Compact(db, compacted);
        Assert.Equal(runner.Committed.Dump(), GoCheckAndDump(exe, compacted));
    }

    [GoBoltFact]
    public void BackendHashMatchesEtcdsAlgorithmInGo()
    {
        var exe = GoExe();
        using var dir = new TempDir();
        var path = dir.File("db");
        uint ours;
        using (var be = new Etcd.Storage.Backend.BoltBackend(new Etcd.Storage.Backend.BoltBackendOptions { Path = path, UnsafeNoFsync = true, InitialMmapSize = 0 }))
        {
            var tx = be.BatchTx;
            tx.Lock();
            tx.CreateBucket("key");
            tx.CreateBucket("meta");
            for (int i = 0; i < 2000; i++)
            {
                tx.Put("key", System.Text.Encoding.ASCII.GetBytes($"rev{i:D6}"), new byte[i % 97]);
            }

            tx.Put("meta", "consistent_index"u8, [0, 0, 0, 0, 0, 0, 0, 9]);
            tx.Put("meta", "other"u8, [1]);
            tx.Unlock();
            ours = be.Hash(Etcd.Storage.Backend.BoltBackend.EtcdDefaultHashIgnore);

            tx.Lock();
            tx.Put("meta", "consistent_index"u8, [0, 0, 0, 0, 0, 0, 0, 10]);
            tx.Unlock();
            Assert.Equal(ours, be.Hash(Etcd.Storage.Backend.BoltBackend.EtcdDefaultHashIgnore));
            Assert.NotEqual(ours, be.Hash(null));
        }

        Assert.Equal(ours.ToString(), GoBolt.Run(exe, "hash", path).Out.Trim());
    }
}
