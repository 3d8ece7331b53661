using System.Globalization;

namespace Etcd.Storage.Wal;

/// <summary>WAL segment naming: <c>%016x-%016x.wal</c> of (sequence, first raft index), as etcd's wal/util.go.</summary>
internal static class WalNames
{
    public static string Format(ulong seq, ulong index) => $"{seq:x16}-{index:x16}.wal";

    /// <summary>Parses a segment file name; false for anything not shaped like etcd's names.</summary>
    public static bool TryParse(string name, out ulong seq, out ulong index)
    {
        seq = 0;
        index = 0;
        // etcd parses with Sscanf("%016x-%016x.wal"): 16 hex digits, a dash, 16 hex digits, ".wal".
        if (name.Length != 37 || !name.EndsWith(".wal", StringComparison.Ordinal) || name[16] != '-')
        {
            return false;
        }
        return ulong.TryParse(name.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out seq)
            && ulong.TryParse(name.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out index);
    }

    /// <summary>The sorted segment names in <paramref name="dir"/>; throws FileNotFound when there are none.</summary>
    public static List<string> Read(string dir)
    {
        if (!Directory.Exists(dir))
        {
            throw new WalException(WalErrorKind.FileNotFound);
        }
        var names = new List<string>();
        foreach (string path in Directory.EnumerateFiles(dir))
        {
            string name = Path.GetFileName(path);
            if (TryParse(name, out _, out _))
            {
                names.Add(name);
            }
        }
        if (names.Count == 0)
        {
            throw new WalException(WalErrorKind.FileNotFound);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>The last position whose segment's first index is at or below <paramref name="index"/>, or -1.</summary>
    public static int SearchIndex(List<string> names, ulong index)
    {
        for (int i = names.Count - 1; i >= 0; i--)
        {
            TryParse(names[i], out _, out ulong cur);
            if (index >= cur)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>True when the sequence numbers of <paramref name="names"/> from <paramref name="start"/> increase by one.</summary>
    public static bool IsValidSeq(List<string> names, int start)
    {
        ulong last = 0;
        for (int i = start; i < names.Count; i++)
        {
            TryParse(names[i], out ulong seq, out _);
            if (last != 0 && last != seq - 1)
            {
                return false;
            }
            last = seq;
        }
        return true;
    }
}
