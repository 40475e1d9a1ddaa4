package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/routeguide/routeguide/internal/gen/routeguidepb"
	"github.com/routeguide/routeguide/internal/wire"
)

// benchConfig is what `routeguide bench` runs with, besides the connection.
type benchConfig struct {
	workload    string
	concurrency int
	conns       int
	window      int
	duration    time.Duration
	count       int
	warmup      time.Duration
	names       []string
}

func benchCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a RouteGuide server and report its call rate and latency",
		Long: `Load a RouteGuide server, like redis-benchmark or pgbench, and report the
calls it answered, their rate and their latency. Workloads:

  get     GetPerson for --names in turn, from --concurrency callers spread
          over --conns connections
  people  one GetPeople stream on each of --conns connections, names
          pipelined: a sender keeps up to --window names unanswered while a
          receiver reads the answers; a name's latency runs from its send to
          its answer. Names the server does not know are skipped by
          GetPeople, and counted as NotFound errors
  add     AddPerson of new people, named from a prefix unique to the run

The first --warmup is not counted; then the run lasts --duration, or until
-n calls have completed. Calls and the rate count every completed call,
errors included; latency covers every answer, to within 1%. GetPerson's
"Not Found" person counts as a NotFound error. Answers are checked by name
and not decoded further, so that bench's CPU goes to making calls. The CPU
bench itself used shows whether the client, rather than the server, set
the pace.

Calls have no deadline unless --timeout or ROUTEGUIDE_TIMEOUT sets one, and
a run is cut off 10s after its duration. On a terminal, a progress line
shows on stderr. The exit status is 1 when every call failed.`,
		Args: noArgs,
	}
	bc := &benchConfig{workload: "get", concurrency: 32, conns: 2, window: 128, duration: 10 * time.Second, warmup: time.Second}
	f := cmd.Flags()
	f.StringVar(&bc.workload, "workload", bc.workload, "get, people or add")
	f.IntVarP(&bc.concurrency, "concurrency", "c", bc.concurrency, "callers making calls at once (get, add)")
	f.IntVar(&bc.conns, "conns", bc.conns, "connections; callers are spread over them, and people streams one each")
	f.IntVar(&bc.window, "window", bc.window, "names sent and not yet answered on each stream, at most (people)")
	f.DurationVar(&bc.duration, "duration", bc.duration, "how long to measure, after the warmup")
	f.IntVarP(&bc.count, "count", "n", 0, "measure this many calls in all instead of running for --duration")
	f.DurationVar(&bc.warmup, "warmup", bc.warmup, "how long to run first without counting")
	f.StringSliceVar(&bc.names, "names", []string{"Alice", "Bob"}, "names to ask for, in turn (get, people)")
	cfg := addClientFlags(e, cmd, true)
	f.Lookup("output").Usage = "output format: text, or json for one JSON object"
	// Unlike the other commands, bench gives its calls no deadline by
	// default: a deadline costs the client a context and a timer on every
	// call, and the end of the run bounds every call anyway.
	timeout := f.Lookup("timeout")
	timeout.Usage = "deadline for each call; by default none, and 10s for the first calls that check the server" + envHelp("ROUTEGUIDE_TIMEOUT")
	timeout.DefValue = "0s"
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := bc.check(cmd); err != nil {
			return err
		}
		res, err := runBench(cmd.Context(), e, cfg, bc)
		if err != nil {
			return err
		}
		if cfg.Output == "json" {
			return fail(res.writeJSON(e.stdout))
		}
		return fail(res.writeText(e.stdout))
	}
	return cmd
}

