package telemetry

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/sqlite"
)

func TestDirectoryCollector(t *testing.T) {
	dir := memory.New(0, people.Seed()...)
	if _, err := dir.Add(context.Background(), people.Person{Name: "Carol"}); err != nil {
		t.Fatal(err)
	}
	rev, err := dir.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := DirectoryCollector(dir, func() int64 { return 7 })
	want := fmt.Sprintf(`
# HELP routeguide_people People in the directory.
# TYPE routeguide_people gauge
routeguide_people 3
# HELP routeguide_revision The directory's latest revision.
# TYPE routeguide_revision gauge
routeguide_revision %d
# HELP routeguide_watchers WatchPeople streams open.
# TYPE routeguide_watchers gauge
routeguide_watchers 7
`, rev)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// failingRevision is a directory whose revision cannot be read.
type failingRevision struct{ *memory.Store }

func (failingRevision) Revision(context.Context) (int64, error) {
	return 0, errors.New("database gone")
}

func TestDirectoryCollectorStoreDown(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(DirectoryCollector(failingRevision{memory.New(0)}, func() int64 { return 0 }))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "database gone") {
		t.Errorf("gather with the store down: %v, want its error", err)
	}
}

func TestSQLiteCollector(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "people.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := SQLiteCollector(s)
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := float64(st.Groups) // opening may have written
	const n = 3
	for i := range n {
		if _, err := s.Add(context.Background(), people.Person{Name: fmt.Sprintf("Metric %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Written one at a time, each write is a group of one.
	want := fmt.Sprintf(`
# HELP routeguide_sqlite_write_groups_total Write groups run, each one transaction and one commit.
# TYPE routeguide_sqlite_write_groups_total counter
routeguide_sqlite_write_groups_total %[1]g
# HELP routeguide_sqlite_writes_total Writes taken into write groups.
# TYPE routeguide_sqlite_writes_total counter
routeguide_sqlite_writes_total %[1]g
`, before+n)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "routeguide_sqlite_write_groups_total", "routeguide_sqlite_writes_total"); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		m := f.GetMetric()[0]
		switch f.GetName() {
		case "routeguide_sqlite_wal_bytes":
			if m.GetGauge().GetValue() <= 0 {
				t.Errorf("WAL bytes %v after writes, want some", m.GetGauge().GetValue())
			}
		case "routeguide_sqlite_write_group_size":
			h := m.GetHistogram()
			if h.GetSampleCount() != uint64(before)+n || h.GetBucket()[0].GetUpperBound() != 1 || h.GetBucket()[0].GetCumulativeCount() != uint64(before)+n {
				t.Errorf("group sizes %v, want %d groups of one", h, uint64(before)+n)
			}
		case "routeguide_sqlite_write_group_seconds":
			if h := m.GetHistogram(); h.GetSampleCount() != uint64(before)+n || h.GetSampleSum() <= 0 {
				t.Errorf("group seconds %v, want %d groups taking some time", h, uint64(before)+n)
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("metrics %v, want 5", seen)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
