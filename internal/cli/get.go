package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/routeguide/routeguide/internal/people"
)

func getCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get NAME...",
		Short: "Look people up by name, one GetPerson call each",
		Long: `Look people up by name with one GetPerson call each, printing each person
found. A name nobody has is reported on stderr, the other names are still
looked up, and the exit status is 1. With -o json each person's object also
holds its "etag", for update --if-match and delete --if-match.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("get needs at least one NAME")}
			}
			return nil
		},
	}
	cfg := addClientFlags(e, cmd, true)
	cmd.RunE = func(cmd *cobra.Command, names []string) error {
		c, err := cfg.connect()
		if err != nil {
			return err
		}
		defer c.Close()

		print := etagWriter(e.stdout, cfg.Output)
		missing := 0
		for _, name := range names {
			ctx, cancel := cfg.callContext(cmd.Context())
			p, etag, err := c.PersonETag(ctx, name)
			cancel()
			if people.KindOf(err) == people.NotFound {
				missing++
				fmt.Fprintf(e.stderr, "routeguide: no person named %q\n", name)
				continue
			}
			if err != nil {
				return fail(cfg.describe(err))
			}
			if err := print(p, etag); err != nil {
				return fail(err)
			}
		}
		if missing > 0 {
			return exitSilently{}
		}
		return nil
	}
	return cmd
}
