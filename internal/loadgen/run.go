package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// runner is one run: its connections and the requests it sends, built
// once.
type runner struct {
	cfg      *Config
	conns    []grpc.ClientConnInterface
	progress func(Progress)
	answers  []grpc.CallOption // for calls whose answers are read as *answer
	reqs     []*pb.Name        // one for each of cfg.Names
	known    []bool            // People: whether the server has cfg.Names[i]
	prefix   string            // Add: the start of every name this run adds
	seqs     []uint64          // Add: the next number of each caller, across phases
	epoch    time.Time
}

func newRunner(conns []grpc.ClientConnInterface, cfg *Config, progress func(Progress)) *runner {
	r := &runner{
		cfg:      cfg,
		conns:    conns,
		progress: progress,
		answers:  []grpc.CallOption{grpc.StaticMethod(), grpc.ForceCodecV2(newAnswerCodec())},
		prefix:   fmt.Sprintf("bench-%012x-", rand.Uint64()>>16),
		seqs:     make([]uint64, cfg.workers(len(conns))),
		epoch:    time.Now(),
	}
	for _, n := range cfg.Names {
		r.reqs = append(r.reqs, &pb.Name{Name: n})
	}
	return r
}

// withTimeout returns ctx with d as its deadline, or ctx itself when d is 0.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d == 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// preflight makes one GetPerson call on each connection, so that the
// connections are up before the clock starts and a server that cannot be
// reached fails the run at once. For People, it also learns which names the
// server knows: GetPeople skips the others, so there is no answer to wait
// for.
func (r *runner) preflight(ctx context.Context) error {
	// Add may be given no names: any name will do to check the server.
	probe := &pb.Name{Name: "Alice"}
	if len(r.reqs) > 0 {
		probe = r.reqs[0]
	}
	call := func(conn grpc.ClientConnInterface, req *pb.Name) (known bool, err error) {
		ctx, cancel := withTimeout(ctx, r.cfg.CheckTimeout)
		defer cancel()
		p, err := pb.NewRouteGuideClient(conn).GetPerson(ctx, req)
		if err != nil {
			return false, err
		}
		return !isNotFoundPerson(p, req), nil
	}
	for _, c := range r.conns[1:] {
		if _, err := call(c, probe); err != nil {
			return err
		}
	}
	if r.cfg.Workload != People {
		_, err := call(r.conns[0], probe)
		return err
	}
	r.known = make([]bool, len(r.reqs))
	for i, req := range r.reqs {
		known, err := call(r.conns[0], req)
		if err != nil {
			return err
		}
		r.known[i] = known
	}
	if !slices.Contains(r.known, true) {
		return ErrNoKnownNames
	}
	return nil
}

// isNotFoundPerson reports whether p is the seed's answer to a name nobody
// has (see wire.IsNotFound), when the name asked for was another.
func isNotFoundPerson(p *pb.Person, req *pb.Name) bool {
	return wire.IsNotFound(p) && req.GetName() != people.NotFoundName
}

// elapsed is how long a phase took, in wall time and in this process's CPU
// time (-1 when unknown).
type elapsed struct {
	wall, cpu time.Duration
}

// phase runs the workload for d, or until count calls have completed when
// count > 0, and returns each worker's record and how long the phase took,
// with the CPU time this process used meanwhile (-1 when unknown).
// Calls in flight when d ends complete and count; the phase is cut off
// Grace (or the call timeout, if longer) after d.
func (r *runner) phase(ctx context.Context, ph Phase, d time.Duration, count int) ([]*recorder, elapsed, error) {
	n := r.cfg.workers(len(r.conns))
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = newRecorder()
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	// An interrupted run stops at once: calls on an ended context fail
	// without waiting, and would otherwise go on failing until d or count.
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	if count == 0 {
		grace := max(Grace, r.cfg.Timeout)
		t1 := time.AfterFunc(d, func() { stop.Store(true) })
		t2 := time.AfterFunc(d+grace, cancel)
		defer t1.Stop()
		defer t2.Stop()
	}

	cpu0, cpuOK := processCPU()
	start := time.Now()
	stopProgress := r.report(ph, start, recs)
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
			switch r.cfg.Workload {
			case Get:
				r.getCaller(ctx, i, quota, &stop, recs[i])
			case Add:
				r.addCaller(ctx, i, quota, &stop, recs[i])
			case People:
				r.peopleStream(ctx, i, quota, &stop, recs[i])
			}
		})
	}
	wg.Wait()
	took := elapsed{wall: time.Since(start), cpu: -1}
	if cpu1, ok := processCPU(); ok && cpuOK {
		took.cpu = cpu1 - cpu0
	}
	stopProgress()
	if err := parent.Err(); err != nil {
		return nil, took, err
	}
	return recs, took, nil
}

