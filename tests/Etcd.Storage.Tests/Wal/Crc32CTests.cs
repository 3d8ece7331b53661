using System.Text;
using Etcd.Storage.Wal;

namespace Etcd.Storage.Tests.Wal;

public class Crc32CTests
{
    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xC1D04330u)]
    [InlineData("123456789", 0xE3069283u)]
    [InlineData("The quick brown fox jumps over the lazy dog", 0x22620404u)]
    public void KnownVectors(string text, uint expected)
    {
        byte[] data = Encoding.ASCII.GetBytes(text);
        Assert.Equal(expected, Crc32C.Compute(data));
        Assert.Equal(expected, Crc32C.UpdateTableFinished(0, data));
    }

    [Fact]
    public void Rfc3720Vectors()
    {
        // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF, ascending and descending.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        Assert.Equal(0x113FDB5Cu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray()));
    }

    [Fact]
    public void ChainingEqualsWholeAndHardwareEqualsTable()
    {
        var rng = new Random(42);
        for (int n = 0; n < 300; n += 7)
        {
            byte[] data = new byte[n];
            rng.NextBytes(data);
            uint whole = Crc32C.Compute(data);
            Assert.Equal(whole, Crc32C.UpdateTableFinished(0, data));
            int cut = n / 3;
            Assert.Equal(whole, Crc32C.Update(Crc32C.Update(0, data.AsSpan(0, cut)), data.AsSpan(cut)));
            Assert.Equal(Crc32C.Update(12345, data), Crc32C.UpdateTableFinished(12345, data));
        }
    }
}
