package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/groupcommit/groupcommittest"
	"github.com/routeguide/routeguide/internal/people"
)

// TestGroupCommit runs the group-commit behaviour on SQLite.
func TestGroupCommit(t *testing.T) {
	groupcommittest.Run(t, func(t *testing.T) groupcommittest.Subject {
		path := filepath.Join(t.TempDir(), "people.db")
		s := open(t, path, 0)
		return groupcommittest.Subject{
			Store:  s,
			Group:  s.group,
			Reopen: func(t *testing.T) people.Store { return open(t, path, 0) },
			FailAfterWriting: func(ctx context.Context, name string) error {
				_, err := s.apply(ctx, "add and fail", write{run: func(ctx context.Context, g *groupTx) error {
					p := people.Person{Name: name}
					if _, err := g.ExecContext(ctx, insertPerson, personArgs(p)...); err != nil {
						return err
					}
					if err := g.record(ctx, people.Added, p, people.Origin{}); err != nil {
						return err
					}
					return errors.New("failing after writing, as the test asks")
				}})
				return err
			},
		}
	})
}
