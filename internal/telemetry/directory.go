package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/sqlite"
)

// collectTimeout bounds what one scrape waits for a store.
const collectTimeout = 2 * time.Second

// Directory is what DirectoryCollector reads: the latest revision, and how
// many people there are when it has a Len method, as the read cache and
// the memory store do.
type Directory interface {
	Revision(ctx context.Context) (int64, error)
}

// directoryCollector exports the directory's size and revision and the
// server's open watches.
type directoryCollector struct {
	dir                    Directory
	watchers               func() int64
	people, revision, open *prometheus.Desc
}

// DirectoryCollector returns a collector of dir's people (when it can
// count them) and latest revision, and of watchers, the number of WatchPeople streams open. On
// the read cache, people counts those in memory, which grows to the
// directory's size as the cache loads at start.
func DirectoryCollector(dir Directory, watchers func() int64) prometheus.Collector {
	return &directoryCollector{
		dir:      dir,
		watchers: watchers,
		people:   prometheus.NewDesc("routeguide_people", "People in the directory.", nil, nil),
		revision: prometheus.NewDesc("routeguide_revision", "The directory's latest revision.", nil, nil),
		open:     prometheus.NewDesc("routeguide_watchers", "WatchPeople streams open.", nil, nil),
	}
}

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.people
	ch <- c.revision
	ch <- c.open
}

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	if d, ok := c.dir.(interface{ Len() int }); ok {
		ch <- prometheus.MustNewConstMetric(c.people, prometheus.GaugeValue, float64(d.Len()))
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(c.watchers()))
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	rev, err := c.dir.Revision(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.revision, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.revision, prometheus.GaugeValue, float64(rev))
}

// sqliteCollector exports a SQLite store's write groups and log size.
type sqliteCollector struct {
	store                              *sqlite.Store
	groups, writes, size, seconds, wal *prometheus.Desc
}

// SQLiteCollector returns a collector of store's write groups (how many,
// how large, how long each took to run and commit) and the size of its
// write-ahead log. Its connection pools are SQLCollectors'.
func SQLiteCollector(store *sqlite.Store) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("routeguide_sqlite_"+name, help, nil, nil)
	}
	return &sqliteCollector{
		store:   store,
		groups:  desc("write_groups_total", "Write groups run, each one transaction and one commit."),
		writes:  desc("writes_total", "Writes taken into write groups."),
		size:    desc("write_group_size", "Writes in each write group."),
		seconds: desc("write_group_seconds", "Time to run and commit each write group, fsync included."),
		wal:     desc("wal_bytes", "Size of the write-ahead log file."),
	}
}

func (c *sqliteCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.groups, c.writes, c.size, c.seconds, c.wal} {
		ch <- d
	}
}

func (c *sqliteCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	st, err := c.store.Stats(ctx)
	ch <- prometheus.MustNewConstMetric(c.groups, prometheus.CounterValue, float64(st.Groups))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Writes))
	ch <- prometheus.MustNewConstHistogram(c.size, st.Groups, float64(st.Writes), st.SizeBuckets)
	ch <- prometheus.MustNewConstHistogram(c.seconds, st.Groups, st.CommitSeconds, st.SecondsBuckets)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.wal, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.wal, prometheus.GaugeValue, float64(st.WALBytes))
}

// cacheCollector exports a bounded read cache's hits, misses and evictions.
type cacheCollector struct {
	cache                                     *cache.Store
	hits, misses, evicted, people, bytes, max *prometheus.Desc
}

// CacheCollector returns a collector of c's lookups answered from memory
// and from the store, the people it dropped to keep within its bound, and
// what it holds, when c is bounded (cache.Options.MaxBytes); of nothing
// otherwise.
func CacheCollector(c *cache.Store) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("routeguide_cache_"+name, help, nil, nil)
	}
	return &cacheCollector{
		cache:   c,
		hits:    desc("hits_total", "Lookups the bounded read cache answered from memory."),
		misses:  desc("misses_total", "Lookups the bounded read cache read from the store."),
		evicted: desc("evicted_total", "People the bounded read cache dropped to keep within its bound."),
		people:  desc("people", "People the bounded read cache holds."),
		bytes:   desc("bytes", "Memory the bounded read cache's tables hold."),
		max:     desc("max_bytes", "The bounded read cache's bound (--cache-max-bytes)."),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.evicted, c.people, c.bytes, c.max} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.cache.Stats()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(s.Evicted))
	ch <- prometheus.MustNewConstMetric(c.people, prometheus.GaugeValue, float64(s.People))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxBytes))
}
