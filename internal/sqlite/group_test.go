package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/groupcommit/groupcommittest"
	"github.com/routeguide/routeguide/internal/people"
)

// TestGroupCommit runs the group-commit behaviour on SQLite.
func TestGroupCommit(t *testing.T) {
	groupcommittest.Run(t, func(t *testing.T) (people.Store, groupcommittest.Hooks, func(*testing.T) people.Store) {
		path := filepath.Join(t.TempDir(), "people.db")
		s := open(t, path, 0)
		return s, s.group, func(t *testing.T) people.Store { return open(t, path, 0) }
	})
}
