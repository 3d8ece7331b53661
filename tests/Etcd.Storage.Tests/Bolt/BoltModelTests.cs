using Etcd.Storage.Bolt;

namespace Etcd.Storage.Tests.Bolt;

public class BoltModelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomOperationsMatchModelAcrossReopens(int seed)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var runner = new BoltModelRunner(seed);
        for (int round = 0; round < 16; round++)
        {
            using var db = BoltDb.Open(path, new BoltOptions { NoSync = true });
            runner.Step(db, 60);
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                Assert.Equal(runner.Committed.Dump(), BoltTestUtil.Dump(tx));
                return 0;
            });
        }
    }

    [Theory]
    [InlineData(11, 1024)]
    [InlineData(12, 8192)]
    public void OtherPageSizesAndNoFreelistSync(int seed, int pageSize)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var runner = new BoltModelRunner(seed);
        for (int round = 0; round < 12; round++)
        {
            using var db = BoltDb.Open(path, new BoltOptions { NoSync = true, PageSize = pageSize, NoFreelistSync = round % 2 == 0 });
            Assert.Equal(pageSize, db.PageSize);
            runner.Step(db, 60);
            db.View(tx =>
            {
                Assert.Empty(tx.Check());
                Assert.Equal(runner.Committed.Dump(), BoltTestUtil.Dump(tx));
                return 0;
            });
        }
    }
}
