package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/routeguide/routeguide/internal/groupcommit"
)

// Stats is what the store's writer has committed, and the size of its
// write-ahead log.
type Stats struct {
	groupcommit.Stats
	// WALBytes is the size of the write-ahead log file. SQLite folds it
	// into the database at checkpoints and then reuses it from the start,
	// so it stays about as large as the most written between two
	// checkpoints; a log that only grows means a reader is holding back
	// checkpoints.
	WALBytes int64
}

// Stats returns the store's statistics. It fails when the database file's
// name cannot be read, or its log's size when it exists.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Stats: s.group.Stats()}
	var file string
	// The file as SQLite opened it, rather than the path given to Open,
	// which may have been relative to another working directory.
	if err := s.read.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return st, fmt.Errorf("sqlite stats: %w", err)
	}
	fi, err := os.Stat(file + "-wal")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, fmt.Errorf("sqlite stats: %w", err)
	default:
		st.WALBytes = fi.Size()
	}
	return st, nil
}
