package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
