using System.Diagnostics;

namespace Etcd.Storage.Tests.Bolt;

/// <summary>
/// Builds (once per test run, into a temp dir) a tiny Go program against the system's bbolt source
/// (/usr/share/gocode, GOPATH mode) that writes a reference db or checks and dumps one.
/// </summary>
internal static class GoBolt
{
    public const string BboltSource = "/usr/share/gocode/src/go.etcd.io/bbolt";

    private const string Program = """
        package main

        import (
        	"hash/crc32"
        	"encoding/hex"
        	"fmt"
        	"os"
        	"strings"

        	bolt "go.etcd.io/bbolt"
        )

        func hx(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

        func dump(b *bolt.Bucket, path string, out *strings.Builder) {
        	fmt.Fprintf(out, "%s\tB\n", path)
        	var subs [][]byte
        	c := b.Cursor()
        	for k, v := c.First(); k != nil; k, v = c.Next() {
        		if v == nil && b.Bucket(k) != nil {
        			subs = append(subs, append([]byte{}, k...))
        		} else {
        			fmt.Fprintf(out, "%s\t%s\t%s\n", path, hx(k), hx(v))
        		}
        	}
        	for _, s := range subs {
        		dump(b.Bucket(s), path+"/"+hx(s), out)
        	}
        }

        func must(err error) {
        	if err != nil {
        		fmt.Fprintln(os.Stderr, err)
        		os.Exit(2)
        	}
        }

        func write(path string) {
        	db, err := bolt.Open(path, 0600, nil)
        	must(err)
        	defer db.Close()
        	must(db.Update(func(tx *bolt.Tx) error {
        		a, _ := tx.CreateBucket([]byte("alpha"))
        		for i := 0; i < 5000; i++ {
        			a.Put([]byte(fmt.Sprintf("key-%06d", i)), []byte(fmt.Sprintf("val-%d-%s", i, strings.Repeat("x", i%40))))
        		}
        		big := make([]byte, 20000)
        		for i := range big {
        			big[i] = byte(i * 7)
        		}
        		a.Put([]byte("large"), big)
        		a.SetSequence(42)
        		in, _ := a.CreateBucket([]byte("inner"))
        		for i := 0; i < 10; i++ {
        			in.Put([]byte{byte(i), 0xff}, []byte{byte(i)})
        		}
        		d, _ := in.CreateBucket([]byte("deeper"))
        		for i := 0; i < 1000; i++ {
        			d.Put([]byte(fmt.Sprintf("d%05d", i)), []byte(strings.Repeat("v", 1+i%100)))
        		}
        		b, _ := tx.CreateBucket([]byte("beta"))
        		b.Put([]byte("one"), []byte("1"))
        		b.Put([]byte("two"), []byte("2"))
        		tx.CreateBucket([]byte("empty"))
        		return nil
        	}))
        	must(db.Update(func(tx *bolt.Tx) error {
        		a := tx.Bucket([]byte("alpha"))
        		for i := 0; i < 5000; i += 3 {
        			a.Delete([]byte(fmt.Sprintf("key-%06d", i)))
        		}
        		return nil
        	}))
        }

        func check(path string) {
        	db, err := bolt.Open(path, 0600, &bolt.Options{ReadOnly: true})
        	must(err)
        	defer db.Close()
        	must(db.View(func(tx *bolt.Tx) error {
        		bad := false
        		for err := range tx.Check() {
        			fmt.Fprintln(os.Stderr, "CHECK:", err)
        			bad = true
        		}
        		if bad {
        			os.Exit(3)
        		}
        		var out strings.Builder
        		tx.ForEach(func(name []byte, b *bolt.Bucket) error {
        			dump(b, hx(name), &out)
        			return nil
        		})
        		fmt.Print(out.String())
        		return nil
        	}))
        }

        func seq(path string) {
        	db, err := bolt.Open(path, 0600, &bolt.Options{ReadOnly: true})
        	must(err)
        	defer db.Close()
        	db.View(func(tx *bolt.Tx) error {
        		fmt.Println(tx.Bucket([]byte(os.Args[3])).Sequence())
        		return nil
        	})
        }

        // The hash of etcd's backend.Hash with DefaultIgnores (meta/consistent_index).
        func hash(path string) {
        	db, err := bolt.Open(path, 0600, &bolt.Options{ReadOnly: true})
        	must(err)
        	defer db.Close()
        	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
        	db.View(func(tx *bolt.Tx) error {
        		c := tx.Cursor()
        		for next, _ := c.First(); next != nil; next, _ = c.Next() {
        			b := tx.Bucket(next)
        			h.Write(next)
        			b.ForEach(func(k, v []byte) error {
        				if string(next) == "meta" && string(k) == "consistent_index" {
        					return nil
        				}
        				h.Write(k)
        				h.Write(v)
        				return nil
        			})
        		}
        		return nil
        	})
        	fmt.Println(h.Sum32())
        }

        func main() {
        	switch os.Args[1] {
        	case "write":
        		write(os.Args[2])
        	case "check":
        		check(os.Args[2])
        	case "hash":
        		hash(os.Args[2])
        	case "seq":
        		seq(os.Args[2])
        	}
        }
        """;

    private static readonly Lazy<(string? Exe, string? Why)> s_built = new(Build);

    /// <summary>The built program, or null with the reason it cannot exist here.</summary>
    public static (string? Exe, string? Why) Get() => s_built.Value;

    private static (string? Exe, string? Why) Build()
    {
        var go = FindOnPath("go");
        if (go == null)
        {
            return (null, "the go toolchain is not installed");
        }

        if (!Directory.Exists(BboltSource))
        {
            return (null, $"bbolt source not found at {BboltSource}");
        }

        var dir = Path.Combine(Path.GetTempPath(), "boltinterop-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "main.go"), Program);
        var exe = Path.Combine(dir, "boltinterop");
        var psi = new ProcessStartInfo(go, ["build", "-o", exe, "main.go"])
        {
            WorkingDirectory = dir,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        psi.Environment["GOPATH"] = "/usr/share/gocode";
        psi.Environment["GO111MODULE"] = "off";
        psi.Environment["GOCACHE"] = Path.Combine(Path.GetTempPath(), "boltinterop-gocache");
        psi.Environment["GOFLAGS"] = "";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(4)))
        {
            p.Kill(true);
            throw new TimeoutException("go build did not finish in 4 minutes");
        }

        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("go build failed: " + err.Result + outp.Result);
        }

        return (exe, null);
    }

    public static (int Code, string Out, string Err) Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            p.Kill(true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} did not finish");
        }

        return (p.ExitCode, outp.Result, err.Result);
    }

    public static string? FindOnPath(string name)
    {
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = Path.Combine(d, name);
            if (File.Exists(f))
            {
                return f;
            }
        }

        return null;
    }
}
