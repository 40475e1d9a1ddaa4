package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// boundedMode compares a server whose read cache holds the whole directory
// of n people in store with one bounded to maxBytes (--cache-max-bytes):
// for each, its cold start (and the CPU it used by then), GetPerson from
// 32 callers over names from a hot set of hot people and over all n names,
// the server's CPU a call in each, and its resident memory after; then the
// bounded server's figures against the whole one's.
func boundedMode(bin, store string, n, hot int, maxBytes string, d time.Duration) {
	type figures struct {
		cold, coldCPU    time.Duration
		hotRate, allRate float64
		hotCPU, allCPU   float64 // server CPU µs a call
		rss              int64
		cacheLines       string
	}
	run := func(extra ...string) figures {
		var f figures
		s, err := startServer(bin, store, extra...)
		if err != nil {
			fail(err)
		}
		defer s.stop()
		if f.cold, err = s.waitLoaded(5 * time.Minute); err != nil {
			fail(err)
		}
		pid := s.cmd.Process.Pid
		if f.coldCPU, err = cpuTime(pid); err != nil {
			fail(err)
		}
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fail(err)
		}
		defer conn.Close()
		clients := []pb.RouteGuideClient{pb.NewRouteGuideClient(conn)}
		// rate runs get over the first k names and returns calls/s and the
		// server's CPU µs a call.
		rate := func(k int) (float64, float64) {
			var out strings.Builder
			before, _ := cpuTime(pid)
			get(clients, k, d, 32, &out)
			after, _ := cpuTime(pid)
			var r float64
			var calls int64
			fmt.Sscanf(out.String(), "getperson_per_s %f\n# %d calls", &r, &calls)
			return r, float64(after-before) / float64(time.Microsecond) / float64(max(calls, 1))
		}
		warm(clients[0], hot)
		f.hotRate, f.hotCPU = rate(hot)
		f.allRate, f.allCPU = rate(n)
		if f.rss, err = rss(pid); err != nil {
			fail(err)
		}
		if resp, err := http.Get("http://" + s.metrics + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "routeguide_cache_") {
					f.cacheLines += "# " + line + "\n"
				}
			}
		}
		return f
	}
	fmt.Fprintf(os.Stderr, "scale: the whole directory of %d people\n", n)
	whole := run()
	fmt.Fprintf(os.Stderr, "scale: bounded to %s\n", maxBytes)
	bounded := run("--cache-max-bytes", maxBytes)
	for _, x := range []struct {
		name string
		f    figures
	}{{"whole", whole}, {"bounded", bounded}} {
		fmt.Printf("%s_cold_start_s %.3f\n%s_cold_start_cpu_s %.3f\n%s_rss_bytes %d\n", x.name, x.f.cold.Seconds(), x.name, x.f.coldCPU.Seconds(), x.name, x.f.rss)
		fmt.Printf("%s_getperson_hot_per_s %.0f\n%s_getperson_all_per_s %.0f\n", x.name, x.f.hotRate, x.name, x.f.allRate)
		fmt.Printf("%s_cpu_us_per_call_hot %.1f\n%s_cpu_us_per_call_all %.1f\n", x.name, x.f.hotCPU, x.name, x.f.allCPU)
	}
	fmt.Print(bounded.cacheLines)
	ratio := func(a, b float64) float64 { return a / b }
	fmt.Printf("ratio_rss %.2f\nratio_getperson_hot %.2f\nratio_getperson_all %.2f\nratio_cpu_per_call_hot %.2f\nratio_cpu_per_call_all %.2f\n",
		ratio(float64(bounded.rss), float64(whole.rss)), ratio(bounded.hotRate, whole.hotRate), ratio(bounded.allRate, whole.allRate),
		ratio(bounded.hotCPU, whole.hotCPU), ratio(bounded.allCPU, whole.allCPU))
	fmt.Printf("# bounded against whole, %d people, hot set %d, --cache-max-bytes %s, %v a run, 32 callers\n", n, hot, maxBytes, d)
}

// warm reads each of the first k names once, from 32 callers.
func warm(c pb.RouteGuideClient, k int) {
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < k; i += 32 {
				if _, err := c.GetPerson(context.Background(), &pb.Name{Name: fmt.Sprintf("person-%07d", i)}); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
}