// check refuses values that make no sense, and flags the workload ignores.
func (bc *benchConfig) check(cmd *cobra.Command) error {
	set := cmd.Flags().Changed
	switch {
	case bc.workload != "get" && bc.workload != "people" && bc.workload != "add":
		return usageError{fmt.Errorf("--workload %q: want get, people or add", bc.workload)}
	case bc.concurrency < 1:
		return usageError{fmt.Errorf("--concurrency %d: want at least 1", bc.concurrency)}
	case bc.conns < 1:
		return usageError{fmt.Errorf("--conns %d: want at least 1", bc.conns)}
	case bc.window < 1:
		return usageError{fmt.Errorf("--window %d: want at least 1", bc.window)}
	case bc.duration <= 0:
		return usageError{fmt.Errorf("--duration %v: want more than 0", bc.duration)}
	case bc.count < 0:
		return usageError{fmt.Errorf("-n %d: want at least 1", bc.count)}
	case set("count") && bc.count == 0:
		return usageError{errors.New("-n 0: want at least 1")}
	case bc.warmup < 0:
		return usageError{fmt.Errorf("--warmup %v: must not be negative", bc.warmup)}
	case set("count") && set("duration"):
		return usageError{errors.New("--duration and -n are alternatives: give one")}
	case bc.workload == "people" && set("concurrency"):
		return usageError{errors.New("--concurrency is for get and add; people runs one stream on each of --conns connections")}
	case bc.workload != "people" && set("window"):
		return usageError{errors.New("--window is for people")}
	case bc.workload == "add" && set("names"):
		return usageError{errors.New("--names is for get and people; add makes up new names")}
	}
	for i, n := range bc.names {
		bc.names[i] = strings.TrimSpace(n)
		if bc.names[i] == "" {
			return usageError{errors.New("--names: a name is empty")}
		}
	}
	if len(bc.names) == 0 {
		return usageError{errors.New("--names: want at least one name")}
	}
	return nil
}

// workers returns how many callers or streams the workload runs.
func (bc *benchConfig) workers() int {
	if bc.workload == "people" {
		return bc.conns
	}
	return bc.concurrency
}

// bench is one run of `routeguide bench`: its connections and the requests
// it sends, built once.
type bench struct {
	cfg     *clientConfig
	bc      *benchConfig
	conns   []*grpc.ClientConn // one for each of --conns
	answers []grpc.CallOption  // for calls whose answers are read as *answer
	reqs    []*pb.Name         // one for each of bc.names
	known   []bool             // people: whether the server has bc.names[i]
	perCall time.Duration
	prefix  string   // add: the start of every name this run adds
	seqs    []uint64 // add: the next number of each caller, across phases
	epoch   time.Time
}

// runBench connects, checks the server answers, runs the warmup and then
// the measured phase, and returns the measured phase's result.
func runBench(ctx context.Context, e *env, cfg *clientConfig, bc *benchConfig) (*benchResult, error) {
	opts, err := cfg.dialOptions()
	if err != nil {
		return nil, err
	}
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	b := &bench{cfg: cfg, bc: bc, epoch: time.Now(), answers: []grpc.CallOption{grpc.StaticMethod(), grpc.ForceCodecV2(newAnswerCodec())}}
	if cfg.timeoutSet {
		b.perCall = cfg.Timeout
	}
	for range bc.conns {
		conn, err := grpc.NewClient(cfg.Addr, opts...)
		if err != nil {
			return nil, usageError{fmt.Errorf("connect to %s: %w", cfg.Addr, err)}
		}
		defer conn.Close()
		b.conns = append(b.conns, conn)
	}
	for _, n := range bc.names {
		b.reqs = append(b.reqs, &pb.Name{Name: n})
	}
	b.prefix = fmt.Sprintf("bench-%012x-", rand.Uint64()>>16)
	b.seqs = make([]uint64, bc.workers())
	if err := b.preflight(ctx); err != nil {
		return nil, err
	}

	bar := newBenchProgress(e.stderr, cfg.Output != "json")
	if bc.warmup > 0 {
		if _, _, err := b.phase(ctx, "warming up", bc.warmup, 0, bar); err != nil {
			return nil, err
		}
	}
	recs, took, err := b.phase(ctx, bc.workload, bc.duration, bc.count, bar)
	if err != nil {
		return nil, err
	}
	res := b.result(recs, took)
	if res.Calls > 0 && res.errorCount() == res.Calls {
		first := firstError(recs)
		return nil, failure{fmt.Errorf("every call failed: %s (first: %v)", res.errorSummary(), first)}
	}
	if res.Calls == 0 {
		return nil, failure{errors.New("no call completed")}
	}
	return res, nil
}