// report calls r.progress about every ProgressEvery with the calls of a
// phase that started at start, until the returned function is called,
// which reports the phase done.
func (r *runner) report(ph Phase, start time.Time, recs []*recorder) (stop func()) {
	if r.progress == nil {
		return func() {}
	}
	count := func(now time.Time, done bool) Progress {
		p := Progress{Phase: ph, Elapsed: now.Sub(start), Done: done}
		for _, rec := range recs {
			p.Calls += rec.calls.Load()
			p.Errors += rec.errs.Load()
		}
		return p
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cmp.Or(r.cfg.ProgressEvery, time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				r.progress(count(now, false))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		r.progress(count(time.Now(), true))
	}
}

// more reports whether a worker that has made n calls makes another.
func more(n, quota int, stop *atomic.Bool) bool {
	return (quota < 0 || n < quota) && !stop.Load()
}

func (r *runner) getCaller(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	conn := r.conns[i%len(r.conns)]
	k := i % len(r.reqs)
	var p answer
	for n := 0; more(n, quota, stop); n++ {
		req := r.reqs[k]
		if k++; k == len(r.reqs) {
			k = 0
		}
		callCtx, cancel := withTimeout(ctx, r.cfg.Timeout)
		t0 := time.Now()
		err := conn.Invoke(callCtx, pb.RouteGuide_GetPerson_FullMethodName, req, &p, r.answers...)
		lat := time.Since(t0)
		cancel()
		switch {
		case err != nil:
			rec.failed(status.Code(err), lat, true, func() error { return err })
		case p.notFound(req):
			rec.failed(codes.NotFound, lat, true, func() error { return fmt.Errorf("no person named %q", req.GetName()) })
		default:
			rec.answered(lat)
		}
	}
}

func (r *runner) addCaller(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	c := pb.NewRouteGuideClient(r.conns[i%len(r.conns)])
	req := &pb.AddPersonRequest{Person: &pb.Person{
		Age:     30,
		Gender:  pb.Person_FEMALE,
		Hobbies: []string{"reading", "swimming"},
		Address: &pb.Person_Address{Street: "123 Main St", City: "New York"},
	}}
	name := strconv.AppendInt([]byte(r.prefix), int64(i), 10)
	name = append(name, '-')
	mark := len(name)
	seq := r.seqs[i]
	defer func() { r.seqs[i] = seq }()
	for n := 0; more(n, quota, stop); n++ {
		name = strconv.AppendUint(name[:mark], seq, 10)
		seq++
		req.Person.Name = string(name)
		callCtx, cancel := withTimeout(ctx, r.cfg.Timeout)
		t0 := time.Now()
		_, err := c.AddPerson(callCtx, req)
		lat := time.Since(t0)
		cancel()
		if err != nil {
			rec.failed(status.Code(err), lat, true, func() error { return err })
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

// window returns how many names a stream keeps in flight: Config.Window,
// or more when there are more names, so that every full window holds a name
// the server knows, whose answer settles the skipped names before it.
func (r *runner) window() int { return max(r.cfg.Window, len(r.reqs)) }

// peopleStream runs one pipelined GetPeople stream on connection i: a sender
// keeps sending names while at most window() are unanswered, and this
// goroutine reads the answers, matching each to its name. Answers come in
// the order the names were sent, skipping unknown names, so the oldest
// names in flight are either answered by the next message or were skipped.
func (r *runner) peopleStream(ctx context.Context, i, quota int, stop *atomic.Bool, rec *recorder) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.conns[i].NewStream(ctx, &pb.RouteGuide_ServiceDesc.Streams[0], pb.RouteGuide_GetPeople_FullMethodName, r.answers...)
	if err != nil {
		rec.failed(status.Code(err), 0, false, func() error { return err })
		return
	}
	slots := make(chan struct{}, r.window())
	inflight := make(chan sent, r.window())
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		k := i % len(r.reqs)
		for n := 0; more(n, quota, stop); n++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			inflight <- sent{idx: int32(k), at: time.Since(r.epoch)}
			if err := stream.SendMsg(r.reqs[k]); err != nil {
				return // the receiver learns why
			}
			if k++; k == len(r.reqs) {
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
				case !r.known[s.idx]:
					r.skipped(rec, s.idx)
				default:
					rec.failed(codes.Internal, 0, false, func() error {
						return fmt.Errorf("GetPeople ended without answering %q", r.cfg.Names[s.idx])
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
			settle(status.Code(err), func() error { return err })
			return
		}
		now := time.Since(r.epoch)
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
			case m.is(r.cfg.Names[s.idx]):
				rec.answered(now - s.at)
				matched = true
			case !r.known[s.idx]:
				r.skipped(rec, s.idx)
			default:
				name := string(m.name)
				rec.failed(codes.Internal, 0, false, func() error {
					return fmt.Errorf("GetPeople answered %q before %q, which was sent first", name, r.cfg.Names[s.idx])
				})
				settle(codes.Internal, func() error { return errors.New("GetPeople answered out of order") })
				return
			}
		}
	}
}

// skipped records a name GetPeople skipped as a NotFound error.
func (r *runner) skipped(rec *recorder, idx int32) {
	rec.failed(codes.NotFound, 0, false, func() error {
		return fmt.Errorf("GetPeople skipped %q: no person of that name", r.cfg.Names[idx])
	})
}

// result sums the workers' records of the measured phase.
func (r *runner) result(recs []*recorder, took elapsed) Result {
	res := Result{
		Workload: r.cfg.Workload,
		Workers:  r.cfg.workers(len(r.conns)),
		Conns:    len(r.conns),
		Errors:   map[codes.Code]uint64{},
		Wall:     took.wall,
		CPU:      took.cpu,
	}
	if r.cfg.Workload == People {
		res.Window = r.window()
	}
	h := newHistogram()
	for _, rec := range recs {
		h.merge(rec.hist)
		res.Calls += rec.calls.Load()
		for c, n := range rec.codes {
			if n > 0 {
				res.Errors[codes.Code(c)] += n
			}
		}
		if res.FirstError == nil {
			res.FirstError = rec.firstErr
		}
	}
	res.Latency = Latency{
		P50:  h.quantile(0.50),
		P90:  h.quantile(0.90),
		P99:  h.quantile(0.99),
		P999: h.quantile(0.999),
		Max:  h.max,
	}
	return res
}
