package groupcommit

import (
	"sync/atomic"
	"time"
)

// SizeBounds are the upper bounds of the group-size buckets, and
// SecondsBounds those of the commit-time buckets (doubling from 100µs to
// about 6.5s: a group on SQLite commits in about an fsync).
var (
	SizeBounds    = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	SecondsBounds = exponential(100e-6, 2, 17)
)

func exponential(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// Stats is what a Committer has committed so far.
type Stats struct {
	Groups        uint64  // groups run, committed or not
	Writes        uint64  // writes taken into groups
	CommitSeconds float64 // time spent running groups, in all
	// SizeBuckets and SecondsBuckets count the groups whose size, and
	// whose time to run, was at most each bound of SizeBounds and
	// SecondsBounds: cumulative, as Prometheus histograms are.
	SizeBuckets, SecondsBuckets map[float64]uint64
}

// stats counts groups as they run. This package stays free of any metrics
// library, so it keeps its own few buckets; a collector turns a snapshot
// into a histogram.
type stats struct {
	groups, writes, nanos atomic.Uint64
	sizes                 [16]atomic.Uint64 // by index into SizeBounds; the last past them
	seconds               [32]atomic.Uint64 // by index into SecondsBounds; the last past them
}

func (s *stats) observe(size int, d time.Duration) {
	s.groups.Add(1)
	s.writes.Add(uint64(size))
	s.nanos.Add(uint64(d))
	s.sizes[bucket(SizeBounds, float64(size))].Add(1)
	s.seconds[bucket(SecondsBounds, d.Seconds())].Add(1)
}

// bucket returns the index of the first bound v is at most, or
// len(bounds) when it exceeds them all.
func bucket(bounds []float64, v float64) int {
	for i, b := range bounds {
		if v <= b {
			return i
		}
	}
	return len(bounds)
}

// Stats returns what c has committed so far. The counts are read one by
// one while groups may be running, so they can be a group apart.
func (c *Committer[F]) Stats() Stats {
	cumulative := func(bounds []float64, counts []atomic.Uint64) map[float64]uint64 {
		out := make(map[float64]uint64, len(bounds))
		var n uint64
		for i, b := range bounds {
			n += counts[i].Load()
			out[b] = n
		}
		return out
	}
	return Stats{
		Groups:         c.stats.groups.Load(),
		Writes:         c.stats.writes.Load(),
		CommitSeconds:  time.Duration(c.stats.nanos.Load()).Seconds(),
		SizeBuckets:    cumulative(SizeBounds, c.stats.sizes[:]),
		SecondsBuckets: cumulative(SecondsBounds, c.stats.seconds[:]),
	}
}
