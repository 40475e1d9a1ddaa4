package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// TestStats checks that writes show as groups and that the write-ahead log
// has a size once written.
func TestStats(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		if _, err := s.Add(ctx, people.Person{Name: fmt.Sprintf("Stat %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One at a time, each write is a group of one.
	if got := after.Writes - before.Writes; got != n {
		t.Errorf("writes counted = %d, want %d", got, n)
	}
	if got := after.Groups - before.Groups; got != n {
		t.Errorf("groups counted = %d, want %d", got, n)
	}
	if got := after.SizeBuckets[1] - before.SizeBuckets[1]; got != n {
		t.Errorf("groups of one = %d, want %d", got, n)
	}
	if after.CommitSeconds <= before.CommitSeconds {
		t.Errorf("commit seconds %g then %g, want growth", before.CommitSeconds, after.CommitSeconds)
	}
	if after.WALBytes <= 0 {
		t.Errorf("WAL bytes = %d after writes, want some", after.WALBytes)
	}
}
