// proxy-compare: W watchers of one key through an endpoint (a grpc-proxy), P puts; reports events/s, the member's
// watcher count and the proxy's CPU per 1000 delivered events. With -ranges D: serializable gets of one key for D.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func memberWatchers(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := ioutil.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "etcd_debugging_mvcc_watcher_total ") {
			return strings.TrimPrefix(l, "etcd_debugging_mvcc_watcher_total ")
		}
	}
	return "?"
}

func cpuTicks(pid int) int64 {
	if pid == 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s, _ := bufio.NewReader(f).ReadString('\n')
	s = s[strings.LastIndex(s, ")")+2:]
	fs := strings.Fields(s)
	u, _ := strconv.ParseInt(fs[11], 10, 64)
	k, _ := strconv.ParseInt(fs[12], 10, 64)
	return u + k
}

func main() {
	ep := flag.String("endpoint", "127.0.0.1:23790", "proxy endpoint")
	murl := flag.String("member-metrics", "http://127.0.0.1:2379/metrics", "member metrics URL")
	watchers := flag.Int("watchers", 10000, "watchers")
	nclients := flag.Int("clients", 100, "client connections")
	puts := flag.Int("puts", 100, "puts")
	pid := flag.Int("proxy-pid", 0, "proxy pid for CPU")
	ranges := flag.Duration("ranges", 0, "instead of watches: serializable gets of one key for this long")
	flag.Parse()
	if *ranges > 0 {
		rangeBench(*ep, *nclients, *ranges, *pid)
		return
	}

	before := memberWatchers(*murl)
	var created, received int64
	var clients []*clientv3.Client
	for i := 0; i < *nclients; i++ {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{*ep}, DialTimeout: 5 * time.Second})
		if err != nil {
			panic(err)
		}
		clients = append(clients, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *watchers; i++ {
		c := clients[i%*nclients]
		wch := c.Watch(ctx, "bench-key", clientv3.WithCreatedNotify())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range wch {
				if r.Created {
					atomic.AddInt64(&created, 1)
				}
				atomic.AddInt64(&received, int64(len(r.Events)))
			}
		}()
	}
	for atomic.LoadInt64(&created) < int64(*watchers) {
		if time.Since(start) > 5*time.Minute {
			fmt.Println("timeout creating watchers", atomic.LoadInt64(&created))
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	setup := time.Since(start)
	time.Sleep(2 * time.Second) // let coalescing settle
	during := memberWatchers(*murl)
	cpu0 := cpuTicks(*pid)
	t0 := time.Now()
	want := int64(*watchers) * int64(*puts)
	for i := 0; i < *puts; i++ {
		if _, err := clients[0].Put(context.Background(), "bench-key", strconv.Itoa(i)); err != nil {
			panic(err)
		}
	}
	for atomic.LoadInt64(&received) < want {
		if time.Since(t0) > 5*time.Minute {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(t0)
	cpu1 := cpuTicks(*pid)
	got := atomic.LoadInt64(&received)
	fmt.Printf("watchers=%d clients=%d puts=%d created-in=%.1fs member-watchers before=%s during=%s delivered=%d/%d in %.2fs events/s=%.0f proxy-cpu=%.2fs cpu-ms-per-1000-events=%.2f\n",
		*watchers, *nclients, *puts, setup.Seconds(), before, during, got, want, el.Seconds(), float64(got)/el.Seconds(),
		float64(cpu1-cpu0)/100, float64(cpu1-cpu0)*10/(float64(got)/1000))
	cancel()
	for _, c := range clients {
		c.Close()
	}
}

func rangeBench(ep string, n int, d time.Duration, pid int) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if _, err := c.Put(context.Background(), "bench-range", "v"); err != nil {
		panic(err)
	}
	var ops int64
	cpu0 := cpuTicks(pid)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(t0) < d {
				if _, err := c.Get(context.Background(), "bench-range", clientv3.WithSerializable()); err != nil {
					panic(err)
				}
				atomic.AddInt64(&ops, 1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	cpu1 := cpuTicks(pid)
	fmt.Printf("serializable gets: concurrency=%d ops=%d in %.1fs ops/s=%.0f proxy-cpu=%.2fs cpu-ms-per-1000-ops=%.2f\n", n, ops, el.Seconds(), float64(ops)/el.Seconds(), float64(cpu1-cpu0)/100, float64(cpu1-cpu0)*10/(float64(ops)/1000))
}
