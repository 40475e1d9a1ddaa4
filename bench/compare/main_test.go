package main

import (
	"fmt"
	"strings"
	"testing"
)

// line returns one collected run, as bench/compare.sh writes it.
func line(round int, server, workload string, rate, p50, p99, rssKiB float64) string {
	cpu := 0.5
	if server == "baseline" {
		cpu = 0.95 // the client was the limit
	}
	return fmt.Sprintf(`{"round":%d,"server":%q,"workload":%q,"rss_kib":%g,"result":{"workload":%q,"calls":100,"errors":{},"rate_per_s":%g,"latency_us":{"p50":%g,"p90":1,"p99":%g,"p999":1,"max":1},"client_cpu":%g}}`,
		round, server, workload, rssKiB, workload, rate, p50, p99, cpu)
}

func TestRun(t *testing.T) {
	in := strings.Join([]string{
		// Three rounds of GetPerson: the medians are the middle values.
		line(1, "routeguide", "get", 9000, 300, 3000, 30720),
		line(2, "routeguide", "get", 8000, 400, 4000, 20480),
		line(3, "routeguide", "get", 10000, 200, 2000, 25600),
		line(1, "routeguide-metrics", "get", 7000, 400, 4000, 30720),
		line(1, "baseline", "get", 20000, 150, 1500, 10240),
		line(2, "baseline", "get", 10000, 150, 1500, 10240),
		line(1, "python", "get", 2000, 12000, 20000, 40960),
		line(1, "routeguide", "people", 30000, 1000, 5000, 30720),
		line(1, "baseline", "people", 60000, 85.2, 2500, 10240),
		`{"round":1,"server":"python","workload":"people","error":"routeguide: RouteGuide at 127.0.0.1:50071 is unavailable: connection refused"}`,
		line(1, "routeguide", "add", 1500, 20000, 90000, 35840),
		"",
	}, "\n")
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, 1); err != nil {
		t.Fatal(err)
	}
	want := `workload   server                     rate/s     p50     p99  peak RSS MiB  vs baseline  vs Python
GetPerson  routeguide                   9000   300µs  3.00ms          25.0        0.60x      4.50x
GetPerson  routeguide --metrics-addr    7000   400µs  4.00ms          30.0        0.47x      3.50x
GetPerson  baseline (grpc-go)          15000   150µs  1.50ms          10.0        1.00x      7.50x
GetPerson  python (grpcio)              2000  12.0ms  20.0ms          40.0        0.13x      1.00x
GetPeople  routeguide                  30000  1.00ms  5.00ms          30.0        0.50x        n/a
GetPeople  routeguide --metrics-addr     n/a
GetPeople  baseline (grpc-go)          60000  85.2µs  2.50ms          10.0        1.00x        n/a
GetPeople  python (grpcio)            failed
AddPerson  routeguide                   1500  20.0ms  90.0ms          35.0          n/a        n/a
AddPerson  routeguide --metrics-addr     n/a
AddPerson  baseline (grpc-go)            n/a
AddPerson  python (grpcio)               n/a
failed: GetPeople on python (grpcio): 1 of 1 runs failed: routeguide: RouteGuide at 127.0.0.1:50071 is unavailable: connection refused
client-bound: GetPerson on baseline (grpc-go): the load generator used 0.95 cores of the 1 it could use; the server may be faster than this
client-bound: GetPeople on baseline (grpc-go): the load generator used 0.95 cores of the 1 it could use; the server may be faster than this

GetPerson rate: RouteGuide/baseline 0.60x (with --metrics-addr 0.47x), RouteGuide/Python 4.50x
GetPeople rate: RouteGuide/baseline 0.50x (with --metrics-addr n/a), RouteGuide/Python n/a
GetPerson p99: RouteGuide 3.00ms, baseline 1.50ms (2.00x)
GetPeople p99: RouteGuide 5.00ms, baseline 2.50ms (2.00x)
peak RSS under GetPerson: RouteGuide 25.0 MiB, baseline 10.0 MiB (2.50x)
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRunRefusesABadLine(t *testing.T) {
	err := run(strings.NewReader(line(1, "baseline", "get", 1, 1, 1, 1)+"\nnot json\n"), &strings.Builder{}, 1)
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("run = %v, want an error naming line 2", err)
	}
}
