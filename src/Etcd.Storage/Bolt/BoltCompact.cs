namespace Etcd.Storage.Bolt;

/// <summary>
/// Copies every bucket, nested bucket (with its sequence) and key of one database into a fresh file
/// (bbolt's <c>compact.go</c>, used by etcd's defragmentation), committing every
/// <c>txMaxSize</c> bytes of copied keys and values so the write transaction stays bounded.
/// </summary>
public static class BoltCompact
{
    /// <summary>
    /// Compacts <paramref name="src"/> as of one read transaction into a new file at <paramref name="dstPath"/>
    /// (overwritten if present), with the page size of <paramref name="src"/>. Readers and the writer of
    /// <paramref name="src"/> may go on meanwhile; the copy reflects the snapshot at the start.
    /// </summary>
    /// <param name="src">The open source database.</param>
    /// <param name="dstPath">The file to create.</param>
    /// <param name="txMaxSize">Bytes copied per destination commit (etcd's defrag commits every 10000 keys; bbolt's compact by size).</param>
    /// <param name="noSync">Skip fdatasync on the destination's intermediate commits (the final file is synced).</param>
    public static void Compact(BoltDb src, string dstPath, long txMaxSize = 64 * 1024 * 1024, bool noSync = true)
    {
        if (File.Exists(dstPath))
        {
            File.Delete(dstPath);
        }

        using var srcTx = src.Begin(false);
        using var dst = BoltDb.Open(dstPath, new BoltOptions { PageSize = src.PageSize, NoSync = noSync });
        var copier = new Copier(dst, txMaxSize);
        try
        {
            foreach (var name in srcTx.BucketNames())
            {
                copier.CopyBucket(srcTx.Bucket(name)!, [name]);
            }

            copier.Finish();
        }
        finally
        {
            copier.Dispose();
        }

        dst.Sync();
    }

    private sealed class Copier(BoltDb dst, long txMaxSize) : IDisposable
    {
        private Tx? _tx;
        private long _size;

        private Bucket Open(List<byte[]> path)
        {
            _tx ??= dst.Begin(true);
            var b = _tx.CreateBucketIfNotExists(path[0]);
            for (int i = 1; i < path.Count; i++)
            {
                b = b.CreateBucketIfNotExists(path[i]);
            }

            return b;
        }

        public void CopyBucket(Bucket src, List<byte[]> path)
        {
            var dstBucket = Open(path);
            dstBucket.FillPercent = 1.0;
            if (src.Sequence != 0)
            {
                dstBucket.SetSequence(src.Sequence);
            }

            var c = src.Cursor();
            var subs = new List<byte[]>();
            for (bool ok = c.First(out var k, out var v); ok; ok = c.Next(out k, out v))
            {
                if (c.IsBucket)
                {
                    subs.Add(k.ToArray());
                    continue;
                }

                _size += k.Length + v.Length;
                if (_size > txMaxSize)
                {
                    _tx!.Commit();
                    _tx.Dispose();
                    _tx = null;
                    _size = k.Length + v.Length;
                    dstBucket = Open(path);
                    dstBucket.FillPercent = 1.0;
                }

                dstBucket.Put(k, v);
            }

            foreach (var s in subs)
            {
                var childPath = new List<byte[]>(path) { s };
                CopyBucket(src.GetBucket(s)!, childPath);
            }
        }

        public void Finish()
        {
            if (_tx != null)
            {
                _tx.Commit();
                _tx.Dispose();
                _tx = null;
            }
        }

        public void Dispose() => _tx?.Dispose();
    }
}