// preflight makes one GetPerson call on each connection, so that the
// connections are up before the clock starts and a server that cannot be
// reached fails the run at once. For people, it also learns which names the
// server knows: GetPeople skips the others, so there is no answer to wait
// for.
func (b *bench) preflight(ctx context.Context) error {
	call := func(conn *grpc.ClientConn, req *pb.Name) (known bool, err error) {
		ctx, cancel := b.cfg.callContext(ctx)
		defer cancel()
		p, err := pb.NewRouteGuideClient(conn).GetPerson(ctx, req)
		if err != nil {
			return false, fail(b.cfg.describe(err))
		}
		return !isNotFoundPerson(p, req), nil
	}
	for _, c := range b.conns[1:] {
		if _, err := call(c, b.reqs[0]); err != nil {
			return err
		}
	}
	if b.bc.workload != "people" {
		_, err := call(b.conns[0], b.reqs[0])
		return err
	}
	b.known = make([]bool, len(b.reqs))
	for i, req := range b.reqs {
		known, err := call(b.conns[0], req)
		if err != nil {
			return err
		}
		b.known[i] = known
	}
	if !slices.Contains(b.known, true) {
		return failure{fmt.Errorf("the server at %s knows none of --names (%s), and GetPeople skips unknown names: nothing to measure", b.cfg.Addr, strings.Join(b.bc.names, ","))}
	}
	return nil
}

// isNotFoundPerson reports whether p is the seed's answer to a name nobody
// has: a Person named "Not Found" and nothing else.
func isNotFoundPerson(p *pb.Person, req *pb.Name) bool {
	return p.GetName() == wire.NotFoundName && req.GetName() != wire.NotFoundName &&
		p.GetAge() == 0 && p.GetGender() == 0 && len(p.GetHobbies()) == 0 && p.GetAddress() == nil
}

// phase runs the workload for d, or until count calls have completed when
// count > 0, and returns each worker's record and how long the phase took,
// with the CPU time this process used meanwhile (-1 when unknown).
// Calls in flight when d ends complete and count; the phase is cut off 10s
// (or --timeout, if longer) after d.
func (b *bench) phase(ctx context.Context, label string, d time.Duration, count int, bar *benchProgress) ([]*recorder, elapsed, error) {
	n := b.bc.workers()
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = new(recorder)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	if count == 0 {
		grace := max(10*time.Second, b.perCall)
		t1 := time.AfterFunc(d, func() { stop.Store(true) })
		t2 := time.AfterFunc(d+grace, cancel)
		defer t1.Stop()
		defer t2.Stop()
	}

	cpu0, cpuOK := processCPU()
	start := time.Now()
	stopBar := bar.run(label, start, recs)
	var wg sync.WaitGroup
	for i := range n {
		quota := -1
		if count > 0 {
			quota = count / n
			if i < count%n {
				quota++
			}
			if quota == 0 {
				continue
			}
		}
		wg.Go(func() {
			switch b.bc.workload {
			case "get":
				b.getCaller(ctx, i, quota, &stop, recs[i])
			case "add":
				b.addCaller(ctx, i, quota, &stop, recs[i])
			case "people":
				b.peopleStream(ctx, i, quota, &stop, recs[i])
			}
		})
	}
	wg.Wait()
	took := elapsed{wall: time.Since(start), cpu: -1}
	if cpu1, ok := processCPU(); ok && cpuOK {
		took.cpu = cpu1 - cpu0
	}
	stopBar()
	if parent.Err() != nil {
		return nil, took, failure{errors.New("interrupted")}
	}
	return recs, took, nil
}

// elapsed is how long a phase took, in wall time and in this process's CPU
// time (-1 when unknown).
type elapsed struct {
	wall, cpu time.Duration
}

// callContext returns the context for one call: ctx, with --timeout as its
// deadline when one was given.
func (b *bench) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if b.perCall == 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.perCall)
}

// more reports whether a worker that has made n calls makes another.
func more(n, quota int, stop *atomic.Bool) bool {
	return (quota < 0 || n < quota) && !stop.Load()
}

func (b *bench) getCaller(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	conn := b.conns[i%len(b.conns)]
	k := i % len(b.reqs)
	var p answer
	for n := 0; more(n, quota, stop); n++ {
		req := b.reqs[k]
		if k++; k == len(b.reqs) {
			k = 0
		}
		callCtx, cancel := b.callContext(ctx)
		t0 := time.Now()
		err := conn.Invoke(callCtx, pb.RouteGuide_GetPerson_FullMethodName, req, &p, b.answers...)
		lat := time.Since(t0)
		cancel()
		switch {
		case err != nil:
			rec.failed(status.Code(err), lat, true, func() error { return b.cfg.describe(err) })
		case p.notFound(req):
			rec.failed(codes.NotFound, lat, true, func() error { return fmt.Errorf("no person named %q", req.GetName()) })
		default:
			rec.answered(lat)
		}
	}
}

