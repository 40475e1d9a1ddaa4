package cli

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

func peopleCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "people [NAME...]",
		Short: "Stream names through GetPeople and print each person as it arrives",
		Long: `Stream names through one GetPeople call and print each person as the server
answers. With no NAME, names are read from stdin, one a line, and sent as they
are read, so a live source works:

  tail -f names.txt | routeguide people

Names nobody has are skipped, as the server does. Reading from stdin, the call
has no deadline unless --timeout or ROUTEGUIDE_TIMEOUT sets one.`,
	}
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		names := slices.Values(args)
		var stdin *lineReader
		if len(args) == 0 {
			stdin = &lineReader{r: e.stdin}
			names = stdin.names
			cfg.openEnded()
		}
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()

		ctx, cancel := cfg.callContext(cmd.Context())
		defer cancel()
		answers := 0
		if err := c.People(ctx, names, counting(&answers, personWriter(e.stdout, cfg.Output))); err != nil {
			return fail(cfg.describeStream(err, answers))
		}
		if stdin != nil {
			if err := stdin.Err(); err != nil {
				return fail(fmt.Errorf("read names: %w", err))
			}
		}
		return nil
	}
	return cmd
}

// lineReader yields the non-blank lines of r, trimmed, as they are read.
type lineReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error // guarded by mu; why reading stopped early
}

// names is an iter.Seq of the lines. It may run on another goroutine than
// the one that calls Err.
func (l *lineReader) names(yield func(string) bool) {
	sc := bufio.NewScanner(l.r)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		if !yield(name) {
			return
		}
	}
	l.mu.Lock()
	l.err = sc.Err()
	l.mu.Unlock()
}

// Err returns the error that ended reading, if any.
func (l *lineReader) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
