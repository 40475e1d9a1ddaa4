package loadgen

import (
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"
)

// recorder is what one worker saw. Only its worker writes it; calls and
// errs are atomic so that progress can read them meanwhile.
type recorder struct {
	hist     *histogram
	codes    [17]uint64 // errors by code; codes.Unauthenticated is 16
	calls    atomic.Uint64
	errs     atomic.Uint64
	firstErr error
}

func newRecorder() *recorder { return &recorder{hist: newHistogram()} }

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

// histogram holds latencies in an HdrHistogram of nanoseconds, to three
// significant digits (within 0.1%, so that the three digits bench prints
// are the latency's own), from 1ns to histHighest, and the exact maximum.
// Recording never allocates, and a long run costs no more memory than a
// short one: about 270 KB a worker (ByteSize), for the whole range.
// Recording costs more than the fixed-bucket histogram this replaced, but
// little next to a call: BenchmarkHistogramRecord measures it.
type histogram struct {
	h   *hdrhistogram.Histogram
	max time.Duration
}

// histHighest is the longest latency the histogram tells apart; longer ones
// count as histHighest in the quantiles (the maximum stays exact).
const histHighest = time.Hour

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(1, int64(histHighest), 3)}
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	h.max = max(h.max, d)
	if err := h.h.RecordValue(int64(min(d, histHighest))); err != nil {
		// Not reachable: the value is within the histogram's range, and its
		// count cannot reach 2^63.
		panic(err)
	}
}

func (h *histogram) merge(o *histogram) {
	if dropped := h.h.Merge(o.h); dropped != 0 {
		panic("loadgen: merging histograms of one range dropped values")
	}
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which q of the values lie, or 0 when
// there are none. It is never more than the maximum, which it is for q 1.
func (h *histogram) quantile(q float64) time.Duration {
	switch {
	case h.h.TotalCount() == 0:
		return 0
	case q >= 1:
		return h.max
	}
	return min(time.Duration(h.h.ValueAtQuantile(q*100)), h.max)
}