func (b *bench) addCaller(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	c := pb.NewRouteGuideClient(b.conns[i%len(b.conns)])
	req := &pb.AddPersonRequest{Person: &pb.Person{
		Age:     30,
		Gender:  pb.Person_FEMALE,
		Hobbies: []string{"reading", "swimming"},
		Address: &pb.Person_Address{Street: "123 Main St", City: "New York"},
	}}
	name := strconv.AppendInt([]byte(b.prefix), int64(i), 10)
	name = append(name, '-')
	mark := len(name)
	seq := b.seqs[i]
	defer func() { b.seqs[i] = seq }()
	for n := 0; more(n, quota, stop); n++ {
		name = strconv.AppendUint(name[:mark], seq, 10)
		seq++
		req.Person.Name = string(name)
		callCtx, cancel := b.callContext(ctx)
		t0 := time.Now()
		_, err := c.AddPerson(callCtx, req)
		lat := time.Since(t0)
		cancel()
		if err != nil {
			rec.failed(status.Code(err), lat, true, func() error { return b.cfg.describe(err) })
			continue
		}
		rec.answered(lat)
	}
}

// sent is a name on its way: which one, and when it was sent, since the
// run's epoch.
type sent struct {
	idx int32
	at  time.Duration
}

// peopleStream runs one pipelined GetPeople stream on connection i: a sender
// keeps sending names while at most --window are unanswered, and this
// goroutine reads the answers, matching each to its name. Answers come in
// the order the names were sent, skipping unknown names, so the oldest
// names in flight are either answered by the next message or were skipped.
func (b *bench) peopleStream(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := b.conns[i].NewStream(ctx, &pb.RouteGuide_ServiceDesc.Streams[0], pb.RouteGuide_GetPeople_FullMethodName, b.answers...)
	if err != nil {
		rec.failed(status.Code(err), 0, false, func() error { return b.cfg.describe(err) })
		return
	}
	slots := make(chan struct{}, b.window())
	inflight := make(chan sent, b.window())
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		k := i % len(b.reqs)
		for n := 0; more(n, quota, stop); n++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			inflight <- sent{idx: int32(k), at: time.Since(b.epoch)}
			if err := stream.SendMsg(b.reqs[k]); err != nil {
				return // the receiver learns why
			}
			if k++; k == len(b.reqs) {
				k = 0
			}
		}
		stream.CloseSend()
	}()

	// settle ends the stream: every name still in flight failed with code,
	// or, when it is one the server does not know, was skipped.
	settle := func(code codes.Code, why func() error) {
		cancel()
		<-senderDone
		for {
			select {
			case s := <-inflight:
				switch {
				case code != codes.OK:
					rec.failed(code, 0, false, why)
				case !b.known[s.idx]:
					b.skipped(rec, s.idx)
				default:
					rec.failed(codes.Internal, 0, false, func() error {
						return fmt.Errorf("GetPeople ended without answering %q", b.bc.names[s.idx])
					})
				}
			default:
				return
			}
		}
	}

	var m answer
	for {
		err := stream.RecvMsg(&m)
		if err == io.EOF {
			settle(codes.OK, nil)
			return
		}
		if err != nil {
			settle(status.Code(err), func() error { return b.cfg.describe(err) })
			return
		}
		now := time.Since(b.epoch)
		for matched := false; !matched; {
			var s sent
			select {
			case s = <-inflight:
			default:
				name := string(m.name)
				settle(codes.Internal, func() error { return fmt.Errorf("GetPeople answered %q, which was not asked for", name) })
				return
			}
			<-slots
			switch {
			case m.is(b.bc.names[s.idx]):
				rec.answered(now - s.at)
				matched = true
			case !b.known[s.idx]:
				b.skipped(rec, s.idx)
			default:
				name := string(m.name)
				rec.failed(codes.Internal, 0, false, func() error {
					return fmt.Errorf("GetPeople answered %q before %q, which was sent first", name, b.bc.names[s.idx])
				})
				settle(codes.Internal, func() error { return errors.New("GetPeople answered out of order") })
				return
			}
		}
	}
}

