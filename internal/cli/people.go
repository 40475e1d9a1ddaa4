package cli

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"

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
		var readErr error
		if len(args) == 0 {
			names = lines(e.stdin, &readErr)
			if !cfg.timeoutSet {
				cfg.Timeout = 0
			}
		}
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()

		ctx, cancel := cfg.callContext(cmd.Context())
		defer cancel()
		if err := c.People(ctx, names, personWriter(e.stdout, cfg.Output)); err != nil {
			return fail(cfg.describe(err))
		}
		if readErr != nil {
			return fail(fmt.Errorf("read names: %w", readErr))
		}
		return nil
	}
	return cmd
}

// lines yields the non-blank lines of r, trimmed, as they are read. A read
// error ends the sequence and is stored in *errp; the caller checks it after
// the sequence is done.
func lines(r io.Reader, errp *error) iter.Seq[string] {
	return func(yield func(string) bool) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			name := strings.TrimSpace(sc.Text())
			if name == "" {
				continue
			}
			if !yield(name) {
				return
			}
		}
		*errp = sc.Err()
	}
}
