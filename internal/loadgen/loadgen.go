// Package loadgen loads a RouteGuide server, as `routeguide bench` does: it
// makes calls on connections it is given, for a while or a number of calls,
// and returns what they measured (calls, errors by code, latency quantiles,
// and the CPU this process used meanwhile). It knows nothing of flags or
// output formats.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Workload is what a run's calls are.
type Workload string

// The workloads.
const (
	// Get calls GetPerson for Config.Names in turn, from
	// Config.Concurrency callers spread over the connections.
	Get Workload = "get"
	// People runs one GetPeople stream on each connection, names
	// pipelined: a sender keeps up to Config.Window names unanswered while
	// a receiver reads the answers, and a name's latency runs from its send
	// to its answer.
	People Workload = "people"
	// Add calls AddPerson for new people, named from a prefix unique to the
	// run (bench-RUN-CALLER-N), from Config.Concurrency callers.
	Add Workload = "add"
)

// Config is what Run runs. The zero value is not valid: see Check.
type Config struct {
	Workload Workload
	// Concurrency is how many callers make calls at once (Get, Add).
	Concurrency int
	// Window is how many names a People stream keeps sent and not yet
	// answered, at most; it grows to len(Names) when that is more, so that
	// every full window holds a name the server answers.
	Window int
	// Duration is how long to measure, after the warmup, when Count is 0.
	// Calls in flight when it ends complete and count; a phase is cut off
	// Grace (or Timeout, if longer) after it.
	Duration time.Duration
	// Count, when more than 0, is how many calls to measure in all instead
	// of running for Duration.
	Count int
	// Warmup is how long to run first without counting; 0 for none.
	Warmup time.Duration
	// Names are the names asked for, in turn (Get, People).
	Names []string
	// Timeout is the deadline of each measured call; 0 for none. A
	// deadline costs the client a context and a timer on every call.
	Timeout time.Duration
	// CheckTimeout is the deadline of the calls that check the server
	// before the run; 0 for none.
	CheckTimeout time.Duration
	// ProgressEvery is how often Run's progress function is called during
	// a phase; 0 means every second.
	ProgressEvery time.Duration
}

// Grace is how long a phase run for a Duration waits for the calls in
// flight when it ends, at least, before cutting them off.
const Grace = 10 * time.Second

// ConfigError is a Config field Run cannot run with.
type ConfigError struct {
	Field string // the Config field, such as "Concurrency"
	Value string // its value, formatted; empty when one of Names is at fault
	Want  string // what would do, such as "want at least 1"
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("loadgen: %s: %s", e.Field, e.Want)
	}
	return fmt.Sprintf("loadgen: %s %s: %s", e.Field, e.Value, e.Want)
}

// Check returns a *ConfigError for the first field of c that Run cannot
// run with, or nil. Fields the workload does not use are not checked.
func (c *Config) Check() error {
	bad := func(field string, value any, want string) error {
		return &ConfigError{Field: field, Value: fmt.Sprint(value), Want: want}
	}
	switch {
	case c.Workload != Get && c.Workload != People && c.Workload != Add:
		return bad("Workload", fmt.Sprintf("%q", c.Workload), "want get, people or add")
	case c.Workload != People && c.Concurrency < 1:
		return bad("Concurrency", c.Concurrency, "want at least 1")
	case c.Workload == People && c.Window < 1:
		return bad("Window", c.Window, "want at least 1")
	case c.Count == 0 && c.Duration <= 0:
		return bad("Duration", c.Duration, "want more than 0")
	case c.Count < 0:
		return bad("Count", c.Count, "want at least 1")
	case c.Warmup < 0:
		return bad("Warmup", c.Warmup, "must not be negative")
	case c.Timeout < 0:
		return bad("Timeout", c.Timeout, "must not be negative")
	case c.CheckTimeout < 0:
		return bad("CheckTimeout", c.CheckTimeout, "must not be negative")
	case c.ProgressEvery < 0:
		return bad("ProgressEvery", c.ProgressEvery, "must not be negative")
	}
	if c.Workload == Add {
		return nil
	}
	if len(c.Names) == 0 {
		return &ConfigError{Field: "Names", Want: "want at least one name"}
	}
	for _, n := range c.Names {
		if n == "" {
			return &ConfigError{Field: "Names", Want: "a name is empty"}
		}
	}
	return nil
}

// workers returns how many callers or streams the workload runs on conns
// connections.
func (c *Config) workers(conns int) int {
	if c.Workload == People {
		return conns
	}
	return c.Concurrency
}

// ErrNoKnownNames is Run's error for a People run when the server knows
// none of Config.Names: GetPeople skips unknown names, so there would be no
// answer to measure.
var ErrNoKnownNames = errors.New("loadgen: the server knows none of the names, and GetPeople skips unknown names")

// Result is what a run measured, in its measured phase.
type Result struct {
	Workload Workload
	Workers  int // callers, or streams for People
	Conns    int
	Window   int // People: names in flight on each stream, at most; else 0
	// Calls counts every completed call, errors included.
	Calls uint64
	// Errors counts the failed calls by code. GetPerson's "Not Found"
	// answer and a name GetPeople skips are NotFound.
	Errors map[codes.Code]uint64
	// FirstError is the first failure any worker saw, or nil.
	FirstError error
	// Wall is how long the phase took; CPU is the CPU time this process
	// used meanwhile, user and system, or -1 when unknown.
	Wall, CPU time.Duration
	// Latency is over every answered call, failed ones included.
	Latency Latency
}

// Latency holds latency quantiles, each to within 0.1% (see histogram),
// and the exact maximum.
type Latency struct {
	P50, P90, P99, P999, Max time.Duration
}

// Phase names a phase of a run.
type Phase int

// The phases.
const (
	Warmup Phase = iota
	Measure
)

// Progress is a phase's count so far.
type Progress struct {
	Phase   Phase
	Elapsed time.Duration
	Calls   uint64 // completed, errors included
	Errors  uint64
	// Done is set on the last call for a phase, once its calls are over.
	Done bool
}

// Run checks cfg, checks that the server answers on each of conns (one
// GetPerson call each, so that the connections are up before the clock
// starts), runs the warmup and then the measured phase, and returns what
// the measured phase measured. progress, when not nil, is called about
// every cfg.ProgressEvery during each phase and once at its end with Done
// set, from one goroutine at a time and never after Run returns.
//
// Run fails with a *ConfigError when cfg is not valid, with the call's
// error when a check of the server fails, with ErrNoKnownNames, and with
// ctx's error when ctx ends. A run whose every call failed is not an error
// of Run's: its Result says so.
func Run(ctx context.Context, conns []grpc.ClientConnInterface, cfg Config, progress func(Progress)) (Result, error) {
	if err := cfg.Check(); err != nil {
		return Result{}, err
	}
	if len(conns) == 0 {
		return Result{}, &ConfigError{Field: "conns", Value: "0", Want: "want at least 1"}
	}
	r := newRunner(conns, &cfg, progress)
	if err := r.preflight(ctx); err != nil {
		return Result{}, err
	}
	if cfg.Warmup > 0 {
		if _, _, err := r.phase(ctx, Warmup, cfg.Warmup, 0); err != nil {
			return Result{}, err
		}
	}
	recs, took, err := r.phase(ctx, Measure, cfg.Duration, cfg.Count)
	if err != nil {
		return Result{}, err
	}
	return r.result(recs, took), nil
}