// window returns how many names a stream keeps in flight: --window, or
// more when there are more names, so that every full window holds a name
// the server knows, whose answer settles the skipped names before it.
func (b *bench) window() int { return max(b.bc.window, len(b.reqs)) }

// skipped records a name GetPeople skipped as a NotFound error.
func (b *bench) skipped(rec *recorder, idx int32) {
	rec.failed(codes.NotFound, 0, false, func() error {
		return fmt.Errorf("GetPeople skipped %q: no person of that name", b.bc.names[idx])
	})
}

// recorder is what one worker saw. Only its worker writes it; calls and
// errs are atomic so that the progress line can read them meanwhile.
type recorder struct {
	hist     histogram
	codes    [17]uint64 // errors by code; codes.Unauthenticated is 16
	calls    atomic.Uint64
	errs     atomic.Uint64
	firstErr error
}

// answered records a call answered after lat.
func (r *recorder) answered(lat time.Duration) {
	r.hist.record(lat)
	r.calls.Add(1)
}

// failed records a call that failed with code; lat counts when answered.
// why is called for the first failure only, so that failing is as cheap as
// succeeding.
func (r *recorder) failed(code codes.Code, lat time.Duration, answered bool, why func() error) {
	if answered {
		r.hist.record(lat)
	}
	if int(code) >= len(r.codes) {
		code = codes.Unknown
	}
	r.codes[code]++
	if r.firstErr == nil {
		r.firstErr = why()
	}
	r.errs.Add(1)
	r.calls.Add(1)
}

// firstError returns the first failure any worker saw.
func firstError(recs []*recorder) error {
	for _, r := range recs {
		if r.firstErr != nil {
			return r.firstErr
		}
	}
	return nil
}

// histogram counts latencies in buckets 1/128 of a power of two wide, so
// any value is known to within 0.8% in fixed memory: recording never
// allocates, and a long run costs no more than a short one.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub
)

// histIndex returns the bucket of v nanoseconds: values below 256 have one
// each, and above that each power of two is split in 128.
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histValue returns the middle of bucket i.
func histValue(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	low := uint64(i%histSub+histSub) << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which q of the values lie, or 0 when
// there are none.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(histValue(i)), h.max)
		}
	}
	return h.max
}

// benchResult is what a run measured.
type benchResult struct {
	Workload  string            `json:"workload"`
	Addr      string            `json:"addr"`
	Workers   int               `json:"workers"` // callers, or streams for people
	Conns     int               `json:"conns"`
	Window    int               `json:"window,omitempty"`
	Calls     uint64            `json:"calls"`
	Errors    map[string]uint64 `json:"errors"` // by code name, such as "NotFound"
	DurationS float64           `json:"duration_s"`
	Rate      float64           `json:"rate_per_s"`
	Latency   benchLatency      `json:"latency_us"`
	// ClientCPU is the CPU this process used while measuring, in cores: near
	// the cores it may use, the rate is the client's limit, not the server's.
	ClientCPU float64 `json:"client_cpu,omitempty"`
}

// benchLatency holds latency quantiles in microseconds.
type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func (b *bench) result(recs []*recorder, took elapsed) *benchResult {
	var h histogram
	res := &benchResult{
		Workload: b.bc.workload,
		Addr:     b.cfg.Addr,
		Workers:  b.bc.workers(),
		Conns:    b.bc.conns,
		Errors:   map[string]uint64{},
	}
	if b.bc.workload == "people" {
		res.Window = b.window()
	}
	for _, r := range recs {
		h.merge(&r.hist)
		res.Calls += r.calls.Load()
		for c, n := range r.codes {
			if n > 0 {
				res.Errors[codes.Code(c).String()] += n
			}
		}
	}
	res.DurationS = round(took.wall.Seconds(), 1e6)
	res.Rate = round(float64(res.Calls)/took.wall.Seconds(), 10)
	if took.cpu >= 0 {
		res.ClientCPU = round(took.cpu.Seconds()/took.wall.Seconds(), 100)
	}
	us := func(d time.Duration) float64 { return round(float64(d)/1e3, 10) }
	res.Latency = benchLatency{
		P50:  us(h.quantile(0.50)),
		P90:  us(h.quantile(0.90)),
		P99:  us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)),
		Max:  us(h.max),
	}
	return res
}

// round rounds x to 1/per.
func round(x, per float64) float64 { return math.Round(x*per) / per }

func (r *benchResult) errorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// errorSummary lists the errors by code, most frequent first, such as
// "20 NotFound, 3 Unavailable".
func (r *benchResult) errorSummary() string {
	type kv struct {
		code string
		n    uint64
	}
	var all []kv
	for c, n := range r.Errors {
		all = append(all, kv{c, n})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.n != b.n {
			if a.n > b.n {
				return -1
			}
			return 1
		}
		return strings.Compare(a.code, b.code)
	})
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = fmt.Sprintf("%d %s", e.n, e.code)
	}
	return strings.Join(parts, ", ")
}

func (r *benchResult) writeJSON(w io.Writer) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

func (r *benchResult) writeText(w io.Writer) error {
	var what string
	switch r.Workload {
	case "get":
		what = fmt.Sprintf("get: GetPerson, %s on %s", plural(r.Workers, "caller"), plural(r.Conns, "connection"))
	case "add":
		what = fmt.Sprintf("add: AddPerson, %s on %s", plural(r.Workers, "caller"), plural(r.Conns, "connection"))
	case "people":
		what = fmt.Sprintf("people: GetPeople, %s of up to %d names in flight", plural(r.Workers, "stream"), r.Window)
	}
	errs := "0"
	if n := r.errorCount(); n > 0 {
		errs = fmt.Sprintf("%d (%s)", n, r.errorSummary())
	}
	us := func(v float64) string { return shortDuration(time.Duration(v * 1e3)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", what)
	fmt.Fprintf(tw, "server\t%s\n", r.Addr)
	fmt.Fprintf(tw, "duration\t%.2fs\n", r.DurationS)
	fmt.Fprintf(tw, "calls\t%d\n", r.Calls)
	fmt.Fprintf(tw, "errors\t%s\n", errs)
	fmt.Fprintf(tw, "rate\t%.0f calls/s\n", r.Rate)
	fmt.Fprintf(tw, "latency\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\n",
		us(r.Latency.P50), us(r.Latency.P90), us(r.Latency.P99), us(r.Latency.P999), us(r.Latency.Max))
	if r.ClientCPU > 0 {
		fmt.Fprintf(tw, "client\t%.2f cores of CPU\n", r.ClientCPU)
	}
	return tw.Flush()
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// shortDuration formats d with three significant digits in the largest
// unit that keeps it at least 1: 850ns, 312µs, 1.21ms, 12.1ms, 1.50s.
func shortDuration(d time.Duration) string {
	v, unit := float64(d), "ns"
	for _, u := range []struct {
		name string
		size float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}} {
		if float64(d) >= u.size {
			v, unit = float64(d)/u.size, u.name
			break
		}
	}
	switch {
	case unit == "ns" || v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	default:
		return fmt.Sprintf("%.2f%s", v, unit)
	}
}

// benchProgress draws one line on a terminal, redrawn each second, with the
// calls so far; like import's progress line, it writes nothing when w is
// not a terminal.
type benchProgress struct {
	w      io.Writer
	active bool
	every  time.Duration
}

func newBenchProgress(w io.Writer, wanted bool) *benchProgress {
	f, ok := w.(*os.File)
	active := wanted && ok && term.IsTerminal(int(f.Fd()))
	return &benchProgress{w: w, active: active, every: time.Second}
}

// run draws the progress of a phase that started at start until the
// returned function is called, which erases the line.
func (p *benchProgress) run(label string, start time.Time, recs []*recorder) (stop func()) {
	if !p.active {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var calls, errs uint64
				for _, r := range recs {
					calls += r.calls.Load()
					errs += r.errs.Load()
				}
				p.draw(label, now.Sub(start), calls, errs)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *benchProgress) draw(label string, elapsed time.Duration, calls, errs uint64) {
	rate := float64(calls) / max(elapsed.Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s: %.0fs, %d calls, %.0f/s, %d errors\033[K", label, elapsed.Seconds(), calls, rate, errs)
}
